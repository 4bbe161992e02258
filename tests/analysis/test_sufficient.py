"""Indices from counted answer vectors (analysis.sufficient) equal compute_indices on the
same responses: every column, the notes, to 1e-9."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis.io import AnalysisInputError
from analysis.sufficient import (
    compute_from_vectors,
    encode_codes,
    vector_counts,
    vector_design,
)

from .helpers import DATA, element_map, responses

TOL = 1e-9


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same columns and rows; numbers within 1e-9 (absolute and relative), NaN alike;
    text equal; the notes equal."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for column in want.columns:
        a, b = want[column], got[column]
        if a.dtype.kind == "f":
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            assert np.array_equal(np.isnan(x), np.isnan(y)), column
            ok = ~np.isnan(x)
            assert np.allclose(x[ok], y[ok], rtol=TOL, atol=TOL), (
                column, np.max(np.abs(x[ok] - y[ok]), initial=0.0))
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column
    pd.testing.assert_frame_equal(got.attrs["notes"], want.attrs["notes"])


REFERENCE = [("none", None), ("poststrat", 1), ("poststrat", None), ("poststrat", 40)]


@pytest.mark.parametrize(("weighting", "min_cell_n"), REFERENCE)
def test_reference_data_from_vectors_equals_compute_indices(weighting, min_cell_n):
    """The R reference data: R's postStratify (min_cell_n=1), the default pooling and a
    pooling that merges whole agencies; groupings by agency, period and both."""
    frame = responses()
    emap = element_map()
    options: dict = {"by": ["agency", "period", "agency,period"], "min_n": 20}
    keys = ["agency", "period"]
    if weighting == "poststrat":
        options["weighting"] = "poststrat"
        options["totals"] = analysis.read_totals(DATA / "totals_agency_field.csv")
        options["min_cell_n"] = min_cell_n
        keys.append("field")
    want = analysis.compute_indices(frame, emap, **options)
    vectors = vector_counts(frame, emap.criteria, keys)
    assert vectors["count"].sum() == len(frame)
    got = compute_from_vectors(vectors, emap, **options)
    assert_same(got, want)
    assert want["diff_p_adj"].notna().any()


def test_an_agency_whose_whole_total_is_0_is_left_out_alike():
    """Counted vectors leave out an agency of total 0 (noted) as the rows do; no crash."""
    frame = responses()
    emap = element_map()
    totals = analysis.read_totals(DATA / "totals_agency_field.csv")
    gone = totals["agency"].iloc[0]
    totals.loc[totals["agency"] == gone, "count"] = 0
    options = {"by": "agency", "weighting": "poststrat", "totals": totals}
    want = analysis.compute_indices(frame, emap, **options)
    assert "zero_total_dropped" in set(want.attrs["notes"]["kind"])
    got = compute_from_vectors(vector_counts(frame, emap.criteria, ["agency", "field"]), emap,
                               **options)
    assert_same(got, want)
    assert gone not in set(got["agency"].dropna())


def test_rows_that_repeat_are_counted_once_with_their_count():
    """Responses duplicated many times collapse to few vectors; the table is unchanged."""
    frame = responses().head(60)
    frame = pd.concat([frame] * 7, ignore_index=True)
    emap = element_map()
    vectors = vector_counts(frame, emap.criteria, ["agency"])
    assert len(vectors) <= 60
    want = analysis.compute_indices(frame, emap, by="agency")
    assert_same(compute_from_vectors(vectors, emap, by="agency"), want)


def test_raking_needs_the_respondents():
    """Raking's calibration residuals do not split by cell: refused with a clear message."""
    vectors = vector_counts(responses(), element_map().criteria, ["agency"])
    with pytest.raises(AnalysisInputError, match="needs the responses"):
        vector_design(vectors, element_map().criteria, weighting="rake")


ELEMENTS = [("q1", "A"), ("q2", "A"), ("q3", "B"), ("q4", "B"), ("q5", "B"), ("q6", "C")]
CRITERIA = [c for c, _ in ELEMENTS]


