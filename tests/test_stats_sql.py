"""Indices from counted answer vectors in SQL equal the in-memory path on both engines."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from analysis import compute_indices
from analysis.questionnaire import (
    NOT_APPLICABLE,
    SERVICE_FIELD,  # noqa: I001
)
from survey.domain.vectors import fill_missing
from survey.models import Response
from survey.questionnaires import Registry, default_folder
from survey.reports import served_totals
from survey.reports_data import responses_frame
from survey.stats_sql import period_bounds, read_vectors, scope_indices

from .analysis.test_sufficient import assert_same
from .factories import make_agency, make_counter, make_response, make_volume

REGISTRY = Registry(default_folder())
SIPAS = REGISTRY.latest("sipas-service")
CRITERIA = [q.id for q in SIPAS.criteria]
ELEMENTS = [(q.id, q.element) for q in SIPAS.criteria]
PERIOD = "2026-Q3"


def _arrange(session, seed: int = 7) -> None:
    """Four agencies, ~120 responses in Q3 (some in Q2, some flagged), every kind of
    answer (blank, not applicable, one-respondent fields), volumes for Q3 (one agency has
    none, one lacks a sampled field)."""
    rng = random.Random(seed)
    agencies = [make_agency(session, code, commit=False) for code in ("STP", "SYT", "SXD", "SNV")]
    counters = [make_counter(session, a, f"Quầy {a.code}", commit=False) for a in agencies]
    for i in range(140):
        k = rng.choice([0, 0, 0, 1, 1, 2, 2, 3])
        answers = {"field": rng.choice([1, 1, 2, 3, 4]) if k < 3 else rng.choice([1, 9])}
        mood = rng.random()
        for criterion in CRITERIA:
            roll = rng.random()
            if roll < 0.07:
                continue  # blank
            if roll < 0.12:
                answers[criterion] = NOT_APPLICABLE
            else:
                answers[criterion] = 5 if mood > 0.6 and roll < 0.8 else rng.randint(1, 5)
        month = 8 if i < 120 else 5
        at = datetime(2026, month, 1 + i % 27, 3, tzinfo=UTC)
        flags = "fast" if i % 17 == 0 else ""
        make_response(session, counters[k], answers, at=at, questionnaire_version=2,
                      flags=flags, commit=False)
    for agency in agencies[:3]:
        fields = ["1", "2", "3", "4"] if agency.code != "SXD" else ["1", "2"]
        for j, field in enumerate(fields):
            make_volume(session, agency.id, field, PERIOD, 200 + 150 * j, commit=False)
    # the unencodable: a code the vector column cannot hold stays NULL -> frame path
    session.commit()


def _in_memory(session, weighting: str, min_cell_n: int | None) -> pd.DataFrame:
    """What the page computes today: the wide frame and compute_indices."""
    first, last = period_bounds(PERIOD)
    frame = responses_frame(session, SIPAS, date_from=first, date_to=last, registry=REGISTRY)
    options: dict = {}
    if weighting == "poststrat":
        totals, _ = served_totals(session, PERIOD, False, None, SIPAS.roles.get(SERVICE_FIELD),
                                frame)
        options = {"weighting": "poststrat", "totals": totals}
    return compute_indices(frame, ELEMENTS, by=["agency"], min_n=10, min_cell_n=min_cell_n,
                           **options)


@pytest.mark.parametrize(("weighting", "min_cell_n"),
                         [("none", None), ("poststrat", None), ("poststrat", 1)])
def test_sql_vectors_equal_the_in_memory_indices(app, session, weighting, min_cell_n):
    """Rows in the database -> counted vectors in SQL -> the same table as the frame path
    (estimates, SEs, intervals, df, differences, Holm, marks, notes), to 1e-9."""
    _arrange(session)
    with app.app_context():
        got, volume_notes, how = scope_indices(
            session, SIPAS, REGISTRY, period=PERIOD, weighting=weighting, min_n=10,
            min_cell_n=min_cell_n)
    assert how == "sql"
    assert session.query(Response).filter(Response.criteria_codes.is_(None)).count() == 0
    want = _in_memory(session, weighting, min_cell_n)
    assert_same(got, want)
    assert got["diff_p_adj"].notna().any()
    if weighting == "poststrat":
        assert volume_notes  # SNV has no volume: its responses count once, said so
        assert (got["by"] == "agency").sum() > 0


def test_vectors_follow_scope_flags_and_period(app, session):
    """The SQL counts exactly the responses the frame path keeps: scope, period, flags."""
    _arrange(session, seed=11)
    assert fill_missing(session, REGISTRY) == 140  # read_vectors reads encoded rows only
    first, last = period_bounds(PERIOD)
    agency_ids = {session.query(Response.agency_id).first()[0]}
    for include in (False, True):
        vectors = read_vectors(session, SIPAS, REGISTRY, agency_ids=agency_ids,
                               include_flagged=include, date_from=first, date_to=last)
        frame = responses_frame(session, SIPAS, agency_ids=agency_ids,
                                include_flagged=include, date_from=first, date_to=last,
                                registry=REGISTRY)
        assert vectors.responses == len(frame)
        codes = frame[CRITERIA].fillna(0).to_numpy(dtype=np.int64)
        got = np.repeat(vectors.answers.astype(np.int64), vectors.frame["count"], axis=0)
        # the same multiset of answer vectors
        assert sorted(map(tuple, got)) == sorted(map(tuple, codes))


def test_raking_falls_back_to_the_frame(app, session):
    """Raking needs the respondents: the wide frame is read, and the result says so."""
    _arrange(session, seed=3)
    margins = [pd.DataFrame({"agency": ["STP", "SYT", "SXD", "SNV"],
                             "count": [900.0, 500.0, 300.0, 100.0]})]
    got, _, how = scope_indices(session, SIPAS, REGISTRY, period=PERIOD, weighting="rake",
                                margins=margins, min_n=10)
    assert how == "frame"
    first, last = period_bounds(PERIOD)
    frame = responses_frame(session, SIPAS, date_from=first, date_to=last, registry=REGISTRY)
    want = compute_indices(frame, ELEMENTS, by=["agency"], min_n=10, weighting="rake",
                           margins=margins)
    assert_same(got, want)


def test_period_bounds_cover_the_period():
    """A year, a quarter and a month: their first and last local days."""
    assert period_bounds("2026") == (datetime(2026, 1, 1).date(), datetime(2026, 12, 31).date())
    assert period_bounds("2026-Q3") == (datetime(2026, 7, 1).date(),
                                        datetime(2026, 9, 30).date())
    assert period_bounds("2024-02") == (datetime(2024, 2, 1).date(),
                                        datetime(2024, 2, 29).date())


def test_the_parts_read_one_snapshot(app, session, monkeypatch):
    """On PostgreSQL the parts run on connections of their own: each reads the caller's
    snapshot, so a response committed while they start counts in none of them (SQLite
    reads in one part)."""
    from sqlalchemy import text

    from survey import stats_sql

    _arrange(session, seed=5)
    fill_missing(session, REGISTRY)
    session.commit()
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("one part on SQLite")
    monkeypatch.setattr(stats_sql, "READ_PARTS", 1)
    before = read_vectors(session, SIPAS, REGISTRY).responses
    session.commit()
    monkeypatch.setattr(stats_sql, "READ_PARTS", 2)
    read = stats_sql._read_copy
    seen, first = [], threading.Lock()

    def late_response_then_read(db, *args, **kwargs):
        # The first part to start: another worker stores a response after the caller's
        # snapshot was taken (the parts run in threads: one insert, whichever comes first).
        if first.acquire(blocking=False):
            with session.get_bind().begin() as other:
                other.execute(text(
                    "INSERT INTO response (counter_id, agency_id, questionnaire_id, "
                    "questionnaire_version, submitted_at, locale, flags, channel, "
                    "service_field, criteria_codes) SELECT counter_id, agency_id, "
                    "questionnaire_id, questionnaire_version, submitted_at, locale, flags, "
                    "channel, service_field, criteria_codes FROM response WHERE flags = '' "
                    "LIMIT 1"))
        seen.append(db)
        return read(db, *args, **kwargs)

    monkeypatch.setattr(stats_sql, "_read_copy", late_response_then_read)
    assert read_vectors(session, SIPAS, REGISTRY).responses == before
    assert len(seen) == 2
    monkeypatch.setattr(stats_sql, "_read_copy", read)
    session.commit()
    assert read_vectors(session, SIPAS, REGISTRY).responses == before + 1
