"""The citizen's path: counter URL -> questionnaire -> stored response -> thank-you page."""

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from survey import integrity
from survey.models import Answer, Response, utcnow

from .conftest import form_fields

CRITERIA_AD = "a1 a2 a3 b1 b2 b3 b4 c1 c2 c3 d1 d2 d3".split()


def complete_answers(**overrides):
    answers = {qid: "4" for qid in CRITERIA_AD}
    answers.update(field="1", result_received="1", gave_feedback="2", gender="2", age_band="3",
                   comment="Cán bộ hướng dẫn tận tình.")
    answers.update(overrides)
    return answers


def post_and_follow(client, token, data, **kwargs):
    """POST the form; a refusal or a language switch answers 303 to the counter's page
    (POST/redirect/GET: no POST left in the history), which the browser then GETs."""
    posted = client.post(f"/r/{token}", data=data, **kwargs)
    assert posted.status_code == 303, posted.status_code
    location = posted.headers["Location"]
    assert location.split("?")[0] == f"/r/{token}"
    return client.get(location)


def counts(session):
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Response)),
            session.scalar(select(func.count()).select_from(Answer)))


def test_happy_path_stores_one_response_with_its_answers(client, session, make_counter,
                                                          open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/r/{counter.token}/cam-on"
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200
    assert "Xin cảm ơn ông/bà đã dành thời gian đánh giá!" in thanks.get_data(as_text=True)

    stored = session.scalars(select(Response)).one()
    assert stored.counter_id == counter.id and stored.agency_id == counter.agency_id
    # The latest published version is the live one (v2 asks whether the result is received).
    assert (stored.questionnaire_id, stored.questionnaire_version) == ("sipas-service", 2)
    assert stored.locale == "vi"
    assert stored.seconds_taken is not None and stored.seconds_taken >= 0
    given = {(a.question_id, a.value, a.text) for a in stored.answers}
    expected = {(q, 4, None) for q in CRITERIA_AD} | {
        ("field", 1, None), ("result_received", 1, None),
        ("gave_feedback", 2, None), ("gender", 2, None),
        ("age_band", 3, None), ("comment", None, "Cán bộ hướng dẫn tận tình.")}
    assert given == expected


def test_page_is_vietnamese_headed_with_agency_and_counter(client, make_counter):
    counter = make_counter()
    page = client.get(f"/r/{counter.token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="vi">' in html
    assert "Sở Tư pháp" in html and "Quầy 3 – Tư pháp" in html
    assert "Rất hài lòng" in html and "Không áp dụng" in html
    assert "<script>" not in html and "style=" not in html


def test_token_is_case_insensitive(client, make_counter):
    counter = make_counter()
    assert client.get(f"/r/{counter.token.lower()}").status_code == 200
    assert client.get(f"/R/{counter.token}").status_code == 200


def test_missing_required_answer_keeps_every_answer_and_stores_nothing(client, session,
                                                                       make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    answers = complete_answers()
    del answers["c2"]
    response = post_and_follow(client, counter.token, {**hidden, **answers})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Vui lòng chọn một câu trả lời cho câu hỏi này." in html
    assert 'id="c2-err"' in html and 'href="#q-c2"' in html
    assert 'name="a1" value="4" checked' in html
    assert "Cán bộ hướng dẫn tận tình." in html
    assert counts(session) == (0, 0)


def test_element_e_required_only_for_those_who_gave_feedback(client, session, make_counter,
                                                              open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = post_and_follow(client, counter.token,
                               {**hidden, **complete_answers(gave_feedback="1")})
    assert response.status_code == 422
    assert 'id="e1-err"' in response.get_data(as_text=True)
    assert counts(session) == (0, 0)
    answers = complete_answers(gave_feedback="1", e1="5", e2="0", e3="3")
    assert client.post(f"/r/{counter.token}", data={**hidden, **answers}).status_code == 303
    stored = {a.question_id: a.value for a in session.scalars(select(Answer))}
    assert (stored["e1"], stored["e2"], stored["e3"]) == (5, 0, 3)


def test_answers_to_hidden_questions_are_ignored(client, session, make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    answers = complete_answers(gave_feedback="2", e1="1", e2="1", e3="1")
    assert client.post(f"/r/{counter.token}", data={**hidden, **answers}).status_code == 303
    stored = {a.question_id for a in session.scalars(select(Answer))}
    assert not stored & {"e1", "e2", "e3"}


@pytest.mark.parametrize(
    "tamper",
    [
        {"a1": "7"},            # out of range
        {"a1": "abc"},          # not a code
        {"a1": "0"},            # not applicable where the criterion does not allow it
        {"gender": "5"},        # not an option
        {"unknown_question": "3"},
        {"a1": ["4", "5"]},     # two values for a single choice
    ],
    ids=["out-of-range", "not-a-code", "na-not-allowed", "bad-option", "unknown-id", "two-values"],
)
def test_bad_codes_and_unknown_ids_are_rejected_and_store_nothing(client, session, make_counter,
                                                                  open_form, tamper):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers(**tamper)})
    assert response.status_code == 400
    assert "không hợp lệ" in response.get_data(as_text=True)
    assert counts(session) == (0, 0)


def test_over_long_comment_is_rejected(client, session, make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = post_and_follow(client, counter.token,
                               {**hidden, **complete_answers(comment="à" * 1001)})
    assert response.status_code == 422
    assert "dài quá 1000 ký tự" in response.get_data(as_text=True)
    assert counts(session) == (0, 0)


def test_one_megabyte_comment_gets_413_and_stores_nothing(client, session, make_counter,
                                                          open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}",
                           data={**hidden, **complete_answers(comment="x" * 1024 * 1024)})
    assert response.status_code == 413
    assert "quá dài" in response.get_data(as_text=True)
    assert counts(session) == (0, 0)


def test_the_signed_key_is_the_forms_csrf_protection_no_cookie_needed(app, session,
                                                                       make_counter):
    # The page sets no cookie and carries no CSRF token: its signed, single-use,
    # counter-bound, time-limited submission key is what a POST must bring back.
    counter = make_counter()
    cookieless = app.test_client(use_cookies=False)
    page = cookieless.get(f"/r/{counter.token}")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
    hidden = form_fields(page.get_data(as_text=True))
    assert "csrf_token" not in hidden and hidden["submission_key"]
    response = cookieless.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    assert response.status_code == 303
    assert counts(session)[0] == 1


def test_an_expired_key_keeps_answers_on_a_fresh_page_and_a_fresh_key_works(
        client, session, make_counter, open_form, monkeypatch):
    counter = make_counter()
    hidden = open_form(counter.token)
    later = utcnow() + timedelta(hours=8, minutes=1)  # WTF_CSRF_TIME_LIMIT is 8 h
    monkeypatch.setattr(integrity, "now", lambda: later)
    refused = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    # POST/redirect/GET: no refused POST stays in the history for "Back" to replay.
    assert refused.status_code == 303
    assert refused.headers["Location"].endswith(f"/r/{counter.token}")
    assert counts(session) == (0, 0)
    response = client.get(refused.headers["Location"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "hết hạn" in html and 'name="b2" value="4" checked' in html
    # The re-rendered page carries a fresh key: sending it again saves the answers.
    fresh = form_fields(html)
    assert fresh["submission_key"] != hidden["submission_key"]
    assert client.post(f"/r/{counter.token}", data={**fresh, **complete_answers()}).status_code \
        == 303
    assert counts(session)[0] == 1


@pytest.mark.parametrize("attack", ["forged", "other-counter", "unsigned", "cross-site",
                                    "cross-site-referer"])
def test_a_forged_cross_counter_or_cross_site_post_is_refused(app, client, session,
                                                              make_counter, open_form, attack):
    # What a hostile page could make a visitor's browser send, or send itself.
    counter, other = make_counter(), make_counter(label="Quầy 4")
    hidden = open_form(counter.token)
    headers = {}
    if attack == "forged":  # our key with its signature altered
        key = hidden["submission_key"]
        hidden["submission_key"] = key[:-1] + ("0" if key[-1] != "0" else "1")
    elif attack == "other-counter":  # signed by us, for another counter's page
        hidden["submission_key"] = form_fields(
            client.get(f"/r/{other.token}").get_data(as_text=True))["submission_key"]
    elif attack == "unsigned":
        hidden["submission_key"] = "0" * 32
    elif attack == "cross-site":  # a valid key, posted from another site's page
        headers = {"Origin": "http://evil.example"}
    else:  # the same, from a client that sends no Origin (or "null") but a Referer
        headers = {"Origin": "null", "Referer": "http://evil.example/form"}
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()},
                           headers=headers)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'lang="vi"' in html and "Cảm ơn" not in html
    if attack.startswith("cross-site"):  # told why, truthfully; answers kept
        assert "từ một trang khác" in html and 'name="b2" value="4" checked' in html
        assert "Referer" not in html
    assert counts(session) == (0, 0)


@pytest.mark.parametrize("csrf", [None, "forged"])
def test_post_without_valid_csrf_to_unknown_or_revoked_code(client, session, make_counter, csrf):
    data = complete_answers() | ({"csrf_token": csrf} if csrf else {})
    assert client.post("/r/ZZZZZZZZZZ", data=data).status_code == 404
    counter = make_counter()
    counter.tokens[0].revoked_at = utcnow()
    session.commit()
    assert client.post(f"/r/{counter.tokens[0].token}", data=data).status_code == 410
    assert counts(session) == (0, 0)


def test_a_retried_post_is_stored_once(client, session, make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    data = {**hidden, **complete_answers()}
    assert client.post(f"/r/{counter.token}", data=data).status_code == 303
    assert client.post(f"/r/{counter.token}", data=data).status_code == 303
    assert counts(session)[0] == 1


def test_one_served_page_admits_one_response(client, session, make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    assert client.post(f"/r/{counter.token}",
                       data={**hidden, **complete_answers()}).status_code == 303
    stored = counts(session)
    # Different answers from the same page: refused politely, with a fresh form one tap away.
    reuse = client.post(f"/r/{counter.token}",
                        data={**hidden, **complete_answers(a1="5")},
                        headers={"User-Agent": "another browser"})
    html = reuse.get_data(as_text=True)
    assert reuse.status_code == 409
    assert "Phiếu này đã được gửi" in html and "Mở phiếu mới" in html
    assert f'href="/r/{counter.token}"' in html.replace('href="/R/', 'href="/r/')
    assert counts(session) == stored
    # A fresh page is a fresh key.
    assert client.post(f"/r/{counter.token}", data={**open_form(counter.token),
                                                     **complete_answers(a1="5")}
                       ).status_code == 303
    assert counts(session)[0] == 2


def test_a_key_signed_for_another_counter_is_refused(app, client, session, make_counter,
                                                     open_form):
    counter = make_counter()
    other = make_counter(label="Quầy khác")
    hidden = open_form(other.token)
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    assert response.status_code == 400
    assert counts(session) == (0, 0)


def test_unknown_token_is_a_vietnamese_404(client):
    response = client.get("/r/ZZZZZZZZZZ")
    assert response.status_code == 404
    assert "Không tìm thấy" in response.get_data(as_text=True)


def test_revoked_token_is_410_and_refuses_answers(client, session, make_counter, open_form):
    counter = make_counter()
    token = counter.token
    hidden = open_form(token)
    counter.tokens[0].revoked_at = utcnow()
    session.commit()
    page = client.get(f"/r/{token}")
    assert page.status_code == 410
    assert "không còn được sử dụng" in page.get_data(as_text=True)
    assert client.post(f"/r/{token}", data={**hidden, **complete_answers()}).status_code == 410
    assert counts(session) == (0, 0)


def test_inactive_counter_is_410(client, session, make_counter):
    counter = make_counter()
    counter.active = False
    session.commit()
    assert client.get(f"/r/{counter.token}").status_code == 410


def test_agency_is_copied_at_submit_time(client, session, make_counter, open_form):
    counter = make_counter()
    hidden = open_form(counter.token)
    client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    other = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy Y tế")
    original_agency = counter.agency_id
    counter.agency_id = other.agency_id
    session.commit()
    assert session.scalars(select(Response)).one().agency_id == original_agency


def test_english_by_query_and_switch_keeps_answers(client, session, make_counter, open_form):
    counter = make_counter()
    page = client.get(f"/r/{counter.token}?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page and "Very satisfied" in page
    hidden = open_form(counter.token)
    switched = client.post(f"/r/{counter.token}",
                           data={**hidden, "_lang": "vi", "a1": "2", "comment": "Tốt"})
    # POST/redirect/GET: the switch answers 303 to the page in the chosen language.
    assert switched.status_code == 303
    assert switched.headers["Location"] == f"/r/{counter.token}?lang=vi"
    lang_cookies = [c for c in switched.headers.getlist("Set-Cookie") if c.startswith("lang=")]
    assert len(lang_cookies) == 1 and lang_cookies[0].startswith("lang=vi;")
    shown = client.get(switched.headers["Location"])
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert '<html lang="vi">' in html and 'name="a1" value="2" checked' in html
    assert ">Tốt</textarea>" in html
    assert counts(session) == (0, 0)


def test_an_english_phone_gets_the_vietnamese_form_with_the_english_switch(client,
                                                                         make_counter):
    # Issue 13: Vietnamese unless the citizen chooses otherwise (Accept-Language used to win).
    counter = make_counter()
    page = client.get(f"/r/{counter.token}", headers={"Accept-Language": "en-US,en;q=0.9"})
    html = page.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert 'name="_lang" value="en"' in html and ">English</button>" in html


def test_response_has_no_ip_or_user_agent_column(app):
    from survey.models import Response as ResponseModel

    columns = {c.name for c in ResponseModel.__table__.columns}
    assert not columns & {"ip", "ip_address", "remote_addr", "user_agent"}


def test_security_headers(client, make_counter):
    counter = make_counter()
    response = client.get(f"/r/{counter.token}")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_forwarded_address_is_trusted_only_behind_a_configured_proxy(app):
    # The login throttle and the burst flag key on the client address: behind nginx it
    # must be the forwarded one, and never a header a client could forge directly.
    from flask import request

    from survey import create_app

    headers, peer = {"X-Forwarded-For": "203.0.113.7"}, {"REMOTE_ADDR": "10.0.0.1"}
    with app.test_client() as client:
        client.get("/healthz", environ_base=peer, headers=headers)
        assert request.remote_addr == "10.0.0.1"
    behind = create_app({**app.config, "PROXY_COUNT": 1})
    with behind.test_client() as client:
        client.get("/healthz", environ_base=peer, headers=headers)
        assert request.remote_addr == "203.0.113.7"
    behind.extensions["survey_db"].engine.dispose()


def test_integrity_events_expire_without_a_scheduled_job(app, session, monkeypatch):
    # What the burst check keeps about clients (keyed hashes) must not outlive two days.
    from datetime import timedelta

    from survey import integrity
    from survey.models import RateEvent

    session.add_all([RateEvent(scope="submit:1", key="old", at=utcnow() - timedelta(days=3)),
                     RateEvent(scope="submit:1", key="new", at=utcnow())])
    session.commit()
    monkeypatch.setattr(integrity, "PURGE_EVERY", 1)
    with app.test_request_context("/"):
        from survey.db import get_db

        integrity.record(get_db(), "submit:1", "another")
        get_db().commit()
    session.expire_all()
    assert sorted(e.key for e in session.scalars(select(RateEvent))) == ["another", "new"]


# --- what no browser sends: refused (400/404), nothing stored -----------------------------


def test_any_file_part_is_refused_and_stores_nothing(client, session, make_counter, open_form):
    from io import BytesIO

    counter = make_counter()
    hidden = open_form(counter.token)
    for name in ("a1", "comment", "unknown_file", "submission_key"):
        data = {**hidden, **complete_answers(), name: (BytesIO(b"4"), "x.txt")}
        response = client.post(f"/r/{counter.token}", data=data,
                               content_type="multipart/form-data")
        assert response.status_code == 400, name
    # Text parts in multipart are what an enctype="multipart/form-data" page would send.
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    assert counts(session)[0] == 1


@pytest.mark.parametrize("path", ["/r/AB%00CD", "/r/AB%00CD/cam-on", "/r/AB%00CD/phieu",
                                  "/reports/agency/%00", "/admin/agencies/%00",
                                  "/phieu/%00", "/r/%FF%FE"])
def test_nul_or_invalid_utf8_in_the_path_is_404(client, path):
    assert client.get(path).status_code == 404
    assert client.post(path, data={"a1": "4"}).status_code == 404


@pytest.mark.parametrize("tamper", [
    {"comment": "Tốt\x00"},
    {"started": "\x00"},
    {"comment\x00": "x"},
])
def test_nul_in_a_field_is_400_and_stores_nothing(client, session, make_counter, open_form,
                                                   tamper):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers(**tamper)})
    assert response.status_code == 400
    assert counts(session) == (0, 0)


@pytest.mark.parametrize("key", ["", "abc", "0" * 31, "0" * 33, "A" * 32, "g" * 32,
                                 "0" * 5032, " " + "0" * 31, "0" * 32,
                                 f"{'0' * 32}.{'0' * 8}.{'0' * 32}"])
def test_the_submission_key_must_be_as_issued(client, session, make_counter, open_form, key):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}",
                           data={**hidden, "submission_key": key, **complete_answers()})
    assert response.status_code == 400
    assert counts(session) == (0, 0)


@pytest.mark.parametrize("code", ["+4", " 4 ", "04", "4 ", "\uff14", "\u0664", "4_0", "-4",
                                  "4.0", "1e0"])
def test_oddly_written_codes_are_refused(client, session, make_counter, open_form, code):
    counter = make_counter()
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers(a1=code)})
    assert response.status_code == 400
    assert counts(session) == (0, 0)


