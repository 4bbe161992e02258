"""Staff administration under /admin: agencies, counters, tokens, posters, imports, users."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, time, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import InputRequired, Length, Optional

from . import imports, integrity, posters
from . import respond as public
from .auth import (
    ROLE_LABELS,
    can_see_agency,
    current_user,
    require_role,
    visible_to,
)
from .config import LOCAL_TIME
from .db import get_db
from .domain import activity as activity_rules
from .domain import agencies as agency_rules
from .domain import audit as audit_words
from .domain import counters as counter_rules
from .domain.audit import audit, user_snapshot
from .domain.scope import subtree_ids
from .domain.text import clean
from .domain.users import login_error, normalize_login, password_error, role_agency_error
from .forms import InvalidSubmission, StaffForm, form_class
from .i18n import in_english
from .models import (
    ROLES,
    Agency,
    AuditEvent,
    Counter,
    CounterToken,
    StaffUser,
    issue_tokens,
    parse_id,
    utcnow,
)
from .questionnaires import registry
from .security import csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")

STAFF = ("admin", "agency")
# Imports are the one place staff send more than a form; the app-wide limit stays small.
IMPORT_MAX_BYTES = 4 * 1024 * 1024
AUDIT_PAGE = 100
# The staff home lists at most this many counters without responses of late.
QUIET_SHOWN = 10


# --- scope and lookups -------------------------------------------------------------------


def agency_tree(db, visible: set[int] | None) -> list[tuple[Agency, int]]:
    """Visible agencies in tree order with their depth (roots: agencies whose parent is
    not visible)."""
    agencies = list(db.scalars(select(Agency).order_by(Agency.code)))
    if visible is not None:
        agencies = [a for a in agencies if a.id in visible]
    ids = {a.id for a in agencies}
    children: dict[int | None, list[Agency]] = {}
    for agency in agencies:
        parent = agency.parent_id if agency.parent_id in ids else None
        children.setdefault(parent, []).append(agency)
    ordered: list[tuple[Agency, int]] = []
    # An explicit stack, not recursion: a tree of any depth (even one stored before the
    # depth limit existed) must still render.
    stack = [(agency, 0) for agency in reversed(children.get(None, ()))]
    seen: set[int] = set()
    while stack:
        agency, depth = stack.pop()
        if agency.id in seen:
            continue
        seen.add(agency.id)
        ordered.append((agency, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(agency.id, ())))
    return ordered


def get_agency(db, agency_id: int) -> Agency:
    """The agency, or 404 when it does not exist or is outside the user's scope."""
    agency = db.get(Agency, agency_id)
    if agency is None or not can_see_agency(current_user(), agency.id):
        abort(404)
    return agency


def get_counter(db, counter_id: int) -> Counter:
    counter = db.get(Counter, counter_id)
    if counter is None or not can_see_agency(current_user(), counter.agency_id):
        abort(404)
    return counter


def issue_token(db, counter: Counter) -> CounterToken:
    """A new live token for one counter (see models.issue_tokens)."""
    return issue_tokens(db, [counter])[0]


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, str(label)) for value, label in pairs]


def questionnaire_title(questionnaire_id: str) -> str:
    """A questionnaire's title in the interface language; the id only for one no longer
    published."""
    try:
        return registry().latest(questionnaire_id).title.get(str(get_locale()))
    except KeyError:
        return questionnaire_id


def questionnaire_choices() -> list[SelectChoice]:
    return choices((qid, questionnaire_title(qid)) for qid in registry().ids())


def agency_choices(tree, none_label=None, exclude: set[int] = frozenset()):
    pairs = [(0, none_label)] if none_label else []
    pairs += [(a.id, "\u2003" * min(depth, agency_rules.MAX_DEPTH) + f"{a.name} ({a.code})")
              for a, depth in tree if a.id not in exclude]
    return choices(pairs)


# --- forms -------------------------------------------------------------------------------


class AgencyForm(StaffForm):
    # Lengths and characters are the domain rules' (after cleaning), as in the CSV import.
    code = StringField(_l("Mã cơ quan"), validators=[InputRequired()],
                       description=_l("Ví dụ: SNV hoặc mã định danh của cơ quan. Không đổi "
                                      "được sau khi tạo."))
    name = StringField(_l("Tên cơ quan"), validators=[InputRequired()])
    parent_id = SelectField(_l("Cơ quan cấp trên"), coerce=int)
    level = SelectField(_l("Cấp"), choices=lambda: choices(agency_rules.LEVEL_LABELS.items()))
    feedback_contact = StringField(
        _l("Đường dây nóng hoặc kênh góp ý"), validators=[Optional()],
        description=_l("Người dân thấy thông tin này sau khi gửi phiếu. Một số điện thoại "
                       "(ví dụ 0233 3822 123), địa chỉ e-mail, địa chỉ web (https://…) hoặc "
                       "một dòng chữ, tối đa 200 ký tự. Để trống nếu chưa có."))


