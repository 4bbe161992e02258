"""Integrity checks: the reasons (property-based), the questionnaire's plausible minimum,
the signed page keys, and what is kept about clients (coarse, apart, expiring)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select

from analysis.questionnaire import QuestionnaireError, load_file, parse
from survey import integrity
from survey.integrity import REASONS, Context, Prior, Rules, bucket_of, reasons
from survey.models import RateEvent, Response, SubmissionCount

from .conftest import ROOT, form_fields
from .test_respond import complete_answers

# A Tuesday, 08:00 in Vietnam (UTC+7).
MORNING = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
RULES = Rules(min_seconds=45)
WINDOW = timedelta(hours=1)


def simulate(events, rules=RULES):
    """Feed submissions (seconds after MORNING, client, seconds taken, answers) to `reasons`
    through a store that keeps what the application keeps: counts per client per bucket,
    and the counter's previous responses."""
    buckets: dict[tuple[str, datetime], int] = {}
    previous: list[Prior] = []
    out = []
    for offset, client, seconds, answers in events:
        at = MORNING + timedelta(seconds=offset)
        since = bucket_of(at - WINDOW)
        earlier = sum(n for (who, bucket), n in buckets.items()
                      if who == client and bucket >= since)
        context = Context(client_submissions=earlier,
                          previous=tuple(reversed(previous[-(rules.run_length - 1):])))
        out.append(reasons(at, seconds, answers, context, rules))
        key = (client, bucket_of(at))
        buckets[key] = buckets.get(key, 0) + 1
        previous.append(Prior(at, integrity.coded(answers)))
    return out


likert = st.sampled_from([1, 2, 3, 4, 5])
answer_sets = st.fixed_dictionaries({"a1": likert, "a2": likert, "a3": likert,
                                     "comment": st.text(max_size=3)})


@st.composite
def honest_days(draw):
    """Citizens at one counter: one served at a time (at least 2 minutes apart), each
    taking at least the plausible minimum, in opening hours, many on one office Wi-Fi,
    no address sending more than 9 within any two hours; answers anything (identical
    patterns too: many citizens give every criterion the same mark)."""
    count = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(120, 1200), min_size=count, max_size=count))
    clients = draw(st.lists(st.sampled_from(["wifi", "wifi", "m1", "m2", "m3"]),
                            min_size=count, max_size=count))
    events, offset = [], 0
    for gap, client in zip(gaps, clients, strict=True):
        offset += gap
        if offset > 9 * 3600:
            break
        recent = [o for o, c, _s, _a in events if c == client and o > offset - 7200]
        if len(recent) >= 9:
            client = f"m{offset}"
        events.append((offset, client, draw(st.integers(45, 900)), draw(answer_sets)))
    return events


@settings(max_examples=300, deadline=None)
@given(honest_days())
def test_honest_citizens_are_never_flagged(events):
    assert simulate(events) == [[] for _ in events]


submissions = st.lists(st.tuples(st.integers(0, 20 * 3600), st.sampled_from("abc"),
                                 st.one_of(st.none(), st.integers(0, 600)), answer_sets),
                       max_size=40).map(lambda rows: sorted(rows, key=lambda row: row[0]))


@settings(max_examples=200, deadline=None)
@given(submissions)
def test_reasons_are_deterministic_known_and_each_has_its_cause(events):
    first, second = simulate(events), simulate(copy.deepcopy(events))
    assert first == second
    for (_offset, _client, seconds, _answers), flags in zip(events, first, strict=True):
        assert set(flags) <= set(REASONS) and len(set(flags)) == len(flags)
        assert ("fast" in flags) == (seconds is not None and seconds < RULES.min_seconds)
        assert ("no_timer" in flags) == (seconds is None)
        if flags:
            assert all(str(REASONS[code]) for code in flags)


@settings(max_examples=100, deadline=None)
@given(st.integers(4, 30), st.integers(0, 119), answer_sets)
def test_one_phone_in_quick_succession_is_flagged_from_the_fourth(count, gap, answers):
    # Each page answered in the plausible minimum, sent less than 2 minutes after the last.
    events = [(i * gap, "phone", RULES.min_seconds, answers) for i in range(count)]
    flags = simulate(events)
    assert all(not f for f in flags[:3])
    assert all("repeat_client" in f for f in flags[3:])


def criteria(*codes) -> dict:
    """A telling pattern: one code per criterion c1, c2, ..."""
    return {f"c{i}": code for i, code in enumerate(codes, 1)}


