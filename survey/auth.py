"""Staff sign-in: sessions, roles, agency scope, the login throttle, audit, `create-user`."""

from __future__ import annotations

import functools
import hashlib
import hmac
import unicodedata
from datetime import timedelta
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask.cli import with_appcontext
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from . import integrity
from .db import get_db
from .domain import scope
from .domain.agencies import normalize_code
from .domain.audit import audit, user_snapshot
from .domain.text import clean
from .domain.users import login_error, normalize_login, password_error, role_agency_error
from .forms import StaffForm
from .models import ROLES, Agency, RateEvent, StaffUser, utcnow

bp = Blueprint("auth", __name__, url_prefix="/admin")

ROLE_LABELS = {
    "admin": _l("Quản trị hệ thống"),
    "agency": _l("Cán bộ cơ quan"),
    "analyst": _l("Cán bộ phân tích"),
}


@functools.cache
def _dummy_user() -> StaffUser:
    """Checked when the login name does not exist: a wrong name costs as long as a wrong
    password, so timing does not tell which logins exist."""
    user = StaffUser()
    user.set_password("not-a-password")
    return user


SESSION_USER = "staff_id"
SESSION_CHECK = "staff_check"


# --- who is signed in ---------------------------------------------------------------


def _session_check(user: StaffUser) -> str:
    # Tied to the password hash and the session generation: a password change or a logout
    # signs out every session of that user, including copies of its cookie.
    secret = current_app.config["SECRET_KEY"].encode()
    bound = f"{user.password_hash}|{user.session_generation or 0}".encode()
    return hmac.new(secret, bound, hashlib.sha256).hexdigest()[:20]


def login_user(user: StaffUser) -> None:
    cookie_session.clear()  # a fresh session: nothing from before the login carries over
    cookie_session[SESSION_USER] = user.id
    cookie_session[SESSION_CHECK] = _session_check(user)
    cookie_session.permanent = True
    g.staff_user = user


def current_user() -> StaffUser | None:
    """The signed-in, active staff user of this request, or None."""
    if "staff_user" not in g:
        user = None
        user_id = cookie_session.get(SESSION_USER)
        if isinstance(user_id, int):
            user = get_db().get(StaffUser, user_id)
            check = cookie_session.get(SESSION_CHECK)
            if (user is None or not user.active or not isinstance(check, str)
                    or not hmac.compare_digest(check, _session_check(user))):
                user = None
        g.staff_user = user
    return g.staff_user


