"""The public, anonymous questionnaire: /r/<token>."""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import NamedTuple

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy import bindparam, select
from werkzeug.exceptions import Conflict, HTTPException

from analysis.questionnaire import Questionnaire, likert_options

from . import drafts, integrity, paper, receipts
from .db import current_database, get_db, raw_connection, raw_execute, raw_statement
from .domain.agencies import contact_link
from .domain.vectors import encoded_columns
from .errors import CodeWithdrawn, http_error
from .forms import BlankForm, InvalidSubmission, PostedForm, ResponseForm, form_class
from .i18n import LANGUAGE_FIELD, select_locale
from .models import (
    TOKEN_ALPHABET,
    TOKEN_LENGTH,
    Agency,
    Answer,
    Counter,
    CounterToken,
    Response,
    answer_rows,
    normalize_token,
)
from .questionnaires import registry
from .security import csrf

bp = Blueprint("respond", __name__)
# Table-level inserts skip the ORM's bulk machinery on the submit path.
RESPONSE = Response.__table__
ANSWER = Answer.__table__
# The columns a submission writes (the rest keep their defaults), each a named parameter.
RESPONSE_COLUMNS = ("counter_id", "agency_id", "questionnaire_id", "questionnaire_version",
                    "submitted_at", "locale", "seconds_taken", "submission_key",
                    "answers_digest", "channel", "flags", "service_field", "criteria_codes")
INSERT_RESPONSE = RESPONSE.insert().values(
    {column: bindparam(column) for column in RESPONSE_COLUMNS}).returning(RESPONSE.c.id)
INSERT_ANSWER = ANSWER.insert().values(
    {column: bindparam(column) for column in ("response_id", "question_id", "value", "text")}
).inline()  # no id read back per answer
# PostgreSQL: the response, its answers (arrays unnested, as answer_rows lays them out)
# and the repeat check's count (unless `count` is false: a paper sheet), in one statement.
POSTGRES_STORE = f"""
WITH stored AS (
  INSERT INTO response ({", ".join(RESPONSE_COLUMNS)})
  VALUES ({", ".join(f"%({column})s" for column in RESPONSE_COLUMNS)})
  RETURNING id
), answers AS (
  INSERT INTO answer (response_id, question_id, value, text)
  SELECT stored.id, given.q, given.v, given.t
  FROM stored, json_to_recordset(%(answers)s::json) AS given(q varchar, v integer, t text)
), counted AS (
  INSERT INTO submission_count (counter_id, client_key, bucket, submissions)
  SELECT %(counter_id)s, %(client_key)s, %(bucket)s, 1 WHERE %(count)s
  ON CONFLICT (counter_id, client_key, bucket)
  DO UPDATE SET submissions = submission_count.submissions + 1
)
SELECT id FROM stored"""


def postgres_answers(answers: dict) -> dict:
    """answer_rows as one JSON parameter for POSTGRES_STORE (a string costs the driver
    less to send than three arrays): [{"q": question id, "v": code, "t": text}, ...]."""
    rows = [{"q": row["question_id"], "v": row["value"], "t": row["text"]}
            for row in answer_rows(0, answers)]
    return {"answers": json.dumps(rows, ensure_ascii=False, separators=(",", ":"))}


DIGEST_BY_KEY = select(RESPONSE.c.answers_digest).where(
    RESPONSE.c.submission_key == bindparam("key"))
COUNTER, TOKEN, AGENCY = Counter.__table__, CounterToken.__table__, Agency.__table__
# Everything the public pages need of a counter, in one statement built once (the hot path).
COUNTER_BY_TOKEN = (
    select(COUNTER.c.id, COUNTER.c.label, COUNTER.c.questionnaire_id, COUNTER.c.active,
           COUNTER.c.requires_receipt, TOKEN.c.revoked_at, AGENCY.c.id, AGENCY.c.code,
           AGENCY.c.name, AGENCY.c.active, AGENCY.c.feedback_contact)
    .select_from(TOKEN.join(COUNTER, COUNTER.c.id == TOKEN.c.counter_id)
                 .join(AGENCY, AGENCY.c.id == COUNTER.c.agency_id))
    .where(TOKEN.c.token == bindparam("token"))
)


