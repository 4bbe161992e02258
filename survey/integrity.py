"""Integrity checks on anonymous submissions: timing, bursts from one client, expiry of keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .models import RateEvent, utcnow

# Keys rotate daily and rows are deleted after this: nothing links a client across days.
KEEP_EVENTS = timedelta(days=2)
# About one recorded event in this many also deletes the expired ones: the table stays at
# roughly two days of events without a scheduled job, and no request pays for it often.
PURGE_EVERY = 100


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="survey-started")


def start_stamp() -> str:
    """A signed marker of when the page was served, carried by the form."""
    return _serializer().dumps(0)


def seconds_since(stamp: str | None) -> int | None:
    """Seconds since the page was served, or None when the stamp is missing or forged."""
    if not stamp:
        return None
    try:
        _, signed_at = _serializer().loads(stamp, return_timestamp=True)
    except BadSignature:
        return None
    return max(0, int((utcnow() - signed_at).total_seconds()))


def keyed_hash(*parts: str) -> str:
    """What RateEvent stores instead of an identifier: an HMAC under the app's secret."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def client_key(scope: str) -> str:
    """A keyed hash of the client that changes every day; never the address itself."""
    day = utcnow().strftime("%Y-%m-%d")
    return keyed_hash(scope, day, request.remote_addr or "",
                      request.headers.get("User-Agent", ""))


def record(db: Session, scope: str, key: str) -> None:
    """Count one event (a submission, a failed login); now and then expire old ones."""
    db.execute(RateEvent.__table__.insert(), {"scope": scope, "key": key, "at": utcnow()})
    if secrets.randbelow(PURGE_EVERY) == 0:
        purge_expired(db)


def reached(db: Session, scope: str, key: str, window: timedelta, limit: int) -> bool:
    """Whether `key` has at least `limit` events in `scope` within `window`.

    Reads at most `limit` index entries: a client that floods a counter or the login page
    must not make each of its own requests (and everyone else's) slower as it goes.
    """
    since = utcnow() - window
    recent = (
        select(RateEvent.id)
        .where(RateEvent.scope == scope, RateEvent.key == key, RateEvent.at >= since)
        .limit(limit)
        .subquery()
    )
    return db.scalar(select(func.count()).select_from(recent)) >= limit


def purge_expired(db: Session) -> int:
    result = db.execute(delete(RateEvent).where(RateEvent.at < utcnow() - KEEP_EVENTS))
    return result.rowcount or 0


def submission_flags(db: Session, counter_id: int, seconds: int | None) -> list[str]:
    """Flags for a response about to be stored; records the event the burst check counts."""
    config = current_app.config
    flags = []
    if seconds is None:
        flags.append("no_timer")
    elif seconds < config["MIN_PLAUSIBLE_SECONDS"]:
        flags.append("fast")
    scope = f"submit:{counter_id}"
    key = client_key(scope)
    if reached(db, scope, key, timedelta(hours=1), config["BURST_PER_HOUR"]):
        flags.append("burst")
    record(db, scope, key)
    return flags
