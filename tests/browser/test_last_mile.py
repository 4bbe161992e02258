"""Issue 13 in a real browser: numbering and progress, the v2 skip, the quick form's submit
button, going back after the thank-you page, the agency's contact, report pages on a phone."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from survey.models import Agency, Counter, StaffUser

from ..factories import PASSWORD, make_response, make_user
from .conftest import stored_answers, stored_response
from .test_respondent import SIPAS, choose, send, submission_key

pytestmark = pytest.mark.browser
JS = [pytest.param(True, id="js"), pytest.param(False, id="nojs")]


def visible_numbers(page):
    """The numbers of the questions a person sees, in page order."""
    return [int(n) for n in page.eval_on_selector_all(
        "#survey .q .n", "els => els.filter(e => e.offsetParent !== null)"
                         ".map(e => e.textContent)")]


def progress_total(page):
    done, total = re.fullmatch(r"Đã trả lời (\d+)/(\d+) câu",
                               page.locator("p.progress").inner_text()).groups()
    return int(done), int(total)


@pytest.mark.parametrize("javascript", JS)
def test_visible_questions_are_numbered_1_to_n_and_the_progress_counts_them(
        new_page, live, screenshot, javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['service']}")
    numbers = visible_numbers(page)
    assert numbers == list(range(1, len(numbers) + 1))
    if not javascript:
        assert len(numbers) == 25  # every question of v2, as on paper
        return
    # Fresh page: D (no result yet) and E (no feedback yet) hidden.
    assert progress_total(page) == (0, len(numbers)) and len(numbers) == 19
    choose(page, "result_received", 1)
    choose(page, "gave_feedback", 1)
    numbers = visible_numbers(page)
    assert numbers == list(range(1, 26))
    assert progress_total(page) == (2, 25)
    screenshot(page, "all-shown")
    choose(page, "gave_feedback", 2)
    choose(page, "result_received", 2)
    assert visible_numbers(page) == list(range(1, 20))
    assert progress_total(page) == (2, 19)
    # The question after element D follows on without a gap.
    assert page.locator("#q-gave_feedback .n").inner_text() == "13"


@pytest.mark.parametrize("javascript", JS)
def test_without_the_result_element_d_is_skipped_and_not_stored(new_page, live, screenshot,
                                                                javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['service']}")
    key = submission_key(page)
    result = page.locator("#s-result")
    assert result.is_hidden() == javascript
    if not javascript:
        assert "Chỉ trả lời phần này nếu ông/bà chọn “Đã nhận” ở câu 2." in result.inner_text()
    answers = {k: v for k, v in SIPAS.items() if k not in ("d1", "d2", "d3", "e1", "e2", "e3")}
    answers.update(result_received=2, gave_feedback=2)
    for qid, code in answers.items():
        choose(page, qid, code)
    assert result.is_hidden() == javascript
    screenshot(page, "answered")
    send(page)
    assert page.url.endswith("/cam-on")
    stored = stored_response(live, key)
    assert (stored.questionnaire_id, stored.questionnaire_version) == ("sipas-service", 2)
    assert stored_answers(stored) == answers


@pytest.mark.parametrize("javascript", JS)
def test_quick_form_submit_comes_right_after_the_rating(new_page, live, screenshot,
                                                        javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['quick']}")
    screenshot(page, "fresh")
    labels = page.locator("#q-overall label").all_inner_texts()
    assert [t.strip() for t in labels] == ["Không hài lòng", "Hài lòng", "Rất hài lòng"]
    # On a 360x640 phone the button is on the first screen (measured before anything
    # scrolls: focusing it later scrolls it into view, which proves nothing).
    box = page.locator("button.send").bounding_box()
    assert page.evaluate("() => window.scrollY") == 0
    assert box["y"] + box["height"] <= 640, box
    choose(page, "overall", 3)
    # From the rating, Tab reaches the folded optional part(s), then the submit button.
    page.locator("#q-overall input:checked").focus()
    stops = []
    for _ in range(4):
        page.keyboard.press("Tab")
        stops.append(page.evaluate(
            "() => { const e = document.activeElement;"
            " return e.tagName === 'SUMMARY' ? 'summary:' + e.parentNode.id : e.className; }"))
        if stops[-1] == "send":
            break
    expected = ["summary:s-quick", "send"] if javascript else [
        "summary:s-why", "summary:s-quick", "send"]
    assert stops == expected
    screenshot(page, "rated")


@pytest.mark.parametrize("javascript", JS)
def test_going_back_after_thanks_never_replays_a_post(new_page, live, screenshot, javascript):
    page = new_page("phone", javascript)
    posts = []
    page.on("request", lambda request: posts.append(request.url)
            if request.method == "POST" else None)
    page.goto(f"/r/{live.tokens['service']}")
    # A language switch, then an error, then the answers stored.
    with page.expect_navigation():
        page.get_by_role("button", name="English").tap()
    assert page.locator("html").get_attribute("lang") == "en"
    choose(page, "field", 1)
    with page.expect_navigation() as shown:
        page.locator("button.send").tap()
    assert shown.value.status == 422 and not page.url.endswith("/cam-on")
    assert page.locator("#error-summary").is_visible()
    assert page.locator("#q-field input[value='1']").is_checked()
    for qid, code in SIPAS.items():
        choose(page, qid, code)
    send(page)
    assert page.url.endswith("/cam-on")
    screenshot(page, "thanks")
    sent = len(posts)
    assert sent == 3
    # Back through every page: each is a GET (no "Confirm form resubmission"), none posts.
    for _ in range(3):
        response = page.go_back()
        assert response is not None and response.request.method == "GET"
        assert "/r/" in page.url and not page.url.endswith("/cam-on")
    assert len(posts) == sent
    page.reload()
    assert len(posts) == sent
    screenshot(page, "back")


def test_thank_you_page_offers_the_agencys_contact(new_page, live, screenshot):
    with live.session() as session:
        agency = session.scalar(select(Agency).join(Counter).where(Counter.label.like("Quầy 1%")))
        agency.feedback_contact = "1900 1234"
        session.commit()
    try:
        for lang in ("vi", "en"):
            page = new_page("phone")
            page.goto(f"/r/{live.tokens['quick']}?lang={lang}")
            choose(page, "overall", 2)
            send(page)
            assert page.url.endswith("/cam-on")
            link = page.locator("a.reach")
            assert link.inner_text() == "1900 1234"
            assert link.get_attribute("href") == "tel:19001234"
            note = page.locator("p.privacy").inner_text()
            assert ("ẩn danh" if lang == "vi" else "anonymously") in note
            screenshot(page, lang)
    finally:
        with live.session() as session:
            session.scalar(select(Agency)).feedback_contact = ""
            session.commit()


@pytest.fixture
def signed_in_analyst(new_page, live):
    """A phone signed in as an admin, with a few responses to report on."""
    with live.session() as session:
        if session.scalar(select(StaffUser).where(StaffUser.login == "phone-admin")) is None:
            make_user(session, "phone-admin", "admin", name="Nguyễn Thị Lan", commit=False)
            counter = session.scalar(select(Counter).where(Counter.label.like("Quầy 3%")))
            for i in range(12):
                answers = {"field": 1 + i % 3} | {
                    q: 1 + (i + j) % 5
                    for j, q in enumerate("a1 a2 a3 b1 b2 b3 b4 c1 c2 c3 d1 d2 d3".split())}
                make_response(session, counter, answers, questionnaire_id="sipas-service",
                              questionnaire_version=1 + i % 2, commit=False)
            session.commit()
    page = new_page("phone")
    page.goto("/admin/login")
    page.locator("input[name=login]").fill("phone-admin")
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("form button[type=submit]").last.tap()
    return page


def test_report_pages_fit_a_phone_and_lead_back_to_administration(signed_in_analyst,
                                                                  screenshot):
    page = signed_in_analyst
    for path, step in (("/reports/?questionnaire=sipas-service", "index"),
                       ("/reports/cach-tinh", "methods"),
                       ("/reports/agency/TTPVHCC?questionnaire=sipas-service", "agency")):
        response = page.goto(path)
        assert response.status == 200
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate("""() => [...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > 361)
            .map(e => e.tagName + '.' + e.className + ' ' + Math.round(
                e.getBoundingClientRect().right)).slice(0, 8)""")
        assert width <= 360, f"{path}: {width} px wide: {wide}"
        assert page.get_by_role("link", name="Về trang quản trị").is_visible()
        assert page.get_by_role("button", name="Đăng xuất").is_visible()
        assert "Nguyễn Thị Lan" in page.locator("form.who").inner_text()
        screenshot(page, step)
    with page.expect_navigation():
        page.get_by_role("link", name="Về trang quản trị").tap()
    assert page.url.endswith("/admin/")
