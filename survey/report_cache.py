"""Computed report tables kept in the database, so every worker process reuses them.

A row per (filters, scope, language, settings) key holds the pickled result and the data
version it was computed from; the version (responses, flags, served volumes, agencies) is
read with a few aggregate queries, so a new response, a volume import or a new agency makes
the next page recompute, and the new result replaces the old row.

How it is recomputed depends on the size (stale-while-revalidate): with up to
``REPORT_INLINE_REFRESH`` responses (app config, default 20,000) the page that finds the
data changed recomputes at once, so small installations always see the latest figures.
Above it, the page answers from the stored result at once (``result.stale`` is the time it
was computed) and one worker, the one that claims the row, recomputes it in a background
thread and replaces it; other workers and pages keep serving the stored result meanwhile.
A claim older than ``CLAIM_SECONDS`` (a worker that died) is taken over.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import time
from collections.abc import Callable

from flask import copy_current_request_context, current_app, has_request_context
from sqlalchemy import delete, func, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from .models import Agency, ReportCache, Response, ServiceVolume

REFRESH_INLINE_MAX = 20_000
CLAIM_SECONDS = 600
# Appended to a row's version while a worker recomputes it: "<version>|refreshing@<epoch>".
CLAIMED = "|refreshing@"
_refreshes: set[threading.Thread] = set()
_refreshes_lock = threading.Lock()


def data_version(db) -> str:
    """What the reports are computed from, in one string: responses (last id, how many,
    how many flagged), served volumes (last id, how many, their sum) and agencies."""
    # Three cheap reads at a million responses: the last id and the count from an index,
    # the flagged ones from their partial index (a literal '' so the planner can use it).
    responses = (*db.execute(select(func.max(Response.id), func.count(Response.id))).one(),
                 db.execute(select(func.count(Response.id))
                            .where(Response.flags != literal_column("''"))).scalar_one())
    volumes = db.execute(select(
        func.max(ServiceVolume.id), func.count(ServiceVolume.id),
        func.sum(ServiceVolume.transactions))).one()
    agencies = db.execute(select(func.max(Agency.id), func.count(Agency.id))).one()
    return "r{}:{}:{}|v{}:{}:{}|a{}:{}".format(*responses, *volumes, *agencies)


def cache_key(parts: dict) -> str:
    """A stable hash of what the result depends on besides the data."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cached(db, parts: dict, compute: Callable[[], object]) -> object:
    """The stored result for `parts` if it was computed from the current data, else
    `compute()` stored in its place, or, for large data, the stored result while a
    background refresh runs (see the module's text). Only this module writes the payloads
    (pickled results of the app's own computation; never data from a request)."""
    key = cache_key(parts)
    version = data_version(db)
    row = db.get(ReportCache, key)
    if row is not None and row.version == version:
        return _load(row)
    if row is not None and has_request_context() and _responses(version) > _inline_max():
        result = _load(row)
        result_time = row.created_at
        if _claim(db, key, row.version):
            _start(lambda: _refresh(key, compute))
        _mark_stale(result, result_time)
        return result
    result = compute()
    store(db, key, version, result)
    return result


def _load(row: ReportCache) -> object:
    return pickle.loads(row.payload)  # noqa: S301 - written by store() below only


def _mark_stale(result: object, computed_at) -> None:
    try:
        result.stale = computed_at
    except AttributeError:
        pass


def _inline_max() -> int:
    return int(current_app.config.get("REPORT_INLINE_REFRESH", REFRESH_INLINE_MAX))


def _responses(version: str) -> int:
    """How many responses the data version counts ("r<last>:<count>:<flagged>|...")."""
    try:
        return int(version.split("|")[0].split(":")[1])
    except (IndexError, ValueError):
        return 0


def _claim(db, key: str, seen: str) -> bool:
    """Whether this worker may recompute the row: it marks the row as being refreshed,
    unless another worker did so less than CLAIM_SECONDS ago."""
    base, _, since = seen.partition(CLAIMED)
    if since and time.time() - float(since or 0) < CLAIM_SECONDS:
        return False
    claimed = db.execute(update(ReportCache)
                         .where(ReportCache.key == key, ReportCache.version == seen)
                         .values(version=f"{base}{CLAIMED}{time.time():.0f}"))
    db.commit()
    return claimed.rowcount == 1


def _refresh(key: str, compute: Callable[[], object]) -> None:
    """Recompute one row (in the background thread, with its own database session)."""
    from .db import get_db

    try:
        db = get_db()
        version = data_version(db)
        store(db, key, version, compute())
    except Exception:  # noqa: BLE001 - a failed refresh leaves the stored result served
        current_app.logger.exception("report refresh %s failed", key[:12])


def _start(job: Callable[[], None]) -> None:
    """Run `job` in a daemon thread with a copy of the request's context (its user,
    language and a database session of its own)."""
    thread = threading.Thread(target=copy_current_request_context(job), daemon=True,
                              name="report-refresh")
    with _refreshes_lock:
        _refreshes.add(thread)
    thread.start()


def wait_for_refreshes(timeout: float | None = None) -> None:
    """Wait until the background refreshes this process started have ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with _refreshes_lock:
            running = [t for t in _refreshes if t.is_alive()]
            _refreshes.difference_update(set(_refreshes) - set(running))
        if not running:
            return
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        running[0].join(left)
        if deadline is not None and time.monotonic() >= deadline:
            return


def store(db, key: str, version: str, result: object) -> None:
    """Replace the key's row; a concurrent writer of the same key simply wins."""
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        db.execute(delete(ReportCache).where(ReportCache.key == key))
        db.add(ReportCache(key=key, version=version, payload=payload))
        db.commit()
    except IntegrityError:
        db.rollback()


def clear(db) -> int:
    """Remove every cached result (e.g. after changing the library's code)."""
    count = db.execute(delete(ReportCache)).rowcount
    db.commit()
    return count
