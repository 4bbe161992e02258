"""Post-stratification, raking and trimming: weights, and errors that name the cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis import AnalysisInputError

from .helpers import DATA, element_map, margins, responses

CRITERIA = element_map().criteria


def totals() -> pd.DataFrame:
    return analysis.read_totals(DATA / "totals_agency_field.csv")


def test_poststratified_weights_sum_to_the_totals():
    design = analysis.make_design(responses(), CRITERIA, "poststrat", totals=totals(), min_cell_n=1)
    frame = responses().assign(w=design.weights)
    sums = frame.groupby(["agency", "field"])["w"].sum()
    t = totals().set_index(["agency", "field"])["count"]
    np.testing.assert_allclose(sums, t.loc[sums.index], rtol=1e-12)
    assert sums.sum() == pytest.approx(t.sum())  # the zero cell adds nothing


def test_sample_cell_missing_from_totals_is_named():
    # Without pooling (R's postStratify, which stops too) the cell is named; with the
    # default pooling it is pooled within its agency (see the tests below).
    t = totals()
    t = t[~((t["agency"] == "Sở Xây dựng") & (t["field"] == "Đất đai"))]
    with pytest.raises(AnalysisInputError, match="agency='Sở Xây dựng', field='Đất đai'"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=t, min_cell_n=1)


def _zeroed(agency: str, field: str | None, how: str = "zero") -> pd.DataFrame:
    """The test totals with one agency's cell (or all its cells) at 0 or left out."""
    t = totals()
    hit = (t["agency"] == agency) & ((t["field"] == field) if field is not None else True)
    if how == "missing":
        return t[~hit].reset_index(drop=True)
    t.loc[hit, "count"] = 0.0
    return t


@pytest.mark.parametrize("how", ["zero", "missing"])
def test_a_sample_cell_of_total_0_is_pooled_within_its_agency(how):
    frame = responses()
    t = _zeroed("Sở Kế hoạch và Đầu tư", "Đất đai", how)  # 125 respondents, total 0
    with pytest.raises(AnalysisInputError, match=r"agency='Sở Kế hoạch và Đầu tư', "
                       r"field='Đất đai' \(125 respondents\).*postStratify stops"):
        analysis.make_design(frame, CRITERIA, "poststrat", totals=t, min_cell_n=1)
    design = analysis.make_design(frame, CRITERIA, "poststrat", totals=t)
    assert design.n == len(frame)  # no respondent dropped
    assert design.weights.min() > 0
    assert design.weights.sum() == pytest.approx(t["count"].sum())  # no transaction dropped
    agency = (frame["agency"] == "Sở Kế hoạch và Đầu tư").to_numpy()
    assert design.weights[agency].sum() == pytest.approx(
        t.loc[t["agency"] == "Sở Kế hoạch và Đầu tư", "count"].sum()
    )
    note = design.notes[design.notes["kind"] == "zero_cells_pooled"]
    assert len(note) == 1
    assert note.iloc[0]["scope"] == "Sở Kế hoạch và Đầu tư"
    assert note.iloc[0]["cells"] == "field=Đất đai" and note.iloc[0]["responses"] == 125
    table = analysis.compute_indices(frame, element_map(), weighting="poststrat", totals=t,
                                     by=["agency"])
    assert table.attrs["notes"]["kind"].eq("zero_cells_pooled").any()


def test_an_agency_whose_whole_total_is_0_is_left_out_and_said():
    frame = responses()
    t = _zeroed("Sở Tư pháp", None)
    design = analysis.make_design(frame, CRITERIA, "poststrat", totals=t)
    out = int((frame["agency"] == "Sở Tư pháp").sum())
    assert design.n == len(frame) - out
    assert design.weights.sum() == pytest.approx(t["count"].sum())
    note = design.notes[design.notes["kind"] == "zero_total_dropped"].iloc[0]
    assert note["scope"] == "Sở Tư pháp" and note["responses"] == out
    with pytest.raises(AnalysisInputError, match="agency='Sở Tư pháp'"):
        analysis.make_design(frame, CRITERIA, "poststrat", totals=t, min_cell_n=1)


def test_an_agency_absent_from_the_totals_is_still_an_error():
    t = totals()
    t = t[t["agency"] != "Sở Tư pháp"]
    with pytest.raises(AnalysisInputError, match="agency='Sở Tư pháp'.*no totals at all"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=t)


