"""Response vectors: encoded from the answers, filled from the Answer rows, migrated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, select, text

from analysis.questionnaire import NOT_APPLICABLE
from survey.db import alembic_config, get_db, upgrade
from survey.domain.vectors import decode, encode, encoded_columns, fill_missing, reset
from survey.models import Response
from survey.questionnaires import Registry, default_folder

from .factories import make_counter, make_response

REGISTRY = Registry(default_folder())
SIPAS_V1 = REGISTRY.get("sipas-service", 1)
SIPAS_V2 = REGISTRY.get("sipas-service", 2)
QUICK_V2 = REGISTRY.get("counter-quick", 2)


def _criteria(questionnaire) -> list[str]:
    return [q.id for q in questionnaire.criteria]


def test_encode_full_blank_and_not_applicable_answers():
    """One character per criterion in the file's order; N/A is 0, no answer is '.'."""
    ids = _criteria(SIPAS_V1)
    answers = {"field": 7, "gender": 2, "comment": "Nhanh", ids[0]: 5, ids[1]: 1,
               ids[2]: NOT_APPLICABLE}
    field, codes = encode(SIPAS_V1, answers)
    assert field == 7
    assert len(codes) == len(ids) == 16
    assert codes == "510" + "." * 13
    # A blank (None), a text or a list given to a criterion is no answer.
    field, codes = encode(SIPAS_V1, {ids[0]: None, ids[1]: "x", ids[2]: [3], ids[3]: 4})
    assert field is None
    assert codes == "...4" + "." * 12


def test_encode_follows_each_versions_own_criteria():
    """Version 2 has its own question list; the quick form has no service field."""
    answers = {q: i % 5 + 1 for i, q in enumerate(_criteria(SIPAS_V2))}
    answers["field"] = 3
    answers["result_received"] = 1
    field, codes = encode(SIPAS_V2, answers)
    assert field == 3 and codes == "".join(str(i % 5 + 1) for i in range(16))
    field, codes = encode(QUICK_V2, {"overall": 1, "reasons": [2, 3], "q1": 0, "q3": 2})
    assert field is None and codes == "0.2."


def test_hidden_questions_are_not_stored_so_they_encode_as_no_answer():
    """The skip logic: what a respondent never saw has no Answer row and encodes to '.'."""
    quick = REGISTRY.get("counter-quick", 1)
    answers = {"overall": 3, "q1": 4}
    shown = {q: v for q, v in answers.items() if quick.is_shown(q, answers)}
    assert encode(quick, shown) == (None, "4...")


def test_encode_refuses_what_the_columns_cannot_hold():
    """A code of two digits or a huge field code stays NULL rather than being mangled."""
    ids = _criteria(SIPAS_V1)
    with pytest.raises(ValueError):
        encode(SIPAS_V1, {ids[0]: 12})
    with pytest.raises(ValueError):
        encode(SIPAS_V1, {"field": 40000})
    assert encoded_columns(SIPAS_V1, {ids[0]: -1}) == {"service_field": None,
                                                      "criteria_codes": None}


# Any text a database column holds (PostgreSQL refuses NUL in text).
SAFE_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
ANSWER_VALUES = st.one_of(
    st.none(), st.integers(0, 5), st.integers(-10**6, 10**6),
    st.text(max_size=20), st.lists(st.integers(0, 9), max_size=3), st.booleans(),
    st.sampled_from(["=1+1", "@SUM(A1)", "+5", "-5", "5"]),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([SIPAS_V1, SIPAS_V2, QUICK_V2]),
       st.dictionaries(st.sampled_from(["field", "a1", "b4", "e3", "q1", "q4", "overall",
                                        "gender", "nonexistent"]), ANSWER_VALUES))
def test_encode_of_any_answers_decodes_to_the_stored_codes(questionnaire, answers):
    """Whatever is thrown at it: either a vector that decodes back to the codes 1..9
    (N/A and no answer left out), or ValueError for a code the column cannot hold."""
    ids = _criteria(questionnaire)
    try:
        field, codes = encode(questionnaire, answers)
    except ValueError:
        bad = [v for q, v in answers.items() if q in ids and isinstance(v, int)
               and not isinstance(v, bool) and not 0 <= v <= 9]
        bad_field = answers.get("field")
        assert bad or (isinstance(bad_field, int) and not isinstance(bad_field, bool)
                       and not 0 <= bad_field <= 32767 and "field" in questionnaire.questions)
        return
    assert len(codes) == len(ids) and set(codes) <= set(".0123456789")
    decoded = decode([codes], len(ids))[0]
    for position, qid in enumerate(ids):
        value = answers.get(qid)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            assert decoded[position] == value
        else:
            assert np.isnan(decoded[position])
    if "field" in questionnaire.questions and isinstance(answers.get("field"), int) \
            and not isinstance(answers.get("field"), bool):
        assert field == answers["field"]
    else:
        assert field is None


