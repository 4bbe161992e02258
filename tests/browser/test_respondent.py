"""The citizen in a real browser: tapping, keyboard, language switch, errors, JS on and off."""

from __future__ import annotations

import re

import pytest

from .conftest import stored_answers, stored_response

pytestmark = pytest.mark.browser

# A complete SIPAS answer sheet as a citizen who gave feedback would tap it.
SIPAS = {
    "field": 2, "result_received": 1, "a1": 4, "a2": 3, "a3": 0, "b1": 5, "b2": 4, "b3": 4, "b4": 2,
    "c1": 5, "c2": 4, "c3": 5, "d1": 4, "d2": 4, "d3": 5,
    "gave_feedback": 1, "e1": 3, "e2": 0, "e3": 2,
    "gender": 2, "age_band": 3,
}
COMMENT = "Cán bộ hướng dẫn tận tình, nhưng phải chờ lâu."
VARIANTS = [
    pytest.param("phone", True, id="phone-js"),
    pytest.param("phone", False, id="phone-nojs"),
    pytest.param("desktop", True, id="desktop-js"),
    pytest.param("desktop", False, id="desktop-nojs"),
]


def choose(page, qid, code, device="phone"):
    """Tap (phone) or click (desktop) the whole label of one option, as a person does."""
    label = page.locator(f"#q-{qid} label:has(input[value='{code}'])")
    if device == "phone":
        label.tap()
    else:
        label.click()
    assert page.locator(f"#q-{qid} input[value='{code}']").is_checked()


def submission_key(page):
    return page.locator("input[name=submission_key]").input_value()


def send(page, device="phone"):
    button = page.locator("button.send")
    with page.expect_navigation():
        button.tap() if device == "phone" else button.click()