def test_population_cell_without_respondents_is_named_or_dropped():
    t = pd.concat(
        [totals(), pd.DataFrame({"agency": ["Sở Y tế"], "field": ["Đất đai"], "count": [120.0]})]
    )
    with pytest.raises(AnalysisInputError, match="agency='Sở Y tế'.*no respondents"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=t, min_cell_n=1)
    design = analysis.make_design(
        responses(), CRITERIA, "poststrat", totals=t, drop_empty_cells=True, min_cell_n=1
    )
    assert design.weights.sum() == pytest.approx(totals()["count"].sum())
    # the agency nobody represents is reported, not silently dropped
    note = design.notes[design.notes["kind"] == "unrepresented"].iloc[0]
    assert note["scope"] == "Sở Y tế" and note["transactions"] == 120
    assert note["share"] == pytest.approx(120 / t["count"].sum())


def test_pooling_keeps_every_transaction_and_reports_what_it_did():
    t = totals()
    frame = responses()
    sizes = frame.groupby(["agency", "field"]).size()
    # an empty population cell in an agency that has respondents elsewhere
    agency = sizes.index[0][0]
    t = pd.concat(
        [t, pd.DataFrame({"agency": [agency], "field": ["Hộ tịch mới"], "count": [500.0]})]
    )
    design = analysis.make_design(frame, CRITERIA, "poststrat", totals=t, min_cell_n=5)
    assert design.weights.sum() == pytest.approx(t["count"].sum())  # nothing lost
    assert design.cell_size.min() >= 5 or design.notes["kind"].eq("fallback").any()
    kinds = set(design.notes["kind"])
    assert {"pooled_cells", "empty_cells_pooled"} <= kinds
    empty = design.notes[design.notes["kind"] == "empty_cells_pooled"]
    assert (empty["scope"] == agency).any() and empty["transactions"].sum() >= 500
    assert list(design.notes.columns) == [
        "kind",
        "scope",
        "cells",
        "responses",
        "transactions",
        "share",
        "detail",
    ]
    small = sizes[sizes < 5]
    pooled = design.notes[design.notes["kind"] == "pooled_cells"]
    assert pooled["responses"].sum() == small.sum()
    # every cell of an agency of fewer than 5 respondents is one cell
    tiny = frame.groupby("agency").size()
    tiny = tiny[tiny < 5].index
    for name in tiny:
        cells = set(design.cell[(frame["agency"] == name).to_numpy()])
        assert len(cells) == 1
    table = analysis.compute_indices(design, element_map(), by="agency")
    # the table's notes: what the pooling did to the intervals first, then the design's
    notes = table.attrs["notes"]
    assert notes.iloc[1:].reset_index(drop=True).equals(design.notes)
    assert notes["kind"].iloc[0] == "pooling_bias"
    assert "answered)." in notes["detail"].iloc[0]
    assert table["pooling_bias"].abs().max() > 0


def test_responses_without_a_post_stratum_are_dropped_and_reported():
    frame = responses().copy()
    frame.loc[frame.index[:3], "field"] = " "
    design = analysis.make_design(frame, CRITERIA, "poststrat", totals=totals(), min_cell_n=1)
    assert design.n == len(frame) - 3
    note = design.notes.iloc[0]
    assert note["kind"] == "dropped_responses" and note["responses"] == 3
    assert "field" in note["cells"]


def test_totals_must_use_the_same_variables():
    t = totals().rename(columns={"field": "linh_vuc"})
    with pytest.raises(AnalysisInputError, match="linh_vuc"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=t)


def test_raked_weights_meet_every_margin_and_shares_are_scaled():
    design = analysis.make_design(responses(), CRITERIA, "rake", margins=margins())
    frame = responses().assign(w=design.weights)
    agency = analysis.read_margin(DATA / "margin_agency.csv").set_index("agency")["count"]
    field = analysis.read_margin(DATA / "margin_field.csv").set_index("field")["count"]
    got = frame.groupby("agency")["w"].sum()
    np.testing.assert_allclose(got, agency.loc[got.index], rtol=1e-11)
    got = frame.groupby("field")["w"].sum()
    np.testing.assert_allclose(got, field.loc[got.index], rtol=1e-11)
    got = frame.groupby("gender")["w"].sum() / agency.sum()
    np.testing.assert_allclose(got.loc[["Nam", "Nữ"]], [0.47, 0.53], rtol=1e-11)


