"""Error pages and the request log in one place: every HTTP error, CSRF failures, tracebacks."""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Gone, HTTPException, InternalServerError

# Statuses with a page of their own in templates/errors/; other 4xx/5xx get 400's or 500's.
PAGES = (400, 403, 404, 405, 410, 413, 500)

# One line per request: method, endpoint, status, duration. Never the path (it holds the
# counter's token), the query string, answers, addresses or user agents.
request_log = logging.getLogger("survey.requests")


class CodeWithdrawn(Gone):
    """The QR code existed but was revoked, or its counter or agency is no longer active."""


def error_page(code: int, **context):
    """The Vietnamese page for an HTTP error status, with that status."""
    if code not in PAGES:
        code = 400 if code < 500 else 500
    return render_template(f"errors/{code}.html", **context), code


def _in_api() -> bool:
    """Under /api (also an unknown API path, which no view of the API matched)."""
    return request.blueprint == "api" or request.path.startswith("/api/")


def http_error(exc: HTTPException):
    """Any aborted request: its page (JSON under /api); routing redirects (e.g. a missing
    slash) pass through."""
    if exc.code is None or exc.code < 400:
        return exc
    if _in_api():
        from .api import json_error

        return json_error(exc)
    return error_page(exc.code)


def csrf_error(exc: CSRFError):
    """CSRF failure: the public form keeps the answers and says why; staff forms get a 400."""
    if request.blueprint == "respond" and request.view_args:
        from .respond import csrf_failed

        return csrf_failed(exc.description)
    return error_page(400, reason="csrf")


def unhandled(exc: Exception):
    """A bug or an outage (e.g. the database): logged with its traceback, then the 500 page.

    Logged by endpoint, not by path (the path holds the counter's token). In tests and in
    debug the exception propagates as Flask would, so a failing test shows it.
    """
    propagate = current_app.config.get("PROPAGATE_EXCEPTIONS")
    if propagate is None:
        propagate = current_app.testing or current_app.debug
    if propagate:
        raise exc
    current_app.logger.error("Unhandled exception in %s %s", request.method,
                             request.endpoint or "-", exc_info=exc)
    if _in_api():
        from .api import json_error

        return json_error(InternalServerError())
    return error_page(500)


def _start_timer():
    if request_log.isEnabledFor(logging.INFO):
        g.request_started = time.perf_counter()


def log_request(response):
    """The request's one log line (after the error handlers, so the status is final).

    Nothing to do when the line is off (gunicorn.conf.py: its access log has the same)."""
    if not request_log.isEnabledFor(logging.INFO):
        return response
    started = g.get("request_started")
    duration = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    request_log.info("%s %s %d %.1f ms", request.method, request.endpoint or "-",
                     response.status_code, duration)
    return response


def configure_logging(app: Flask) -> None:
    """INFO and up from the app's loggers; Flask logs unhandled exceptions with tracebacks."""
    # app.logger is the "survey" logger: Flask gives it a stderr handler (gunicorn's error
    # log) unless the deployment configured one; "survey.requests" propagates to it.
    app.logger.setLevel(app.config.get("LOG_LEVEL") or "INFO")


def init_app(app: Flask) -> None:
    """Register every error handler and the request log on the app."""
    configure_logging(app)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(Exception, unhandled)
    app.before_request(_start_timer)
    app.after_request(log_request)