@pytest.mark.parametrize("device,javascript", VARIANTS)
def test_complete_sipas_questionnaire_by_tapping(new_page, live, screenshot, device, javascript):
    page = new_page(device, javascript)
    response = page.goto(f"/r/{live.tokens['service']}")
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "vi"
    feedback_part = page.locator("#s-feedback_handling")
    progress = page.locator("p.progress")
    if javascript:
        # Element E is for those who gave feedback: hidden until they say they did.
        assert feedback_part.is_hidden()
        assert re.fullmatch(r"Đã trả lời 0/\d+ câu", progress.inner_text())
    else:
        assert feedback_part.is_visible() and progress.count() == 0
    screenshot(page, "empty")
    key = submission_key(page)
    for qid, code in SIPAS.items():
        choose(page, qid, code, device)
    assert feedback_part.is_visible()
    page.locator("#comment").fill(COMMENT)
    if javascript:
        page.locator("#comment").blur()
        total = page.locator("#survey .q:visible").count()
        assert progress.inner_text() == f"Đã trả lời {len(SIPAS) + 1}/{total} câu"
    screenshot(page, "answered")
    send(page, device)

    assert page.url.endswith(f"/r/{live.tokens['service']}/cam-on")
    assert "Xin cảm ơn ông/bà đã dành thời gian đánh giá!" in page.locator("h1").inner_text()
    screenshot(page, "thanks")
    stored = stored_response(live, key)
    assert stored is not None
    assert (stored.questionnaire_id, stored.locale) == ("sipas-service", "vi")
    assert stored_answers(stored) == {**SIPAS, "comment": COMMENT}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_answers_to_questions_hidden_by_skip_logic_are_not_stored(new_page, live, javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['service']}")
    key = submission_key(page)
    answers = {**SIPAS, "gave_feedback": 1}
    for qid, code in answers.items():
        choose(page, qid, code)
    # Changing one's mind: no feedback after all. With JS the part disappears again.
    choose(page, "gave_feedback", 2)
    assert page.locator("#s-feedback_handling").is_hidden() == javascript
    send(page)
    assert page.url.endswith("/cam-on")
    stored = stored_answers(stored_response(live, key))
    assert stored["gave_feedback"] == 2
    assert not {"e1", "e2", "e3"} & set(stored)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_missing_answer_is_shown_in_place_and_recovered(new_page, live, screenshot, javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['service']}")
    key = submission_key(page)
    answers = {k: v for k, v in SIPAS.items() if k != "c2"}
    for qid, code in answers.items():
        choose(page, qid, code)
    # POST/redirect/GET: the POST answers 303, the page showing the errors 422.
    with page.expect_navigation() as shown:
        page.locator("button.send").tap()
    assert shown.value.status == 422
    assert shown.value.request.redirected_from.method == "POST"
    assert page.title().startswith("Lỗi:")
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    assert summary.locator("a").all_inner_texts() == [
        "Công chức hướng dẫn rõ ràng, chỉ cần nghe một lần là hoàn thiện được hồ sơ"]
    error = page.locator("#c2-err")
    assert error.inner_text() == "Vui lòng chọn một câu trả lời cho câu hỏi này."
    assert page.locator("#q-c2").get_attribute("aria-describedby").split()[0] == "c2-err"
    # Every answer already given is still there.
    assert page.locator("#q-a1 input[value='4']").is_checked()
    if javascript:
        assert page.evaluate("document.activeElement.id") == "error-summary"
    screenshot(page, "errors")

    summary.locator("a").first.tap()
    if javascript:
        assert page.evaluate("document.activeElement.name") == "c2"
    else:
        assert page.url.endswith("#q-c2")
    assert page.locator("#q-c2").is_visible()
    choose(page, "c2", 5)
    send(page)
    assert page.url.endswith("/cam-on")
    assert stored_answers(stored_response(live, key))["c2"] == 5


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_switching_language_midway_keeps_the_answers(new_page, live, screenshot, javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['service']}")
    key = submission_key(page)
    items = list(SIPAS.items())
    for qid, code in items[:6]:
        choose(page, qid, code)
    with page.expect_navigation():
        page.get_by_role("button", name="English").tap()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Survey of satisfaction" in page.locator("h1").inner_text()
    assert page.locator("#q-a1 label:has(input[value='4'])").inner_text().strip() == "Satisfied"
    for qid, code in items[:6]:
        assert page.locator(f"#q-{qid} input[value='{code}']").is_checked(), qid
    screenshot(page, "english")
    for qid, code in items[6:]:
        choose(page, qid, code)
    send(page)
    assert page.url.endswith("/cam-on")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Thank you" in page.locator("h1").inner_text()
    stored = stored_response(live, key)
    assert stored.locale == "en" and stored_answers(stored) == SIPAS
    # The choice is remembered: the next visit opens in English.
    page.goto(f"/r/{live.tokens['service']}")
    assert page.locator("html").get_attribute("lang") == "en"


def test_an_english_phone_gets_vietnamese_with_the_english_switch(new_page, live, screenshot):
    # Issue 13: Vietnamese unless the citizen chooses otherwise (Accept-Language used to win).
    page = new_page("phone", locale="en-US")
    response = page.goto(f"/r/{live.tokens['service']}")
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "vi"
    switch = page.get_by_role("button", name="English")
    assert switch.is_visible() and switch.bounding_box()["y"] < 640
    screenshot(page, "vi")
    with page.expect_navigation():
        switch.tap()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Tiếng Việt").is_visible()
    screenshot(page, "en")


