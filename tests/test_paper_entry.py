"""Paper responses keyed in by staff: the public form's validation, stored as paper, never
flagged or throttled, audited, once per sheet; hostile values refused; both engines."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from survey import integrity
from survey.config import LOCAL_TIME
from survey.models import Agency, Answer, AuditEvent, RateEvent, Response

from .conftest import form_fields
from .factories import make_agency, make_user
from .staff import login

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def counts(session) -> tuple[int, int, int]:
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Response)),
            session.scalar(select(func.count()).select_from(Answer)),
            session.scalar(select(func.count()).select_from(AuditEvent)))


def open_entry(client, counter_id):
    page = client.get(f"/admin/counters/{counter_id}/paper")
    assert page.status_code == 200
    return form_fields(page.get_data(as_text=True))


def key_in(client, counter_id, **answers):
    hidden = open_entry(client, counter_id)
    return client.post(f"/admin/counters/{counter_id}/paper", data={**hidden, **answers})


def test_a_sheet_is_stored_once_as_paper_unflagged_and_audited(client, session,
                                                                make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    page = client.get(f"/admin/counters/{counter.id}").get_data(as_text=True)
    assert f'href="/admin/counters/{counter.id}/paper"' in page

    hidden = open_entry(client, counter.id)
    data = {**hidden, "overall": "1", "reasons": ["1", "4"], "reason_text": "Chờ lâu"}
    first = client.post(f"/admin/counters/{counter.id}/paper", data=data)
    assert first.status_code == 303
    today = integrity.now().astimezone(LOCAL_TIME).date().isoformat()
    assert first.headers["Location"].endswith(
        f"/admin/counters/{counter.id}/paper?stored=1&date={today}")
    again = client.post(f"/admin/counters/{counter.id}/paper", data=data)  # a double click
    assert again.status_code == 303
    [response] = session.scalars(select(Response)).all()
    assert response.channel == "paper" and response.flags == ""
    assert response.seconds_taken is None
    assert response.agency_id == counter.agency_id
    assert sorted((a.question_id, a.value, a.text) for a in response.answers) == [
        ("overall", 1, None), ("reason_text", None, "Chờ lâu"), ("reasons", 1, None),
        ("reasons", 4, None)]
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.entity == "response")).all()
    assert event.action == "paper_entry" and event.entity_id == str(response.id)
    assert session.scalar(select(func.count()).select_from(RateEvent)) == 0

    # The next blank sheet, with the running count.
    next_page = client.get(first.headers["Location"]).get_data(as_text=True)
    assert "Đã lưu 1 phiếu giấy trong lượt nhập này" in next_page
    assert form_fields(next_page)["submission_key"] != hidden["submission_key"]
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "Nhập phiếu giấy" in log and "paper_entry" not in log


def test_keying_fast_and_many_is_never_flagged(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "canbo", "agency", agency=session.get(Agency, counter.agency_id))
    login(client, "canbo")
    for _ in range(8):  # more than BURST_PER_HOUR, each within a second of the page
        assert key_in(client, counter.id, overall="3").status_code == 303
    flags = session.scalars(select(Response.flags)).all()
    assert flags == [""] * 8
    channels = set(session.scalars(select(Response.channel)))
    assert channels == {"paper"}


def test_web_responses_stay_web(client, session, make_counter, open_form):
    counter = make_counter(questionnaire_id="counter-quick")
    hidden = open_form(counter.token)
    assert client.post(f"/r/{counter.token}", data={**hidden, "overall": "3"}).status_code == 303
    assert session.scalars(select(Response.channel)).all() == ["web"]


def test_missing_and_tampered_answers_are_refused_and_store_nothing(client, session,
                                                                    make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    before = counts(session)  # the sign-in itself is audited
    missing = key_in(client, counter.id, overall="1")  # "Không hài lòng" needs its reasons
    assert missing.status_code == 422
    html = missing.get_data(as_text=True)
    assert "Vui lòng chọn ít nhất một lựa chọn." in html
    assert key_in(client, counter.id, overall="9").status_code == 400
    assert key_in(client, counter.id, overall="3", extra="x").status_code == 400
    assert key_in(client, counter.id, overall=["3", "2"]).status_code == 400
    assert counts(session) == before


def local_day(response) -> tuple:
    moment = integrity.as_utc(response.submitted_at).astimezone(LOCAL_TIME)
    return moment.date(), moment.hour


def test_a_sheet_counts_on_the_date_written_on_it(client, session, make_counter):
    """A sheet filled in last month and keyed in today belongs to last month's figures."""
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    today = integrity.now().astimezone(LOCAL_TIME).date()
    page = client.get(f"/admin/counters/{counter.id}/paper").get_data(as_text=True)
    assert f'name="sheet_date" value="{today.isoformat()}"' in page
    assert "Ngày ghi trên phiếu" in page
    # Back after a save shows a blank sheet, not the last one's ticks ready to be saved
    # again; the numbers stay the printed sheet's (survey.js leaves them).
    assert 'autocomplete="off" data-fixed-numbers' in page

    written = today - timedelta(days=40)
    sent = key_in(client, counter.id, overall="3", sheet_date=written.isoformat())
    assert sent.status_code == 303
    assert sent.headers["Location"].endswith(f"stored=1&date={written.isoformat()}")
    [response] = session.scalars(select(Response)).all()
    assert local_day(response) == (written, 12)  # noon: the hour is not on the sheet
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.entity == "response")).all()
    assert written.isoformat() in str(event.after)
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "Ngày ghi trên phiếu" in log and written.strftime("%d/%m/%Y") in log
    # The next sheet of the batch keeps the date; a date in the address is checked again.
    following = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert f'name="sheet_date" value="{written.isoformat()}"' in following
    future = (today + timedelta(days=1)).isoformat()
    forged = client.get(f"/admin/counters/{counter.id}/paper?date={future}")
    assert f'value="{today.isoformat()}"' in forged.get_data(as_text=True)

    # Typed where the browser has no date picker: day/month/year, as written in Vietnam.
    typed = written - timedelta(days=1)
    assert key_in(client, counter.id, overall="1", reasons=["1"],
                  sheet_date=typed.strftime("%d/%m/%Y")).status_code == 303
    newest = session.scalars(select(Response).order_by(Response.id.desc())).first()
    assert local_day(newest) == (typed, 12)

    # Keyed in on the day it was filled in: the moment of keying in, as before the field.
    assert key_in(client, counter.id, overall="2", sheet_date=today.isoformat()
                  ).status_code == 303
    latest = session.scalars(select(Response).order_by(Response.id.desc())).first()
    assert local_day(latest)[0] == today
    assert abs(integrity.as_utc(latest.submitted_at) - integrity.now()) < timedelta(minutes=5)


