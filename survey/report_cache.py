"""Computed report tables kept in the database, so every worker process reuses them.

A row per (filters, scope, language, settings) key holds the pickled result and the data
version it was computed from; the version (responses, flags, served volumes, agencies) is
read with a few aggregate queries, so a new response, a volume import or a new agency makes
the next page recompute, and the new result replaces the old row.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable

from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import IntegrityError

from .models import Agency, ReportCache, Response, ServiceVolume


def data_version(db) -> str:
    """What the reports are computed from, in one string: responses (last id, how many,
    how many flagged), served volumes (last id, how many, their sum) and agencies."""
    responses = db.execute(select(
        func.max(Response.id), func.count(Response.id),
        func.sum(case((Response.flags != "", 1), else_=0)))).one()
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
    `compute()` stored in its place. Only this module writes the payloads (pickled
    results of the app's own computation; never data from a request)."""
    key = cache_key(parts)
    version = data_version(db)
    row = db.get(ReportCache, key)
    if row is not None and row.version == version:
        return pickle.loads(row.payload)  # noqa: S301 - written by store() below only
    result = compute()
    store(db, key, version, result)
    return result


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
