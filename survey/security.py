"""Security and transport in one place: secret key, CSRF, cookies, CSP and headers, gzip."""

from __future__ import annotations

import gzip
from urllib.parse import unquote_to_bytes

import flask
from flask import abort, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect, same_origin
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property

csrf = CSRFProtect()

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
COMPRESSIBLE = ("text/html", "text/css", "text/csv", "text/javascript",
                "application/javascript", "application/json", "image/svg+xml", "text/plain")


class RowIdConverter(IntegerConverter):
    """`<int:…>` in every route: a row id, 1..models.MAX_ID; a larger number matches no
    route (404) instead of reaching the database (PostgreSQL: integer out of range)."""

    def __init__(self, url_map, *args, **kwargs):
        from .models import MAX_ID

        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


# The example value of deploy/sipas.env starts so: a string published with the code, which
# would let anyone sign a staff session. Refused whatever the mode.
SECRET_PLACEHOLDER = "replace-with"
# A public (https) site's key: at least this many characters (token_hex(32) gives 64).
MIN_SECRET_LENGTH = 32
GENERATE_SECRET = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def check_secret(app) -> None:
    """Refuse to start without a usable SECRET_KEY (debug and testing make up their own).

    Refused: no key outside debug/testing; deploy/sipas.env's example value, always; a key
    shorter than MIN_SECRET_LENGTH when the site is public (PUBLIC_URL is https) outside
    debug/testing. A short key on a plain-http address (a demo or a test server) is logged.
    """
    key = app.config.get("SECRET_KEY")
    development = app.debug or app.testing
    if not key:
        if development:
            # Development only: a fresh key per process (sessions do not survive a restart).
            import secrets

            app.config["SECRET_KEY"] = secrets.token_hex(32)
            return
        raise RuntimeError(
            "SURVEY_SECRET_KEY is not set. Generate one with "
            f"`{GENERATE_SECRET}` and set it in the environment "
            "or in the instance folder's survey.env (`./dev demo` writes one there)."
        )
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    if text.strip().lower().startswith(SECRET_PLACEHOLDER):
        raise RuntimeError(
            "SURVEY_SECRET_KEY is still the example value from deploy/sipas.env, a public "
            "string anyone could sign staff sessions with. Generate a key with "
            f"`{GENERATE_SECRET}` and put it in /etc/sipas/sipas.env (or wherever "
            "SURVEY_SECRET_KEY is set)."
        )
    if len(text.strip()) >= MIN_SECRET_LENGTH or development:
        return
    if app.config.get("PUBLIC_URL", "").startswith("https://"):
        raise RuntimeError(
            f"SURVEY_SECRET_KEY is only {len(text.strip())} characters long; a public "
            f"(https) site needs at least {MIN_SECRET_LENGTH} random characters. Generate one "
            f"with `{GENERATE_SECRET}`."
        )
    app.logger.warning("SURVEY_SECRET_KEY is shorter than %d characters: fine for a test "
                       "server, not for a public site", MIN_SECRET_LENGTH)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _malformed(text: str | None) -> bool:
    # U+FFFD is what invalid UTF-8 decodes to in a path or a multipart field: no browser
    # sends either it or a NUL, and
    # PostgreSQL refuses NULs in text (a 500 instead of a refusal).
    # (A broken multipart part can have no name: None, refused later as an unknown field.)
    return text is not None and ("\x00" in text or "\ufffd" in text)


