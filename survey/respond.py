"""The public, anonymous questionnaire: /r/<token>."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from . import integrity, paper
from .db import get_db
from .forms import InvalidSubmission, form_class
from .i18n import LANGUAGE_FIELD
from .models import (
    Agency,
    Answer,
    Counter,
    CounterToken,
    Response,
    answer_rows,
    normalize_token,
    utcnow,
)
from .questionnaires import likert_options, registry

bp = Blueprint("respond", __name__)
# Table-level inserts skip the ORM's bulk machinery on the submit path.
RESPONSE = Response.__table__
ANSWER = Answer.__table__


class TokenGone(Exception):
    """The token existed but was revoked, or its counter or agency is no longer active."""


@dataclass(frozen=True)
class AgencyView:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class CounterView:
    """What the public pages need of a counter, read in one query (the hot path)."""

    id: int
    label: str
    questionnaire_id: str
    agency: AgencyView
    usable: bool

    @property
    def agency_id(self) -> int:
        return self.agency.id


def lookup_counter(token: str) -> CounterView:
    """The counter behind a token, live or not; 404 when the token never existed."""
    row = get_db().execute(
        select(Counter.id, Counter.label, Counter.questionnaire_id, Counter.active,
               CounterToken.revoked_at, Agency.id, Agency.code, Agency.name, Agency.active)
        .join(Counter, Counter.id == CounterToken.counter_id)
        .join(Agency, Agency.id == Counter.agency_id)
        .where(CounterToken.token == normalize_token(token))
    ).first()
    if row is None:
        abort(404)
    (counter_id, label, questionnaire_id, counter_active, revoked_at,
     agency_id, agency_code, agency_name, agency_active) = row
    return CounterView(counter_id, label, questionnaire_id,
                       AgencyView(agency_id, agency_code, agency_name),
                       usable=revoked_at is None and counter_active and agency_active)


def find_counter(token: str) -> CounterView:
    """The counter behind a live token: 404 for an unknown token, 410 for a withdrawn one."""
    counter = lookup_counter(token)
    if not counter.usable:
        raise TokenGone()
    return counter


def render_form(counter, token, form, status=200, notice=None):
    questionnaire = form.questionnaire
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


def new_form(questionnaire):
    form = form_class(questionnaire)(formdata=None)
    form.started.data = integrity.start_stamp()
    form.submission_key.data = secrets.token_hex(16)
    return form


@bp.get("/r/<token>")
@bp.get("/R/<token>")
def questionnaire(token):
    counter = find_counter(token)
    form = new_form(registry().latest(counter.questionnaire_id))
    return render_form(counter, normalize_token(token), form)


def posted_form(token):
    """The counter, its normalised token, its questionnaire and the form read from the POST."""
    counter = find_counter(token)
    questionnaire = registry().latest(counter.questionnaire_id)
    try:
        form = form_class(questionnaire)()
    except InvalidSubmission:
        abort(400)
    return counter, normalize_token(token), questionnaire, form


@bp.post("/r/<token>")
@bp.post("/R/<token>")
def submit(token):
    counter, token, questionnaire, form = posted_form(token)
    unknown = set(request.form) - form.known_fields() - {LANGUAGE_FIELD, "submit"}
    if unknown:
        abort(400)

    # The language switch re-renders the page in the other language with the answers kept
    # (i18n's after_request hook remembers the choice in a cookie).
    if request.form.get(LANGUAGE_FIELD):
        return render_form(counter, token, form)

    try:
        valid = form.validate()
    except InvalidSubmission:
        abort(400)
    if not valid:
        return render_form(counter, token, form, status=422)

    if not store_response(counter, questionnaire, form):
        abort(400)
    return redirect(url_for(".thanks", token=token), 303)


@bp.get("/r/<token>/cam-on")
def thanks(token):
    # Reachable for a just-revoked token too: the answers were saved before.
    return render_template("respond/thanks.html", counter=lookup_counter(token))


def store_response(counter, questionnaire, form) -> bool:
    """Store the response and its answers in one transaction; True once it is saved.

    Core inserts rather than the unit of work: this is the hot path of the public side.
    A POST retried by a flaky connection carries the same submission key, which the
    database keeps unique, so it is stored once and acknowledged again.
    """
    db = get_db()
    key = form.submission_key.data or None
    seconds = integrity.seconds_since(form.started.data)
    try:
        response_id = db.execute(
            RESPONSE.insert().returning(RESPONSE.c.id),
            {
                "counter_id": counter.id,
                "agency_id": counter.agency_id,
                "questionnaire_id": questionnaire.id,
                "questionnaire_version": questionnaire.version,
                "submitted_at": utcnow(),
                "locale": str(get_locale()),
                "seconds_taken": seconds,
                "submission_key": key,
                "flags": " ".join(integrity.submission_flags(db, counter.id, seconds)),
            },
        ).scalar_one()
        rows = answer_rows(response_id, form.answers())
        if rows:
            db.execute(ANSWER.insert(), rows)
        db.commit()
    except IntegrityError:
        db.rollback()
        # Only a duplicate submission key means "already saved"; anything else is an error.
        return bool(key) and db.scalar(
            select(Response.id).where(Response.submission_key == key)) is not None
    return True


def csrf_failed():
    """CSRF token missing or expired on the public form: nothing stored, answers kept."""
    from flask_babel import gettext as _

    # Runs as an error handler: an unknown or withdrawn code must still get its own page.
    try:
        counter, token, _questionnaire, form = posted_form(request.view_args.get("token", ""))
    except TokenGone:
        return render_template("errors/410.html"), 410
    except HTTPException as exc:
        return render_template(f"errors/{exc.code}.html"), exc.code
    # Fresh stamp and token are rendered by the template; keep the respondent's own answers.
    notice = _(
        "Phiên trả lời đã hết hạn nên phiếu chưa được gửi. Các câu trả lời của bạn vẫn còn "
        "nguyên, vui lòng bấm “Gửi phiếu” một lần nữa."
    )
    return render_form(counter, token, form, status=400, notice=notice)


def register_error_handlers(app):
    @app.errorhandler(TokenGone)
    def token_gone(_exc):
        return render_template("errors/410.html"), 410


def published(questionnaire_id):
    try:
        return registry().latest(questionnaire_id)
    except KeyError:
        abort(404)


def render_paper(questionnaire, counter=None):
    response = make_response(render_template(
        "respond/paper.html", questionnaire=questionnaire, counter=counter,
        blocks=paper.blocks,
        scale=likert_options(not_applicable=True), separator=paper.MULTIPLE_SEPARATOR))
    response.vary.add("Accept-Language")
    return response


@bp.get("/phieu/<questionnaire_id>")
def paper_form(questionnaire_id):
    """The printable A4 questionnaire, for respondents without a smartphone."""
    return render_paper(published(questionnaire_id))


@bp.get("/r/<token>/phieu")
def counter_paper_form(token):
    """The same, headed with the counter's agency and name."""
    counter = find_counter(token)
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