def require_role(*roles: str):
    """View decorator: anonymous users go to the login page, other roles get 403."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {unknown or roles}")

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                target = request.full_path if request.query_string else request.path
                return redirect(url_for("auth.login", next=target))
            if user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def visible_to(user: StaffUser) -> set[int] | None:
    """The agencies `user` sees (scope.visible_agency_ids), computed once per request."""
    cache = g.setdefault("visible_agencies", {})
    if user.id not in cache:
        cache[user.id] = scope.visible_agency_ids(get_db(), user)
    return cache[user.id]


def can_see_agency(user: StaffUser, agency_id: int | None) -> bool:
    visible = visible_to(user)
    return visible is None or agency_id in visible


# --- the login throttle ---------------------------------------------------------------
# Failures are counted per login name and per client address. A client that reached the
# limit is refused whatever name it tries (rotating the User-Agent does not help: the key
# is the address alone). A name that reached the limit is refused only to clients that
# failed recently themselves: a guesser elsewhere slows the name down without locking its
# owner out, and each new address the guesser brings gets a single try.

NAME_SCOPE = "login-name"
CLIENT_SCOPE = "login-client"


def _name_key(login: str) -> str:
    return integrity.keyed_hash(NAME_SCOPE, login)


def _client_key() -> str:
    # Daily-rotating like integrity.client_key, but the address alone: headers are free.
    day = utcnow().strftime("%Y-%m-%d")
    return integrity.keyed_hash(CLIENT_SCOPE, day, request.remote_addr or "")


def _throttled(db, login: str) -> bool:
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    limit = config["LOGIN_MAX_FAILURES"]
    client = _client_key()
    if integrity.reached(db, CLIENT_SCOPE, client, window, limit):
        return True
    return (integrity.reached(db, NAME_SCOPE, _name_key(login), window, limit)
            and integrity.reached(db, CLIENT_SCOPE, client, window, 1))


def _record_failure(db, login: str) -> None:
    integrity.purge_expired(db)
    integrity.record(db, NAME_SCOPE, _name_key(login))
    integrity.record(db, CLIENT_SCOPE, _client_key())
    db.commit()


def _forget_failures(db, login: str) -> None:
    db.execute(delete(RateEvent).where(RateEvent.scope == NAME_SCOPE,
                                       RateEvent.key == _name_key(login)))


# --- views ----------------------------------------------------------------------------


class LoginForm(StaffForm):
    login = StringField(_l("Tên đăng nhập"), validators=[InputRequired(), Length(max=80)],
                        render_kw={"autocomplete": "username", "autocapitalize": "none",
                                   "spellcheck": "false"})
    password = PasswordField(_l("Mật khẩu"), validators=[InputRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else goes to the staff home."""
    default = url_for("admin.dashboard")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    # CR/LF would split the Location header; no control or space belongs in a local path.
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The staff sign-in form, behind the login throttle."""
    if current_user() is not None and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    status, error = 200, None
    if form.validate_on_submit():
        db = get_db()
        name = normalize_login(form.login.data)
        if _throttled(db, name):
            minutes = max(1, current_app.config["LOGIN_WINDOW_SECONDS"] // 60)
            status = 429
            error = ngettext(
                "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau %(num)d phút.",
                "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau %(num)d phút.", minutes)
        else:
            user = db.scalar(select(StaffUser).where(StaffUser.login == name))
            valid = (user or _dummy_user()).check_password(form.password.data)
            if user is not None and valid and user.active:
                _forget_failures(db, name)
                audit(db, user, "login", "staff_user", user.id)
                db.commit()
                login_user(user)
                return redirect(safe_next(request.args.get("next")), 303)
            _record_failure(db, name)
            status = 422
            error = _("Tên đăng nhập hoặc mật khẩu không đúng.")
    elif request.method == "POST":
        status = 422
    response = render_template("auth/login.html", form=form, error=error)
    return response, status, {"Cache-Control": "no-store"}


@bp.post("/logout")
def logout():
    """Sign out: ends this user's sessions on the server too, so a copied cookie is dead."""
    user = current_user()
    if user is not None:
        user.end_sessions()
        get_db().commit()
    cookie_session.clear()
    g.pop("staff_user", None)
    flash(_("Bạn đã đăng xuất."), "info")
    return redirect(url_for("auth.login"), 303)


# --- command line ---------------------------------------------------------------------


@click.command("create-user")
@with_appcontext
@click.argument("login")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--agency", "agency_code", metavar="CODE",
              help="The user's agency (required for role agency).")
@click.option("--name", default="", help="Full name shown in the audit log.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="SURVEY_NEW_USER_PASSWORD",
              help="Prompted when absent; scripts may set SURVEY_NEW_USER_PASSWORD.")
@click.option("--update", is_flag=True, help="Change an existing user instead of failing.")
def create_user_command(login, role, agency_code, name, password, update):
    """Create a staff user (or reset one with --update)."""
    # The rules' messages are the forms' (Vietnamese): no request here to pick a locale.
    with force_locale("vi"):
        _create_user(login, role, agency_code, name, password, update)


def _create_user(login, role, agency_code, name, password, update):
    db = get_db()
    login = normalize_login(login)
    problem = login_error(login) or password_error(password)
    if problem:
        raise click.BadParameter(problem)
    agency = None
    if agency_code:
        agency = db.scalar(select(Agency).where(Agency.code == normalize_code(agency_code)))
        if agency is None:
            raise click.BadParameter(f"No agency with code {agency_code!r}.")
    problem = role_agency_error(role, agency.id if agency else None)
    if problem:
        raise click.UsageError(f"{problem} (--agency CODE)")
    user = db.scalar(select(StaffUser).where(StaffUser.login == login))
    if user is not None and not update:
        raise click.ClickException(f"User {login!r} exists (use --update to change it).")
    before = user_snapshot(user) if user else None
    if user is None:
        user = StaffUser(login=login)
        db.add(user)
    user.role = role
    user.agency = agency
    user.name = clean(name) or user.name or ""
    user.active = True
    user.set_password(password)
    db.flush()
    audit(db, None, "update" if before else "create", "staff_user", user.id, before,
          {**user_snapshot(user), "password": "set"})
    db.commit()
    click.echo(f"{'Updated' if before else 'Created'} {role} user {login!r}"
               + (f" for agency {agency.code}" if agency else "") + ".")


def init_app(app) -> None:
    app.cli.add_command(create_user_command)
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["role_label"] = lambda role: ROLE_LABELS.get(role, role)