class PageAlreadyUsed(Conflict):
    """A second, different response built from one served page (its submission key)."""


@dataclass(frozen=True)
class AgencyView:
    id: int
    code: str
    name: str
    # The hotline or feedback channel the thank-you page shows (None: not set).
    feedback_contact: str | None = None


@dataclass(frozen=True)
class CounterView:
    """What the public pages need of a counter, read in one query (the hot path)."""

    id: int
    label: str
    questionnaire_id: str
    agency: AgencyView
    usable: bool
    # Whether a response needs a receipt code (receipts.py); False skips that check's query.
    requires_receipt: bool = False

    @property
    def agency_id(self) -> int:
        return self.agency.id


class Posted(NamedTuple):
    """A POST to a counter's page: the live counter, its normalised token and the form read."""

    counter: CounterView
    token: str
    questionnaire: Questionnaire
    form: PostedForm


def counter_for_token(token: str) -> CounterView:
    """The counter behind a token, live or withdrawn; 404 when the token never existed.

    The busiest statement of the site: on the pooled DBAPI connection, outside any
    transaction, read afresh on every request (a revoked token is refused at once).
    """
    with raw_connection() as connection:
        row = raw_execute(connection.cursor(), COUNTER_BY_TOKEN,
                          {"token": normalize_token(token)}).fetchone()
    if row is None:
        abort(404)
    (counter_id, label, questionnaire_id, counter_active, requires_receipt, revoked_at,
     agency_id, agency_code, agency_name, agency_active, feedback_contact) = row
    return CounterView(counter_id, label, questionnaire_id,
                       AgencyView(agency_id, agency_code, agency_name, feedback_contact),
                       usable=revoked_at is None and bool(counter_active and agency_active),
                       requires_receipt=bool(requires_receipt))


def live_counter_or_410(token: str) -> CounterView:
    """The counter behind a live token: 404 for an unknown token, 410 for a withdrawn one."""
    counter = counter_for_token(token)
    if not counter.usable:
        raise CodeWithdrawn()
    return counter


NO_STORE = (("Cache-Control", "no-store"),)


