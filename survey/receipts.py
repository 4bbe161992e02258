"""Receipt codes: one-time codes that admit one response at a counter; slips; API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from datetime import timedelta

import qrcode
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, case, func, select, update
from wtforms import HiddenField, IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange

from . import admin, integrity, posters
from .auth import current_user, require_role
from .db import get_db, raw_execute
from .domain import activity as activity_rules
from .domain import coverage
from .domain.audit import audit
from .domain.text import clean
from .forms import StaffForm
from .models import (
    ApiKey,
    Counter,
    ReceiptCode,
    Response,
    normalize_token,
    parse_id,
    utcnow,
)

bp = Blueprint("receipts", __name__, url_prefix="/admin")
STAFF = ("admin", "agency")  # as admin.STAFF (imported late: respond imports this module)

# Crockford's base32 without Z: 31 symbols, a prime, so the weighted check character below
# catches every single mistyped character and every swap of two neighbours. Letters that
# read like a symbol of the alphabet are taken as that symbol (O→0, I/L→1, U→V, Z→2).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"
CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V", "Z": "2"})
# 8 random symbols (31^8 ≈ 8.5e11) and a check symbol; printed in groups of three.
BODY_LENGTH = 8
CODE_LENGTH = BODY_LENGTH + 1
# The query parameter that carries the code (the slip's QR code fills it in).
PARAM = "ma"
# What a citizen may type around the code: spaces, dashes, dots, underscores.
SEPARATORS = str.maketrans("", "", " -._\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")
MAX_TYPED = 40
SLIPS_PER_PAGE = 10


# --- the codes ---------------------------------------------------------------------------


def check_symbol(body: str) -> str:
    """The symbol c making Σ (i+1)·value(code[i]) ≡ 0 (mod 31) over the 9 symbols."""
    total = sum((i + 1) * ALPHABET.index(c) for i, c in enumerate(body))
    # 9·c ≡ -total (mod 31); 9's inverse mod 31 is 7 (9·7 = 63 = 2·31 + 1).
    return ALPHABET[(-total * 7) % len(ALPHABET)]


def new_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_symbol(body)


def normalize(raw: str | None) -> str | None:
    """The code as stored, from what was typed or scanned; None when it cannot be one.

    Full-width and other compatibility forms become ASCII (NFKC), case is ignored,
    separators are dropped and confusable letters are read as the symbol they look like.
    """
    if not raw or len(raw) > MAX_TYPED:
        return None
    text = unicodedata.normalize("NFKC", raw).upper().translate(SEPARATORS)
    text = "".join(text.split()).translate(CONFUSABLE)
    if len(text) != CODE_LENGTH or any(c not in ALPHABET for c in text):
        return None
    return text


def well_formed(code: str) -> bool:
    """A normalized code whose check symbol matches (a typing mistake fails here)."""
    return check_symbol(code[:BODY_LENGTH]) == code[BODY_LENGTH]


def printed(code: str) -> str:
    """ABC-DEF-GHJ: how slips and the API show a code."""
    return "-".join(code[i:i + 3] for i in range(0, len(code), 3))


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 under the app's secret: what is stored instead of a code or a key."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def code_hash(code: str) -> str:
    return keyed_hash("receipt-code", code)


def issue_codes(db, counter_id: int, count: int, source: str,
                days: int | None = None) -> tuple[list[str], object]:
    """`count` new codes for a counter, stored hashed; (the codes, their expiry)."""
    days = days or current_app.config["RECEIPT_CODE_DAYS"]
    now = utcnow()
    expires = now + timedelta(days=days)
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(new_code())
    hashes = {code_hash(c): c for c in codes}
    # A clash with a stored code (about 1 in 10^8 per code at a million codes) is redrawn.
    taken = set(db.scalars(select(ReceiptCode.code_hash)
                           .where(ReceiptCode.code_hash.in_(list(hashes)))))
    for clash in taken:
        del hashes[clash]
    db.execute(ReceiptCode.__table__.insert(), [
        {"counter_id": counter_id, "code_hash": h, "source": source, "created_at": now,
         "expires_at": expires, "used": False} for h in hashes])
    if taken:
        more, _expires = issue_codes(db, counter_id, len(taken), source, days)
        return [*hashes.values(), *more], expires
    return list(hashes.values()), expires


# --- the public side: the gate before the questionnaire ------------------------------------

# Why a code does not open the form, and the status of the page that says so.
PROBLEMS = {"missing": 200, "malformed": 422, "mistyped": 422, "unknown": 404,
            "used": 409, "expired": 410}


def code_problem(db, counter_id: int, raw: str | None) -> tuple[str | None, str | None]:
    """(normalized code, None) when `raw` admits a response at the counter now, else
    (code or None, one of PROBLEMS)."""
    if raw is None or not raw.strip():
        return None, "missing"
    code = normalize(raw)
    if code is None:
        return None, "malformed"
    if not well_formed(code):
        return code, "mistyped"
    row = db.execute(select(ReceiptCode.counter_id, ReceiptCode.used, ReceiptCode.expires_at)
                     .where(ReceiptCode.code_hash == code_hash(code))).first()
    if row is None or row.counter_id != counter_id:
        return code, "unknown"
    if row.used:
        return code, "used"
    if activity_rules.as_utc(row.expires_at) <= utcnow():
        return code, "expired"
    return code, None


def code_page(counter, token: str, problem: str, typed: str = ""):
    """The page that asks for a code, or says why this one does not open the form."""
    # Asked for on opening the page (200); answers sent without one are refused (422).
    status = 422 if problem == "missing" and request.method == "POST" else PROBLEMS[problem]
    response = make_response(render_template(
        "receipts/code.html", counter=counter, token=token, problem=problem,
        typed=typed[:MAX_TYPED]), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def require_code(counter, token: str) -> None:
    """For a counter that requires receipt codes: the code page (raised) unless the request
    carries a code that admits a response; the code is kept in g for the form and claim."""
    db = get_db()
    if not db.scalar(select(Counter.requires_receipt).where(Counter.id == counter.id)):
        return
    raw = request.args.get(PARAM)
    code, problem = code_problem(db, counter.id, raw)
    if problem == "used" and request.method == "POST" and _already_stored(counter.id):
        problem = None  # a retried POST of the response this code admitted
    if problem:
        abort(code_page(counter, token, problem, raw or ""))
    g.receipt_code = code


def _already_stored(counter_id: int) -> bool:
    """Whether the posted page's response is stored already (a retried POST)."""
    key = integrity.verify_key(request.form.get("submission_key", ""), counter_id)
    return key is not None and get_db().scalar(
        select(Response.id).where(Response.submission_key == key.nonce)) is not None