def test_rake_with_only_shares_scales_to_the_sample_size():
    gender = analysis.read_margin(DATA / "margin_gender.csv")
    design = analysis.make_design(responses(), CRITERIA, "rake", margins=[gender])
    assert design.weights.sum() == pytest.approx(len(responses()))


def test_rake_one_margin_is_poststratification():
    frame = responses()
    agency = analysis.read_margin(DATA / "margin_agency.csv")
    raked = analysis.compute_indices(
        frame, element_map(), weighting="rake", margins=[agency], by="gender"
    )
    post = analysis.compute_indices(
        frame, element_map(), weighting="poststrat", totals=agency, by="gender"
    )
    np.testing.assert_allclose(raked["estimate"], post["estimate"], rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(raked["se"], post["se"], rtol=1e-8, equal_nan=True)


def test_rake_errors_name_the_level_and_the_totals():
    field = analysis.read_margin(DATA / "margin_field.csv")
    short = field[field["field"] != "Đất đai"]
    with pytest.raises(AnalysisInputError, match="field='Đất đai'"):
        analysis.make_design(responses(), CRITERIA, "rake", margins=[short])
    doubled = field.assign(count=field["count"] * 2)
    agency = analysis.read_margin(DATA / "margin_agency.csv")
    with pytest.raises(AnalysisInputError, match="disagree on the population total"):
        analysis.make_design(responses(), CRITERIA, "rake", margins=[agency, doubled])
    extra = pd.concat([field, pd.DataFrame({"field": ["Y tế"], "count": [5.0]})])
    with pytest.raises(AnalysisInputError, match="field='Y tế'.*no respondents"):
        analysis.make_design(responses(), CRITERIA, "rake", margins=[extra])


def test_trimming_caps_weights_and_keeps_the_total():
    untrimmed = analysis.make_design(responses(), CRITERIA, "poststrat", totals=totals())
    design = analysis.make_design(responses(), CRITERIA, "poststrat", totals=totals(), trim=1.5)
    cap = 1.5 * untrimmed.weights.mean()
    assert untrimmed.weights.max() > cap
    assert design.weights.max() <= cap * (1 + 1e-12)
    assert design.weights.sum() == pytest.approx(untrimmed.weights.sum(), rel=1e-12)
    # only the capped weights go down; the others all rise by the same amount
    lowered = design.weights < untrimmed.weights
    assert np.allclose(design.weights[lowered], cap)
    rise = (design.weights - untrimmed.weights)[~lowered]
    assert np.ptp(rise) < 1e-9 and rise.min() > 0
    with pytest.raises(AnalysisInputError, match="multiple > 1"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=totals(), trim=0.8)


def test_kish_figures_follow_the_weights():
    design = analysis.make_design(responses(), CRITERIA, "poststrat", totals=totals())
    table = analysis.compute_indices(design, element_map())
    overall = table[table["level"] == "overall"].iloc[0]
    w = design.weights
    assert overall["kish_neff"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert overall["deff_kish"] == pytest.approx(len(w) / overall["kish_neff"])
    assert overall["weight_sum"] == pytest.approx(w.sum())


def test_unknown_weighting_and_missing_inputs():
    with pytest.raises(AnalysisInputError, match="weighting"):
        analysis.make_design(responses(), CRITERIA, "calibrate")
    with pytest.raises(AnalysisInputError, match="totals"):
        analysis.make_design(responses(), CRITERIA, "poststrat")
    with pytest.raises(AnalysisInputError, match="margin"):
        analysis.make_design(responses(), CRITERIA, "rake")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 7), min_size=6, max_size=6),
    counts=st.lists(
        st.one_of(st.none(), st.just(0.0), st.floats(1, 1e6, allow_nan=False)),
        min_size=6,
        max_size=6,
    ),
    min_cell_n=st.integers(2, 6),
)
def test_volumes_with_zeros_and_missing_cells_lose_nothing_silently(sizes, counts, min_cell_n):
    """Two agencies x three fields, any cell empty, 0 or missing from the totals: every
    positive transaction is carried, every respondent of an agency with a positive total is
    weighted (> 0), and the others are in the notes."""
    keys = [(a, f) for a in ("A", "B") for f in ("1", "2", "3")]
    rows = [key for key, n in zip(keys, sizes, strict=True) for _ in range(n)]
    listed = [(key, c) for key, c in zip(keys, counts, strict=True) if c is not None]
    agency_total = {a: sum(c for (k, c) in listed if k[0] == a) for a in ("A", "B")}
    listed_agencies = {k[0] for k, _ in listed}
    sampled = {a for a, _ in rows}
    if len(rows) < 2 or not sampled <= listed_agencies:
        return  # too few responses, or an agency with no totals at all: errors tested above
    kept = [r for r in rows if agency_total[r[0]] > 0]
    frame = pd.DataFrame(rows, columns=["agency", "field"])
    for c in CRITERIA:
        frame[c] = 4
    t = pd.DataFrame([(*k, c) for k, c in listed], columns=["agency", "field", "count"])
    if len(kept) < 2:
        with pytest.raises(AnalysisInputError):
            analysis.make_design(frame, CRITERIA, "poststrat", totals=t, min_cell_n=min_cell_n)
        return
    design = analysis.make_design(frame, CRITERIA, "poststrat", totals=t, min_cell_n=min_cell_n)
    assert design.n == len(kept)
    assert np.all(design.weights > 0) and np.all(np.isfinite(design.weights))
    carried = sum(agency_total[a] for a in sampled if agency_total[a] > 0)
    assert design.weights.sum() == pytest.approx(carried)
    notes = design.notes
    dropped = notes.loc[notes["kind"] == "zero_total_dropped", "responses"].sum()
    assert dropped == len(rows) - len(kept)
    zero_cells = {
        k for k, n in zip(keys, sizes, strict=True)
        if n and agency_total[k[0]] > 0 and not dict(listed).get(k)
    }
    pooled = notes.loc[notes["kind"] == "zero_cells_pooled", "responses"].sum()
    assert pooled == sum(sizes[keys.index(k)] for k in zero_cells)
    unrepresented = notes.loc[notes["kind"] == "unrepresented", "transactions"].sum()
    assert unrepresented == pytest.approx(
        sum(agency_total[a] for a in listed_agencies - sampled if agency_total[a] > 0)
    )


