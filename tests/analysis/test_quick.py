"""The counter quick form's indices: share satisfied (weighted and not), reasons, criteria."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

import analysis
from analysis.cli import quick_main
from analysis.questionnaire import load_file, parse
from analysis.quick import QuickIndices, quick_indices, reason_sets, wilson_interval

from .helpers import ROOT

QUICK_FILE = ROOT / "questionnaires" / "counter-quick-v1.yaml"
QUICK = load_file(QUICK_FILE)
LABELS = {1: "Phải chờ quá lâu", 4: "Thái độ của công chức chưa tốt", 8: "Lý do khác"}


def quick_form(reasons=None, criteria=None, element=None, mutate=None):
    """The shipped quick form, with only these reason codes and criteria (a variant file)."""
    data = yaml.safe_load(QUICK_FILE.read_text("utf-8"))
    for section in data["sections"]:
        for question in section["questions"]:
            if question.get("role") == "reasons" and reasons is not None:
                question["options"] = [o for o in question["options"] if o["code"] in reasons]
        if "element" in section and criteria is not None:
            section["questions"] = [q for q in section["questions"] if q["id"] in criteria]
        if "element" in section and element is not None:
            section["element"] = element
            data["elements"][0]["id"] = element
    if mutate is not None:
        mutate(data)
    return parse(data, "counter-quick-variant.yaml")


def synthetic(n=240, seed=11) -> pd.DataFrame:
    """Quick-form answers from two agencies, typed as text the way a CSV reads them."""
    rng = np.random.default_rng(seed)
    agency = rng.choice(["STP", "SYT"], n, p=[0.6, 0.4])
    field = rng.choice(["1", "2"], n)
    unhappy = np.where(agency == "STP", 0.1, 0.3)
    u = rng.random(n)
    overall = np.where(u < unhappy, "1", np.where(u < 0.6, "2", "3"))
    overall[rng.random(n) < 0.05] = ""
    reasons = [
        ";".join(str(c) for c in sorted(rng.choice([1, 4, 8], rng.integers(1, 3), replace=False)))
        if o == "1" and rng.random() < 0.9
        else ""
        for o in overall
    ]
    frame = pd.DataFrame(
        {
            "response_id": [f"P{i:04d}" for i in range(n)],
            "agency": agency,
            "field": field,
            "overall": overall,
            "reasons": reasons,
        }
    )
    for q in ("q1", "q2", "q3", "q4"):
        values = rng.integers(1, 6, n).astype("float64")
        values[rng.random(n) < 0.1] = np.nan
        frame[q] = values
    return frame


TOTALS = pd.DataFrame(
    {
        "agency": ["STP", "STP", "SYT", "SYT"],
        "field": ["1", "2", "1", "2"],
        "count": [1200.0, 300.0, 500.0, 2000.0],
    }
)


def test_wilson_interval_matches_statsmodels():
    x = np.array([0, 1, 5, 17, 29, 30, 160])
    n = np.array([30, 30, 12, 40, 30, 30, 187])
    low, high = wilson_interval(x, n)
    ref_low, ref_high = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert_allclose(low, ref_low, rtol=1e-12, atol=1e-15)
    assert_allclose(high, ref_high, rtol=1e-12, atol=1e-15)
    assert np.isnan(wilson_interval(0, 0)[0])


def test_unweighted_share_counts_and_wilson():
    frame = synthetic()
    result = quick_indices(frame, QUICK, by="agency", min_n=100)
    assert isinstance(result, QuickIndices)
    table = result.satisfaction
    assert list(table["by"]) == ["ALL", "agency", "agency"]
    for _, row in table.iterrows():
        part = frame if row["by"] == "ALL" else frame[frame["agency"] == row["agency"]]
        counts = part["overall"].value_counts()
        assert (row["very_satisfied"], row["satisfied"], row["not_satisfied"]) == (
            counts.get("3", 0),
            counts.get("2", 0),
            counts.get("1", 0),
        )
        rated = (part["overall"] != "").sum()
        satisfied = part["overall"].isin(["2", "3"]).sum()
        assert row["n"] == len(part) and row["n_answered"] == rated
        assert row["unweighted"] == pytest.approx(100 * satisfied / rated)
        # Unweighted design: the weighted estimate is the same share.
        assert row["estimate"] == pytest.approx(row["unweighted"])
        low, high = proportion_confint(satisfied, rated, method="wilson")
        assert (row["wilson_low"], row["wilson_high"]) == (
            pytest.approx(100 * low),
            pytest.approx(100 * high),
        )
        assert row["ci_method"] == "logit-t"
        assert row["flag"] == ("small_n" if len(part) < 100 else "")


def test_weighted_share_is_the_ratio_with_its_linearized_se_and_logit_interval():
    frame = synthetic()
    result = quick_indices(frame, QUICK, weighting="poststrat", totals=TOTALS, by="agency")
    design = analysis.make_design(frame, ["q1"], weighting="poststrat", totals=TOTALS)
    rated = frame["overall"].isin(["1", "2", "3"]).to_numpy(dtype="float64")
    satisfied = frame["overall"].isin(["2", "3"]).to_numpy(dtype="float64")
    group = np.where(frame["agency"] == "STP", 0, 1)
    expected = pd.concat(
        [analysis.ratio(design, satisfied, rated), analysis.ratio(design, satisfied, rated, group)],
        ignore_index=True,
    )
    table = result.satisfaction
    assert_allclose(table["estimate"], 100 * expected["estimate"], rtol=1e-12)
    assert_allclose(table["se"], 100 * expected["se"], rtol=1e-10)
    assert_allclose(table["weight_sum_answered"], expected["denominator"], rtol=1e-12)
    # Weighting moves the estimate away from the plain share (SYT is less satisfied and
    # weighs more in the totals).
    assert table["estimate"].iloc[0] < table["unweighted"].iloc[0] - 1
    # The logit interval, by hand, with the criterion intervals' rule (METHODS section 4):
    # logit(r) +- t(0.975, df) SE* / (r (1 - r)), SE*^2 = sum_h v_h over the weighting
    # cells, v_h = w_h^2 SSD_h m_h / (m_h - 1) (m_h who rated in the group's part of h),
    # df the smallest of Satterthwaite's (sum v_h)^2 / sum v_h^2 / (m_h - 1), the same
    # without the floor below and with v_h = w_h^2 m_h (the design's), SE* at least the SE;
    # SSD_h at least m_h p (1 - p) / den^2, p = (x_h + r) / (m_h + 1), x_h the satisfied.
    r, se = expected["estimate"].to_numpy(), expected["se"].to_numpy()
    w, cell, n = design.weights, design.cell, design.n
    se_star, dfs = [], []
    for g, inside in enumerate([np.ones(n, bool), group == 0, group == 1]):
        den = (w * rated)[inside].sum()
        z = np.where(inside, (satisfied - r[g] * rated) / den, 0.0)
        frame_z = pd.DataFrame({"cell": cell, "z": z, "m": rated * inside, "w": w,
                                "x": satisfied * inside})
        by_cell = frame_z.groupby("cell")
        m = by_cell["m"].sum()
        share = (by_cell["x"].sum() + r[g]) / (m + 1)
        raw = by_cell["z"].agg(lambda v: ((v - v.mean()) ** 2).sum())
        ssd = np.maximum(raw, m * share * (1 - share) / den**2)
        factor = np.where(m >= 2, m / np.maximum(m - 1, 1), n / (n - 1))
        w2 = by_cell["w"].first() ** 2
        v = w2 * ssd * factor
        se_star.append(max(np.sqrt(v.sum()), se[g]))

        def satterthwaite(v, m=m):
            return v.sum() ** 2 / (v**2 / np.maximum(m - 1, 1)).sum()

        # the smallest of the df with and without the floor and the design's (w_h^2 m_h)
        df = min(satterthwaite(v), satterthwaite(w2 * raw * factor), satterthwaite(w2 * m))
        dfs.append(max(round(df, 2), 1.0))
    assert_allclose(table["df"], dfs, rtol=1e-12)
    assert (np.array(dfs) < table["n_answered"].to_numpy(dtype=float) - 1).all()
    half = stats.t.ppf(0.975, dfs) * np.array(se_star) / (r * (1 - r))
    centre = np.log(r / (1 - r))
    assert_allclose(table["ci_low"], 100 / (1 + np.exp(-(centre - half))), rtol=1e-10)
    assert_allclose(table["ci_high"], 100 / (1 + np.exp(-(centre + half))), rtol=1e-10)


def test_everyone_satisfied_gives_an_edge_interval():
    frame = synthetic(60)
    frame["overall"] = "3"
    row = quick_indices(frame, QUICK).satisfaction.iloc[0]
    assert row["estimate"] == 100 and row["unweighted"] == 100
    assert row["ci_method"] == "exact-zero-se" and row["ci_high"] == 100
    assert row["wilson_high"] == pytest.approx(100) and row["wilson_low"] < 95


def test_reasons_are_tallied_among_the_not_satisfied():
    frame = pd.DataFrame(
        {
            "agency": ["A", "A", "A", "A", "B", "B"],
            "overall": ["1", "1", "1", "3", "1", "2"],
            # The satisfied respondent's typed reason is ignored (the web form hides it).
            "reasons": ["1;4", "4", "", "1", [8], ""],
            "q1": [1, 2, 3, 4, 5, None],
        }
    )
    result = quick_indices(frame, quick_form(reasons=LABELS, criteria=["q1"]), by="agency")
    table = result.reasons.set_index(["by", "agency", "reason"])
    everyone = table.loc[("ALL", None)]
    assert list(everyone.index) == [1, 4, 8]
    assert list(everyone["count"]) == [1, 2, 1]
    assert list(everyone["respondents"]) == [3, 3, 3]  # not satisfied with a reason
    assert list(everyone["not_satisfied"]) == [4, 4, 4]
    assert_allclose(everyone["share"], [100 / 3, 200 / 3, 100 / 3])
    assert everyone.loc[4, "label"] == "Thái độ của công chức chưa tốt"
    a = table.loc[("agency", "A")]
    assert list(a["count"]) == [1, 2, 0] and list(a["respondents"]) == [2, 2, 2]
    b = table.loc[("agency", "B")]
    assert list(b["count"]) == [0, 0, 1] and b.loc[8, "share"] == 100


def test_weighted_reason_shares_use_the_design_weights():
    frame = synthetic()
    result = quick_indices(frame, QUICK, weighting="poststrat", totals=TOTALS)
    design = analysis.make_design(frame, ["q1"], weighting="poststrat", totals=TOTALS)
    w = design.weights
    sets = reason_sets(frame["reasons"])
    gave = np.array([bool(s) for s in sets]) & (frame["overall"] == "1").to_numpy()
    for _, row in result.reasons.iterrows():
        ticked = gave & np.array([row["reason"] in s for s in sets])
        assert row["weighted_share"] == pytest.approx(100 * w[ticked].sum() / w[gave].sum())


def test_quick_criteria_come_from_compute_indices():
    frame = synthetic()
    result = quick_indices(frame, QUICK, by="agency")
    expected = analysis.compute_indices(frame, {"Q": ["q1", "q2", "q3", "q4"]}, by="agency")
    expected = expected[expected["level"] != "overall"].reset_index(drop=True)
    got = result.criteria
    assert list(got["key"]) == list(expected["key"])
    assert_allclose(got["estimate"], expected["estimate"], rtol=1e-12)
    assert_allclose(got["se"], expected["se"], rtol=1e-12)


@pytest.mark.parametrize(
    "column,value,message",
    [
        ("overall", "4", "row 3, column overall: '4' is not 3"),
        ("overall", "Hài lòng", "row 3, column overall"),
        ("reasons", "1;x", "row 3, column reasons: 'x' is not a reason code"),
        ("reasons", "9", "row 3, column reasons: '9' is not a reason code (1, 4, 8)"),
    ],
)
def test_bad_values_name_the_row_and_column(column, value, message):
    frame = synthetic(10)
    frame["overall"] = "1"
    frame.loc[2, column] = value
    with pytest.raises(
        analysis.AnalysisInputError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        quick_indices(frame, quick_form(reasons=LABELS))


def test_command_line_writes_three_tables(tmp_path):
    frame = synthetic()
    path = tmp_path / "quick.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    assert (
        quick_main(
            [
                str(path),
                "--questionnaire",
                str(QUICK_FILE),
                "--by",
                "agency",
                "-o",
                str(tmp_path / "out.csv"),
            ]
        )
        == 0
    )
    satisfaction = pd.read_csv(tmp_path / "out-satisfaction.csv", encoding="utf-8-sig")
    reasons = pd.read_csv(tmp_path / "out-reasons.csv", encoding="utf-8-sig")
    criteria = pd.read_csv(tmp_path / "out-criteria.csv", encoding="utf-8-sig")
    assert list(satisfaction["by"]) == ["ALL", "agency", "agency"]
    # Every reason of the file is listed, with its Vietnamese label.
    assert sorted(set(reasons["reason"])) == list(range(1, 9))
    assert "Phải chờ quá lâu" in set(reasons["label"])
    assert set(criteria["key"]) == {"Q", "q1", "q2", "q3", "q4"}


def test_the_level_sets_every_interval(tmp_path):
    """level= (and --level) reaches the logit interval and Wilson's: 90% is narrower."""
    frame = synthetic()
    wide = quick_indices(frame, QUICK, by="agency").satisfaction
    narrow = quick_indices(frame, QUICK, by="agency", level=0.90).satisfaction
    assert (narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]).all()
    low, high = proportion_confint(narrow["satisfied"] + narrow["very_satisfied"],
                                   narrow["n_answered"], alpha=0.10, method="wilson")
    assert_allclose(narrow["wilson_low"], 100 * low, rtol=1e-12)
    assert_allclose(narrow["wilson_high"], 100 * high, rtol=1e-12)
    path = tmp_path / "quick.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    assert quick_main([str(path), "--questionnaire", str(QUICK_FILE), "--by", "agency",
                       "--level", "0.9", "-o", str(tmp_path / "out.csv")]) == 0
    written = pd.read_csv(tmp_path / "out-satisfaction.csv", encoding="utf-8-sig")
    assert_allclose(written["ci_low"], narrow["ci_low"], rtol=1e-12)


