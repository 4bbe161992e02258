"""The manipulation drill: an inflating agency against honest citizens, through the public
pages, with the default index computed by the reports page's own function before and after.

(A) one phone submitting 30 best-answer responses back to back, each from a fresh page and
each waiting past the plausible minimum; (B) one page load, waiting past the minimum, then
its hidden fields reused 30 times; (C) as B with a new User-Agent each time. Honest traffic:
citizens at a full-form counter (2–6 minutes each) and at a quick-form counter (5–10 s),
many through one office Wi-Fi address. Time is moved, never slept.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from flask import g
from sqlalchemy import func, select

from survey import integrity
from survey.db import get_db
from survey.models import Response, StaffUser
from survey.reports import ReportQuery, agency_ranking, build_report

from .conftest import form_fields
from .staff import login, make_user

# Tuesday 10 March 2026, 07:30 in Vietnam (UTC+7).
DAY_START = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)
OFFICE_WIFI = "198.51.100.20"
PHONE = "203.0.113.9"
INFLATING = 30
# "At most a handful" of the 90 inflating submissions may count by default.
HANDFUL = 5


class Clock:
    """The integrity checks' clock, moved by the test."""

    def __init__(self, start: datetime):
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def answers_for(questionnaire, rng: random.Random | None) -> dict:
    """Every question answered: the best code (rng None) or a plausible random one."""
    answers = {}
    for question in questionnaire.questions.values():
        if question.type == "text":
            continue
        codes = sorted(question.codes)
        if question.type == "likert5":
            value = 5 if rng is None else rng.choice([2, 3, 4, 4, 4, 5, 5])
        elif question.role == "overall_rating":
            value = 3 if rng is None else rng.choice([1, 2, 2, 3, 3])
        elif question.type == "yesno":
            value = 2
        else:
            value = codes[0] if rng is None else rng.choice(codes)
        answers[question.id] = [str(value)] if question.type == "multiple" else str(value)
    return answers


class Citizen:
    """A browser on the public pages: its address, its User-Agent, its own cookies."""

    def __init__(self, app, address, agent="Mozilla/5.0 (Linux; Android 9)"):
        self.client = app.test_client()
        self.address = address
        self.agent = agent

    def open(self, token) -> dict:
        page = self.client.get(f"/r/{token}", environ_base={"REMOTE_ADDR": self.address},
                               headers={"User-Agent": self.agent})
        assert page.status_code == 200
        return form_fields(page.get_data(as_text=True))

    def send(self, token, hidden, answers, agent=None):
        return self.client.post(f"/r/{token}", data={**hidden, **answers},
                                environ_base={"REMOTE_ADDR": self.address},
                                headers={"User-Agent": agent or self.agent})


def last_id(session) -> int:
    session.expire_all()
    return session.scalar(select(func.coalesce(func.max(Response.id), 0)))


def flags_between(session, first: int, last: int) -> list[str]:
    return list(session.scalars(select(Response.flags).where(Response.id > first,
                                                             Response.id <= last)))


def default_index(app, admin_id, agency_code, include_flagged=False) -> tuple[float, int]:
    """The agency's overall index and n as the reports page computes them."""
    with app.test_request_context("/reports/"):
        g.staff_user = get_db().get(StaffUser, admin_id)
        report = build_report(ReportQuery("sipas-service", include_flagged=include_flagged))
        line = next(line for line in agency_ranking(report) if line["agency"] == agency_code)
        return round(float(line["estimate"]), 1), line["n"]


def honest_day(app, clock, full, quick, rng, start_hour, end_hour) -> int:
    """Citizens at the two counters between two local hours; returns how many answered."""
    sipas = app.extensions["questionnaires"].latest(full.questionnaire_id)
    quick_form = app.extensions["questionnaires"].latest(quick.questionnaire_id)
    clock.at = DAY_START.replace(hour=start_hour - 7, minute=0)
    end = DAY_START.replace(hour=end_hour - 7, minute=0)
    answered = 0
    turn = 0
    while clock.at < end:
        turn += 1
        # Every third citizen on the office Wi-Fi, the others on their own mobile data.
        address = OFFICE_WIFI if turn % 3 else f"100.64.{turn // 200}.{turn % 200 + 1}"
        counter, form = (full, sipas) if turn % 2 else (quick, quick_form)
        citizen = Citizen(app, address, agent=f"Mozilla/5.0 (phone {turn})")
        hidden = citizen.open(counter.token)
        clock.advance(rng.uniform(120, 360) if counter is full else rng.uniform(5, 10))
        response = citizen.send(counter.token, hidden, answers_for(form, rng))
        assert response.status_code == 303, "an honest citizen was refused"
        answered += 1
        clock.advance(rng.uniform(150, 420))  # the next dossier at the counters
    return answered


