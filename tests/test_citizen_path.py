"""Issue 13, the citizen's side: questionnaire v2s, numbering, POST/redirect/GET, thank-you."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from analysis.questionnaire import QuestionnaireError, parse
from survey import drafts
from survey.models import Agency, Response
from survey.questionnaires import Registry, default_folder
from survey.reports_data import responses_frame

from .factories import make_response
from .test_respond import complete_answers

REGISTRY = Registry(default_folder())
SIPAS_V1, SIPAS_V2 = REGISTRY.get("sipas-service", 1), REGISTRY.get("sipas-service", 2)
QUICK_V1, QUICK_V2 = REGISTRY.get("counter-quick", 1), REGISTRY.get("counter-quick", 2)


COUNTERS: dict[int, str] = {}


def stored_count(session):
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Response))


# --- the questionnaire files ------------------------------------------------------------

def test_the_counters_serve_the_latest_versions():
    assert REGISTRY.latest("sipas-service") is SIPAS_V2
    assert REGISTRY.latest("counter-quick") is QUICK_V2


@pytest.mark.parametrize("old,new", [(SIPAS_V1, SIPAS_V2), (QUICK_V1, QUICK_V2)],
                         ids=["sipas-service", "counter-quick"])
def test_v2_keeps_every_criterion_of_v1(old, new):
    assert [(q.id, q.text, q.element, q.not_applicable) for q in old.criteria] == [
        (q.id, q.text, q.element, q.not_applicable) for q in new.criteria]
    assert old.roles.keys() == new.roles.keys()
    for role, question in old.roles.items():
        assert new.roles[role].id == question.id and new.roles[role].codes == question.codes


def test_sipas_v2_asks_about_the_result_before_element_d():
    assert len(SIPAS_V2.criteria) == 16
    received = SIPAS_V2.questions["result_received"]
    assert received.required and SIPAS_V2.numbers["result_received"] == 2
    for qid in ("d1", "d2", "d3"):
        assert SIPAS_V2.is_shown(qid, {"result_received": 1})
        assert not SIPAS_V2.is_shown(qid, {"result_received": 2})
        assert not SIPAS_V2.is_shown(qid, {})
    assert SIPAS_V2.questions["d1"].help is None


def test_quick_v2_rating_runs_the_scale_direction_and_folds_the_details():
    assert [o.code for o in QUICK_V2.questions["overall"].options] == [1, 2, 3]
    assert [s.collapsed for s in QUICK_V2.sections] == [False, True, True]
    # Folded parts hold optional questions, except the reasons, required only when shown
    # (a "Không hài lòng" needs its reason, as the one-stop rules and v1 ask).
    required = [q.id for s in QUICK_V2.sections if s.collapsed for q in s.questions
                if q.required]
    assert required == ["reasons"]
    assert QUICK_V2.section_of["reasons"].show_if.values == (1,)


def test_a_collapsed_section_refuses_a_required_question():
    data = {"id": "x", "version": 1, "kind": "counter-quick",
            "title": {"vi": "Phiếu", "en": "Form"},
            "sections": [{"id": "s", "title": {"vi": "Phần", "en": "Part"}, "collapsed": True,
                          "questions": [{"id": "overall", "type": "single",
                                         "role": "overall_rating", "required": True,
                                         "text": {"vi": "Câu", "en": "Q"},
                                         "options": [{"code": c, "text": {"vi": "a", "en": "a"}}
                                                     for c in (1, 2, 3)]}]}]}
    with pytest.raises(QuestionnaireError, match=r"questions\[0\].required: a collapsed"):
        parse(data, "x.yaml")
    # Under a condition, a folded part may require its answers when shown.
    data["sections"].insert(0, {"id": "r", "title": {"vi": "Đánh giá", "en": "Rating"},
                                "questions": [dict(data["sections"][0]["questions"][0])]})
    data["sections"][1]["questions"] = [{"id": "reasons", "type": "multiple", "role": "reasons",
                                         "required": True, "text": {"vi": "Vì sao", "en": "Why"},
                                         "options": [{"code": 1,
                                                      "text": {"vi": "Chờ lâu", "en": "Wait"}}]}]
    data["sections"][1]["show_if"] = {"question": "overall", "in": [1]}
    assert parse(data, "x.yaml").questions["reasons"].required
    data["sections"][1]["collapsed"] = "yes"
    with pytest.raises(QuestionnaireError, match="collapsed: expected true or false"):
        parse(data, "x.yaml")


def test_v1_and_v2_responses_are_analysed_together(app, session, make_counter):
    counter = make_counter()

    def add(version, answers):
        make_response(session, counter, answers, questionnaire_version=version)

    add(1, {"field": 1, "a1": 4, "d1": 0, "d2": 5})         # v1: N/A for the result
    add(2, {"field": 1, "result_received": 2, "a1": 2})       # v2: no result yet, D skipped
    add(2, {"field": 2, "result_received": 1, "a1": 5, "d1": 3, "d2": 4})
    with app.app_context():
        frame = responses_frame(session, REGISTRY.latest("sipas-service"))
    assert len(frame) == 3
    assert frame["a1"].tolist() == [4, 2, 5]
    assert frame["d1"].isna().tolist() == [True, True, False]
    assert frame["d2"].tolist()[2] == 4 and frame["d2"].tolist()[0] == 5


# --- numbering -------------------------------------------------------------------------

def numbers_on(html):
    return [int(n) for n in re.findall(r'<span class="n">(\d+)</span>\.', html)]


@pytest.mark.parametrize("qid", ["sipas-service", "counter-quick"])
def test_the_page_numbers_every_question_1_to_n_and_the_skip_notes_point_to_them(client,
                                                                                 make_counter,
                                                                                 qid):
    # Without JavaScript every question is on the page: 1..n without a gap, as on paper.
    counter = make_counter(questionnaire_id=qid)
    html = client.get(f"/r/{counter.token}").get_data(as_text=True)
    questionnaire = REGISTRY.latest(qid)
    assert numbers_on(html) == list(range(1, len(questionnaire.questions) + 1))
    notes = re.findall(r"chọn “([^”]+)” ở câu (\d+)\.", html)
    assert notes
    for answer, number in notes:
        asked = next(q for q, n in questionnaire.numbers.items() if n == int(number))
        assert answer in [o.text.vi for o in questionnaire.questions[asked].options]


def test_quick_form_without_javascript_has_the_submit_button_after_two_folded_parts(
        client, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    html = client.get(f"/r/{counter.token}").get_data(as_text=True)
    body = html[html.index('id="s-rating"'):html.index('class="send"')]
    assert body.count("<details") == 2 and " open" not in body.split("<details")[1][:80]
    assert "(không bắt buộc)</span></h2></summary>" in body
    order = [html.index(f'value="{code}"', html.index('id="q-overall"')) for code in (1, 2, 3)]
    assert order == sorted(order)


# --- Vietnamese unless chosen ------------------------------------------------------------

def test_staff_pages_are_vietnamese_too_unless_chosen(client):
    english = {"Accept-Language": "en-US,en;q=0.9"}
    assert '<html lang="vi">' in client.get("/admin/login", headers=english).get_data(
        as_text=True)
    assert '<html lang="en">' in client.get("/admin/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/admin/login").get_data(as_text=True)


# --- after submitting: POST/redirect/GET, thank-you ---------------------------------------

def test_thank_you_page_shows_the_agencys_contact_and_anonymity(client, session, make_counter,
                                                                 open_form):
    counter = make_counter()
    page = client.get(f"/r/{counter.token}/cam-on").get_data(as_text=True)
    assert "Xin cảm ơn ông/bà đã dành thời gian đánh giá!" in page
    assert "lưu ẩn danh" in page and "Sở Tư pháp" in page
    assert "Cần phản ánh" not in page  # no contact set: nothing promised
    session.get(Agency, counter.agency_id).feedback_contact = "0236 3 822 111"
    session.commit()
    page = client.get(f"/r/{counter.token}/cam-on").get_data(as_text=True)
    assert '<a href="tel:02363822111" class="reach">0236 3 822 111</a>' in page
    english = client.get(f"/r/{counter.token}/cam-on?lang=en").get_data(as_text=True)
    assert "stored anonymously" in english and "0236 3 822 111" in english


def draft_cookie(response):
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("draft=")]


def test_an_error_then_success_leaves_no_post_and_no_draft_behind(client, session,
                                                                  make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    answers = complete_answers()
    del answers["b2"]
    posted = client.post(f"/r/{counter.token}", data={**hidden, **answers})
    assert posted.status_code == 303 and posted.headers["Location"] == f"/r/{counter.token}"
    (cookie,) = draft_cookie(posted)
    assert f"Path=/r/{counter.token}" in cookie and "HttpOnly" in cookie
    assert "Max-Age=7200" in cookie and '"b2"' not in cookie  # signed, compressed: not readable
    shown = client.get(f"/r/{counter.token}")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 422 and 'id="b2-err"' in html
    # A reload shows the same errors and answers; the submission key is the one first issued.
    again = client.get(f"/r/{counter.token}").get_data(as_text=True)
    assert 'id="b2-err"' in again and f'value="{hidden["submission_key"]}"' in again
    assert stored_count(session) == 0
    fixed = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    assert fixed.status_code == 303 and fixed.headers["Location"].endswith("/cam-on")
    (dropped,) = draft_cookie(fixed)
    assert "Max-Age=0" in dropped or "expires=Thu, 01 Jan 1970" in dropped
    assert stored_count(session) == 1
    # Going back: a GET of a fresh page, no draft and no errors.
    back = client.get(f"/r/{counter.token}").get_data(as_text=True)
    assert "-err" not in back and hidden["submission_key"] not in back


def test_a_draft_of_another_counter_or_an_altered_one_is_ignored(client, make_counter,
                                                                 open_form):
    first, second = make_counter(), make_counter(label="Quầy 4")
    hidden = open_form(first.token)
    client.post(f"/r/{first.token}", data={**hidden, "a1": "2", "_lang": "en"})
    cookie = client.get_cookie("draft", path=f"/r/{first.token}")
    assert cookie is not None
    client.set_cookie("draft", cookie.value, path=f"/r/{second.token}")
    other = client.get(f"/r/{second.token}").get_data(as_text=True)
    assert 'name="a1" value="2" checked' not in other
    client.set_cookie("draft", cookie.value[:-2] + "xx", path=f"/r/{first.token}")
    altered = client.get(f"/r/{first.token}")
    assert altered.status_code == 200
    assert 'name="a1" value="2" checked' not in altered.get_data(as_text=True)


def test_answers_too_long_for_a_cookie_are_shown_directly_and_kept(client, session,
                                                                   make_counter, open_form,
                                                                   monkeypatch):
    monkeypatch.setattr(drafts, "MAX_VALUE_BYTES", 40)
    counter = make_counter()
    hidden = open_form(counter.token)
    answers = complete_answers(comment="Phải chờ lâu")
    del answers["c1"]
    response = client.post(f"/r/{counter.token}", data={**hidden, **answers})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and not draft_cookie(response)
    assert 'id="c1-err"' in html and "Phải chờ lâu" in html
    assert stored_count(session) == 0


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cookie=st.one_of(st.text(max_size=300), st.sampled_from([
    "=1+1", "@SUM(A1)", "-2+3", "e30", ".eJyLjgUAARUAuQ", "a" * 4000, "'; DROP TABLE x;--"])),
    lang=st.one_of(st.sampled_from(["vi", "en", "=cmd|' /C calc'!A0", "<script>"]),
                   st.text(max_size=20)))
def test_hostile_draft_cookies_and_language_values_change_nothing(client, session,
                                                                  make_counter, cookie, lang):
    # One counter per test run (the examples share the fixtures' database).
    token = COUNTERS.get(id(client)) or COUNTERS.setdefault(id(client), make_counter().token)
    printable = "".join(ch for ch in cookie if 0x20 < ord(ch) < 0x7F and ch not in ';,"\\')
    client.set_cookie("draft", printable, path=f"/r/{token}")
    page = client.get(f"/r/{token}")
    assert page.status_code == 200
    assert "-err" not in page.get_data(as_text=True)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             page.get_data(as_text=True)))
    if lang:
        switched = client.post(f"/r/{token}", data={**hidden, "_lang": lang, "a1": "3"})
        assert switched.status_code in (303, 400)
        if switched.status_code == 303:
            assert switched.headers["Location"].startswith(f"/r/{token}?lang=")
            shown = client.get(switched.headers["Location"])
            assert shown.status_code == 200
            assert 'name="a1" value="3" checked' in shown.get_data(as_text=True)
    assert stored_count(session) == 0