@st.composite
def surveys(draw):
    """Small surveys with every corner: blank and not-applicable answers, a criterion
    nobody answers, one-respondent cells, unanimous agencies, population cells without
    respondents, pooled cells."""
    n = draw(st.integers(2, 40))
    agencies = draw(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=n, max_size=n))
    fields = draw(st.lists(st.sampled_from(["1", "2", "3"]), min_size=n, max_size=n))
    codes = st.one_of(st.none(), st.integers(1, 5), st.sampled_from([4, 5]))
    rows = draw(st.lists(st.lists(codes, min_size=6, max_size=6), min_size=n, max_size=n))
    answers = pd.DataFrame(rows, columns=CRITERIA, dtype="float64")
    if draw(st.booleans()):
        answers["q6"] = np.nan  # a criterion nobody answered
    frame = pd.DataFrame({"response_id": [f"R{i}" for i in range(n)], "agency": agencies,
                          "field": fields, "period": draw(st.lists(
                              st.sampled_from(["2026-Q1", "2026-Q2"]), min_size=n, max_size=n))})
    frame = pd.concat([frame, answers], axis=1)
    cells = sorted(set(zip(agencies, fields, strict=True)))
    extra = draw(st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D"]),
                                    st.sampled_from(["1", "2", "3"])), max_size=3))
    population = sorted(set(cells) | set(extra))
    counts = draw(st.lists(st.integers(1, 500), min_size=len(population),
                           max_size=len(population)))
    totals = pd.DataFrame(population, columns=["agency", "field"])
    totals["count"] = np.array(counts, dtype="float64")
    weighting = draw(st.sampled_from(["none", "poststrat"]))
    min_cell_n = draw(st.sampled_from([1, 2, 5]))
    by = draw(st.sampled_from([[], ["agency"], ["agency", "period"], ["agency,period"]]))
    return frame, totals, weighting, min_cell_n, by


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(surveys())
def test_any_survey_from_vectors_equals_compute_indices(case):
    """Hypothesis: the same table or the same error, whatever the data."""
    frame, totals, weighting, min_cell_n, by = case
    options: dict = {"by": by, "min_n": 3, "weighting": weighting}
    keys = ["agency", "period"]
    if weighting == "poststrat":
        options.update(totals=totals, min_cell_n=min_cell_n, drop_empty_cells=True)
        keys.append("field")
    vectors = vector_counts(frame, CRITERIA, keys)
    try:
        want = analysis.compute_indices(frame, ELEMENTS, **options)
    except AnalysisInputError as exc:
        with pytest.raises(AnalysisInputError) as caught:
            compute_from_vectors(vectors, ELEMENTS, **options)
        assert str(caught.value) == str(exc)
        return
    assert_same(compute_from_vectors(vectors, ELEMENTS, **options), want)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=8), min_size=1, max_size=5), st.integers(1, 8))
def test_answer_vectors_hostile_text(texts, width):
    """Any text: either the codes 0-5 of a valid vector, or AnalysisInputError; formula-like,
    non-ASCII, wrong-length and digit-but-not-a-code values never pass."""
    valid = all(len(t) == width and set(t) <= set(".012345") for t in texts)
    if not valid:
        with pytest.raises(AnalysisInputError):
            encode_codes(texts, width)
        return
    codes = encode_codes(texts, width)
    assert codes.shape == (len(texts), width) and codes.dtype == np.int8
    for row, text in zip(codes, texts, strict=True):
        assert [int(c) if c in "12345" else 0 for c in text] == row.tolist()


def test_answer_vectors_named_errors():
    """Examples: a formula, a code 6, a short vector, Vietnamese text."""
    for bad in (["=1+1"], ["16"], ["1"], ["Hà"]):
        with pytest.raises(AnalysisInputError):
            encode_codes(bad, 2)
    assert encode_codes(["5.", "04"], 2).tolist() == [[5, 0], [0, 4]]
