"""The definitions on small hand-checkable data: estimators, composites, intervals, flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis

ELEMENTS = {"A": ["q1", "q2"], "B": ["q3"]}


def table_for(frame, **kwargs):
    return analysis.compute_indices(frame, ELEMENTS, **kwargs)


def row(table, level, key, by="ALL", **group):
    rows = table[(table["by"] == by) & (table["level"] == level) & (table["key"] == key)]
    for k, v in group.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1
    return rows.iloc[0]


def test_columns_in_the_documented_order():
    frame = pd.DataFrame({"agency": ["X", "Y"], "q1": [4, 5], "q2": [3, 4], "q3": [5, 1]})
    table = table_for(frame, by=["agency"])
    assert list(table.columns) == ["by", "agency", *analysis.COLUMNS]
    assert list(table["level"][:6]) == [
        "overall",
        "element",
        "element",
        "criterion",
        "criterion",
        "criterion",
    ]
    assert list(table["key"][:9]) == ["SIPAS", "A", "B", "q1", "q2", "q3", "q1", "q2", "q3"]
    assert table["n_answered"].dtype == "Int64"


def test_estimators_by_hand():
    frame = pd.DataFrame(
        {
            "q1": [5, 4, 2, None, 3],
            "q2": [None, None, None, None, None],
            "q3": [4, 1, 5, 5, None],
        }
    )
    table = table_for(frame)
    assert row(table, "criterion", "q1")["estimate"] == pytest.approx(50.0)
    assert row(table, "mean_score", "q1")["estimate"] == pytest.approx(3.5)
    q2 = row(table, "criterion", "q2")
    assert np.isnan(q2["estimate"]) and q2["n_answered"] == 0 and q2["weight_sum_answered"] == 0
    # element A: only q1 is defined; B: q3 = 75%; SIPAS: mean of 50 and 75
    assert row(table, "element", "A")["estimate"] == pytest.approx(50.0)
    assert row(table, "element", "B")["estimate"] == pytest.approx(75.0)
    assert row(table, "overall", "SIPAS")["estimate"] == pytest.approx(62.5)
    assert row(table, "overall", "SIPAS")["n"] == 5
    assert pd.isna(row(table, "overall", "SIPAS")["n_answered"])


def test_unweighted_whole_file_variance_is_the_textbook_one():
    rng = np.random.default_rng(7)
    n = 50
    frame = pd.DataFrame({c: rng.integers(1, 6, n) for c in ("q1", "q2", "q3")})
    table = table_for(frame)
    q1 = row(table, "criterion", "q1")
    r = (frame["q1"] >= 4).mean()
    assert q1["se"] == pytest.approx(100 * np.sqrt(r * (1 - r) / (n - 1)))
    assert q1["deff"] == pytest.approx(1.0)
    assert q1["deff_kish"] == pytest.approx(1.0) and q1["kish_neff"] == pytest.approx(n)
    # the whole file is one stratum of n respondents: the interval's variance is R's,
    # s^2 / n (the small-domain factor m / (m - 1) replaces n / (n - 1), here the same)
    se_ci = np.sqrt(r * (1 - r) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * se_ci / (r * (1 - r))
    logit = np.log(r / (1 - r))
    assert q1["ci_low"] == pytest.approx(100 / (1 + np.exp(-(logit - half))))
    assert q1["ci_high"] == pytest.approx(100 / (1 + np.exp(-(logit + half))))
    assert q1["df"] == n - 1 and q1["ci_method"] == "logit-t"
    m = row(table, "mean_score", "q1")
    assert m["se"] == pytest.approx(frame["q1"].std(ddof=1) / np.sqrt(n))
    t975 = stats.t.ppf(0.975, n - 1)

    def logit_interval(p, se):
        half = t975 * se / (p * (1 - p))
        centre = np.log(p / (1 - p))
        return 1 / (1 + np.exp(-(centre - half))), 1 / (1 + np.exp(-(centre + half)))

    low, high = logit_interval((m["estimate"] - 1) / 4, m["se"] / 4)
    assert (m["ci_low"], m["ci_high"]) == pytest.approx((1 + 4 * low, 1 + 4 * high))
    assert m["df"] == n - 1 and m["ci_method"] == "logit-t"
    overall = row(table, "overall", "SIPAS")
    low, high = logit_interval(overall["estimate"] / 100, overall["se"] / 100)
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx((100 * low, 100 * high))
    assert overall["df"] == n - 1 and overall["criteria_used"] == "3 of 3"


def test_edge_intervals():
    frame = pd.DataFrame(
        {
            "agency": ["all5"] * 10 + ["one"] * 3,
            "q1": [5] * 10 + [4, None, None],
            "q2": [5] * 10 + [1, 2, 2],
            "q3": [5] * 10 + [None, None, None],
        }
    )
    table = table_for(frame, by="agency")
    cp = row(table, "criterion", "q1", by="agency", agency="all5")
    assert cp["estimate"] == 100 and cp["se"] == 0 and cp["ci_method"] == "exact-zero-se"
    assert cp["ci_low"] == pytest.approx(100 * 0.025 ** (1 / 10)) and cp["ci_high"] == 100
    assert np.isnan(cp["df"])
    zero = row(table, "criterion", "q2", by="agency", agency="one")
    assert zero["estimate"] == 0 and zero["ci_method"] == "exact-zero-se"
    assert zero["ci_low"] == 0 and zero["ci_high"] == pytest.approx(100 * (1 - 0.025 ** (1 / 3)))
    single = row(table, "criterion", "q1", by="agency", agency="one")
    assert single["n_answered"] == 1 and single["ci_method"] == "none"
    assert np.isnan(single["ci_low"]) and np.isnan(single["deff"])
    assert single["note"] == "fewer than 2 answered"
    elem = row(table, "element", "A", by="agency", agency="all5")
    # everyone agrees: no zero-width interval, an exact bound on the 10 respondents
    assert elem["se"] == 0 and elem["ci_method"] == "exact-zero-se"
    assert elem["ci_low"] == pytest.approx(100 * 0.025 ** (1 / 10)) and elem["ci_high"] == 100
    missing = row(table, "element", "B", by="agency", agency="one")
    assert np.isnan(missing["estimate"]) and missing["ci_method"] == "none"
    assert missing["criteria_used"] == "0 of 1" and missing["note"] == "no answers"
    overall = row(table, "overall", "SIPAS", by="agency", agency="one")
    assert overall["estimate"] == pytest.approx(50.0)  # only element A is defined
    assert overall["criteria_used"] == "2 of 3"


def test_small_groups_are_flagged_not_hidden():
    frame = pd.DataFrame({"agency": ["X"] * 5 + ["Y"] * 40, "q1": 4, "q2": 5, "q3": 3})
    table = table_for(frame, by="agency", min_n=30)
    flags = table[table["by"] == "agency"].groupby("agency")["flag"].unique()
    assert list(flags["X"]) == ["small_n"] and list(flags["Y"]) == [""]
    assert set(table[table["by"] == "ALL"]["flag"]) == {""}


def test_groupings_are_parsed_and_deduplicated():
    assert analysis.parse_by(["agency", "agency, period", ("agency", "period"), "ALL"]) == [
        ("agency",),
        ("agency", "period"),
    ]
    with pytest.raises(analysis.AnalysisInputError, match="repeated"):
        analysis.parse_by("agency,agency")


def test_unknown_grouping_variable():
    frame = pd.DataFrame({"q1": [4, 5], "q2": [4, 5], "q3": [4, 5]})
    with pytest.raises(analysis.AnalysisInputError, match="district"):
        table_for(frame, by="district")


@pytest.mark.parametrize(("text", "parsed"), [
    ("4 of 5", (4, 5)), ("4/5", (4, 5)), ("0 of 1", (0, 1)), ("12 of 12", (12, 12)),
    ("4 / 5", None), ("4 of", None), ("", None), (None, None), (float("nan"), None),
    ("٤ of ٥", None), ("4 of 5 ", None), ("=4/5", None),
])
def test_criteria_used_reads_back_and_no_spreadsheet_takes_it_for_a_date(text, parsed):
    from analysis.indices import criteria_used_text, parse_criteria_used

    assert parse_criteria_used(text) == parsed
    if parsed is not None:
        written = criteria_used_text(*parsed)
        assert parse_criteria_used(written) == parsed
        # Excel reads d/m, m/d, d-m and h:m as dates or times: none of those characters.
        assert not set(written) & set("/-:.")
