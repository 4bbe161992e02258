"""Coverage of the published intervals on repeated samples of a known population.

A small, fast version of bench/bench_coverage.py: 8 agencies x 5 service fields with served
volumes, about 160 responses per sample drawn as the demo's quarters (agency and field at
random, not in proportion to the volumes), 150 samples with a fixed seed. The bounds are
loose enough for the Monte Carlo error (about 2 points on the province, less on the
agencies) and tight enough that a real regression breaks them: intervals of post-strata of
one respondent (``min_cell_n=1``) cover about 92% of the time here, and 93-98% with the
defaults.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis

N_AGENCIES, N_FIELDS, N_RESPONSES, REPS = 8, 5, 160, 150
# Every (scope, level) covers at least this often (defaults: 93-98% here; one-respondent
# post-strata, min_cell_n=1: 92-98% for the agencies).
BOUND = 0.915
ELEMENTS = {"A": ["a1", "a2"], "B": ["b1", "b2", "b3"]}
CRITERIA = [c for crits in ELEMENTS.values() for c in crits]


def population(equal: bool = False):
    """Volumes (A, F) and the satisfied probability (A, F, C) of the population."""
    rng = np.random.default_rng(5)
    volumes = rng.integers(20, 3000, size=(N_AGENCIES, N_FIELDS)).astype(float)
    if equal:
        return volumes, np.full((N_AGENCIES, N_FIELDS, len(CRITERIA)), 0.7)
    agency = rng.normal(0, 0.5, N_AGENCIES)[:, None, None]
    field = rng.normal(0, 0.6, (N_AGENCIES, N_FIELDS))[:, :, None]
    criterion = np.linspace(-0.4, 0.4, len(CRITERIA))
    return volumes, 1 / (1 + np.exp(-(0.9 + agency + field + criterion)))


def truth(volumes, p, weighting):
    """True criterion, element and overall indices (percent): agencies (A, K), whole (K,)."""
    share = volumes if weighting == "poststrat" else np.ones_like(volumes)
    agencies = (share[:, :, None] * p).sum(axis=1) / share.sum(axis=1)[:, None]
    # "none": agencies are drawn in equal shares, fields in equal shares within them
    whole = (share[:, :, None] * p).sum(axis=(0, 1)) / share.sum()

    def levels(crit):
        elems = [crit[..., [CRITERIA.index(c) for c in cs]].mean(axis=-1)
                 for cs in ELEMENTS.values()]
        out = {("criterion", c): 100 * crit[..., j] for j, c in enumerate(CRITERIA)}
        out.update({("element", e): 100 * v for e, v in zip(ELEMENTS, elems, strict=True)})
        out[("overall", "SIPAS")] = 100 * np.mean(elems, axis=0)
        return out

    return levels(agencies), levels(whole)


def samples(p):
    rng = np.random.default_rng(2024)
    for _ in range(REPS):
        agency = rng.integers(0, N_AGENCIES, N_RESPONSES)
        field = rng.integers(0, N_FIELDS, N_RESPONSES)
        satisfied = rng.random((N_RESPONSES, len(CRITERIA))) < p[agency, field]
        answers = np.where(satisfied, rng.integers(4, 6, satisfied.shape),
                           rng.integers(1, 4, satisfied.shape)).astype(float)
        answers[rng.random(answers.shape) < 0.05] = np.nan
        frame = pd.DataFrame(answers, columns=CRITERIA)
        frame["agency"] = [f"A{a}" for a in agency]
        frame["field"] = [f"F{f}" for f in field]
        yield frame


def totals(volumes):
    return pd.DataFrame(
        [(f"A{a}", f"F{f}", volumes[a, f]) for a in range(N_AGENCIES) for f in range(N_FIELDS)],
        columns=["agency", "field", "count"],
    )


def table(frame, weighting, volumes, **options):
    if weighting == "poststrat":
        options.update(totals=totals(volumes))
    out = analysis.compute_indices(frame, ELEMENTS, weighting=weighting, by="agency", **options)
    return out[out["level"] != "mean_score"]


def coverage(weighting, **options):
    """Share of published intervals holding the truth, per (scope, level); zero widths."""
    volumes, p = population()
    agencies, whole = truth(volumes, p, weighting)
    hits, widths = [], 0
    for frame in samples(p):
        rows = table(frame, weighting, volumes, differences=False, **options)
        rows = rows[rows["ci_method"] != "none"]
        keys = list(zip(rows["level"], rows["key"], strict=True))
        unit = rows["agency"].fillna("A-1").str[1:].astype(int).to_numpy()
        value = np.array([whole[k] if u < 0 else agencies[k][u]
                          for k, u in zip(keys, unit, strict=True)])
        covered = (rows["ci_low"] <= value) & (value <= rows["ci_high"])
        scope = np.where(unit < 0, "whole", "agency")
        hits.append(pd.DataFrame({"scope": scope, "level": rows["level"], "covered": covered}))
        widths += int((rows["ci_high"] - rows["ci_low"] <= 1e-9).sum())
    return pd.concat(hits).groupby(["scope", "level"])["covered"].mean(), widths


@pytest.mark.parametrize("weighting", ["none", "poststrat"])
def test_published_intervals_cover_the_truth(weighting):
    covered, zero_width = coverage(weighting)
    assert zero_width == 0
    assert (covered >= BOUND).all(), covered


def test_intervals_of_unpooled_cells_do_not_cover():
    """Post-strata of one respondent understate the variance: the agencies' intervals fall
    short of the 93% target (92.4% here; 90.1% before the intervals' effective-n rules,
    which make up for part of it)."""
    covered, _ = coverage("poststrat", min_cell_n=1, drop_empty_cells=True)
    assert covered["agency"].min() < 0.93, covered
