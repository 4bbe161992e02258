"""Staff sign-in: sessions, roles, agency scope, the login throttle, audit, `create-user`."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from datetime import timedelta
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from flask.cli import with_appcontext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from sqlalchemy import delete, select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from . import integrity
from .db import get_db
from .models import ROLES, Agency, AuditEvent, RateEvent, StaffUser

bp = Blueprint("auth", __name__, url_prefix="/admin")

ROLE_LABELS = {
    "admin": _l("Quản trị hệ thống"),
    "agency": _l("Cán bộ đơn vị"),
    "analyst": _l("Cán bộ phân tích"),
}
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
MIN_PASSWORD_LENGTH = 10


@functools.cache
def _dummy_hash() -> str:
    """Checked when the login name does not exist: a wrong name costs as long as a wrong
    password, so timing does not tell which logins exist."""
    return generate_password_hash("not-a-password")


SESSION_USER = "staff_id"
SESSION_CHECK = "staff_check"


# --- who is signed in ---------------------------------------------------------------


def normalize_login(raw: str) -> str:
    return (raw or "").strip().lower()


def login_error(login: str) -> str | None:
    """Why a login name is not acceptable, or None."""
    if not LOGIN_PATTERN.match(login):
        return _("Tên đăng nhập gồm 2–80 ký tự: chữ thường không dấu, chữ số, dấu chấm, "
                 "gạch ngang hoặc gạch dưới.")
    return None


def password_error(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return _("Mật khẩu phải có ít nhất %(n)d ký tự.", n=MIN_PASSWORD_LENGTH)
    return None


def _session_check(user: StaffUser) -> str:
    # Tied to the password hash: changing a password signs out that user's other sessions.
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, user.password_hash.encode(), hashlib.sha256).hexdigest()[:20]


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
        if user_id is not None:
            user = get_db().get(StaffUser, user_id)
            if (user is None or not user.active
                    or not hmac.compare_digest(cookie_session.get(SESSION_CHECK, ""),
                                               _session_check(user))):
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


def subtree_ids(db, root_id: int) -> set[int]:
    """An agency and every agency below it."""
    children: dict[int | None, list[int]] = {}
    for agency_id, parent_id in db.execute(select(Agency.id, Agency.parent_id)):
        children.setdefault(parent_id, []).append(agency_id)
    found, stack = set(), [root_id]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(children.get(current, ()))
    return found


def visible_agency_ids(user: StaffUser) -> set[int] | None:
    """The agencies a user may see: None means all; else the user's agency and those below.

    An analyst without an agency reads every agency (e.g. the Department of Home Affairs);
    an analyst attached to an agency reads that agency's subtree, like an agency user.
    """
    if user.role == "admin" or user.role == "analyst" and user.agency_id is None:
        return None
    if user.agency_id is None:
        return set()
    cache = g.setdefault("visible_agencies", {})
    if user.id not in cache:
        cache[user.id] = subtree_ids(get_db(), user.agency_id)
    return cache[user.id]


def can_see_agency(user: StaffUser, agency_id: int | None) -> bool:
    visible = visible_agency_ids(user)
    return visible is None or agency_id in visible


# --- audit ----------------------------------------------------------------------------


def audit(db, action: str, entity: str, entity_id, before: dict | None = None,
          after: dict | None = None, user: StaffUser | None = None) -> AuditEvent:
    """Record who changed what (added to the session; committed with the change itself)."""
    if user is None and has_request_context():
        user = current_user()
    event = AuditEvent(user_id=user.id if user else None, action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id),
                       before=before, after=after)
    db.add(event)
    return event


def user_snapshot(user: StaffUser) -> dict:
    """What the audit log keeps about a user (never the password hash)."""
    return {"login": user.login, "name": user.name, "role": user.role,
            "agency": user.agency.code if user.agency else None, "active": user.active}


# --- the login throttle ---------------------------------------------------------------

NAME_SCOPE = "login-name"
CLIENT_SCOPE = "login-client"


def _name_key(login: str) -> str:
    return integrity.keyed_hash(NAME_SCOPE, login)


def _throttled(db, login: str) -> bool:
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    limit = config["LOGIN_MAX_FAILURES"]
    return (integrity.reached(db, NAME_SCOPE, _name_key(login), window, limit)
            or integrity.reached(db, CLIENT_SCOPE, integrity.client_key(CLIENT_SCOPE), window,
                                 limit))


def _record_failure(db, login: str) -> None:
    integrity.purge_expired(db)
    integrity.record(db, NAME_SCOPE, _name_key(login))
    integrity.record(db, CLIENT_SCOPE, integrity.client_key(CLIENT_SCOPE))
    db.commit()


def _forget_failures(db, login: str) -> None:
    db.execute(delete(RateEvent).where(RateEvent.scope == NAME_SCOPE,
                                       RateEvent.key == _name_key(login)))


# --- views ----------------------------------------------------------------------------


class LoginForm(FlaskForm):
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
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
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
            valid = check_password_hash(user.password_hash if user else _dummy_hash(),
                                        form.password.data)
            if user is not None and valid and user.active:
                _forget_failures(db, name)
                audit(db, "login", "staff_user", user.id, user=user)
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
    db = get_db()
    login = normalize_login(login)
    problem = login_error(login) or password_error(password)
    if problem:
        raise click.BadParameter(problem)
    agency = None
    if agency_code:
        agency = db.scalar(select(Agency).where(Agency.code == agency_code.strip()))
        if agency is None:
            raise click.BadParameter(f"No agency with code {agency_code!r}.")
    elif role == "agency":
        raise click.UsageError("Role agency needs --agency CODE.")
    user = db.scalar(select(StaffUser).where(StaffUser.login == login))
    if user is not None and not update:
        raise click.ClickException(f"User {login!r} exists (use --update to change it).")
    before = user_snapshot(user) if user else None
    if user is None:
        user = StaffUser(login=login)
        db.add(user)
    user.role = role
    user.agency = agency
    user.name = name or user.name or ""
    user.active = True
    user.password_hash = generate_password_hash(password)
    db.flush()
    audit(db, "update" if before else "create", "staff_user", user.id, before,
          {**user_snapshot(user), "password": "set"}, user=None)
    db.commit()
    click.echo(f"{'Updated' if before else 'Created'} {role} user {login!r}"
               + (f" for agency {agency.code}" if agency else "") + ".")


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(create_user_command)
    app.jinja_env.globals["current_user"] = current_user
    app.jinja_env.globals["role_label"] = lambda role: ROLE_LABELS.get(role, role)