def test_a_wrong_sheet_date_is_named_and_stores_nothing(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    today = integrity.now().astimezone(LOCAL_TIME).date()
    before = counts(session)
    cases = {
        "": "Xin nhập ngày ghi trên phiếu",
        "  ": "Xin nhập ngày ghi trên phiếu",
        "2026-02-30": "không hợp lệ",
        "31/11/2026": "không hợp lệ",
        "2026/11/25": "không hợp lệ",
        "25/11-2026": "không hợp lệ",
        "20261202": "không hợp lệ",
        "２０２６-０１-０１": "không hợp lệ",
        (today + timedelta(days=1)).isoformat(): "không thể sau hôm nay",
        (today - timedelta(days=367)).isoformat(): "quá một năm",
    }
    for value, message in cases.items():
        refused = key_in(client, counter.id, overall="3", sheet_date=value)
        assert refused.status_code == 422, value
        html = refused.get_data(as_text=True)
        assert message in html, value
        assert 'href="#sheet-date"' in html and 'value="3" checked' in html, value
    # A typed date that is right, with an answer missing: the date input gets it as ISO.
    typed = (today - timedelta(days=3)).strftime("%d/%m/%Y")
    missing = key_in(client, counter.id, overall="1", sheet_date=typed)  # reasons missing
    assert missing.status_code == 422
    assert f'value="{(today - timedelta(days=3)).isoformat()}"' in missing.get_data(as_text=True)
    english = key_in(client, counter.id, overall="3",
                     sheet_date=(today + timedelta(days=1)).isoformat(), _lang="en")
    assert english.status_code == 422
    assert f"cannot be after today ({today.day} {today:%b} {today.year})" in english.get_data(
        as_text=True)  # not 12/03/2026, which reads as 12 March in English
    assert counts(session) == before


# Values a typist, a broken scanner or a hostile client could send for each field.
hostile = st.one_of(
    st.sampled_from(["", "0", "1", "2", "3", "4", "9", "-1", "+1", " 1", "01", "1.0", "٣",
                     "=1+1", "\x00", "3\n", "99999999999", "<b>"]),
    st.text(max_size=12),
)
answers = st.fixed_dictionaries({}, optional={
    "overall": st.one_of(hostile, st.lists(hostile, min_size=2, max_size=3)),
    "reasons": st.lists(hostile, max_size=4),
    "reason_text": st.one_of(hostile, st.text(min_size=490, max_size=520)),
    "q1": hostile,
    "started": hostile,
    "submission_key": st.one_of(st.just("KEEP"), hostile),
    "unknown": hostile,
    "sheet_date": st.one_of(hostile, st.dates().map(date.isoformat),
                            st.integers(-400, 5).map(lambda days: (
                                integrity.now().astimezone(LOCAL_TIME).date()
                                + timedelta(days=days)).isoformat())),
})


def test_paper_entry_takes_hostile_values(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    hidden = open_entry(client, counter.id)

    @FUZZ
    @given(sent=answers)
    def run(sent):
        data = {**hidden, "submission_key": secrets.token_hex(16), **sent}
        if data["submission_key"] == "KEEP":
            data["submission_key"] = secrets.token_hex(16)
        before = counts(session)
        response = client.post(f"/admin/counters/{counter.id}/paper", data=data)
        assert response.status_code in (303, 400, 422), response.status_code
        after = counts(session)
        if response.status_code == 303:
            assert after[0] == before[0] + 1 and after[2] == before[2] + 1
            stored = session.scalars(select(Response).order_by(Response.id.desc())).first()
            assert stored.channel == "paper" and stored.flags == ""
            assert stored.seconds_taken is None
            day = local_day(stored)[0]
            today = integrity.now().astimezone(LOCAL_TIME).date()
            assert today - timedelta(days=366) <= day <= today
            assert sent.get("sheet_date") in (None, day.isoformat(), day.strftime("%d/%m/%Y"))
        else:
            assert after == before

    run()


def test_staff_outside_the_scope_and_analysts_cannot_key_in(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    other = make_agency(session, "SYT")
    make_user(session, "canbo-syt", "agency", agency=other)
    make_user(session, "phantich", "analyst")
    login(client, "canbo-syt")
    assert client.get(f"/admin/counters/{counter.id}/paper").status_code == 404
    client.post("/admin/logout", data={})
    client2 = client.application.test_client()
    login(client2, "phantich")
    assert client2.get(f"/admin/counters/{counter.id}/paper").status_code == 403
    assert counts(session)[0] == 0