def test_identical_runs_and_volume_and_hours():
    answers = criteria(*[5] * 10)
    previous = tuple(Prior(MORNING - timedelta(seconds=60 * i), criteria(*[5] * 9, 4))
                     for i in range(1, 4))
    assert "identical_run" in reasons(MORNING, 60, answers, Context(previous=previous), RULES)
    # The quick form's one rating is no pattern: four satisfied citizens are no run.
    rating = {"overall": 3}
    quick = tuple(Prior(MORNING - timedelta(seconds=60 * i), rating) for i in range(1, 4))
    assert reasons(MORNING, 8, rating, Context(previous=quick), Rules(min_seconds=4)) == []
    spread = tuple(Prior(MORNING - timedelta(minutes=3 * i), answers) for i in range(1, 4))
    answers = {"a1": 5, "a2": 5}
    assert reasons(MORNING, 60, answers, Context(previous=spread), RULES) == []
    assert reasons(MORNING, 60, answers, Context(served=10, counted=10), RULES) == [
        "over_volume"]
    assert reasons(MORNING, 60, answers, Context(served=10, counted=9), RULES) == []
    evening = MORNING.replace(hour=13)  # 20:00 local
    assert reasons(evening, 60, answers, Context(), RULES) == ["outside_hours"]
    sunday = MORNING + timedelta(days=5)
    assert reasons(sunday, 60, answers, Context(), RULES) == ["outside_hours"]
    # Opened at 17:45, inside the grace after closing, sent 20 minutes later.
    late = MORNING.replace(hour=11, minute=5)
    assert reasons(late, 20 * 60, answers, Context(), RULES) == []


def test_one_address_weighed_with_timing_and_answers():
    """Citizens on one office Wi-Fi, 30-60 s apart at a counter, answering differently, are
    not flagged; one phone sending the best answers (or varying a few) that fast is."""
    honest = [criteria(*map(int, codes)) for codes in (
        "544354245344", "334524433521", "455543442253", "232435544335", "553442353414",
        "425355424533")]
    events = [(45 * i, "wifi", 90, answers) for i, answers in enumerate(honest)]
    assert simulate(events) == [[] for _ in events]
    best = [(40 * i, "phone", 50, criteria(*[5] * 12)) for i in range(8)]
    flags = simulate(best)
    assert not any(flags[:3]) and all("repeat_client" in f for f in flags[3:])
    varied = [(45 * i, "phone", 50, criteria(*[5] * (12 - i % 4), *[4] * (i % 4)))
              for i in range(8)]
    flags = simulate(varied)
    assert all("repeat_client" in f for f in flags[3:])
    # The quick form's one rating tells nothing: address and timing decide alone.
    quick = [(40 * i, "wifi", 8, {"overall": 3}) for i in range(5)]
    assert [("repeat_client" in f) for f in simulate(quick, Rules(min_seconds=4))] == [
        False, False, False, True, True]


# --- the questionnaire's plausible minimum ------------------------------------------------


def test_shipped_files_declare_their_plausible_minimum():
    for path in sorted((ROOT / "questionnaires").glob("*.yaml")):
        questionnaire = load_file(path)
        assert questionnaire.min_seconds is not None, path.name
        # The quick form must not flag an honest 5-second answer.
        if questionnaire.kind == "counter-quick":
            assert questionnaire.min_seconds <= 5
        else:
            assert 30 <= questionnaire.min_seconds <= 90


@pytest.mark.parametrize(("value", "fault"), [
    ({}, "integrity: missing required key 'min_seconds'"),
    ({"min_seconds": 0}, "integrity.min_seconds: 0 is out of range"),
    ({"min_seconds": 3601}, "integrity.min_seconds: 3601 is out of range"),
    ({"min_seconds": "8"}, "integrity.min_seconds: expected an integer"),
    ({"min_seconds": True}, "integrity.min_seconds: expected an integer"),
    ({"min_seconds": 8.5}, "integrity.min_seconds: expected an integer"),
    ({"min_seconds": 8, "max_seconds": 9}, "integrity: unknown key(s) max_seconds"),
    ([8], "integrity: expected a mapping"),
])
def test_the_integrity_key_is_checked(value, fault):
    import yaml

    data = yaml.safe_load((ROOT / "questionnaires" / "counter-quick-v1.yaml").read_text("utf-8"))
    data["integrity"] = value
    with pytest.raises(QuestionnaireError) as caught:
        parse(data, "q.yaml")
    assert str(caught.value).startswith(f"q.yaml: {fault}")
    data["integrity"] = {"min_seconds": 8}
    assert parse(data, "q.yaml").min_seconds == 8
    del data["integrity"]
    assert parse(data, "q.yaml").min_seconds is None


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats(),
                 st.dictionaries(st.text(max_size=12), st.integers(), max_size=3)))