def _vectors(session) -> dict[int, tuple]:
    session.expire_all()
    return {r.id: (r.service_field, r.criteria_codes)
            for r in session.scalars(select(Response).order_by(Response.id))}


def test_fill_missing_encodes_from_the_answer_rows(app, session):
    """NULL vectors are computed in batches; known ones are left; a second run does
    nothing; a version the registry does not know stays NULL; a reset recomputes."""
    counter = make_counter(session)
    first = make_response(session, counter, {"field": 2, "a1": 5, "a2": 0, "comment": "Tốt"})
    second = make_response(session, counter, {"a3": 1, "e3": 4}, questionnaire_version=2)
    unknown = make_response(session, counter, {"a1": 3}, questionnaire_version=99)
    quick = make_response(session, make_counter(session, questionnaire_id="counter-quick"),
                          {"overall": 1, "reasons": [1, 2], "q2": 3}, questionnaire_version=2)
    kept = make_response(session, counter, {"a1": 1}, service_field=9,
                         criteria_codes="9" * 16)
    with app.app_context():
        assert fill_missing(get_db(), batch_size=2) == 3
        assert fill_missing(get_db(), batch_size=2) == 0
    vectors = _vectors(session)
    assert vectors[first.id] == (2, "50" + "." * 14)
    assert vectors[second.id] == (None, "..1" + "." * 12 + "4")
    assert vectors[unknown.id] == (None, None)
    assert vectors[quick.id] == (None, ".3..")
    assert vectors[kept.id] == (9, "9" * 16)
    with app.app_context():
        reset(get_db(), [kept.id])
        get_db().commit()
        assert fill_missing(get_db(), registry=REGISTRY) == 1
    assert _vectors(session)[kept.id] == (None, "1" + "." * 15)


def test_two_processes_filling_at_once_agree(app, session):
    """Two workers filling the same rows concurrently store each vector once, correctly."""
    counter = make_counter(session)
    for i in range(60):
        make_response(session, counter, {"field": i % 10 + 1, "a1": i % 5 + 1, "e3": 0},
                      commit=False)
    session.commit()
    errors = []

    def work():
        try:
            db = app.extensions["survey_db"].sessionmaker()
            try:
                fill_missing(db, registry=REGISTRY, batch_size=7)
            finally:
                db.close()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    vectors = _vectors(session)
    assert len(vectors) == 60
    for i, (rid, vector) in enumerate(sorted(vectors.items())):
        assert vector == (i % 10 + 1, str(i % 5 + 1) + "." * 14 + "0"), rid


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["field", "a1", "b2", "comment"]),
                       st.one_of(st.integers(-5, 12), st.text(SAFE_TEXT, max_size=30),
                                 st.sampled_from(["=HYPERLINK(\"x\")", "'; DROP TABLE", ""]))))
def test_fill_missing_with_hostile_stored_answers(app, session, answers):
    """Odd stored values (imported or old rows) never break the fill: each response gets
    the vector encode gives, or stays NULL when the column cannot hold it."""
    counter = make_counter(session)
    response = make_response(session, counter, answers)
    with app.app_context():
        fill_missing(get_db(), registry=REGISTRY)
    session.expire_all()
    stored = session.get(Response, response.id)
    expected = encoded_columns(SIPAS_V1, answers)
    assert (stored.service_field, stored.criteria_codes) == (
        expected["service_field"], expected["criteria_codes"])


def test_migration_0007_adds_and_removes_the_vector_columns(database_url):
    """Down to 0006 the columns and the index go; up again they come back, NULL."""
    engine = create_engine(database_url)
    try:
        command.downgrade(alembic_config(database_url), "0006")
        columns = {c["name"] for c in inspect(engine).get_columns("response")}
        assert not {"service_field", "criteria_codes"} & columns
        assert not {"ix_response_unencoded", "ix_response_flagged"} & {
            i["name"] for i in inspect(engine).get_indexes("response")}
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO agency (code, name, level, active, created_at, feedback_contact)"
                " VALUES ('A', 'A', 'department', true, '2026-01-01', '')"))
            conn.execute(text(
                "INSERT INTO counter (agency_id, label, questionnaire_id, active, created_at,"
                " requires_receipt) VALUES (1, 'Q', 'sipas-service', true, '2026-01-01', false)"))
            conn.execute(text(
                "INSERT INTO response (counter_id, agency_id, questionnaire_id,"
                " questionnaire_version, submitted_at, locale, flags, channel)"
                " VALUES (1, 1, 'sipas-service', 1, '2026-01-01', 'vi', '', 'web')"))
        upgrade(database_url)
        inspector = inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("response")}
        assert {"service_field", "criteria_codes"} <= columns
        indexes = {i["name"] for i in inspector.get_indexes("response")}
        assert {"ix_response_unencoded", "ix_response_flagged"} <= indexes
        with engine.connect() as conn:
            assert conn.execute(text(
                "SELECT service_field, criteria_codes FROM response")).all() == [(None, None)]
    finally:
        engine.dispose()