def tab_to(page, selector, limit=80):
    """Press Tab until the focused element matches; fail if it cannot be reached."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with Tab")


def focus_ring(page):
    """The outline drawn around the focused control or the option row holding it."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        for (const node of [el, el.closest('label')]) {
            if (!node) continue;
            const style = getComputedStyle(node);
            if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
                return style.outlineWidth + ' ' + style.outlineStyle + ' ' + style.outlineColor;
        }
        return null;
    }""")


def keyboard_choose(page, qid, code):
    """Tab into a question, then arrows to the option (radios) or Space (checkbox, first)."""
    tab_to(page, f"[name='{qid}']")
    codes = page.eval_on_selector_all(f"input[name='{qid}']", "els => els.map(e => e.value)")
    for _ in range(codes.index(str(code))):
        page.keyboard.press("ArrowDown")
    if codes.index(str(code)) == 0:
        page.keyboard.press("Space")
    assert page.locator(f"input[name='{qid}'][value='{code}']").is_checked()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_keyboard_only(new_page, live, screenshot, javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['service']}")
    key = submission_key(page)
    answers = {k: v for k, v in SIPAS.items() if k not in ("gender", "age_band")}
    for qid, code in answers.items():
        keyboard_choose(page, qid, code)
        ring = focus_ring(page)
        assert ring, f"no visible focus on {qid}"
    screenshot(page, "focus")
    tab_to(page, "#comment")
    page.keyboard.type("Tốt")
    tab_to(page, "button.send")
    assert focus_ring(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/cam-on")
    assert stored_answers(stored_response(live, key)) == {**answers, "comment": "Tốt"}


def test_enter_in_an_answer_submits_the_answers_not_the_language_switch(new_page, live):
    page = new_page("phone", javascript=False)
    page.goto(f"/r/{live.tokens['service']}")
    keyboard_choose(page, "field", 1)
    with page.expect_navigation() as shown:
        page.keyboard.press("Enter")
    # The POST answered 303 to the page showing the errors (POST/redirect/GET).
    assert shown.value.status == 422
    assert shown.value.request.redirected_from.method == "POST"
    assert page.locator("#error-summary").is_visible()
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#q-field input[value='1']").is_checked()


def open_part(page, part, device="phone"):
    """Unfold an optional part (<details>) by its summary, as a person does."""
    details = page.locator(f"#s-{part}")
    if details.get_attribute("open") is None:
        summary = details.locator("summary")
        summary.tap() if device == "phone" else summary.click()
    assert details.get_attribute("open") is not None


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_counter_quick_form_asks_why_when_not_satisfied(new_page, live, screenshot,
                                                       javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['quick']}")
    assert "Đánh giá nhanh" in page.locator("h1").inner_text()
    key = submission_key(page)
    why = page.locator("#s-why")
    assert why.is_hidden() == javascript
    choose(page, "overall", 2)
    assert why.is_hidden() == javascript
    choose(page, "overall", 1)
    # With JavaScript the reasons part appears unfolded; without, the citizen unfolds it.
    assert why.is_visible()
    if javascript:
        assert why.get_attribute("open") is not None
    open_part(page, "why")
    screenshot(page, "why")
    choose(page, "reasons", 1)
    choose(page, "reasons", 4)
    page.locator("#reason_text").fill("Chờ hơn hai tiếng.")
    open_part(page, "quick")
    for qid, code in {"q1": 2, "q2": 1, "q3": 0, "q4": 2}.items():
        choose(page, qid, code)
    send(page)
    assert page.url.endswith("/cam-on")
    screenshot(page, "thanks")
    stored = stored_response(live, key)
    assert (stored.questionnaire_id, stored.questionnaire_version) == ("counter-quick", 2)
    assert stored_answers(stored) == {"overall": 1, "reasons": [1, 4],
                                      "reason_text": "Chờ hơn hai tiếng.",
                                      "q1": 2, "q2": 1, "q3": 0, "q4": 2}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_satisfied_quick_answer_in_two_taps(new_page, live, javascript):
    page = new_page("phone", javascript)
    page.goto(f"/r/{live.tokens['quick']}")
    key = submission_key(page)
    choose(page, "overall", 3)
    send(page)
    assert page.url.endswith("/cam-on")
    assert stored_answers(stored_response(live, key)) == {"overall": 3}


def test_keyboard_only_quick_form_with_checkboxes(new_page, live):
    page = new_page("phone")
    page.goto(f"/r/{live.tokens['quick']}")
    key = submission_key(page)
    keyboard_choose(page, "overall", 1)  # first option: Không hài lòng
    assert page.locator("#q-reasons").is_visible()
    # Checkboxes are one tab stop each; Space ticks the focused one.
    for code in (1, 4):
        tab_to(page, f"input[name='reasons'][value='{code}']")
        page.keyboard.press("Space")
        assert focus_ring(page)
    tab_to(page, "#reason_text")
    page.keyboard.type("Phải chờ lâu")
    tab_to(page, "#s-quick summary")
    page.keyboard.press("Enter")  # unfolds the optional part
    keyboard_choose(page, "q2", 2)
    tab_to(page, "button.send")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/cam-on")
    assert stored_answers(stored_response(live, key)) == {
        "overall": 1, "reasons": [1, 4], "reason_text": "Phải chờ lâu", "q2": 2}
