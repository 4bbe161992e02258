"""Security and transport in one place: secret key, CSRF, cookies, CSP and headers, gzip."""

from __future__ import annotations

import gzip

from flask import render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

csrf = CSRFProtect()

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
COMPRESSIBLE = ("text/html", "text/css", "text/csv", "text/javascript",
                "application/javascript", "application/json", "image/svg+xml", "text/plain")


def check_secret(app) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if app.debug or app.testing:
        # Development only: a fresh key per process (sessions do not survive a restart).
        import secrets

        app.config["SECRET_KEY"] = secrets.token_hex(32)
        return
    raise RuntimeError(
        "SURVEY_SECRET_KEY is not set. Generate one with "
        "`python -c 'import secrets; print(secrets.token_hex(32))'` and set it in the environment."
    )


def set_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    return response


def compress(response):
    """gzip text responses: the phone's budget is counted in bytes on the wire.

    Files sent as they are on disk (the stylesheet and script, which count in the page's
    budget) are read whole when small and compressed like any other body.
    """
    if (
        response.status_code < 200
        or response.status_code in (204, 206, 304)
        or "Content-Encoding" in response.headers
        or response.mimetype not in COMPRESSIBLE
        or "gzip" not in request.headers.get("Accept-Encoding", "")
    ):
        return response
    if response.direct_passthrough:
        if (response.content_length or 0) > 256 * 1024:
            return response
        file_wrapper = response.response
        response.direct_passthrough = False
        response.set_data(response.get_data())
        file_wrapper.close()
    body = response.get_data()
    if len(body) < 500:
        return response
    response.set_data(gzip.compress(body, compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    # An ETag names the uncompressed bytes: weak now, so revalidation still matches.
    etag, _weak = response.get_etag()
    if etag:
        response.set_etag(etag, weak=True)
    return response


def init_app(app) -> None:
    check_secret(app)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    secure = app.config.get("COOKIE_SECURE")
    if secure is None:
        secure = app.config["PUBLIC_URL"].startswith("https://")
    app.config["SESSION_COOKIE_SECURE"] = secure
    csrf.init_app(app)
    app.after_request(set_headers)
    if app.config.get("COMPRESS_RESPONSES"):
        app.after_request(compress)

    @app.errorhandler(CSRFError)
    def csrf_error(_exc):
        if request.blueprint == "respond" and request.view_args:
            from .respond import csrf_failed

            return csrf_failed()
        return render_template("errors/400.html", reason="csrf"), 400
