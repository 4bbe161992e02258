"""Messy spreadsheet values through read_responses and compute_indices: a clear error or a result.

Whatever a cell holds -- blanks, spaces, formula-like text, huge numbers, "NA", full-width
digits -- the library either computes or raises AnalysisInputError naming the row and the
column; never another exception.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis import AnalysisInputError

ELEMENTS = {"A": ["q1", "q2"], "B": ["q3"]}

MESSY = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "  4 ",
            "NA",
            "N/A",
            "na",
            "=1+1",
            '=HYPERLINK("x")',
            "+5",
            "-3",
            "@4",
            "４",
            "５",
            "4.0",
            "4.5",
            "1e308",
            "1e400",
            "-0",
            "0",
            "6",
            "nan",
            "inf",
            "-inf",
            "3,0",
            "٣",
            "\t2",
            "5\n",
            "true",
            "None",
            "\u200b4",
            "𝟓",
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
VALID = st.sampled_from(["1", "2", "3", "4", "5", ""])


def _check_error(exc: AnalysisInputError, column: str) -> None:
    message = str(exc)
    assert "row" in message and column in message, message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.tuples(VALID, VALID, MESSY), min_size=2, max_size=12),
    agencies=st.lists(MESSY, min_size=12, max_size=12),
)
def test_read_responses_then_compute_gives_a_table_or_a_located_error(
    tmp_path_factory, cells, agencies
):
    path = tmp_path_factory.mktemp("messy") / "responses.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["response_id", "agency", "q1", "q2", "q3"])
        for i, (a, b, c) in enumerate(cells):
            writer.writerow([f"r{i}", agencies[i].replace("\x00", ""), a, b, c.replace("\x00", "")])
    try:
        frame = analysis.read_responses(path, ["q1", "q2", "q3"])
    except AnalysisInputError:
        return  # e.g. a stray quote that makes the file unreadable as CSV: named by file
    try:
        table = analysis.compute_indices(frame, ELEMENTS, by="agency")
    except AnalysisInputError as exc:
        _check_error(exc, "q3")
        return
    finite = table["estimate"].dropna()
    assert ((finite >= 0) & (finite <= 100)).all() or (table["level"] == "mean_score").any()
    assert set(table["ci_method"]) <= {"logit-t", "exact-zero-se", "none"}


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(
        st.one_of(MESSY, st.none(), st.floats(), st.integers()), min_size=2, max_size=10
    )
)
def test_dataframe_values_give_a_table_or_a_located_error(values):
    frame = pd.DataFrame({"q1": 4, "q2": 5, "q3": pd.Series(values, dtype=object)})
    try:
        table = analysis.compute_indices(frame, ELEMENTS)
    except AnalysisInputError as exc:
        _check_error(exc, "q3")
        return
    q3 = table[(table["level"] == "criterion") & (table["key"] == "q3")].iloc[0]
    assert q3["n_answered"] <= len(values)


@settings(max_examples=100, deadline=None)
@given(
    fields=st.lists(MESSY, min_size=6, max_size=6),
    counts=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**12)),
        min_size=3,
        max_size=3,
    ),
    min_cell_n=st.integers(1, 8),
)
def test_post_stratification_inputs_give_weights_or_a_clear_error(fields, counts, min_cell_n):
    frame = pd.DataFrame(
        {
            "agency": ["X", "X", "X", "Y", "Y", "Y"],
            "field": fields,
            "q1": [4, 5, 3, 2, 4, 5],
            "q2": 4,
            "q3": 5,
        }
    )
    totals = pd.DataFrame({"agency": ["X", "X", "Y"], "field": fields[:3], "count": counts})
    try:
        table = analysis.compute_indices(
            frame, ELEMENTS, weighting="poststrat", totals=totals, min_cell_n=min_cell_n
        )
    except AnalysisInputError as exc:
        assert str(exc)
        return
    notes = table.attrs["notes"]
    assert list(notes.columns) == list(analysis.weighting.NOTE_COLUMNS)
    total = table[table["by"] == "ALL"]["weight_sum"].iloc[0]
    assert math.isfinite(total) and total > 0
    assert np.isfinite(table["se"].dropna()).all()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.tuples(VALID, st.one_of(VALID, MESSY), MESSY), min_size=0, max_size=10),
    header=st.sampled_from(["response_id", "agency", " agency", "'=agency", "q1"]),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_arrow_reader_reads_what_pandas_reads_or_steps_aside(
    tmp_path_factory, cells, header, bom, newline
):
    """The fast reader returns the pandas reader's frame exactly, or None (pandas reads)."""
    from analysis import io as aio

    path = tmp_path_factory.mktemp("arrow") / "responses.csv"
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator=newline)
        writer.writerow([header, "agency2", "q1", "q2", "q3"])
        for i, (a, b, c) in enumerate(cells):
            writer.writerow([f"r{i}", c.replace("\x00", ""), a, b.replace("\x00", ""), "4"])
    try:
        expected = aio.read_responses(path, ["q1", "q2", "q3"])
        slow = None
    except AnalysisInputError as exc:
        slow = str(exc)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(aio, "_read_responses_arrow", lambda *args: None)
        try:
            reference = aio.read_responses(path, ["q1", "q2", "q3"])
        except AnalysisInputError as exc:
            assert slow == str(exc)
            return
    assert slow is None
    pd.testing.assert_frame_equal(expected, reference)
    names = list(reference.columns)
    fast = aio._read_responses_arrow(path, names, ["q1", "q2", "q3"])
    if fast is not None:
        pd.testing.assert_frame_equal(fast, reference)
