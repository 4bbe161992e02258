"""The public, anonymous questionnaire: /r/<token>."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from . import integrity
from .db import get_session
from .forms import InvalidSubmission, form_class
from .i18n import LANGUAGE_FIELD, remember_locale
from .models import Answer, Counter, CounterToken, Response, normalize_token
from .questionnaires import registry

bp = Blueprint("respond", __name__)


class TokenGone(Exception):
    """The token existed but was revoked, or its counter or agency is no longer active."""


def find_counter(token: str) -> Counter:
    token = normalize_token(token)
    row = get_session().scalar(
        select(CounterToken)
        .where(CounterToken.token == token)
        .options(joinedload(CounterToken.counter).joinedload(Counter.agency))
    )
    if row is None:
        abort(404)
    counter = row.counter
    if row.revoked_at is not None or not counter.active or not counter.agency.active:
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


@bp.post("/r/<token>")
@bp.post("/R/<token>")
def submit(token):
    counter = find_counter(token)
    token = normalize_token(token)
    questionnaire = registry().latest(counter.questionnaire_id)
    try:
        form = form_class(questionnaire)()
    except InvalidSubmission:
        abort(400)
    unknown = set(request.form) - form.known_fields() - {LANGUAGE_FIELD, "submit"}
    if unknown:
        abort(400)

    # The language switch re-renders the page in the other language with the answers kept.
    if request.form.get(LANGUAGE_FIELD):
        response = render_form(counter, token, form)
        remember_locale(response)
        return response

    try:
        valid = form.validate()
    except InvalidSubmission:
        abort(400)
    if not valid:
        return render_form(counter, token, form, status=422)

    session = get_session()
    key = form.submission_key.data or None
    if key and session.scalar(select(Response.id).where(Response.submission_key == key)):
        return redirect(url_for(".thanks", token=token), 303)

    seconds = integrity.seconds_since(form.started.data)
    stored = Response(
        counter_id=counter.id,
        agency_id=counter.agency_id,
        questionnaire_id=questionnaire.id,
        questionnaire_version=questionnaire.version,
        locale=str(get_locale()),
        seconds_taken=seconds,
        submission_key=key,
        flags=" ".join(integrity.submission_flags(session, counter.id, seconds)),
    )
    for question_id, value in form.answers().items():
        if isinstance(value, list):
            stored.answers.extend(Answer(question_id=question_id, value=code) for code in value)
        elif isinstance(value, str):
            stored.answers.append(Answer(question_id=question_id, text=value))
        else:
            stored.answers.append(Answer(question_id=question_id, value=value))
    session.add(stored)
    try:
        session.commit()
    except IntegrityError:
        # The same submission_key committed by a concurrent retry: already saved once.
        session.rollback()
        if not key or not session.scalar(select(Response.id).where(Response.submission_key == key)):
            raise
    return redirect(url_for(".thanks", token=token), 303)


@bp.get("/r/<token>/cam-on")
def thanks(token):
    counter = find_counter_for_thanks(token)
    return render_template("respond/thanks.html", counter=counter)


def find_counter_for_thanks(token):
    # The thank-you page stays reachable for a just-revoked token: the answer was saved.
    row = get_session().scalar(
        select(CounterToken)
        .where(CounterToken.token == normalize_token(token))
        .options(joinedload(CounterToken.counter).joinedload(Counter.agency))
    )
    if row is None:
        abort(404)
    return row.counter


def csrf_failed():
    """CSRF token missing or expired on the public form: nothing stored, answers kept."""
    from flask_babel import gettext as _

    token = request.view_args.get("token", "")
    counter = find_counter(token)
    questionnaire = registry().latest(counter.questionnaire_id)
    try:
        form = form_class(questionnaire)()
    except InvalidSubmission:
        abort(400)
    # Fresh stamp and token are rendered by the template; keep the respondent's own answers.
    notice = _(
        "Phiên trả lời đã hết hạn nên phiếu chưa được gửi. Các câu trả lời của bạn vẫn còn "
        "nguyên, vui lòng bấm “Gửi phiếu” một lần nữa."
    )
    return render_form(counter, normalize_token(token), form, status=400, notice=notice)


def register_error_handlers(app):
    @app.errorhandler(TokenGone)
    def token_gone(_exc):
        return render_template("errors/410.html"), 410