# Built once: run on the DBAPI cursor of the transaction that stores the response.
CLAIM = (update(ReceiptCode.__table__)
         .where(ReceiptCode.code_hash == bindparam("code_hash"),
                ReceiptCode.counter_id == bindparam("counter"),
                ReceiptCode.used.is_(False),
                ReceiptCode.expires_at > bindparam("now", type_=ReceiptCode.expires_at.type))
         .values(used=True))


class CodeTaken(Exception):
    """Another response took the request's receipt code first (claim)."""


def claim(cursor, counter) -> None:
    """Mark the request's code used, on the cursor of the transaction that stores the
    response (respond.store_response); CodeTaken when another response took it first
    (the caller rolls back and shows the 'used' page). Nothing when no code is in use."""
    code = g.get("receipt_code")
    if code is None:
        return
    taken = raw_execute(cursor, CLAIM, {"code_hash": code_hash(code), "counter": counter.id,
                                        "now": utcnow()})
    if taken.rowcount != 1 and not _already_stored(counter.id):
        raise CodeTaken()


def code_taken_page(counter, token: str):
    """The 'used' page for the request's code (after CodeTaken)."""
    return code_page(counter, token, "used", g.get("receipt_code") or "")


# --- staff pages: the setting, batches of slips -----------------------------------------


class SettingForm(StaffForm):
    required = HiddenField()