def render_form(counter, token, form, status=200, notice=None):
    questionnaire = form.questionnaire
    # (A receipt code is carried in the form's action by url_defaults: rendered in full.)
    if (isinstance(form, BlankForm) and notice is None and not current_app.debug
            and g.get("receipt_code") is None):
        return current_app.response_class(blank_page(counter, token, form), status,
                                          NO_STORE, mimetype="text/html")
    response = make_response(
        render_template(
            "respond/form.html",
            counter=counter,
            token=token,
            form=form,
            questionnaire=questionnaire,
            answers=form.raw_answers(),
            notice=notice,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# A blank page is the same for every counter and request but for these values: it is
# rendered once per questionnaire version, language and mount point with a placeholder for
# each (NUL never occurs in a questionnaire file, nor in an accepted request), and served
# by joining the parts with the values escaped as the template escapes them.
SLOT = re.compile(r"\x00(\w+)\x00|%00(token)%00")


def _slot(name: str) -> str:
    return f"\x00{name}\x00"


def _page_parts(questionnaire) -> list[str]:
    """The blank page's HTML split at its placeholders: text, name, text, name, ..., text."""
    placeholder_counter = SimpleNamespace(label=_slot("label"),
                                          agency=SimpleNamespace(name=_slot("agency")))
    form = BlankForm(questionnaire, _slot("started"), _slot("key"))
    html = render_template(
        "respond/form.html", counter=placeholder_counter, token=_slot("token"), form=form,
        questionnaire=questionnaire, answers=form.raw_answers(), notice=None)
    parts = []
    for index, piece in enumerate(SLOT.split(html)):
        if index % 3 == 0:
            parts.append(piece.encode())  # UTF-8 once, not on every request
        elif piece is not None:
            parts.append(piece)
    return parts


def blank_page(counter, token: str, form: BlankForm) -> bytes:
    """The questionnaire page as first served (UTF-8), from the cached parts (see SLOT)."""
    questionnaire = form.questionnaire
    # (select_locale is what get_locale parses: the same language, without building a Locale.)
    key = (questionnaire.id, questionnaire.version, questionnaire.source, select_locale(),
           request.script_root)
    pages = current_app.extensions.setdefault("respond_blank_pages", {})
    parts = pages.get(key)
    if parts is None:
        parts = pages[key] = _page_parts(questionnaire)
    # The token was found in the database: letters and digits, the same once URL-quoted.
    values = {"started": form.started.data,
              "key": form.submission_key.data, "agency": counter.agency.name,
              "label": counter.label, "token": token}
    return b"".join(piece if index % 2 == 0 else str(escape(values[piece])).encode()
                    for index, piece in enumerate(parts))


def warm_up(app) -> None:
    """Load what the public pages otherwise load on first use: the questionnaires, the
    templates and translations, and each questionnaire's blank page in each language.

    gunicorn.conf.py calls it in the master before forking the workers. No database access.
    """
    with app.app_context():
        questionnaires = registry()
        for language in app.config["LANGUAGES"]:
            with app.test_request_context(f"/?lang={language}"):
                for questionnaire_id in questionnaires.ids():
                    questionnaire = questionnaires.latest(questionnaire_id)
                    blank_page(SimpleNamespace(label="", agency=SimpleNamespace(name="")), "",
                               new_form(questionnaire, 0))
                for name in ("respond/thanks.html", "respond/used.html", "errors/404.html",
                             "errors/410.html"):
                    app.jinja_env.get_template(name)


def new_form(questionnaire, counter_id: int) -> BlankForm:
    """A blank form with a fresh signed submission key for the counter (one response)."""
    return BlankForm(questionnaire, integrity.start_stamp(), integrity.issue_key(counter_id))


@bp.get("/")
def home():
    """The site's front page: how to reach a counter's questionnaire."""
    return render_template("home.html")


# Listed last so that it is applied first: url_for builds the lower-case address.
@bp.get("/R/<token>")
@bp.get("/r/<token>")
def questionnaire(token):
    """A counter's questionnaire: fresh (the QR code's target), or the answers a POST kept."""
    counter = live_counter_or_410(token)
    token = normalize_token(token)
    if counter.requires_receipt:
        receipts.require_code(counter, token)  # the code page
    questionnaire = registry().latest(counter.questionnaire_id)
    draft = drafts.load(token, questionnaire)
    if draft is None:
        return render_form(counter, token, new_form(questionnaire, counter.id))
    try:
        form = form_class(questionnaire)(formdata=draft["fields"], meta={"csrf": False})
        invalid = draft["show_errors"] and not form.validate()
    except InvalidSubmission:  # signed by us, so only if the form changed in between
        return render_form(counter, token, new_form(questionnaire, counter.id))
    if draft["expired"]:  # the answers of a page kept open too long: a fresh key to send them
        form.submission_key.data = integrity.issue_key(counter.id)
        return render_form(counter, token, form, notice=csrf_notice(EXPIRED))
    return render_form(counter, token, form, status=422 if invalid else 200)


def refuse_what_no_browser_sends(form: ResponseForm | PostedForm,
                                 also: set[str] | frozenset[str] = frozenset()) -> None:
    """400 unless the POST has the shape our page produces (tampering or a broken client).

    No field the page does not have; one value per field except the checkboxes of a
    multiple-choice question; the submission key shaped as issued (its signature is
    checked against the counter by posted_form) and the start stamp as we signed it. (File
    parts are refused before the form reads the POST.)
    (NULs and invalid UTF-8 anywhere are refused for every page by security.py.)
    `also`: the page's own fields beside the questionnaire's (paper entry's sheet date).
    """
    if set(request.form) - form.known_fields() - {LANGUAGE_FIELD} - also:
        abort(400)
    multi_valued = form.multi_valued_fields()
    if any(len(values) > 1 and name not in multi_valued
           for name, values in request.form.lists()):
        abort(400)
    if not integrity.key_is_well_formed(request.form.get("submission_key", "")):
        abort(400)
    if not integrity.stamp_is_ours(request.form.get("started", "")):
        abort(400)


def check_submission_key(key: str, counter_id: int, *, expired_ok: bool = False) -> None:
    """The posted page's signed key is this form's CSRF protection (with security.py's
    Origin check), in place of a session cookie and token: 400 for a key we did not issue
    for this counter (forged, altered, another counter's), and the refusal page with the
    answers kept (CSRFError) for one older than WTF_CSRF_TIME_LIMIT, like an expired token.

    A cross-site page cannot make a visitor's browser send more than its author can send
    directly: a key is minted by serving the page, admits one response, and is refused
    after the time limit; a cross-site POST itself is refused on its Origin (security.py).
    """
    verified = integrity.verify_key(key, counter_id)
    if verified is None:
        abort(400)  # forged, or served for another counter
    limit = current_app.config.get("WTF_CSRF_TIME_LIMIT")
    if (not expired_ok and limit is not None
            and verified.issued_at < integrity.now() - timedelta(seconds=limit)):
        raise CSRFError(EXPIRED)
    # What Flask-WTF sets after its own check: PostedForm.validate and security.py read it.
    g.csrf_valid = True
    g.verified_key = (key, counter_id, verified)  # store_response needs it again


def verified_key(key: str, counter_id: int) -> integrity.SubmissionKey | None:
    """integrity.verify_key, reusing this request's check_submission_key result."""
    checked = g.get("verified_key")
    if checked is not None and checked[:2] == (key, counter_id):
        return checked[2]
    return integrity.verify_key(key, counter_id)


def posted_form(token, *, expired_ok: bool = False) -> Posted:
    """The live counter, its normalised token, its questionnaire and the form read from the POST."""
    counter = live_counter_or_410(token)
    if counter.requires_receipt:
        receipts.require_code(counter, normalize_token(token))
    questionnaire = registry().latest(counter.questionnaire_id)
    if request.files:
        abort(400)  # before the form reads them as answers
    try:
        form = PostedForm(questionnaire, request.form)
    except InvalidSubmission:
        abort(400)
    refuse_what_no_browser_sends(form)
    check_submission_key(form.submission_key.data, counter.id, expired_ok=expired_ok)
    return Posted(counter, normalize_token(token), questionnaire, form)


@bp.post("/R/<token>")
@bp.post("/r/<token>")
def submit(token):
    """Store a completed questionnaire, or show it again with its errors or in another language."""
    posted = posted_form(token)
    counter, token, questionnaire, form = (posted.counter, posted.token, posted.questionnaire,
                                           posted.form)

    # The language switch shows the page again in the other language with the answers kept
    # (i18n's after_request hook remembers the choice in a cookie). POST/redirect/GET, here
    # and for errors: no POST stays in the history (drafts.py); when the answers are too
    # long for the cookie, the page is shown directly, answers kept all the same.
    lang = request.form.get(LANGUAGE_FIELD)
    if lang:
        response = redirect(url_for(".questionnaire", token=token, lang=lang), 303)
        if drafts.save(response, token, questionnaire):
            return response
        return render_form(counter, token, form)

    try:
        valid = form.validate()
    except InvalidSubmission:
        abort(400)
    if not valid:
        response = redirect(url_for(".questionnaire", token=token), 303)
        if drafts.save(response, token, questionnaire, show_errors=True):
            return response
        return render_form(counter, token, form, status=422)

    try:
        store_response(counter, questionnaire, form)
    except PageAlreadyUsed:
        return page_already_used(counter, token)
    except receipts.CodeTaken:
        return receipts.code_taken_page(counter, token)
    response = redirect(url_for(".thanks", token=token), 303)
    drafts.clear(response, token)
    return response


# The signed submission key protects this form instead (check_submission_key): no session
# cookie is written for the questionnaire, nor read back from the POST.
csrf.exempt(submit)


def page_already_used(counter, token):
    """409: this served page already sent a response; a fresh form is one tap away."""
    response = make_response(render_template("respond/used.html", counter=counter,
                                             token=token), 409)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/quyen-rieng-tu")
def privacy():
    """What is kept about a respondent, apart from the answers, and for how long."""
    # ?r=<token>: the questionnaire the respondent came from, offered as the way back.
    back = normalize_token(request.args.get("r", ""))
    if not re.fullmatch(f"[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}", back):
        back = None
    return render_template("respond/privacy.html", back=back,
                           hours=int(integrity.KEEP_COUNTS.total_seconds() // 3600))


@bp.get("/r/<token>/cam-on")
def thanks(token):
    """The thank-you page after a stored response."""
    # Reachable for a just-revoked token too: the answers were saved before.
    return render_template("respond/thanks.html", counter=counter_for_token(token),
                           contact_link=contact_link)


def postgres_store(cursor, parameters: dict) -> int:
    """PostgreSQL: the response, its answers and the repeat count in one statement
    (POSTGRES_STORE); the new response's id."""
    cursor.execute(POSTGRES_STORE, parameters)
    return cursor.fetchone()[0]


def store_response(counter, questionnaire, form, channel: str = "web",
                   submitted_at: datetime | None = None) -> int | None:
    """Store the response and its answers in one transaction; its id, or None when the same
    page sent the same answers before (a retried POST: stored once, acknowledged again).

    One served page admits one response: the random part of its signed submission key is
    stored (unique) with a digest of the answers, so different answers under a key already
    used raise PageAlreadyUsed (409) and store nothing. The key also says when the page was
    served: the seconds taken. A receipt code in use (receipts.require_code) is claimed in
    the same transaction: receipts.CodeTaken when another response took it first.

    `channel="paper"`: keyed in by staff from a paper sheet (survey/admin.py): not timed,
    never flagged, not counted by the repeat check, dated `submitted_at` (the sheet's date).

    The hot path of the public side: statements built once, run on the pooled DBAPI
    connection (db.raw_connection), the answers in one executemany; on SQLite the write
    transaction takes the lock at once (BEGIN IMMEDIATE), so two workers never deadlock on
    upgrading a read lock. Any other database error propagates: errors.py logs it and
    answers 500, so nobody is told their answers were refused (or saved) when the server
    failed.
    """
    paper_sheet = channel == "paper"
    key = verified_key(form.submission_key.data, counter.id)
    if key is None:
        abort(400)
    answers = form.answers()
    digest = integrity.answers_digest(answers)
    if submitted_at is not None and not paper_sheet:
        raise ValueError("only a paper sheet carries its own date")
    at = submitted_at or integrity.now()
    seconds = None if paper_sheet else max(0, int((at - key.issued_at).total_seconds()))
    row = {
        "counter_id": counter.id,
        "agency_id": counter.agency_id,
        "questionnaire_id": questionnaire.id,
        "questionnaire_version": questionnaire.version,
        "submitted_at": at,
        "locale": select_locale(),
        "seconds_taken": seconds,
        "submission_key": key.nonce,
        "answers_digest": digest,
        "channel": channel,
        # The criteria as the reports read them, written with the answers (the reports'
        # lazy fill is only for rows stored before the vectors existed).
        **encoded_columns(questionnaire, answers),
    }
    database = current_database()
    postgres = database.engine.dialect.name == "postgresql"
    with raw_connection() as connection:
        cursor = connection.cursor()
        # Read before the write takes SQLite's lock; read committed either way, as before.
        row["flags"] = "" if paper_sheet else " ".join(integrity.submission_flags(
            cursor, counter, questionnaire, seconds, answers, at, row["criteria_codes"]))
        try:
            if postgres:
                # One statement writes it all (atomic on its own); with a receipt code to
                # claim, the claim and it in one transaction.
                claiming = g.get("receipt_code") is not None
                with connection.driver_connection.transaction() if claiming else nullcontext():
                    receipts.claim(cursor, counter)
                    response_id = postgres_store(cursor, {
                        **row, **postgres_answers(answers),
                        **integrity.count_parameters(counter, at), "count": not paper_sheet})
            else:
                cursor.execute("BEGIN IMMEDIATE")
                receipts.claim(cursor, counter)
                response_id = raw_execute(cursor, INSERT_RESPONSE, row).fetchone()[0]
                rows = answer_rows(response_id, answers)
                if rows:
                    insert = raw_statement(INSERT_ANSWER)
                    cursor.executemany(insert.sql, insert.many(rows))
                if not paper_sheet:
                    integrity.count_web_submission(cursor, counter, at)
                connection.commit()
        except receipts.CodeTaken:
            connection.rollback()
            raise
        except database.engine.dialect.loaded_dbapi.IntegrityError:
            connection.rollback()
            stored = raw_execute(cursor, DIGEST_BY_KEY, {"key": key.nonce}).fetchone()
            connection.rollback()
            if stored is None:
                raise
            if stored[0] not in (None, digest):
                raise PageAlreadyUsed() from None
            return None
    if integrity.purge_now():
        db = get_db()
        integrity.purge_expired(db)
        db.commit()
    return response_id


# Flask-WTF's reasons (CSRFError.description) and security.check_origin's.
ORIGIN_REASONS = ("The referrer header is missing.",)
FOREIGN_REASONS = ("The referrer does not match the host.",
                   "The origin does not match the host.")


EXPIRED = "The CSRF token has expired."


def csrf_notice(reason: str) -> str:
    """Why the POST was refused, truthfully, and what will work."""
    if reason in ORIGIN_REASONS:
        return _(
            "Trình duyệt không cho biết phiếu được gửi từ trang này (thông tin “Referer” bị "
            "chặn), nên để an toàn phiếu chưa được nhận. Các câu trả lời của ông/bà vẫn còn "
            "nguyên. Xin ông/bà mở đường link bằng trình duyệt khác (ví dụ Chrome, Safari), "
            "hoặc tắt chế độ chặn “Referer” cho trang này, rồi bấm “Gửi phiếu”."
        )
    if reason in FOREIGN_REASONS:
        return _(
            "Phiếu được gửi đến từ một trang khác, không phải trang khảo sát này, nên để an "
            "toàn phiếu chưa được nhận. Nếu đây là câu trả lời của ông/bà, xin kiểm tra lại "
            "rồi bấm “Gửi phiếu” trên trang này."
        )
    return _(
        "Phiên trả lời đã hết hạn nên phiếu chưa được gửi. Các câu trả lời của ông/bà vẫn "
        "còn nguyên, xin ông/bà bấm “Gửi phiếu” một lần nữa."
    )


def csrf_failed(reason: str):
    """CSRF check failed on the public form: nothing stored, answers kept, the reason told."""
    # Runs as an error handler: an unknown or withdrawn code must still get its own page.
    try:
        posted = posted_form(request.view_args.get("token", ""), expired_ok=True)
    except HTTPException as exc:
        return http_error(exc)
    counter, token, form = posted.counter, posted.token, posted.form
    if reason == EXPIRED:
        # A page kept open too long: POST/redirect/GET with the answers in a draft, so that
        # going back from the thank-you page later never replays this POST (drafts.py).
        response = redirect(url_for(".questionnaire", token=token), 303)
        if drafts.save(response, token, posted.questionnaire, expired=True):
            return response
    # A fresh key (nothing was stored under the old one); the respondent's own answers kept.
    form.submission_key.data = integrity.issue_key(counter.id)
    # A missing or foreign Referer/Origin stays a 400 answering the POST itself: the same
    # browser cannot send the form until its setting changes, and monitoring sees security
    # refusals as 4xx.
    return render_form(counter, token, form, status=400, notice=csrf_notice(reason))


def published(questionnaire_id):
    """The latest version of a published questionnaire, or 404."""
    try:
        return registry().latest(questionnaire_id)
    except KeyError:
        abort(404)


def render_paper(questionnaire, counter=None):
    response = make_response(render_template(
        "respond/paper.html", questionnaire=questionnaire, counter=counter,
        blocks=paper.blocks,
        scale=likert_options(not_applicable=True), separator=paper.MULTIPLE_SEPARATOR))
    response.vary.add("Cookie")  # the remembered language (i18n.py)
    return response


@bp.get("/phieu/<questionnaire_id>")
def paper_form(questionnaire_id):
    """The printable A4 questionnaire, for respondents without a smartphone."""
    return render_paper(published(questionnaire_id))


@bp.get("/r/<token>/phieu")
def counter_paper_form(token):
    """The same, headed with the counter's agency and name."""
    counter = live_counter_or_410(token)
    return render_paper(published(counter.questionnaire_id), counter)


@bp.get("/phieu/<questionnaire_id>.csv")
def paper_csv(questionnaire_id):
    """The CSV template for typing paper answers in; `python -m analysis` reads it."""
    questionnaire = published(questionnaire_id)
    response = make_response(paper.csv_template(questionnaire))
    response.mimetype = "text/csv"
    response.charset = "utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{paper.file_name(questionnaire, "phieu-giay.csv")}"')
    return response