def test_results_with_different_notes_concatenate():
    """An analyst joins two periods' tables: pd.concat compares their attrs, which raised
    "The truth value of a DataFrame is ambiguous" when the notes differed. The notes are
    kept where they agree and dropped where they do not; they stay DataFrames."""
    frame = pd.DataFrame({"agency": ["A"] * 6 + ["B"] * 6, "field": ["x"] * 3 + ["y"] * 3 + ["x"]
                          * 3 + ["y"] * 3, "a1": [4, 5, 3, 4, 5, 1] * 2,
                          "a2": [5, 5, 4, 2, 4, 3] * 2})
    totals = pd.DataFrame({"agency": ["A", "A", "B", "B"], "field": ["x", "y", "x", "y"],
                           "count": [10, 100, 20, 30.0]})
    options = {"by": "agency", "weighting": "poststrat", "totals": totals}
    first = analysis.compute_indices(frame, {"A": ["a1", "a2"]}, **options)
    second = analysis.compute_indices(frame.iloc[:10], {"A": ["a1", "a2"]}, **options)
    assert len(first.attrs["notes"]) and not first.attrs["notes"].equals(second.attrs["notes"])
    same = pd.concat([first, first], ignore_index=True)
    assert same.attrs["notes"].equals(first.attrs["notes"])
    assert isinstance(same.attrs["notes"], pd.DataFrame)
    mixed = pd.concat([first, second], ignore_index=True)
    assert len(mixed) == len(first) + len(second) and "notes" not in mixed.attrs
    notes = first.attrs["notes"]
    assert (notes["kind"] == "pooled_cells").dtype == bool  # element-wise as usual
    periods = analysis.compare_periods(frame.assign(period=["2026-Q1", "2026-Q2"] * 6),
                                       {"A": ["a1", "a2"]}, **options)
    pd.concat([periods, periods, first])