def test_any_integrity_value_is_accepted_only_when_valid(value):
    import yaml

    data = yaml.safe_load((ROOT / "questionnaires" / "counter-quick-v1.yaml").read_text("utf-8"))
    data["integrity"] = value
    valid = (isinstance(value, dict) and set(value) == {"min_seconds"}
             and type(value["min_seconds"]) is int and 1 <= value["min_seconds"] <= 3600)
    if valid:
        assert parse(data, "q.yaml").min_seconds == value["min_seconds"]
    else:
        with pytest.raises(QuestionnaireError, match=r"^q\.yaml: integrity"):
            parse(data, "q.yaml")


# --- what is kept about clients -----------------------------------------------------------


def test_integrity_data_cannot_be_joined_to_a_response_finer_than_the_bucket(
        app, client, session, make_counter, open_form, monkeypatch):
    clock = [MORNING + timedelta(minutes=1)]
    monkeypatch.setattr(integrity, "now", lambda: clock[0])
    counter = make_counter(questionnaire_id="counter-quick")
    for minute in (1, 4, 8):  # three citizens on one Wi-Fi within one 10-minute bucket
        clock[0] = MORNING + timedelta(minutes=minute)
        hidden = open_form(counter.token)
        clock[0] += timedelta(seconds=7)
        response = client.post(f"/r/{counter.token}", data={**hidden, "overall": "3"})
        assert response.status_code == 303
    session.expire_all()
    columns = {c["name"] for c in inspect(session.get_bind()).get_columns("submission_count")}
    assert columns == {"counter_id", "client_key", "bucket", "submissions"}
    [row] = session.scalars(select(SubmissionCount)).all()
    bucket = row.bucket if row.bucket.tzinfo else row.bucket.replace(tzinfo=UTC)
    assert bucket == MORNING and row.submissions == 3
    assert int(bucket.timestamp()) % int(integrity.BUCKET.total_seconds()) == 0
    # Each of the three responses fits the row equally well: nothing tells which is whose.
    times = session.scalars(select(Response.submitted_at)).all()
    assert len(times) == 3
    assert all(bucket_of(t) == bucket for t in times)
    assert session.scalar(select(func.count()).select_from(RateEvent)) == 0
    assert len(row.client_key) == 32 and "127.0.0.1" not in row.client_key


def test_submission_counts_expire_after_48_hours(app, client, session, make_counter,
                                                 open_form, monkeypatch):
    old, recent = MORNING - timedelta(hours=49), MORNING - timedelta(hours=47)
    session.add_all([SubmissionCount(counter_id=999, client_key="old", bucket=bucket_of(old),
                                     submissions=2),
                     SubmissionCount(counter_id=999, client_key="recent",
                                     bucket=bucket_of(recent), submissions=1)])
    session.commit()
    monkeypatch.setattr(integrity, "now", lambda: MORNING)
    # This submission purges, after its commit (another counter's rows: purged by age alone).
    monkeypatch.setattr(integrity, "PURGE_EVERY", 1)
    counter = make_counter(questionnaire_id="counter-quick")
    hidden = open_form(counter.token)
    response = client.post(f"/r/{counter.token}", data={**hidden, "overall": "3"})
    assert response.status_code == 303
    session.expire_all()
    kept = session.scalars(select(SubmissionCount.client_key)
                           .where(SubmissionCount.counter_id == 999)).all()
    assert sorted(kept) == ["recent"]
    assert session.scalar(select(func.count()).select_from(SubmissionCount)
                          .where(SubmissionCount.counter_id == counter.id)) == 1


def test_the_user_agent_does_not_make_a_new_client(app, client, session, make_counter,
                                                   open_form):
    counter = make_counter(questionnaire_id="counter-quick")
    for agent in ("A", "B", "C"):
        hidden = open_form(counter.token, headers={"User-Agent": agent})
        client.post(f"/r/{counter.token}", data={**hidden, "overall": "3"},
                    headers={"User-Agent": agent})
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(SubmissionCount)) == 1


def test_paper_sheets_and_keys(app, client, make_counter):
    counter = make_counter()
    page = form_fields(client.get(f"/r/{counter.token}").get_data(as_text=True))
    with app.test_request_context("/"):
        key = integrity.verify_key(page["submission_key"], counter.id)
        assert key is not None and len(key.nonce) == 32
        assert integrity.verify_key(page["submission_key"], counter.id + 1) is None
        assert integrity.answers_digest(complete_answers()) == integrity.answers_digest(
            dict(reversed(list(complete_answers().items()))))