@pytest.mark.parametrize("field", ["started", "submission_key", "_lang", "comment", "gender"])
def test_a_single_value_field_sent_twice_is_refused(client, session, make_counter, open_form,
                                                     field):
    counter = make_counter()
    hidden = open_form(counter.token)
    data = {**hidden, **complete_answers(), "_lang": "en"}
    data[field] = [data[field], data[field]]
    if field != "_lang":
        del data["_lang"]
    response = client.post(f"/r/{counter.token}", data=data)
    assert response.status_code == 400
    assert counts(session) == (0, 0)


def test_repeated_checkbox_values_are_refused(client, session, make_counter, open_form):
    counter = make_counter(questionnaire_id="counter-quick")
    hidden = open_form(counter.token)
    base = {**hidden, "overall": "3", "q1": "4", "q2": "4", "q3": "4"}
    assert client.post(f"/r/{counter.token}",
                       data={**base, "reasons": ["1"] * 3000}).status_code in (400, 413)
    assert client.post(f"/r/{counter.token}", data={**base, "reasons": ["1", "1"]}) \
        .status_code == 400
    assert counts(session) == (0, 0)
    assert client.post(f"/r/{counter.token}", data={**base, "reasons": ["1", "2"]}) \
        .status_code == 303


def test_invalid_utf8_in_a_field_is_refused(client, session, make_counter, open_form):
    from urllib.parse import urlencode

    counter = make_counter()
    hidden = open_form(counter.token)
    answers = complete_answers()
    del answers["comment"]
    form = urlencode({**hidden, **answers}).encode()
    for comment in (b"T%FFt", b"T\xc3", b"%C3", b"%ED%A0%80", b"T%C3%A0%80"):
        response = client.post(f"/r/{counter.token}", data=form + b"&comment=" + comment,
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400, comment
    response = client.post(f"/r/{counter.token}?lang=%FF", data=form,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert counts(session) == (0, 0)
    # A typed "%FF" arrives escaped and is a comment like any other.
    response = client.post(f"/r/{counter.token}", data=form + b"&comment=T%25FFt%C3%A0",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 303
    assert session.scalars(select(Answer.text).where(Answer.question_id == "comment")).one() \
        == "T%FFtà"


# --- https: the Referer/Origin check and clients without cookies --------------------------

HTTPS = "https://hailong.example.vn"


def https_form(client, token):
    page = client.get(f"/r/{token}", base_url=HTTPS)
    assert page.status_code == 200
    return form_fields(page.get_data(as_text=True))


@pytest.mark.parametrize("headers", [
    {"Referer": f"{HTTPS}/r/TOKEN"},
    {"Origin": HTTPS},  # a browser or privacy setting that strips the Referer
    {"Origin": HTTPS, "Referer": f"{HTTPS}/r/TOKEN"},
])
def test_https_post_from_our_page_is_stored(client, session, make_counter, headers):
    counter = make_counter()
    hidden = https_form(client, counter.token)
    response = client.post(f"/r/{counter.token}", base_url=HTTPS, headers=headers,
                           data={**hidden, **complete_answers()})
    assert response.status_code == 303
    assert counts(session)[0] == 1


@pytest.mark.parametrize("headers, why", [
    ({}, "Referer"),
    ({"Origin": "null"}, "Referer"),
    ({"Origin": "https://evil.example"}, "từ một trang khác"),
    ({"Referer": "https://evil.example/r/TOKEN"}, "từ một trang khác"),
    ({"Origin": "http://hailong.example.vn"}, "từ một trang khác"),
])
def test_https_post_without_proof_of_origin_is_told_why(client, session, make_counter,
                                                         headers, why):
    counter = make_counter()
    hidden = https_form(client, counter.token)
    response = client.post(f"/r/{counter.token}", base_url=HTTPS, headers=headers,
                           data={**hidden, **complete_answers()})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert why in html
    assert ("trình duyệt khác" in html) == (why == "Referer")
    assert "hết hạn" not in html
    assert 'name="b2" value="4" checked' in html
    assert counts(session) == (0, 0)


def test_a_client_without_cookies_can_answer_over_https(app, session, make_counter):
    # Cookies blocked: nothing to lose, the form needs none (its signed key protects it).
    counter = make_counter()
    cookieless = app.test_client(use_cookies=False)
    hidden = https_form(cookieless, counter.token)
    response = cookieless.post(f"/r/{counter.token}", base_url=HTTPS,
                               headers={"Referer": f"{HTTPS}/r/{counter.token}"},
                               data={**hidden, **complete_answers()})
    assert response.status_code == 303
    assert counts(session)[0] == 1


def test_staff_login_over_https_still_needs_its_own_origin(client):
    from .staff import csrf_token

    token = csrf_token(client.get("/admin/login", base_url=HTTPS))
    data = {"csrf_token": token, "login": "a", "password": "b"}
    refused = client.post("/admin/login", base_url=HTTPS, data=data,
                          headers={"Origin": "https://x.example"})
    assert refused.status_code == 400
    assert client.post("/admin/login", base_url=HTTPS, data=data).status_code == 400
    wrong_password = client.post("/admin/login", base_url=HTTPS, data=data,
                                 headers={"Origin": HTTPS})
    assert wrong_password.status_code not in (400, 500)


@pytest.mark.parametrize("database_url", [pytest.param("postgresql",
                                                        marks=pytest.mark.postgres)],
                         indirect=True)
def test_a_dropped_database_connection_costs_one_500_then_the_page_works(
        app, client, session, make_counter, database_url):
    # A PostgreSQL restart or failover drops the pooled connections the public pages use
    # (no ping before each checkout): one request gets the 500 page, the next reconnects.
    counter = make_counter()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get(f"/r/{counter.token}").status_code == 200
    outside = create_engine(database_url, poolclass=NullPool)
    with outside.connect() as connection:  # every connection the app's pool holds
        connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    outside.dispose()
    assert client.get(f"/r/{counter.token}").status_code == 500
    assert client.get(f"/r/{counter.token}").status_code == 200
    hidden = form_fields(client.get(f"/r/{counter.token}").get_data(as_text=True))
    assert client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()}) \
        .status_code == 303
    assert counts(session)[0] == 1


def test_every_public_page_offers_the_other_language_and_privacy_leads_back(
        client, session, make_counter):
    """Home, privacy, error and thank-you pages carry a link to the other language (the
    questionnaire has its own switch, which keeps the answers); the privacy page opened
    from a questionnaire leads back to it."""
    counter = make_counter()
    form = client.get(f"/r/{counter.token}").get_data(as_text=True)
    assert 'class="lang-link' not in form and f"/quyen-rieng-tu?r={counter.token}" in form
    for url, status in (("/", 200), (f"/quyen-rieng-tu?r={counter.token}", 200),
                        ("/khong-co-trang-nay", 404), (f"/r/{counter.token}/cam-on", 200)):
        response = client.get(url)
        html = response.get_data(as_text=True)
        assert response.status_code == status
        assert 'lang="en" hreflang="en">English</a>' in html, url
    privacy = client.get(f"/quyen-rieng-tu?r={counter.token}").get_data(as_text=True)
    assert f'href="/r/{counter.token}">Quay lại phiếu khảo sát' in privacy
    english = client.get(f"/quyen-rieng-tu?r={counter.token}&lang=en").get_data(as_text=True)
    assert "Back to the questionnaire" in english and ">Tiếng Việt</a>" in english
    # The language link repeats the page's query, encoded: nothing in it becomes markup.
    page = client.get("/", query_string={"q": '"><script>alert(1)</script>', "lang": "vi"})
    assert "<script>alert" not in page.get_data(as_text=True)
    assert "q=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;lang=en" in page.get_data(
        as_text=True)
    for hostile in ("<script>", "../admin", "A" * 300, "%00"):
        page = client.get("/quyen-rieng-tu", query_string={"r": hostile})
        assert page.status_code in (200, 400)
        assert "Quay lại phiếu khảo sát" not in page.get_data(as_text=True)


@pytest.mark.parametrize("started", [None, "", "MA.forged.sig", "x" * 500])
def test_a_start_stamp_we_did_not_sign_is_refused(client, session, make_counter, open_form,
                                                  started):
    """No browser rendering our page sends the form without its start stamp, or with one
    we did not sign: 400, nothing stored."""
    counter = make_counter()
    hidden = open_form(counter.token)
    if started is None:
        del hidden["started"]
    else:
        hidden["started"] = started
    response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    assert response.status_code == 400
    assert counts(session) == (0, 0)
