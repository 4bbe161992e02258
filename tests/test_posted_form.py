"""The public POST's reader (PostedForm) decides exactly as the questionnaire's WTForms form."""

from __future__ import annotations

from flask import g
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from survey.forms import InvalidSubmission, PostedForm, form_class
from survey.questionnaires import registry

VALUES = st.sampled_from(["", "0", "1", "2", "3", "4", "5", "9", "10", "04", "+4", " 4", "４",
                          "-1", "=1+2", "@SUM(A1)", "x" * 600, "\u0301a", "4\x00"]) | st.text(
    max_size=12)


@st.composite
def formdata(draw, questionnaire_id):
    """Random fields and values, or a complete valid response with a few values changed."""
    questionnaire = registry_latest(questionnaire_id)
    ids = sorted(questionnaire.questions)
    if draw(st.booleans()):
        pairs = [(qid, draw(VALUES))
                 for qid in draw(st.lists(st.sampled_from(ids), max_size=len(ids) + 4))]
        return MultiDict(pairs)
    answers = {}
    for qid, question in questionnaire.questions.items():
        if not questionnaire.is_shown(qid, answers):
            continue
        if question.type == "text":
            answers[qid] = draw(st.sampled_from(["", "Tốt", "=HYPERLINK(\"x\")", "y" * 2001]))
        elif question.type == "multiple":
            answers[qid] = draw(st.lists(st.sampled_from(sorted(question.codes)), min_size=1,
                                         max_size=2, unique=True))
        else:
            answers[qid] = draw(st.sampled_from(sorted(question.codes)))
    pairs = [(qid, str(code)) for qid, value in answers.items()
             for code in (value if isinstance(value, list) else [value])]
    for _ in range(draw(st.integers(0, 2))):
        pairs.append((draw(st.sampled_from(ids)), draw(VALUES)))
    return MultiDict(pairs)


_LATEST = {}


def registry_latest(questionnaire_id):
    return _LATEST[questionnaire_id]


def outcome(make):
    try:
        form = make()
        valid = form.validate()
    except InvalidSubmission:
        return "invalid submission"
    return valid, dict(form.errors), form.answers(), form.raw_answers()


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), questionnaire_id=st.sampled_from(["sipas-service", "counter-quick"]))
def test_posted_form_and_the_wtforms_form_agree(app, data, questionnaire_id):
    with app.test_request_context("/r/ABCDEFGHJK", method="POST"):
        for qid in ("sipas-service", "counter-quick"):
            _LATEST[qid] = registry().latest(qid)
        questionnaire = _LATEST[questionnaire_id]
        posted = data.draw(formdata(questionnaire_id))
        g.csrf_valid = True  # CSRFProtect's mark: the token was checked before the view
        direct = outcome(lambda: PostedForm(questionnaire, posted))
        wtforms = outcome(lambda: form_class(questionnaire)(formdata=posted,
                                                              meta={"csrf": False}))
        assert direct == wtforms
        if direct != "invalid submission":
            form = PostedForm(questionnaire, posted)
            assert form.multi_valued_fields() == {
                qid for qid, q in questionnaire.questions.items() if q.type == "multiple"}
            assert set(questionnaire.questions) <= form.known_fields()
