"""The identical-run check through the public path: the earlier responses' answers are
read only when their stored criteria vectors leave a run possible (integrity.read_context),
and the outcome is the one the answers give."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from survey import integrity
from survey.models import Response

from .test_respond import CRITERIA_AD, complete_answers

# A Tuesday, 08:00 in Vietnam (UTC+7): inside the opening hours.
MORNING = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)


@pytest.fixture
def submit(client, open_form, monkeypatch):
    monkeypatch.setattr(integrity, "now", lambda: MORNING)

    def send(counter, answers):
        hidden = open_form(counter.token)
        response = client.post(f"/r/{counter.token}", data={**hidden, **answers})
        assert response.status_code == 303

    return send


def last_flags(session, counter) -> list[str]:
    session.expire_all()
    return (
        session.scalars(
            select(Response.flags)
            .where(Response.counter_id == counter.id)
            .order_by(Response.id.desc())
        )
        .first()
        .split()
    )


def test_a_run_of_identical_answers_is_flagged(session, make_counter, submit):
    counter = make_counter()
    for _ in range(4):
        submit(counter, complete_answers())
    assert "identical_run" in last_flags(session, counter)


def test_one_difference_is_within_the_tolerance(session, make_counter, submit):
    counter = make_counter()
    for _ in range(3):
        submit(counter, complete_answers())
    submit(counter, complete_answers(**{CRITERIA_AD[0]: "2"}))
    assert "identical_run" in last_flags(session, counter)


def test_criteria_differing_in_two_places_rule_the_run_out(session, make_counter, submit):
    counter = make_counter()
    for _ in range(3):
        submit(counter, complete_answers())
    submit(counter, complete_answers(**{CRITERIA_AD[0]: "2", CRITERIA_AD[1]: "2"}))
    assert "identical_run" not in last_flags(session, counter)


def test_same_criteria_but_other_answers_differing_in_two_places(session, make_counter, submit):
    # The vectors match, so the answers are read, and they differ beyond the tolerance.
    counter = make_counter()
    for _ in range(3):
        submit(counter, complete_answers())
    submit(counter, complete_answers(gender="1", age_band="1"))
    assert "identical_run" not in last_flags(session, counter)


def test_responses_without_a_vector_are_compared_by_their_answers(session, make_counter, submit):
    counter = make_counter()
    for _ in range(3):
        submit(counter, complete_answers())
    session.execute(
        update(Response).where(Response.counter_id == counter.id).values(criteria_codes=None)
    )
    session.commit()
    submit(counter, complete_answers())
    assert "identical_run" in last_flags(session, counter)