class BatchForm(StaffForm):
    count = IntegerField(_l("Số mã cần in"), default=20,
                         validators=[InputRequired(), NumberRange(min=1, max=500)],
                         description=_l("Từ 1 đến 500 mã; mỗi trang A4 có 10 phiếu để cắt."))
    days = IntegerField(_l("Hạn dùng (ngày)"),
                        validators=[InputRequired(), NumberRange(min=1, max=365)],
                        description=_l("Sau số ngày này mã không còn dùng được."))


def code_counts(db, counter_id: int) -> dict[str, int]:
    """Codes of a counter: issued (by slip and by API), used, still usable, expired unused."""
    now = utcnow()
    row = db.execute(select(
        func.count(),
        func.sum(case((ReceiptCode.source == "api", 1), else_=0)),
        func.sum(case((ReceiptCode.used.is_(True), 1), else_=0)),
        func.sum(case(((ReceiptCode.used.is_(False)) & (ReceiptCode.expires_at > now), 1),
                      else_=0)),
    ).where(ReceiptCode.counter_id == counter_id)).one()
    issued, api, used, live = (int(v or 0) for v in row)
    return {"issued": issued, "api": api, "slip": issued - api, "used": used, "live": live,
            "expired": issued - used - live}


def _receipts_page(counter, batch, status=200):
    db = get_db()
    per_counter, _total = activity_rules.activity(db, counter_ids=[counter.id])
    received = per_counter.get(counter.id, activity_rules.Activity())
    return render_template(
        "receipts/counter.html", counter=counter, setting=SettingForm(), batch=batch,
        counts=code_counts(db, counter.id), received=received,
        shares=coverage.counter_shares(db, counter, received)), status


@bp.get("/counters/<int:counter_id>/receipts")
@require_role(*STAFF)
def counter_receipts(counter_id):
    """A counter's receipt codes: the setting, how many were issued and used, new slips."""
    counter = admin.get_counter(get_db(), counter_id)
    batch = BatchForm()
    batch.days.data = current_app.config["RECEIPT_CODE_DAYS"]
    return _receipts_page(counter, batch)


@bp.post("/counters/<int:counter_id>/receipts/setting")
@require_role(*STAFF)
def receipt_setting(counter_id):
    """Switch the counter's requirement of a receipt code on or off (audited)."""
    db = get_db()
    counter = admin.get_counter(db, counter_id)
    form = SettingForm()
    if form.validate_on_submit() and form.required.data in ("0", "1"):
        wanted = form.required.data == "1"
        if wanted != counter.requires_receipt:
            audit(db, current_user(), "update", "counter", counter.id,
                  {"requires_receipt": counter.requires_receipt},
                  {"requires_receipt": wanted})
            counter.requires_receipt = wanted
            db.commit()
        flash(_("Quầy yêu cầu mã đánh giá: mỗi mã chỉ gửi được một phiếu.") if wanted else
              _("Quầy không yêu cầu mã đánh giá nữa."), "info")
    return redirect(url_for(".counter_receipts", counter_id=counter.id), 303)


@bp.post("/counters/<int:counter_id>/receipts/slips")
@require_role(*STAFF)
def receipt_slips(counter_id):
    """Issue a batch of codes and return their slips as one PDF (the only time the codes
    exist in clear: only their hashes are kept)."""
    db = get_db()
    counter = admin.get_counter(db, counter_id)
    batch = BatchForm()
    if not batch.validate_on_submit():
        return _receipts_page(counter, batch, 422)
    if not (counter.active and counter.agency.active and counter.token):
        flash(_("Quầy đang ngừng hoạt động hoặc chưa có mã QR nên không in được phiếu mã."),
              "error")
        return redirect(url_for(".counter_receipts", counter_id=counter.id), 303)
    codes, expires = issue_codes(db, counter.id, batch.count.data, "slip", batch.days.data)
    audit(db, current_user(), "receipt_batch", "counter", counter.id, None,
          {"count": len(codes), "days": batch.days.data})
    data = slips_pdf(counter, codes, expires)
    db.commit()
    return admin.private_file(data, "application/pdf",
                 f"ma-bien-nhan-{counter.agency.code}-{counter.id}.pdf")


