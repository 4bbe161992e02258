"""Intervals where a few respondents carry the weight: effective n, df and near-zero SEs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis
from analysis.indices import interval

ELEMENTS = {"A": ["a1"], "E": ["e1", "e2", "e3"]}


def weighted_agency() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The analyst's SYT, Q3 2026: two weighting cells of weights 1.2 and 527.4; element E
    asked of 4 respondents, e3 answered by 2 (3 by the light one, 4 by a heavy one)."""
    e = {0: (3, 5, None), 1: (4, 3, 4), 2: (4, 3, None)}
    rows = []
    for i in range(9):  # the heavy cell
        rows.append(("SYT", "Y", 5 if i % 3 else 3, *e.get(i, (None, None, None))))
    for i in range(5):  # the light cell
        rows.append(("SYT", "X", 4 if i % 2 else 5, *((4, 4, 3) if i == 0 else (None,) * 3)))
    frame = pd.DataFrame(rows, columns=["agency", "field", "a1", "e1", "e2", "e3"])
    totals = pd.DataFrame(
        {"agency": ["SYT", "SYT"], "field": ["X", "Y"], "count": [6.0, 4747.0]}
    )
    return frame, totals


def test_one_heavy_respondent_gets_no_interval_and_an_element_no_narrow_one():
    frame, totals = weighted_agency()
    table = analysis.compute_indices(
        frame, ELEMENTS, weighting="poststrat", totals=totals, min_cell_n=1
    )
    row = table.set_index(["level", "key"])
    # e3: 2 answered, but the heavy one carries 99.8% of the weight (Kish n 1.005)
    for level in ("criterion", "mean_score"):
        e3 = row.loc[(level, "e3")]
        assert e3["kish_neff"] < 1.01 and e3["n_answered"] == 2
        assert e3["ci_method"] == "none" and np.isnan(e3["ci_low"])
        assert "fewer than 2 effective respondents" in e3["note"]
        assert e3["se"] > 0  # the se column stays R's linearization SE
    # element E: the heavy respondents' criteria cancel, the SE is near zero; the interval
    # is the exact bound on the effective respondents, not a 0.4-point band
    element = row.loc[("element", "E")]
    assert element["se"] < 0.5
    assert element["ci_method"] == "exact-small-se"
    assert element["ci_high"] - element["ci_low"] > 50
    assert element["ci_low"] <= element["estimate"] <= element["ci_high"]
    # e1 (4 answered, Kish n 3): df no more than the effective respondents less one
    e1 = row.loc[("criterion", "e1")]
    assert e1["ci_method"] == "logit-t" and e1["df"] <= e1["kish_neff"] - 1 + 0.01


def test_equal_weights_keep_their_intervals():
    """Unweighted, n* = n: the df rule changes nothing and 2 respondents still get one."""
    frame = pd.DataFrame({"a1": [5, 3, 4, 2, 5, 1], "e1": [5, 2, None, None, None, None],
                          "e2": [4, 4, None, None, None, None],
                          "e3": [5, 1, None, None, None, None]})
    table = analysis.compute_indices(frame, ELEMENTS).set_index(["level", "key"])
    assert table.loc[("criterion", "a1"), "df"] == 5
    assert table.loc[("criterion", "e1"), "ci_method"] == "logit-t"
    assert table.loc[("criterion", "e1"), "df"] == 1


@settings(max_examples=300, deadline=None)
@given(
    est=st.floats(0.001, 0.999),
    se=st.floats(0, 0.5),
    n_obs=st.integers(0, 60),
    neff_share=st.floats(0.01, 1.0),
    step=st.sampled_from([1.0, 0.25, 1 / 3, 1 / 20]),
    df=st.floats(0.1, 100),
)
def test_no_interval_pretends(est, se, n_obs, neff_share, step, df):
    """Whatever the inputs: no interval below 2 (effective) respondents, none of zero width,
    t df never above the effective respondents less one, and no t interval whose SE is below
    a single dissenting answer among the effective respondents."""
    neff = max(n_obs * neff_share, 0.0)
    out = interval(np.array([est]), np.array([se]), np.array([n_obs]), np.array([neff]),
                   0.95, "logit", se_ci=np.array([se * 1.1]), df=np.array([df]), step=step)
    method, low, high = out["method"][0], out["low"][0], out["high"][0]
    n_star = min(neff, n_obs)
    if n_obs < 2 or n_star < 2 - 1e-9:
        assert method == "none" and np.isnan(low) and out["note"][0]
        return
    assert high > low
    assert low <= est <= high
    if method == "logit-t":
        assert out["df"][0] <= max(round(n_star - 1, 2), 1.0) + 1e-12
        assert se * 1.1 >= step * np.sqrt((n_star - 1) / n_star**3)
    else:
        assert method in ("exact-zero-se", "exact-small-se")


@settings(max_examples=200, deadline=None)
@given(
    est=st.floats(0.02, 0.98),
    sampling=st.floats(1e-6, 0.05),
    extra=st.floats(0.0, 0.3),
    n_obs=st.integers(3, 200),
    df=st.floats(1, 100),
)
def test_an_allowance_never_narrows_an_interval(est, sampling, extra, n_obs, df):
    """The pooling's allowance (``se_ci`` above the sampling part ``se_sampling``) only
    widens: the interval holds the one without it, and where the sampling SE is too small
    to measure anything it holds the exact bound as well as the t interval of the whole
    SE (before, an allowance that lifted such an SE above the threshold swapped the wide
    exact bound for a narrower t interval)."""
    args = (np.array([est]), np.array([sampling]), np.array([n_obs]), np.array([n_obs]))
    kw = {"df": np.array([df])}
    plain = interval(*args, 0.95, "logit", se_ci=np.array([sampling]), **kw)
    whole = np.array([np.hypot(sampling, extra)])
    widened = interval(*args, 0.95, "logit", se_ci=whole, se_sampling=np.array([sampling]), **kw)
    t_only = interval(*args, 0.95, "logit", se_ci=whole, **kw)
    assert widened["low"][0] <= plain["low"][0] + 1e-12
    assert widened["high"][0] >= plain["high"][0] - 1e-12
    assert widened["low"][0] <= t_only["low"][0] + 1e-12
    assert widened["high"][0] >= t_only["high"][0] - 1e-12
    assert widened["method"][0] == plain["method"][0]


def test_a_criterion_answered_by_one_widens_the_overall_interval():
    """An outside statistician's case: 20 respondents rate a1, one of them also answers
    element E (complaint handling, asked of those who complained). E weighs half of the
    overall index but rests on one answer: the overall interval used to be 72-78 (or
    91-97 when that one answer was a 5), as if E were known. Now it allows for E's own
    uncertainty (its Clopper-Pearson bound on one answer)."""
    rng = np.random.default_rng(3)
    a1 = rng.choice([3, 4, 5], size=20, p=[0.1, 0.4, 0.5])
    for answer in (1, 5):
        e = [answer] + [None] * 19
        frame = pd.DataFrame({"a1": a1, "e1": e, "e2": e, "e3": e})
        row = analysis.compute_indices(frame, ELEMENTS).set_index(["level", "key"])
        overall = row.loc[("overall", "SIPAS")]
        assert overall["ci_high"] - overall["ci_low"] > 35, overall
        assert overall["ci_low"] <= overall["estimate"] <= overall["ci_high"]
        element = row.loc[("element", "E")]
        assert element["ci_method"] == "none"  # one answer: no interval of its own