@pytest.mark.parametrize("level", ["0", "1", "95", "abc"])
def test_a_level_outside_0_1_is_refused(tmp_path, capsys, level):
    path = tmp_path / "quick.csv"
    synthetic(20).to_csv(path, index=False)
    with pytest.raises(SystemExit) as stop:
        quick_main([str(path), "--questionnaire", str(QUICK_FILE), "--level", level])
    assert stop.value.code == 2 and "--level" in capsys.readouterr().err


def test_command_line_reports_bad_input(tmp_path, capsys):
    frame = synthetic(10)
    frame.loc[4, "overall"] = "5"
    path = tmp_path / "quick.csv"
    frame.to_csv(path, index=False)
    assert quick_main([str(path), "--questionnaire", str(QUICK_FILE)]) == 2
    assert "row 5, column overall" in capsys.readouterr().err


def _renamed(data):
    """Other ids for the rating, the reasons and the element: only the roles say which is which."""
    for section in data["sections"]:
        for question in section["questions"]:
            question["id"] = {"overall": "rating", "reasons": "why"}.get(question["id"],
                                                                         question["id"])
            if "show_if" in question:
                question["show_if"]["question"] = "rating"


def test_columns_come_from_the_roles_and_elements_of_the_file_not_from_ids():
    frame = synthetic()
    expected = quick_indices(frame, QUICK, by="agency")
    renamed = quick_form(element="N", mutate=_renamed)
    got = quick_indices(frame.rename(columns={"overall": "rating", "reasons": "why"}), renamed,
                        by="agency")
    assert_allclose(got.satisfaction["estimate"], expected.satisfaction["estimate"], rtol=1e-14)
    assert list(got.reasons["count"]) == list(expected.reasons["count"])
    assert set(got.criteria["key"]) == {"N", "q1", "q2", "q3", "q4"}
    assert_allclose(got.criteria["estimate"], expected.criteria["estimate"], rtol=1e-14)