class CounterForm(StaffForm):
    agency_id = SelectField(_l("Cơ quan"), coerce=int)
    label = StringField(_l("Tên quầy"), validators=[InputRequired()],
                        description=_l("Ví dụ: Quầy 3 – Tư pháp"))
    questionnaire_id = SelectField(_l("Mẫu phiếu khảo sát"),
                                   description=_l("Phiếu mà mã QR của quầy này mở ra."))


class RevokeForm(StaffForm):
    reason = StringField(_l("Lý do thu hồi"), validators=[InputRequired(), Length(max=200)],
                         description=_l("Ví dụ: áp phích bị hỏng, mã bị lạm dụng."))
    reissue = BooleanField(_l("Cấp ngay mã mới (cần in lại áp phích)"), default=True)


class ActiveForm(StaffForm):
    active = HiddenField()


class ImportForm(StaffForm):
    file = FileField(_l("Tệp CSV (UTF-8)"), validators=[FileRequired()])


class UserForm(StaffForm):
    login = StringField(_l("Tên đăng nhập"), validators=[InputRequired()],
                        render_kw={"autocomplete": "off", "autocapitalize": "none"})
    name = StringField(_l("Họ và tên"), filters=[clean], validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Vai trò"), choices=lambda: choices(ROLE_LABELS.items()))
    agency_id = SelectField(
        _l("Cơ quan"), coerce=int,
        description=_l("Bắt buộc với vai trò cán bộ cơ quan: người dùng quản lý cơ quan này và "
                       "các cơ quan trực thuộc. Với cán bộ phân tích: để trống để xem mọi cơ "
                       "quan."))
    password = PasswordField(_l("Mật khẩu"), validators=[Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    active = BooleanField(_l("Đang hoạt động"), default=True)


def check_agency_form(db, form, agency: Agency | None) -> bool:
    """The agency rules on a submitted form; the form's fields get the errors."""
    ok = True
    form.name.data = clean(form.name.data)
    problem = agency_rules.name_error(form.name.data)
    if problem:
        form.name.errors.append(problem)
        ok = False
    form.feedback_contact.data = clean(form.feedback_contact.data)
    problem = agency_rules.contact_error(form.feedback_contact.data)
    if problem:
        form.feedback_contact.errors.append(problem)
        ok = False
    if agency is None:
        problem = agency_rules.code_error(form.code.data)
        if problem:
            form.code.errors.append(problem)
            ok = False
        elif db.scalar(select(Agency.id).where(
                Agency.code == agency_rules.normalize_code(form.code.data))):
            form.code.errors.append(_("Mã này đã được dùng cho một cơ quan khác."))
            ok = False
    # Only placing an agency is checked: a branch stored deeper than the limit can still
    # be renamed.
    if form.parent_id is not None and (agency is None
                                       or (form.parent_id.data or None) != agency.parent_id):
        problem = agency_rules.parent_error(db, agency.id if agency else None,
                                            form.parent_id.data or None)
        if problem:
            form.parent_id.errors.append(problem)
            ok = False
    return ok


def form_status(form) -> int:
    return 422 if form.is_submitted() and form.errors else 200


# --- dashboard ---------------------------------------------------------------------------


@bp.get("/")
@require_role(*ROLES)
def dashboard():
    """The staff home: what the signed-in user may do, with counts for staff."""
    user = current_user()
    db = get_db()
    visible = visible_to(user)
    agencies = counters = None
    quiet: list[tuple[Counter, int]] = []
    if user.role in STAFF:
        agency_q = select(func.count()).select_from(Agency)
        counter_q = (select(Counter).join(Counter.agency).options(joinedload(Counter.agency))
                     .where(Counter.active.is_(True), Agency.active.is_(True)))
        if visible is not None:
            agency_q = agency_q.where(Agency.id.in_(visible))
            counter_q = counter_q.where(Counter.agency_id.in_(visible))
        live = db.scalars(counter_q).all()
        agencies, counters = db.scalar(agency_q), len(live)
        # Posters that stopped bringing responses (torn, covered, revoked): the oldest first.
        last = activity_rules.last_scanned(db, [c.id for c in live])
        quiet = sorted(((c, days) for c in live
                        if (days := activity_rules.quiet_days(last.get(c.id))) is not None),
                       key=lambda pair: (-pair[1], pair[0].agency.code, pair[0].label))
    return render_template("admin/dashboard.html", agencies=agencies, counters=counters,
                           quiet=quiet, quiet_shown=QUIET_SHOWN,
                           quiet_days=activity_rules.QUIET_DAYS)


# --- agencies ----------------------------------------------------------------------------


@bp.get("/agencies")
@require_role(*STAFF)
def agencies():
    """The agencies in the user's scope, as a tree."""
    db = get_db()
    tree = agency_tree(db, visible_to(current_user()))
    counts = dict(db.execute(select(Counter.agency_id, func.count()).where(
        Counter.active.is_(True)).group_by(Counter.agency_id)).all())
    return render_template("admin/agencies.html", tree=tree, counts=counts)


def _agency_form(db, agency: Agency | None):
    user = current_user()
    visible = visible_to(user)
    form = AgencyForm(obj=agency)
    tree = agency_tree(db, visible)
    exclude = subtree_ids(db, agency.id) if agency else set()
    # Agency users create inside their scope only, and cannot move their own agency.
    none_label = _("— Không có (cấp cao nhất) —") if visible is None else None
    form.parent_id.choices = agency_choices(tree, none_label, exclude)
    locked_parent = agency is not None and visible is not None and agency.id == user.agency_id
    if locked_parent:
        del form.parent_id
    elif request.method == "GET" and agency is not None:
        form.parent_id.data = agency.parent_id or 0
    return form, locked_parent


@bp.route("/agencies/new", methods=["GET", "POST"])
@require_role(*STAFF)
def agency_new():
    """Create an agency (agency users: below their own)."""
    db = get_db()
    form, _locked = _agency_form(db, None)
    if request.method == "GET" and parse_id(request.args.get("parent")):
        form.parent_id.data = parse_id(request.args["parent"])
    if form.validate_on_submit() and check_agency_form(db, form, None):
        agency = Agency(code=agency_rules.normalize_code(form.code.data), name=form.name.data,
                        level=form.level.data, parent_id=form.parent_id.data or None,
                        feedback_contact=form.feedback_contact.data)
        db.add(agency)
        db.flush()
        audit(db, current_user(), "create", "agency", agency.id, None, agency.snapshot())
        db.commit()
        flash(_("Đã tạo cơ quan %(name)s.", name=agency.name), "info")
        return redirect(url_for(".agency", agency_id=agency.id), 303)
    return render_template("admin/agency_form.html", form=form, agency=None), form_status(form)


@bp.get("/agencies/<int:agency_id>")
@require_role(*STAFF)
def agency(agency_id):
    """One agency: responses received, its counters, the agencies below it, posters."""
    db = get_db()
    agency = get_agency(db, agency_id)
    counters = db.scalars(select(Counter).where(Counter.agency_id == agency.id)
                          .options(selectinload(Counter.tokens))
                          .order_by(Counter.label, Counter.id)).all()
    children = sorted(agency.children, key=lambda a: a.code)
    per_counter, received = activity_rules.activity(db, agency_id=agency.id)
    return render_template("admin/agency.html", agency=agency, counters=counters,
                           children=children, toggle=ActiveForm(),
                           is_own=agency.id == current_user().agency_id,
                           received=received, per_counter=per_counter,
                           shares=activity_rules.volume_shares(db, agency.id, received))


@bp.route("/agencies/<int:agency_id>/edit", methods=["GET", "POST"])
@require_role(*STAFF)
def agency_edit(agency_id):
    """Rename an agency, change its level or (not one's own) its parent."""
    db = get_db()
    agency = get_agency(db, agency_id)
    form, locked = _agency_form(db, agency)
    del form.code  # codes are stable identifiers (CSV imports, reports): never edited
    if form.validate_on_submit() and check_agency_form(db, form, agency):
        before = agency.snapshot()
        agency.name = form.name.data
        agency.level = form.level.data
        agency.feedback_contact = form.feedback_contact.data
        if not locked:
            agency.parent_id = form.parent_id.data or None
        db.flush()
        db.refresh(agency, ["parent"])
        after = agency.snapshot()
        if after != before:
            audit(db, current_user(), "update", "agency", agency.id, before, after)
        db.commit()
        flash(_("Đã lưu thay đổi."), "info")
        return redirect(url_for(".agency", agency_id=agency.id), 303)
    return (render_template("admin/agency_form.html", form=form, agency=agency, locked=locked),
            form_status(form))


@bp.post("/agencies/<int:agency_id>/active")
@require_role(*STAFF)
def agency_active(agency_id):
    """Switch an agency on or off (never the agency the user is attached to)."""
    db = get_db()
    agency = get_agency(db, agency_id)
    if not agency_rules.may_switch_active(current_user(), agency.id):
        abort(403)
    form = ActiveForm()
    if form.validate_on_submit():
        before = agency.snapshot()
        agency.active = form.active.data == "1"
        if before["active"] != agency.active:
            audit(db, current_user(), "activate" if agency.active else "deactivate", "agency",
                  agency.id, before, agency.snapshot())
            db.commit()
        flash(_("Cơ quan đang hoạt động.") if agency.active else
              _("Đã ngừng hoạt động cơ quan: mã QR của các quầy thuộc cơ quan sẽ báo “không "
                "còn sử dụng”."), "info")
    return redirect(url_for(".agency", agency_id=agency.id), 303)


# --- counters ----------------------------------------------------------------------------


@bp.get("/counters")
@require_role(*STAFF)
def counters():
    """The counters in the user's scope."""
    db = get_db()
    visible = visible_to(current_user())
    query = (select(Counter).join(Counter.agency)
             .options(joinedload(Counter.agency), selectinload(Counter.tokens))
             .order_by(Agency.code, Counter.label, Counter.id))
    if visible is not None:
        query = query.where(Counter.agency_id.in_(visible))
    rows = db.scalars(query).all()
    # After a CSV import: the counters it created (those in scope), offered for printing.
    wanted = {parse_id(part) for part in request.args.get("new", "").split(",")[:imports.MAX_ROWS]}
    new_counters = sorted(c.id for c in rows if c.id in wanted)
    last = activity_rules.last_scanned(db, [c.id for c in rows])
    seen = {c.id: (last[c.id], activity_rules.quiet_days(last[c.id])) for c in rows
            if c.id in last}
    return render_template("admin/counters.html", counters=rows, new_counters=new_counters,
                           seen=seen)


def _counter_form(db, counter: Counter | None):
    form = CounterForm(obj=counter)
    form.agency_id.choices = agency_choices(agency_tree(db, visible_to(current_user())))
    form.questionnaire_id.choices = questionnaire_choices()
    if request.method == "GET" and counter is None:
        form.questionnaire_id.data = current_app.config["DEFAULT_QUESTIONNAIRE"]
        if parse_id(request.args.get("agency")):
            form.agency_id.data = parse_id(request.args["agency"])
    return form


def check_counter_label(db, form, counter_id: int | None) -> bool:
    """The counter rules on a submitted label (cleaned in place); errors go on the field."""
    form.label.data = clean(form.label.data)
    problem = counter_rules.label_error(form.label.data)
    if problem is None and counter_rules.same_label(db, form.agency_id.data, form.label.data,
                                                    counter_id):
        problem = _("Cơ quan này đã có một quầy cùng tên.")
    if problem:
        form.label.errors.append(problem)
    return problem is None


@bp.route("/counters/new", methods=["GET", "POST"])
@require_role(*STAFF)
def counter_new():
    """Create a counter with its first QR token."""
    db = get_db()
    form = _counter_form(db, None)
    if form.validate_on_submit() and check_counter_label(db, form, None):
        label = form.label.data
        counter = Counter(agency=get_agency(db, form.agency_id.data), label=label,
                          questionnaire_id=form.questionnaire_id.data)
        db.add(counter)
        issue_token(db, counter)
        db.flush()
        audit(db, current_user(), "create", "counter", counter.id, None, counter.snapshot())
        db.commit()
        flash(_("Đã tạo quầy %(label)s. Bạn có thể in áp phích ngay.", label=label), "info")
        return redirect(url_for(".counter", counter_id=counter.id), 303)
    return (render_template("admin/counter_form.html", form=form, counter=None),
            form_status(form))


@bp.get("/counters/<int:counter_id>")
@require_role(*STAFF)
def counter(counter_id):
    """One counter: responses received, its link, QR code, posters, paper forms, tokens."""
    db = get_db()
    counter = get_counter(db, counter_id)
    url = posters.counter_url(counter.token) if counter.token else None
    try:
        questionnaire = registry().latest(counter.questionnaire_id)
    except KeyError:
        questionnaire = None
    per_counter, _total = activity_rules.activity(db, counter_ids=[counter.id])
    return render_template("admin/counter.html", counter=counter, url=url,
                           questionnaire=questionnaire, toggle=ActiveForm(),
                           issue=ActiveForm(),
                           received=per_counter.get(counter.id, activity_rules.Activity()),
                           tokens=sorted(counter.tokens, key=lambda t: t.id, reverse=True))


@bp.route("/counters/<int:counter_id>/edit", methods=["GET", "POST"])
@require_role(*STAFF)
def counter_edit(counter_id):
    """Rename a counter, move it to another agency, change its questionnaire."""
    db = get_db()
    counter = get_counter(db, counter_id)
    form = _counter_form(db, counter)
    if form.validate_on_submit() and check_counter_label(db, form, counter.id):
        before = counter.snapshot()
        counter.agency = get_agency(db, form.agency_id.data)
        counter.label = form.label.data
        counter.questionnaire_id = form.questionnaire_id.data
        after = counter.snapshot()
        if after != before:
            audit(db, current_user(), "update", "counter", counter.id, before, after)
        db.commit()
        flash(_("Đã lưu thay đổi."), "info")
        return redirect(url_for(".counter", counter_id=counter.id), 303)
    return (render_template("admin/counter_form.html", form=form, counter=counter),
            form_status(form))


@bp.post("/counters/<int:counter_id>/active")
@require_role(*STAFF)
def counter_active(counter_id):
    """Switch a counter on or off."""
    db = get_db()
    counter = get_counter(db, counter_id)
    form = ActiveForm()
    if form.validate_on_submit():
        before = counter.snapshot()
        counter.active = form.active.data == "1"
        if before["active"] != counter.active:
            audit(db, current_user(), "activate" if counter.active else "deactivate",
                  "counter", counter.id, before, counter.snapshot())
            db.commit()
        flash(_("Quầy đang hoạt động.") if counter.active else
              _("Đã ngừng hoạt động quầy: mã QR của quầy sẽ báo “không còn sử dụng”."), "info")
    return redirect(url_for(".counter", counter_id=counter.id), 303)


@bp.route("/counters/<int:counter_id>/token/revoke", methods=["GET", "POST"])
@require_role(*STAFF)
def token_revoke(counter_id):
    """Confirm, then revoke the counter's live token with a reason (and by default issue a
    new one): the page says what revoking does before anything changes."""
    db = get_db()
    counter = get_counter(db, counter_id)
    if counter.token is None:
        return redirect(url_for(".counter", counter_id=counter.id), 303)
    form = RevokeForm()
    reason = clean(form.reason.data) if form.validate_on_submit() else ""
    if not reason:
        if form.is_submitted():
            form.reason.errors[:] = [_("Vui lòng ghi lý do thu hồi mã (tối đa 200 ký tự).")]
        return (render_template("admin/revoke.html", counter=counter, form=form),
                form_status(form))
    before = counter.snapshot()
    live = [t for t in counter.tokens if t.revoked_at is None]
    now = utcnow()
    for token in live:
        token.revoked_at = now
        token.revoked_reason = reason
    if form.reissue.data:
        issue_token(db, counter)
    db.flush()
    after = {**counter.snapshot(), "reason": reason}
    audit(db, current_user(), "revoke_token", "counter", counter.id, before, after)
    db.commit()
    if form.reissue.data:
        flash(_("Đã thu hồi mã cũ và cấp mã mới. Hãy in lại áp phích: áp phích cũ sẽ báo “không "
                "còn sử dụng”."), "info")
    else:
        flash(_("Đã thu hồi mã. Quầy chưa có mã mới."), "info")
    return redirect(url_for(".counter", counter_id=counter.id), 303)


@bp.post("/counters/<int:counter_id>/token/issue")
@require_role(*STAFF)
def token_issue(counter_id):
    """Issue a new token to a counter that has none."""
    db = get_db()
    counter = get_counter(db, counter_id)
    if ActiveForm().validate_on_submit() and counter.token is None:
        before = counter.snapshot()
        issue_token(db, counter)
        db.flush()
        audit(db, current_user(), "issue_token", "counter", counter.id, before,
              counter.snapshot())
        db.commit()
        flash(_("Đã cấp mã mới. Hãy in áp phích cho quầy."), "info")
    return redirect(url_for(".counter", counter_id=counter.id), 303)


# --- paper responses keyed in by staff ---------------------------------------------------


# The date written on the sheet: the response counts in that day's month, quarter and year.
SHEET_DATE = "sheet_date"
# How far back a sheet may be dated when keyed in (older sheets: the analysis CSV import).
SHEET_MAX_AGE = timedelta(days=366)


def _sheet_days() -> tuple[date, date]:
    """The earliest and the latest date a sheet keyed in today may carry (local days)."""
    today = integrity.now().astimezone(LOCAL_TIME).date()
    return today - SHEET_MAX_AGE, today


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _written(day: date) -> str:
    """A date in a message: 03/12/2026 in Vietnamese; in English 3 Dec 2026, which no
    reader takes for 12 March."""
    if in_english():
        return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")


def _parse_day(value: str) -> date | None:
    """YYYY-MM-DD (what a date input sends) or day/month/year (what a clerk types where the
    browser has no date picker: 25/11/2026, 25-11-2026, 25.11.2026); None if not a day."""
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value, re.ASCII)
    typed = re.fullmatch(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})", value, re.ASCII)
    try:
        if iso:
            return date(*map(int, iso.groups()))
        if typed:
            day, _separator, month, year = typed.groups()
            return date(int(year), int(month), int(day))
    except ValueError:
        return None
    return None


def sheet_date(value: str | None) -> tuple[date | None, str | None]:
    """The sheet's date from the form, or the error to show."""
    earliest, today = _sheet_days()
    if value is None:  # a client without the field: keyed in today, as before the field
        return today, None
    value = value.strip()
    if not value:
        return None, _("Xin nhập ngày ghi trên phiếu (nếu phiếu không ghi ngày, nhập ngày "
                       "hôm nay).")
    day = _parse_day(value)
    if day is None:
        return None, _("Ngày ghi trên phiếu không hợp lệ: xin nhập một ngày có thật, theo dạng "
                       "ngày/tháng/năm (ví dụ 25/11/2026).")
    if day > today:
        return None, _("Ngày ghi trên phiếu không thể sau hôm nay (%(today)s).",
                       today=_written(today))
    if day < earliest:
        return None, _(
            "Phiếu ghi ngày trước %(earliest)s: quá một năm, không nhập ở đây được. Xin "
            "chuyển các phiếu cũ hơn cho cán bộ phân tích (họ nhập bằng tệp CSV theo mẫu).",
            earliest=_written(earliest))
    return day, None


def sheet_moment(day: date) -> datetime:
    """When a sheet of that date counts as submitted: now if dated today, else noon local
    time that day (the hour is unknown; noon keeps it inside the day and its periods)."""
    now = integrity.now()
    if day == now.astimezone(LOCAL_TIME).date():
        return now
    return datetime.combine(day, time(12), LOCAL_TIME).astimezone(now.tzinfo)


def _entry_page(counter, questionnaire, form, status=200, stored=None, day=None,
                date_error=None, date_value=None):
    earliest, today = _sheet_days()
    response = current_app.make_response((render_template(
        "admin/paper_entry.html", counter=counter, questionnaire=questionnaire, form=form,
        answers=form.raw_answers(), stored=stored, earliest=earliest, today=today,
        date_error=date_error,
        date_value=date_value if date_value is not None else (day or today).isoformat()),
        status))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/counters/<int:counter_id>/paper", methods=["GET", "POST"])
@require_role(*STAFF)
def paper_entry(counter_id):
    """Key in one paper questionnaire for a counter: the public form's class and checks,
    stored as paper (no timing flags, no throttle) and audited; then a blank form again."""
    db = get_db()
    counter = get_counter(db, counter_id)
    try:
        questionnaire = registry().latest(counter.questionnaire_id)
    except KeyError:
        abort(404)
    stored = request.args.get("stored", type=int)
    if request.method == "GET":
        # The batch's date carried from the sheet before (?date=), if still a valid one.
        day, error = sheet_date(request.args.get("date"))
        return _entry_page(counter, questionnaire, public.new_form(questionnaire, counter.id),
                           stored=stored, day=None if error else day)
    if request.files:
        abort(400)
    try:
        form = form_class(questionnaire)()
        public.refuse_what_no_browser_sends(form, also={SHEET_DATE})
        valid = form.validate()
    except InvalidSubmission:
        abort(400)
    posted_date = request.form.get(SHEET_DATE)
    day, date_error = sheet_date(posted_date)
    if not valid or date_error:
        # A valid date as the date input takes it (it drops "25/11/2026"), else as typed.
        return _entry_page(counter, questionnaire, form, status=422, stored=stored,
                           date_error=date_error,
                           date_value=day.isoformat() if day else posted_date)
    response_id = public.store_response(counter, questionnaire, form, channel="paper",
                                        submitted_at=sheet_moment(day))
    if response_id is not None:  # None: the same sheet sent twice, stored once already
        audit(db, current_user(), "paper_entry", "response", response_id, None,
              {"counter": counter.label, "agency": counter.agency.code,
               "questionnaire": questionnaire.id, "version": questionnaire.version,
               "sheet_date": day.isoformat()})
        db.commit()
    return redirect(url_for(".paper_entry", counter_id=counter.id,
                            stored=(stored or 0) + 1, date=day.isoformat()), 303)


# --- posters -----------------------------------------------------------------------------


def _printable(counter: Counter) -> bool:
    return bool(counter.active and counter.agency.active and counter.token)


def private_file(data: bytes, mimetype: str, name: str):
    """A generated file (poster, QR code, slips) sent as a download no cache may keep."""
    response = send_file(io.BytesIO(data), mimetype=mimetype, download_name=name,
                         max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _not_printable(counter):
    flash(_("Quầy đang ngừng hoạt động hoặc chưa có mã QR nên không in được áp phích."),
          "error")
    return redirect(url_for(".counter", counter_id=counter.id), 303)


@bp.get("/counters/<int:counter_id>/poster-<any(A4,A5):size>.pdf")
@require_role(*STAFF)
def counter_poster(counter_id, size):
    """One counter's poster as a PDF (A4 or A5)."""
    counter = get_counter(get_db(), counter_id)
    if not _printable(counter):
        return _not_printable(counter)
    data = posters.poster_pdf([posters.poster_for(counter)], size)
    return private_file(data, "application/pdf",
                 f"ap-phich-{counter.agency.code}-{counter.id}-{size}.pdf")


@bp.get("/counters/<int:counter_id>/qr.<any(svg,png):fmt>")
@require_role(*STAFF)
def counter_qr(counter_id, fmt):
    """One counter's bare QR code as SVG or PNG."""
    counter = get_counter(get_db(), counter_id)
    if not _printable(counter):
        return _not_printable(counter)
    url = posters.counter_url(counter.token)
    name = f"qr-{counter.agency.code}-{counter.id}.{fmt}"
    if fmt == "svg":
        return private_file(posters.qr_svg(url), "image/svg+xml", name)
    return private_file(posters.qr_png(url), "image/png", name)


@bp.get("/agencies/<int:agency_id>/posters-<any(A4,A5):size>.pdf")
@require_role(*STAFF)
def agency_posters(agency_id, size):
    """One PDF with a poster per printable counter of an agency (optionally those below)."""
    db = get_db()
    agency = get_agency(db, agency_id)
    ids = subtree_ids(db, agency.id) if request.args.get("sub") == "1" else {agency.id}
    counters = posters.printable_counters(db, ids)
    data = posters.poster_pdf((posters.poster_for(c) for c in counters), size)
    return private_file(data, "application/pdf", f"ap-phich-{agency.code}-{size}.pdf")


@bp.get("/posters-<any(A4,A5):size>.pdf")
@require_role(*STAFF)
def all_posters(size):
    """One PDF with a poster per printable counter in the user's scope, or only the
    counters named by `ids` (e.g. those a CSV import just created)."""
    db = get_db()
    ids = None
    if "ids" in request.args:
        raw = request.args["ids"].split(",")
        ids = {parse_id(part) for part in raw}
        if len(raw) > imports.MAX_ROWS or None in ids:
            abort(400)
    counters = posters.printable_counters(db, visible_to(current_user()), ids)
    data = posters.poster_pdf((posters.poster_for(c) for c in counters), size)
    name = "moi" if ids is not None else "tat-ca"
    return private_file(data, "application/pdf", f"ap-phich-{name}-{size}.pdf")


# --- CSV imports -------------------------------------------------------------------------


def import_form() -> ImportForm:
    """The upload form of a CSV import, under the imports' own size limit.

    The import views are exempt from the global CSRF check only so that the limit is raised
    before the body is read; the token is checked here instead.
    """
    if request.method == "POST":
        request.max_content_length = IMPORT_MAX_BYTES
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()
    return ImportForm()


def _import_view(kind: str):
    user = current_user()
    errors, status = [], 200
    form = import_form()
    if request.method == "POST":
        if form.validate():
            db = get_db()
            data = form.file.data.read()
            try:
                if kind == "agency":
                    changes = imports.check_agencies(db, data, user)
                    created, updated = imports.apply_agencies(db, changes, user)
                else:
                    changes = imports.check_counters(db, data, user)
                    new, updated = imports.apply_counters(db, changes, user)
                    created, new_ids = len(new), [counter.id for counter in new]
            except imports.ImportFailed as failed:
                db.rollback()
                errors, status = failed.errors, 422
            else:
                db.commit()
                flash(_("Đã nhập xong: %(created)d mục mới, %(updated)d mục được cập nhật, "
                        "%(same)d mục không đổi.", created=created, updated=updated,
                        same=len(changes) - created - updated), "info")
                if kind == "agency":
                    return redirect(url_for(".agencies"), 303)
                # The counters just created, so their posters print in one click.
                return redirect(url_for(".counters", new=",".join(map(str, new_ids))
                                        if new_ids else None), 303)
        else:
            status = 422
    example = imports.AGENCY_EXAMPLE if kind == "agency" else imports.COUNTER_EXAMPLE
    rows = list(csv.reader(io.StringIO(example)))
    return render_template("admin/import.html", form=form, kind=kind, errors=errors,
                           example=rows, levels=agency_rules.LEVEL_LABELS,
                           questionnaires=registry().ids()), status


@bp.route("/agencies/import", methods=["GET", "POST"])
@csrf.exempt
@require_role(*STAFF)
def agency_import():
    """Import agencies from CSV: every row checked, all or nothing."""
    return _import_view("agency")


@bp.route("/counters/import", methods=["GET", "POST"])
@csrf.exempt
@require_role(*STAFF)
def counter_import():
    """Import counters from CSV: every row checked, all or nothing."""
    return _import_view("counter")


# --- users (admin only) ------------------------------------------------------------------


@bp.get("/users")
@require_role("admin")
def users():
    """Every staff account."""
    db = get_db()
    rows = db.scalars(select(StaffUser).options(joinedload(StaffUser.agency))
                      .order_by(StaffUser.login)).all()
    return render_template("admin/users.html", users=rows)


def _user_form(db, user: StaffUser | None):
    form = UserForm(obj=user)
    form.agency_id.choices = agency_choices(agency_tree(db, None), _("— Không có —"))
    if request.method == "GET" and user is not None:
        form.agency_id.data = user.agency_id or 0
    return form


def _check_user_form(db, form, user: StaffUser | None) -> bool:
    ok = True
    login = normalize_login(form.login.data)
    problem = login_error(login)
    if problem:
        form.login.errors.append(problem)
        ok = False
    elif db.scalar(select(StaffUser.id).where(StaffUser.login == login,
                                              StaffUser.id != (user.id if user else -1))):
        form.login.errors.append(_("Tên đăng nhập này đã có người dùng."))
        ok = False
    if form.password.data or user is None:
        problem = password_error(form.password.data)
        if problem:
            form.password.errors.append(problem)
            ok = False
    problem = role_agency_error(form.role.data, form.agency_id.data or None)
    if problem:
        form.agency_id.errors.append(problem)
        ok = False
    if user is not None and user.id == current_user().id and (
            form.role.data != "admin" or not form.active.data):
        form.role.errors.append(_("Bạn không thể tự bỏ quyền quản trị hoặc tự khóa tài khoản "
                                  "của mình."))
        ok = False
    return ok


@bp.route("/users/new", methods=["GET", "POST"])
@require_role("admin")
def user_new():
    """Create a staff account."""
    db = get_db()
    form = _user_form(db, None)
    if form.validate_on_submit() and _check_user_form(db, form, None):
        user = StaffUser(login=normalize_login(form.login.data),
                         name=clean(form.name.data), role=form.role.data,
                         agency_id=form.agency_id.data or None, active=form.active.data)
        user.set_password(form.password.data)
        db.add(user)
        db.flush()
        db.refresh(user, ["agency"])
        audit(db, current_user(), "create", "staff_user", user.id, None,
              {**user_snapshot(user), "password": "set"})
        db.commit()
        flash(_("Đã tạo tài khoản %(login)s.", login=user.login), "info")
        return redirect(url_for(".users"), 303)
    return render_template("admin/user_form.html", form=form, user=None), form_status(form)


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@require_role("admin")
def user_edit(user_id):
    """Change a staff account: role, agency, active flag, password."""
    db = get_db()
    user = db.get(StaffUser, user_id) or abort(404)
    form = _user_form(db, user)
    if form.validate_on_submit() and _check_user_form(db, form, user):
        before = user_snapshot(user)
        user.login = normalize_login(form.login.data)
        user.name = clean(form.name.data)
        user.role = form.role.data
        user.agency_id = form.agency_id.data or None
        user.active = form.active.data
        after_extra = {}
        if form.password.data:
            user.set_password(form.password.data)
            after_extra["password"] = "changed"
        db.flush()
        db.refresh(user, ["agency"])
        after = {**user_snapshot(user), **after_extra}
        if after != before:
            audit(db, current_user(), "update", "staff_user", user.id, before, after)
        db.commit()
        flash(_("Đã lưu thay đổi."), "info")
        return redirect(url_for(".users"), 303)
    return render_template("admin/user_form.html", form=form, user=user), form_status(form)


# --- audit log (admin only) --------------------------------------------------------------


@bp.get("/audit")
@require_role("admin")
def audit_log():
    """The audit log, newest first, a page at a time."""
    db = get_db()
    page = parse_id(request.args.get("page")) or 1
    events = db.scalars(select(AuditEvent).options(joinedload(AuditEvent.user))
                        .order_by(AuditEvent.id.desc())
                        .offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE + 1)).all()
    return render_template("admin/audit.html", events=events[:AUDIT_PAGE], page=page,
                           more=len(events) > AUDIT_PAGE)


def _local(value: datetime | None) -> str:
    from flask_babel import format_datetime

    return format_datetime(value, "dd/MM/yyyy HH:mm") if value else ""


def level_label(level: str) -> str:
    return str(agency_rules.LEVEL_LABELS.get(level, level))


def audit_value(key: str, value) -> str:
    """An audit value in words (see domain/audit.value_words)."""
    return audit_words.value_words(key, value, questionnaire_title,
                                   lambda role: str(ROLE_LABELS.get(role, role)), level_label)


def init_app(app) -> None:
    app.add_template_filter(_local, "local_time")
    app.jinja_env.globals.update(
        level_label=level_label, questionnaire_title=questionnaire_title,
        audit_action=lambda action: str(audit_words.ACTION_LABELS.get(action, action)),
        audit_entity=lambda entity: str(audit_words.ENTITY_LABELS.get(entity, entity)),
        audit_field=audit_words.field_label, audit_value=audit_value,
        contact_link=agency_rules.contact_link)
