"""Answers carried from a refused or language-switching POST to the GET it redirects to.

POST/redirect/GET on the public form: a POST is never left in the browser's history, so
going back from the thank-you page never asks to "confirm form resubmission". What the
respondent sent travels in a signed, short-lived, HttpOnly cookie scoped to the counter's
path (never in the URL, never on the server), and is dropped once the answers are stored.
"""

from __future__ import annotations

import json

from flask import current_app, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict

from analysis.questionnaire import Questionnaire

COOKIE = "draft"
SALT = "respond-draft"
# Long enough to reload the page or come back to it after a break; the CSRF token lives 8 h.
MAX_AGE = 2 * 3600
# Browsers keep cookies up to 4096 bytes (name, value and attributes); above this the
# caller shows the page directly instead (answers kept, only the history entry is a POST).
MAX_VALUE_BYTES = 3800
# Never carried: the CSRF token (the GET issues a fresh one) and the language switch.
NOT_CARRIED = frozenset({"csrf_token", "_lang"})


class _CompactJSON:
    """JSON without escaping Vietnamese letters: a third of the size before compression."""

    @staticmethod
    def dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def loads(value):
        return json.loads(value)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT, serializer=_CompactJSON)


def _path(token: str) -> str:
    return url_for("respond.questionnaire", token=token)


def save(response, token: str, questionnaire: Questionnaire, *,
         show_errors: bool = False, expired: bool = False) -> bool:
    """Keep this POST's fields for the next GET of the counter's page; False when too large.

    ``show_errors``: the GET validates the answers again and shows the errors in place.
    ``expired``: the page's submission key had expired; the GET issues a fresh one and says
    why the answers were not sent.
    """
    fields = [[name, value] for name, values in request.form.lists() if name not in NOT_CARRIED
              for value in values if value != ""]
    value = _serializer().dumps({"t": token, "q": [questionnaire.id, questionnaire.version],
                                 "f": fields, "e": show_errors, "x": expired})
    if len(value) > MAX_VALUE_BYTES:
        return False
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, path=_path(token), httponly=True,
                        samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return True


def load(token: str, questionnaire: Questionnaire) -> dict | None:
    """The draft kept for this counter's page and questionnaire version, or None.

    A draft that is expired, altered, for another counter or for another version (the
    questionnaire changed in between) is ignored: the page starts afresh.
    """
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        draft = _serializer().loads(raw, max_age=MAX_AGE)
    except (BadSignature, ValueError):
        return None
    if (not isinstance(draft, dict) or draft.get("t") != token
            or draft.get("q") != [questionnaire.id, questionnaire.version]):
        return None
    fields = draft.get("f")
    if not isinstance(fields, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            for pair in fields):
        return None
    return {"fields": MultiDict([tuple(pair) for pair in fields]),
            "show_errors": draft.get("e") is True, "expired": draft.get("x") is True}


def clear(response, token: str) -> None:
    """Drop the draft: the answers are stored."""
    if request.cookies.get(COOKIE):
        response.delete_cookie(COOKIE, path=_path(token), httponly=True, samesite="Lax",
                               secure=current_app.config["SESSION_COOKIE_SECURE"])
