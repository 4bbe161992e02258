"""Post-stratification, raking and trimming: weights, and errors that name the cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis import AnalysisInputError

from .helpers import DATA, element_map, margins, responses

CRITERIA = element_map().criteria


def totals() -> pd.DataFrame:
    return analysis.read_totals(DATA / "totals_agency_field.csv")


def test_poststratified_weights_sum_to_the_totals():
    design = analysis.make_design(responses(), CRITERIA, "poststrat", totals=totals())
    frame = responses().assign(w=design.weights)
    sums = frame.groupby(["agency", "field"])["w"].sum()
    t = totals().set_index(["agency", "field"])["count"]
    np.testing.assert_allclose(sums, t.loc[sums.index], rtol=1e-12)
    assert sums.sum() == pytest.approx(t.sum())  # the zero cell adds nothing


def test_sample_cell_missing_from_totals_is_named():
    t = totals()
    t = t[~((t["agency"] == "Sở Xây dựng") & (t["field"] == "Đất đai"))]
    with pytest.raises(AnalysisInputError, match="agency='Sở Xây dựng', field='Đất đai'"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=t)


def test_population_cell_without_respondents_is_named_or_dropped():
    t = pd.concat(
        [totals(), pd.DataFrame({"agency": ["Sở Y tế"], "field": ["Đất đai"], "count": [120.0]})]
    )
    with pytest.raises(AnalysisInputError, match="agency='Sở Y tế'.*no respondents"):
        analysis.make_design(responses(), CRITERIA, "poststrat", totals=t)
    design = analysis.make_design(
        responses(), CRITERIA, "poststrat", totals=t, drop_empty_cells=True
    )
    assert design.weights.sum() == pytest.approx(totals()["count"].sum())


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