def test_reason_labels_follow_the_locale():
    frame = synthetic(60)
    english = quick_indices(frame, QUICK, locale="en").reasons.set_index("reason")["label"]
    assert english[1] == "I had to wait too long"
    assert quick_indices(frame, QUICK).reasons.set_index("reason")["label"][1] == LABELS[1]


def test_a_form_without_an_overall_rating_is_refused():
    sipas = load_file(ROOT / "questionnaires" / "sipas-service-v1.yaml")
    with pytest.raises(analysis.AnalysisInputError, match="no question with role overall_rating"):
        quick_indices(synthetic(20), sipas)


def test_command_line_names_the_fault_of_a_questionnaire_file(tmp_path, capsys):
    path = tmp_path / "quick.csv"
    synthetic(20).to_csv(path, index=False)
    broken = tmp_path / "quick.yaml"
    broken.write_text(QUICK_FILE.read_text("utf-8").replace("role: reasons", "role: reason"),
                      "utf-8")
    assert quick_main([str(path), "--questionnaire", str(broken)]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "sections[0].questions[1].role" in err
    assert "unknown role 'reason'" in err
    sipas = ROOT / "questionnaires" / "sipas-service-v1.yaml"
    assert quick_main([str(path), "--questionnaire", str(sipas)]) == 2
    assert "no question with role overall_rating" in capsys.readouterr().err