def test_inflating_agency_is_caught_and_honest_citizens_are_not(app, session, make_counter,
                                                                 monkeypatch, capsys):
    clock = Clock(DAY_START)
    monkeypatch.setattr(integrity, "now", clock)
    full = make_counter(agency_code="STN", agency_name="Sở Thử nghiệm",
                        label="Quầy 1 – Một cửa")
    quick = make_counter(agency_code="STN", label="Quầy 2 – Đánh giá nhanh",
                         questionnaire_id="counter-quick")
    admin = make_user(session, "quantri", "admin")
    rng = random.Random(20260310)
    sipas = app.extensions["questionnaires"].latest("sipas-service")

    # Honest morning.
    first = last_id(session)
    morning = honest_day(app, clock, full, quick, rng, 8, 12)
    honest_morning = last_id(session)
    assert set(flags_between(session, first, honest_morning)) == {""}
    before = default_index(app, admin.id, "STN")

    # (A) one phone, 30 best-answer responses back to back, each past the minimum.
    clock.at = DAY_START.replace(hour=14 - 7, minute=0)
    phone = Citizen(app, PHONE, agent="Mozilla/5.0 (inflating phone)")
    start_a = last_id(session)
    for _ in range(INFLATING):
        hidden = phone.open(full.token)
        clock.advance(sipas.min_seconds + 2)
        assert phone.send(full.token, hidden, answers_for(sipas, None)).status_code == 303
        clock.advance(3)
    end_a = last_id(session)

    # (B) one page load, past the minimum, its hidden fields reused 30 times.
    clock.advance(600)
    statuses_b, expected_b = [], []
    hidden = phone.open(full.token)
    clock.advance(sipas.min_seconds + 30)
    for i in range(INFLATING):
        answers = answers_for(sipas, None)
        answers["a1"] = "5" if i % 2 == 0 else "4"  # varied, as a script would
        statuses_b.append(phone.send(full.token, hidden, answers).status_code)
        # The first is stored; the same answers again are a retry, others are refused.
        expected_b.append(303 if answers["a1"] == "5" else 409)
        clock.advance(4)
    end_b = last_id(session)

    # (C) as B, with a new User-Agent each time.
    clock.advance(600)
    statuses_c, expected_c = [], []
    hidden = phone.open(full.token)
    clock.advance(sipas.min_seconds + 30)
    for i in range(INFLATING):
        answers = answers_for(sipas, None)
        answers["b1"] = "5" if i % 3 else "4"
        statuses_c.append(phone.send(full.token, hidden, answers,
                                     agent=f"Mozilla/5.0 (forged {i})").status_code)
        expected_c.append(303 if answers["b1"] == "4" else 409)
        clock.advance(4)
    end_c = last_id(session)
    after = default_index(app, admin.id, "STN")
    with_flagged = default_index(app, admin.id, "STN", include_flagged=True)

    # Honest afternoon, after the attack.
    afternoon = honest_day(app, clock, full, quick, rng, 15, 17)
    end_honest = last_id(session)
    assert set(flags_between(session, end_c, end_honest)) == {""}

    stored_inflating = flags_between(session, start_a, end_c)
    counted = sum(1 for flags in stored_inflating if flags == "")

    # B and C: one response stored for each page; the reuses refused (409) or, when the
    # answers were identical, acknowledged as a retry and stored once.
    assert len(flags_between(session, end_a, end_b)) == 1
    assert len(flags_between(session, end_b, end_c)) == 1
    assert statuses_b == expected_b and statuses_c == expected_c
    assert counted <= HANDFUL, stored_inflating
    assert after[1] == before[1] + counted
    assert abs(after[0] - before[0]) < 10
    with capsys.disabled():
        print(f"\n[drill {app.config['DATABASE_URL'].split(':')[0]}] honest: {morning} + "
              f"{afternoon} answered, none flagged or refused; inflating: {3 * INFLATING} "
              f"attempts, {len(stored_inflating)} stored, {counted} counted by default; "
              f"STN index before the attack {before[0]} (n={before[1]}), after it "
              f"{after[0]} (n={after[1]}), with the flagged included {with_flagged[0]} "
              f"(n={with_flagged[1]})")

    # The page says how many were left out and why.
    staff = app.test_client()
    login(staff, "quantri")
    page = staff.get("/reports/?questionnaire=sipas-service").get_data(as_text=True)
    assert "Không tính các phiếu bất thường" in page
    assert "Sở Thử nghiệm: không tính" in page and "gửi dồn dập" in page