def _reference_frame(db, questionnaire, agency_ids=None, period="quarter",
                     include_flagged=False, with_counter=False):
    """The wide frame as it was built before the vectors: straight from the Answer rows."""
    from survey.models import Agency, Answer, Counter
    from survey.reports_data import GROUPING_TYPES, period_label

    filters = [Response.questionnaire_id == questionnaire.id]
    if agency_ids is not None:
        filters.append(Response.agency_id.in_(agency_ids or {-1}))
    if not include_flagged:
        filters.append(Response.flags == "")
    columns = [Response.id, Agency.code, Agency.name, Response.submitted_at, Response.flags]
    names = ["response_id", "agency", "agency_name", "submitted_at", "flags"]
    query = select(*columns).join(Agency, Agency.id == Response.agency_id)
    if with_counter:
        query = query.add_columns(Response.counter_id, Counter.label).join(
            Counter, Counter.id == Response.counter_id)
        names += ["counter", "counter_label"]
    base = pd.DataFrame(db.execute(query.where(*filters).order_by(Response.id)).all(),
                        columns=names)
    if with_counter:
        base["counter"] = base["counter"].astype(str)
    base["period"] = period_label(base["submitted_at"], period) if len(base) else []
    base = base.drop(columns="submitted_at")
    criteria = [q.id for q in questionnaire.criteria]
    groupings = [q.id for q in questionnaire.questions.values() if q.type in GROUPING_TYPES]
    multiple = [q.id for q in questionnaire.questions.values() if q.type == "multiple"]
    answers = pd.DataFrame(db.execute(
        select(Answer.response_id, Answer.question_id, Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .where(*filters, Answer.question_id.in_(criteria + groupings + multiple),
               Answer.value.is_not(None))).all(), columns=["response_id", "question_id", "value"])
    # Typed when empty (the code before the vectors warned on ids looked up as positions).
    answers = answers.astype({"response_id": "int64"})
    chosen = answers[answers["question_id"].isin(multiple)]
    answers = answers[~answers["question_id"].isin(multiple)]
    wide = answers.pivot(index="response_id", columns="question_id", values="value")
    wide = wide.reindex(index=base["response_id"], columns=criteria + groupings)
    for qid in multiple:
        lists = chosen[chosen["question_id"] == qid].groupby("response_id")["value"].agg(
            lambda codes: sorted(int(c) for c in codes))
        wide[qid] = [lists.get(rid, []) for rid in wide.index]
    for qid in criteria:
        column = wide[qid].astype("Int64")
        wide[qid] = column.mask(column == NOT_APPLICABLE)
    for qid in groupings:
        wide[qid] = wide[qid].astype("Int64").astype("string")
    return base.set_index("response_id").join(wide).reset_index()


def _random_answers(data, questionnaire) -> dict:
    """Answers as a respondent could give them: shown questions only, blanks allowed."""
    given: dict = {}
    for question in questionnaire.questions.values():
        if not questionnaire.is_shown(question.id, given) or data.draw(st.booleans()) is False \
                and data.draw(st.integers(0, 3)) == 0:
            continue
        if question.type == "multiple":
            value = data.draw(st.lists(st.sampled_from(sorted(question.codes)), unique=True,
                                       max_size=3))
        elif question.type == "text":
            value = data.draw(st.text(SAFE_TEXT, max_size=10))
        else:
            value = data.draw(st.sampled_from(sorted(question.codes)))
        given[question.id] = value
    return given


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_frame_from_vectors_equals_frame_from_answer_rows(app, session, data):
    """On random responses to both versions of both forms (N/A, blanks, hidden questions,
    flags, odd stored codes, some vectors stored at write time and some not), the reports'
    frame read from the vectors equals the frame pivoted from the Answer rows."""
    from survey.reports_data import report_questions, responses_frame

    from .factories import agency_with_code

    counters = {
        "sipas-service": [make_counter(session, agency_with_code(session, code),
                                       questionnaire_id="sipas-service")
                          for code in ("STP", "SYT")],
        "counter-quick": [make_counter(session, agency_with_code(session, "STP"),
                                       questionnaire_id="counter-quick")],
    }
    for _ in range(data.draw(st.integers(1, 8))):
        form = data.draw(st.sampled_from(sorted(counters)))
        version = data.draw(st.sampled_from([1, 2, 3]))  # 3: a version nobody knows
        known = REGISTRY.versions.get((form, version), REGISTRY.get(form, 1))
        answers = _random_answers(data, known)
        if data.draw(st.integers(0, 9)) == 0:
            answers[data.draw(st.sampled_from(_criteria(known)))] = data.draw(
                st.sampled_from([-1, 7, 12]))  # a code no validated path stores
        fields = {}
        if version in (1, 2) and data.draw(st.booleans()):
            fields = encoded_columns(known, answers)  # stored at write time
        at = datetime(2026, data.draw(st.integers(1, 12)), data.draw(st.integers(1, 28)),
                      data.draw(st.integers(0, 23)), tzinfo=UTC)
        make_response(session, data.draw(st.sampled_from(counters[form])), answers, at=at,
                      questionnaire_version=version,
                      flags=data.draw(st.sampled_from(["", "", "fast"])), **fields)
    options = {"period": data.draw(st.sampled_from(["month", "quarter", "year"])),
               "include_flagged": data.draw(st.booleans()),
               "with_counter": data.draw(st.booleans())}
    with app.app_context():
        db = get_db()
        for form in counters:
            questionnaire = REGISTRY.latest(form)
            expected = _reference_frame(db, questionnaire, **options)
            got = responses_frame(db, questionnaire, **options)
            pd.testing.assert_frame_equal(got, expected, check_dtype=True)
            # The report pages' narrower frame: the same values in the columns it keeps.
            narrow = responses_frame(db, questionnaire, questions=report_questions(
                questionnaire), **options)
            assert set(report_questions(questionnaire)) <= set(narrow.columns)
            assert not {"gender", "age_band"} & set(narrow.columns)
            pd.testing.assert_frame_equal(narrow, expected[narrow.columns], check_dtype=True)


def test_a_frame_encodes_a_limited_number_and_reads_the_rest_from_answers(
        app, session, monkeypatch):
    """After an upgrade of a large database a page encodes only FILL_PER_FRAME responses;
    the others come from their Answer rows, with the same figures; the command encodes
    every one."""
    from survey import reports_data

    counter = make_counter(session)
    for i in range(7):
        make_response(session, counter, {"field": i % 3 + 1, "a1": i % 5 + 1, "b2": 0},
                      commit=False)
    session.commit()
    monkeypatch.setattr(reports_data, "FILL_PER_FRAME", 3)
    monkeypatch.setattr(reports_data, "FALLBACK_BY_LIST", 2)  # the 4 others by id range
    with app.app_context():
        frame = reports_data.responses_frame(get_db(), SIPAS_V1, registry=REGISTRY)
        reference = _reference_frame(get_db(), SIPAS_V1)
    pd.testing.assert_frame_equal(frame, reference)
    vectors = _vectors(session)
    assert sum(codes is not None for _field, codes in vectors.values()) == 3
    result = app.test_cli_runner().invoke(args=["reports", "encode-responses",
                                                "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "4 responses encoded." in result.output
    assert all(codes is not None for _field, codes in _vectors(session).values())


def test_a_submission_stores_its_vector_with_its_answers(app, client, session, open_form):
    """The public form writes the vector in the same insert: no lazy fill needed, and it is
    what fill_missing would compute from the stored Answer rows."""
    from .test_respond import complete_answers

    counter = make_counter(session)
    hidden = open_form(counter.token)
    answers = complete_answers(a1="5", a3="0")  # a3 offers "not applicable"
    posted = client.post(f"/r/{counter.token}", data={**hidden, **answers})
    assert posted.status_code == 303, posted.get_data(as_text=True)[-1500:]
    stored = session.scalars(select(Response)).one()
    assert stored.service_field == 1 and stored.criteria_codes is not None
    written = (stored.service_field, stored.criteria_codes)
    ids = _criteria(SIPAS_V2)
    assert written[1][ids.index("a1")] == "5" and written[1][ids.index("a3")] == "0"
    assert written[1][ids.index("a2")] == "4"
    reset(session, [stored.id])
    session.commit()
    with app.app_context():
        fill_missing(get_db(), registry=REGISTRY)
    session.expire_all()
    again = session.get(Response, stored.id)
    assert (again.service_field, again.criteria_codes) == written
