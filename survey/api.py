"""The JSON API for an agency's one-stop system: receipt codes, served volumes (/api/v1)."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from . import integrity, receipts, volumes
from .db import get_db
from .domain.scope import subtree_ids
from .imports import ImportFailed
from .models import (
    ApiKey,
    Counter,
    CounterToken,
    StaffUser,
    normalize_token,
    parse_id,
    utcnow,
)
from .security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Authenticated by key, not by a browser session: no cookie, so no CSRF token.
csrf.exempt(bp)

RATE_SCOPE = "api"
MESSAGES = {
    400: "The request body is not valid JSON.",
    401: "A valid API key is required: Authorization: Bearer <key>.",
    403: "This key's agency does not manage that counter.",
    404: "No such counter.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    415: "Send the body as application/json.",
    422: "The request was understood but cannot be processed.",
    429: "Too many requests for this key; retry later.",
}
ERRORS = {400: "bad_json", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
          422: "unprocessable", 429: "rate_limited"}


class ApiError(HTTPException):
    """An error answered as JSON {"error": code, "message": text[, "errors": [...]]}."""

    def __init__(self, status: int, message: str | None = None, errors: list | None = None):
        super().__init__(message or MESSAGES.get(status, ""))
        self.code = status
        self.errors = errors


def _json_error(status: int, message: str, errors: list | None = None):
    body = {"error": ERRORS.get(status, "error"), "message": message}
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="sipas"'
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response


def json_error(exc: HTTPException):
    """An error under /api answers JSON, never an HTML page (registered in survey.errors)."""
    status = exc.code or 500
    if isinstance(exc, ApiError):
        return _json_error(status, exc.description, exc.errors)
    return _json_error(status, MESSAGES.get(status, exc.name))


def authenticated_key() -> ApiKey:
    """The live key of the request (401 otherwise), rate-limited per key (429)."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > 200:
        raise ApiError(401)
    db = get_db()
    key = db.scalar(select(ApiKey).where(ApiKey.key_hash == receipts.api_key_hash(secret)))
    if key is None or key.revoked_at is not None or not key.agency.active:
        raise ApiError(401)
    limit = current_app.config["API_RATE_PER_MINUTE"]
    rate_key = f"key:{key.id}"
    if integrity.reached(db, RATE_SCOPE, rate_key, timedelta(minutes=1), limit):
        raise ApiError(429)
    integrity.record(db, RATE_SCOPE, rate_key)
    key.last_used_at = utcnow()
    db.commit()
    g.api_key = key
    return key


class RepeatedKey(ValueError):
    """A JSON object names the same field twice."""


def _no_repeated_keys(pairs: list) -> dict:
    keys = [key for key, _value in pairs]
    if len(set(keys)) != len(keys):
        raise RepeatedKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def json_body(allowed: set[str]) -> dict:
    """The body as a JSON object with only `allowed` fields (an empty body is {}); a key
    given twice in one object (which value was meant?) is refused."""
    data = request.get_data(cache=True)
    if not data:
        return {}
    if not request.is_json:
        raise ApiError(415)
    try:
        body = json.loads(data, object_pairs_hook=_no_repeated_keys)
    except RepeatedKey as exc:
        raise ApiError(422, f"Field given twice: {str(exc)[:40]!r}.") from None
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past all sense
        raise ApiError(400) from None
    if not isinstance(body, dict):
        raise ApiError(422, "The body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(422, f"Unknown field: {unknown[0][:40]!r}.")
    return body


def counter_in_scope(key: ApiKey, ident: str) -> Counter:
    """The counter named by its id or any of its tokens: 404 unknown, 403 outside the key's
    agency and those below it."""
    db = get_db()
    counter = None
    if ident.isascii() and ident.isdigit():
        counter = db.get(Counter, parse_id(ident)) if parse_id(ident) else None
    elif 0 < len(ident) <= 16:
        counter = db.scalar(select(Counter).join(CounterToken)
                            .where(CounterToken.token == normalize_token(ident)))
    if counter is None:
        raise ApiError(404)
    if counter.agency_id not in subtree_ids(db, key.agency_id):
        raise ApiError(403)
    return counter


@bp.post("/counters/<ident>/receipt-codes")
def receipt_code(ident):
    """One receipt code for one served dossier: {"code", "url", "expires_at"} (201)."""
    key = authenticated_key()
    body = json_body({"days"})
    counter = counter_in_scope(key, ident)
    days = body.get("days", current_app.config["RECEIPT_CODE_DAYS"])
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise ApiError(422, "'days' must be a whole number from 1 to 365.")
    if not (counter.active and counter.agency.active and counter.token):
        raise ApiError(422, "The counter is not active or has no live QR code.")
    db = get_db()
    (code,), expires = receipts.issue_codes(db, counter.id, 1, "api", days)
    db.commit()
    response = jsonify({"code": receipts.printed(code),
                        "url": receipts.code_url(counter.token, code),
                        "expires_at": expires.isoformat(timespec="seconds"),
                        "counter": {"id": counter.id, "label": counter.label,
                                    "agency": counter.agency.code}})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/service-volumes")
def service_volumes():
    """Served volumes for the key's agency and those below: all rows stored or none (422
    with every row's errors)."""
    key = authenticated_key()
    body = json_body({"rows"})
    if "rows" not in body:
        raise ApiError(422, "The body needs 'rows': a list of {agency, service_field, "
                            "period, count}.")
    db = get_db()
    # The same checks as the CSV import, in the key's agency scope (as its agency user).
    as_agency = StaffUser(role="agency", agency_id=key.agency_id, login=f"api:{key.prefix}")
    try:
        created, updated = volumes.import_volume_records(db, body["rows"], as_agency)
    except ImportFailed as failed:
        db.rollback()
        raise ApiError(422, "No row was stored: fix the rows listed in 'errors'.",
                       [{"row": e.row, "field": e.column, "message": e.message}
                        for e in failed.errors]) from None
    db.commit()
    return jsonify({"stored": len(body["rows"]), "created": created, "updated": updated})