def code_url(token: str, code: str) -> str:
    """What a slip's QR code encodes: the counter's link with the code filled in."""
    return f"{posters.counter_url(token)}?{PARAM}={code}"


def slip_matrix(data: str) -> list[list[bool]]:
    """posters.qr_matrix with one fixed mask: every slip has its own code, and choosing the
    best of the 8 masks was 8/9 of the time of a 500-slip batch. Any mask scans."""
    code = qrcode.QRCode(error_correction=posters.ERROR_CORRECTION, border=posters.QUIET_ZONE,
                         mask_pattern=0)
    code.add_data(data.encode("utf-8"))
    code.make(fit=True)
    return code.get_matrix()


class SlipPDF(posters.PosterPDF):
    """A4 sheets of 10 slips (2 × 5) with cut lines: QR code, counter, code, expiry."""

    def _qr(self, data: str, x: float, y: float, side: float) -> None:
        """As PosterPDF._qr (vector modules on a white square), from slip_matrix."""
        matrix = slip_matrix(data)
        module = side / len(matrix)
        self.set_fill_color(255, 255, 255)
        self.rect(x, y, side, side, style="F")
        self.set_fill_color(0, 0, 0)
        for row_index, row in enumerate(matrix):
            for start, length in posters.dark_runs(row):
                self.rect(x + start * module, y + row_index * module, length * module, module,
                          style="F")

    def add_slip(self, index: int, counter, url: str, code: str, expires: str) -> None:
        columns, rows = 2, SLIPS_PER_PAGE // 2
        if index % SLIPS_PER_PAGE == 0:
            self.add_page()
            self.set_draw_color(150, 150, 150)
            self.set_line_width(0.2)
            self.set_dash_pattern(dash=2, gap=2)
            self.line(self.w / 2, 0, self.w / 2, self.h)
            for row in range(1, rows):
                self.line(0, row * self.h / rows, self.w, row * self.h / rows)
            self.set_dash_pattern()
        cell = index % SLIPS_PER_PAGE
        width, height = self.w / columns, self.h / rows
        x, y = (cell % columns) * width, (cell // columns) * height
        pad = 5
        side = height - 2 * pad
        self._qr(url, x + pad, y + pad, side)
        left, text_width = x + side + 2 * pad, width - side - 3 * pad
        top = y + pad + 1
        for text, style, size, lines, color in (
                (counter.agency.name, "", 8, 2, posters.BLUE),
                (counter.label, "B", 10, 2, posters.INK),
                (_("Mã đánh giá của ông/bà:"), "", 8, 1, posters.GREY),
                (printed(code), "B", 17, 1, posters.INK),
                (_("Quét mã QR, hoặc mở %(url)s và nhập mã.",
                   url=posters.counter_url(counter.token)), "", 7, 3, posters.INK),
                (_("Dùng một lần, đến hết ngày %(date)s.", date=expires), "", 7, 1,
                 posters.GREY)):
            size, fitted = self.fit(self.clean(text), style, size, 5, lines, text_width)
            self.set_font(posters.FONT, style, size)
            self.set_text_color(*color)
            for line in fitted:
                self.set_xy(left, top)
                self.cell(text_width, size * posters.PT * 1.25, line)
                top += size * posters.PT * 1.25
            top += 1.2


def slips_pdf(counter, codes: list[str], expires) -> bytes:
    """One PDF of slips, ten per A4 page, each with its own QR code and code."""
    last_day = format_date(expires - timedelta(seconds=1), "dd/MM/yyyy")
    pdf = SlipPDF("A4")
    try:
        pdf.set_title(_("Phiếu mã đánh giá – %(counter)s", counter=counter.label))
        for index, code in enumerate(codes):
            pdf.add_slip(index, counter, code_url(counter.token, code), code, last_day)
        return bytes(pdf.output())
    finally:
        pdf.close_fonts()


# --- staff pages: API keys of an agency -------------------------------------------------

KEY_PREFIX = "sipas_"


class ApiKeyForm(StaffForm):
    label = StringField(_l("Tên gợi nhớ của khóa"),
                        validators=[InputRequired(), Length(max=200)],
                        description=_l("Ví dụ: Hệ thống một cửa điện tử của tỉnh."))


class RevokeKeyForm(StaffForm):
    key_id = HiddenField()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_hash(key: str) -> str:
    return keyed_hash("api-key", key)


@bp.route("/agencies/<int:agency_id>/api-keys", methods=["GET", "POST"])
@require_role(*STAFF)
def api_keys(agency_id):
    """An agency's API keys; a new key is shown once, then only its first characters."""
    db = get_db()
    agency = admin.get_agency(db, agency_id)
    form = ApiKeyForm()
    shown = None
    status = 200
    if form.is_submitted():
        form.label.data = clean(form.label.data)
        if form.validate() and form.label.data:
            shown = new_api_key()
            key = ApiKey(agency=agency, label=form.label.data, key_hash=api_key_hash(shown),
                         prefix=shown[:len(KEY_PREFIX) + 6], created_by=current_user().id)
            db.add(key)
            db.flush()
            audit(db, current_user(), "issue_api_key", "api_key", key.id, None,
                  key.snapshot())
            db.commit()
            form = ApiKeyForm(formdata=None)
        else:
            if not form.label.errors:
                form.label.errors = [_("Vui lòng đặt tên cho khóa.")]
            status = 422
    keys = db.scalars(select(ApiKey).where(ApiKey.agency_id == agency.id)
                      .order_by(ApiKey.id.desc())).all()
    response = make_response(render_template(
        "receipts/api_keys.html", agency=agency, form=form, keys=keys, shown=shown,
        revoke=RevokeKeyForm()), status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/agencies/<int:agency_id>/api-keys/revoke")
@require_role(*STAFF)
def api_key_revoke(agency_id):
    """Revoke one of the agency's API keys (audited): it stops working at once."""
    db = get_db()
    agency = admin.get_agency(db, agency_id)
    form = RevokeKeyForm()
    key_id = form.key_id.data or ""
    key = (db.get(ApiKey, parse_id(key_id)) if form.validate_on_submit() and parse_id(key_id)
           and len(key_id) < 12 else None)
    if key is None or key.agency_id != agency.id:
        flash(_("Không tìm thấy khóa này."), "error")
    elif key.revoked_at is None:
        before = key.snapshot()
        key.revoked_at = utcnow()
        audit(db, current_user(), "revoke_api_key", "api_key", key.id, before, key.snapshot())
        db.commit()
        flash(_("Đã thu hồi khóa %(prefix)s…: hệ thống dùng khóa này không lấy mã được nữa.",
                prefix=key.prefix), "info")
    return redirect(url_for(".api_keys", agency_id=agency.id), 303)


def carry_code(endpoint: str, values: dict) -> None:
    """The form's action keeps the code in use."""
    code = g.get("receipt_code")
    if code and endpoint == "respond.submit":
        values.setdefault(PARAM, code)


def keep_code_in_redirect(response):
    """A redirect back to the questionnaire (errors shown again, another language) keeps the
    code in use, so the answers kept come back without asking for the code again."""
    code = g.get("receipt_code")
    location = response.headers.get("Location") if response.status_code in (302, 303) else None
    if code and location and request.view_args:
        path, _sep, query = location.partition("?")
        if path == url_for("respond.questionnaire",
                        token=normalize_token(request.view_args.get("token", ""))):
            query = "&".join(part for part in query.split("&")
                             if part and not part.startswith(PARAM + "="))
            response.headers["Location"] = f"{path}?{query + '&' if query else ''}{PARAM}={code}"
    return response


def init_app(app) -> None:
    app.url_defaults(carry_code)
    app.after_request(keep_code_in_redirect)
    app.jinja_env.globals.update(
        receipt_param=PARAM,
        counter_coverage=lambda counter, received: coverage.counter_shares(
            get_db(), counter, received))