def _invalid_utf8(urlencoded: bytes) -> bool:
    # Werkzeug turns undecodable percent-escapes into the literal text "%FF", which then
    # cannot be told from a typed "%FF": check the bytes before it parses them.
    try:
        unquote_to_bytes(urlencoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# Pages that check their query themselves: the reports name a bad filter on the page (its
# filter form kept); the login page ignores a `next` it cannot use and goes home.
FILTER_PAGES = frozenset({"reports", "comments", "auth"})


def refuse_malformed_request():
    """404 for a path holding a NUL or invalid UTF-8; 400 for such a query parameter on
    any page but the reports' (FILTER_PAGES), and on the public pages for such a field.

    Staff forms clean what they are given (survey/domain/text.py): a NUL in a login name
    is a wrong login there, not a malformed request. Query parameters (the reports'
    filters, a download's agency) reach the database as given, and PostgreSQL refuses NUL.
    """
    if _malformed(request.path):
        abort(404)
    if request.routing_exception is not None or request.blueprint is None:
        return  # 404/405 follow (the body is not read), or a static file
    query = request.query_string
    if query and _invalid_utf8(query):
        abort(400)
    fields = [request.args] if query else []
    if request.blueprint in FILTER_PAGES:
        return  # each hostile filter is named on the page, the filter form kept
    if request.blueprint != "respond":  # staff forms clean their fields: the query only
        if query and any(_malformed(name) or any(_malformed(value) for value in values)
                         for name, values in request.args.lists()):
            abort(400)
        return
    if request.method in UNSAFE_METHODS:
        if request.mimetype != "application/x-www-form-urlencoded":
            fields.append(request.form)
        else:
            # Read once and cached: the form is parsed from the same bytes.
            body = request.get_data(cache=True)
            # ASCII without escapes or NULs decodes to itself: nothing to look for (most
            # submissions: codes only, no typed text).
            if not (body.isascii() and b"%" not in body and b"\x00" not in body):
                if _invalid_utf8(body):
                    abort(400)
                fields.append(request.form)
    for multidict in fields:
        for name, values in multidict.lists():
            if _malformed(name) or any(_malformed(value) for value in values):
                abort(400)



# The public questionnaire's POST: no CSRF token, its signed submission key instead
# (respond.check_submission_key); the Origin check below applies to it all the same.
PUBLIC_FORM = "respond.submit"


def check_origin():
    """On https, a POST must come from our own pages: its Origin, else its Referer.

    Flask-WTF's strict check (WTF_CSRF_SSL_STRICT, off in config.py) reads only the
    Referer, so a browser or privacy setting that strips it could never submit. Every
    current browser sends Origin on a POST, which proves the same thing; a request with
    neither is refused as before, and the public form says why and what works. The public
    form's POST is checked whatever its token (it carries none), and on http too when it
    says where it comes from (its Origin, else its Referer): a cross-site page cannot post
    answers through a visitor.
    """
    public_form = request.endpoint == PUBLIC_FORM and request.method in UNSAFE_METHODS
    if not (public_form or g.get("csrf_valid")):
        return
    origin = request.headers.get("Origin")
    if not request.is_secure:
        if public_form and origin and origin != "null":
            if not same_origin(origin, request.host_url):
                raise CSRFError("The origin does not match the host.")
        elif public_form and request.referrer and not same_origin(request.referrer,
                                                                  request.host_url):
            raise CSRFError("The referrer does not match the host.")
        return
    own = f"https://{request.host}/"
    if origin and origin != "null":
        if not same_origin(origin, own):
            raise CSRFError("The origin does not match the host.")
        return
    if not request.referrer:
        raise CSRFError("The referrer header is missing.")
    if not same_origin(request.referrer, own):
        raise CSRFError("The referrer does not match the host.")


SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"))
_SECURITY_NAMES = frozenset(name.lower() for name, _value in SECURITY_HEADERS)


def set_headers(response):
    """The security headers, unless the view set its own (one pass over the headers)."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()} & _SECURITY_NAMES
    headers.extend([(name, value) for name, value in SECURITY_HEADERS
                    if name.lower() not in present])
    return response


def compress(response):
    """gzip text responses: the phone's budget is counted in bytes on the wire.

    Files sent as they are on disk (the stylesheet and script, which count in the page's
    budget) are read whole when small and compressed like any other body.
    """
    if (
        "gzip" not in request.headers.get("Accept-Encoding", "")
        or response.status_code < 200
        or response.status_code in (204, 206, 304)
        or "Content-Encoding" in response.headers
        or response.mimetype not in COMPRESSIBLE
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


class Request(flask.Request):
    """Flask's request; without a Cookie header, its cookies are known to be none without
    looking through every header for one (most public requests carry no cookie)."""

    @cached_property
    def cookies(self):
        if "HTTP_COOKIE" not in self.environ:
            return self.dict_storage_class()
        return super().cookies


class CookieSession(SecureCookieSessionInterface):
    """Flask's signed cookie session (auth.py's cookie_session); a request without the
    cookie, as on the public pages, opens an empty one without building the signer."""

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app) -> None:
    check_secret(app)
    app.url_map.converters["int"] = RowIdConverter  # before any blueprint adds its routes
    app.request_class = Request
    app.session_interface = CookieSession()
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    secure = app.config.get("COOKIE_SECURE")
    if secure is None:
        secure = app.config["PUBLIC_URL"].startswith("https://")
    app.config["SESSION_COOKIE_SECURE"] = secure
    # Before CSRF: a malformed request gets its own status, not a CSRF page.
    app.before_request(refuse_malformed_request)
    csrf.init_app(app)
    # After CSRF (hooks run in order): only requests whose token was valid are checked.
    app.before_request(check_origin)
    app.after_request(set_headers)
    if app.config.get("COMPRESS_RESPONSES"):
        app.after_request(compress)
