"""False alarms of the tests of difference on a population where every agency is the same.

A small, fast version of bench/bench_null.py: 12 agencies of 8 respondents and 2 of 40 per
period, 5 service fields drawn at random, satisfaction that depends on the field and the
person but not on the agency, and volumes in the same field shares for every agency, so
every agency's true index equals the province's and every period's equals the previous
one's. 30 samples, fixed seed, post-stratified with the library's defaults. The published
p-values reject at 5% about 1.5-3% of the time here; the old rule (diff / diff_se against
t(n - 1), no small-sample correction) rejects about 7% of the same tests, and the test
checks that too, so it fails if the small-sample treatment is lost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import analysis

SIZES = [8] * 12 + [40] * 2
N_FIELDS, REPS = 5, 30
ELEMENTS = {"A": ["a1", "a2"], "B": ["b1", "b2", "b3"]}
CRITERIA = [c for crits in ELEMENTS.values() for c in crits]
BOUND = 0.045  # rejections at 5% (here 1.5-3%), with room for the Monte Carlo error


def samples():
    rng = np.random.default_rng(7)
    field_mean = 4.0 + rng.normal(0, 0.3, N_FIELDS)
    share = rng.dirichlet(np.full(N_FIELDS, 3.0))
    served = rng.integers(300, 3000, len(SIZES))
    totals = pd.DataFrame(
        [(f"A{a:02d}", f"F{f}", served[a] * share[f]) for a in range(len(SIZES))
         for f in range(N_FIELDS)],
        columns=["agency", "field", "count"],
    )
    agency = np.repeat(np.arange(len(SIZES)), SIZES)
    for _ in range(REPS):
        frames = []
        for period in ("2024-Q1", "2024-Q2"):
            field = rng.integers(0, N_FIELDS, len(agency))
            latent = (field_mean[field] + rng.normal(0, 0.6, len(agency)))[:, None]
            latent = latent + rng.normal(0, 0.7, (len(agency), len(CRITERIA)))
            answers = np.clip(np.round(latent), 1, 5)
            answers[rng.random(answers.shape) < 0.05] = np.nan
            frame = pd.DataFrame(answers, columns=CRITERIA)
            frame["agency"] = [f"A{a:02d}" for a in agency]
            frame["field"] = [f"F{f}" for f in field]
            frame["period"] = period
            frames.append(frame)
        yield pd.concat(frames, ignore_index=True), totals


def old_rule(rows: pd.DataFrame) -> np.ndarray:
    """p-values of diff / diff_se against t(n - 1): the rule this test guards against."""
    behind = rows["n_answered"].astype("Float64").fillna(rows["n"]).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.abs(rows["diff"].to_numpy() / rows["diff_se"].to_numpy())
    return 2 * stats.t.sf(t, np.maximum(behind - 1, 1))


def test_tests_of_difference_keep_their_level_for_small_agencies():
    new, old, periods = [], [], []
    for frame, totals in samples():
        later = frame[frame["period"] == "2024-Q2"]
        table = analysis.compute_indices(later, ELEMENTS, weighting="poststrat",
                                         totals=totals, by="agency")
        rows = table[(table["by"] == "agency") & (table["level"] != "mean_score")]
        rows = rows[rows["diff_p"].notna()]
        new.append(rows["diff_p"].to_numpy())
        old.append(old_rule(rows))
        compared = analysis.compare_periods(frame, ELEMENTS, weighting="poststrat",
                                            totals=totals, by="agency")
        compared = compared[(compared["by"] == "agency") & compared["diff_p"].notna()]
        periods.append(compared["diff_p"].to_numpy())
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.abs(compared["diff"] / compared["diff_se"]).to_numpy(dtype=float)
        df = np.minimum(compared["n"], compared["previous_n"]).to_numpy(dtype=float) - 1
        old.append(2 * stats.t.sf(t, np.maximum(df, 1)))
    new, old, periods = (np.concatenate(x) for x in (new, old, periods))
    assert len(new) > 2000 and len(periods) > 3000
    assert (new < 0.05).mean() <= BOUND, (new < 0.05).mean()
    assert (periods < 0.05).mean() <= BOUND, (periods < 0.05).mean()
    # the same samples under the old rule: too many false alarms
    assert (old < 0.05).mean() > 0.06, (old < 0.05).mean()
