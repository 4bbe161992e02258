"""False alarms and power of the tests of difference: repeated samples from a known province.

Null population. 32 agencies, 8 each with 5, 10, 20 and 60 respondents per period, 6
service fields. Satisfaction depends on the field, the criterion and the person but not on
the agency, and every agency serves the fields in the same shares (volumes = agency size x
field share), so every agency's true index over its served transactions equals the
province's: any ``higher``/``lower`` is a false alarm. Fields are drawn at random
(not in proportion to the volumes), so post-stratification (agency x field, the library's
defaults: ``min_cell_n`` = 5) has work to do. Each sample has two periods drawn alike.

For each sample the library computes ``compute_indices(..., by="agency")`` on the later
period (each agency against the whole province) and ``compare_periods(..., by="agency")``
on both (each agency's later period against its earlier one), and we count:

- ``single``: share of tests with ``diff_p < 0.05``, per group size and level (should be
  about 5% or less), and with ``diff_p < 0.05/32`` (should be about 0.156% or less: the
  first step of Holm over 32 agencies, where a test's far tail decides the family-wise
  rate);
- ``fwer``: share of tables (one per sample, level and key) in which at least one agency
  is marked (``diff_p_adj < 0.05``, Holm over the 32 agencies), with the library's
  ``min_n`` = 30 (only the agencies of 60 can be marked) and with ``min_n`` = 1 (every
  agency can): Holm keeps it at 5% or below when the p-values are valid.

Alternative (``--power``): one agency of each size is 10 points more satisfied (SIPAS truth
+10 points, same in both periods) and we count how often that agency's difference from the
province is significant (``diff_p < 0.05``) and marked (Holm, ``min_n`` = 1).

``mc_se`` is the binomial Monte Carlo standard error (for ``single`` a lower bound: the
tests of one sample are correlated).

Run: ``python bench/bench_null.py [--reps 1000] [--power-reps 200] [--lib DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = (5, 10, 20, 60)
PER_SIZE = 8
N_FIELDS = 6
ELEMENTS = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3", "b4"], "C": ["c1", "c2", "c3"],
            "D": ["d1", "d2", "d3"], "E": ["e1", "e2", "e3"]}
CRITERIA = [c for crits in ELEMENTS.values() for c in crits]
SD_PERSON, SD_ITEM = 0.6, 0.7
LEVELS = ("overall", "element", "criterion", "mean_score")


def population(seed: int = 3, field_sd: float = 0.0):
    """Agency sizes, volumes and the field means of the latent satisfaction (fixed)."""
    rng = np.random.default_rng(seed)
    n_per = np.repeat(SIZES, PER_SIZE)
    served = rng.integers(200, 5000, len(n_per)).astype(float)
    share = rng.dirichlet(np.full(N_FIELDS, 2.0))
    volumes = served[:, None] * share[None, :]
    mu = 4.0 + field_sd * rng.normal(0, 1, N_FIELDS)
    difficulty = (np.arange(len(CRITERIA)) % 7 - 3) * 0.12
    return n_per, volumes, share, mu, difficulty


def overall_truth(mu, difficulty, share, shift: float = 0.0) -> float:
    """SIPAS truth (0-1) of an agency serving the fields in ``share``, latent + shift."""
    p = ndtr((mu[:, None] + shift - difficulty - 3.5) / np.hypot(SD_PERSON, SD_ITEM))
    crit = (share[:, None] * p).sum(axis=0)
    return float(np.mean([crit[[CRITERIA.index(c) for c in cs]].mean()
                          for cs in ELEMENTS.values()]))


def shift_for(points: float, mu, difficulty, share) -> float:
    """The latent shift that raises the SIPAS truth by ``points`` (bisection)."""
    base = overall_truth(mu, difficulty, share)
    lo, hi = 0.0, 3.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if overall_truth(mu, difficulty, share, mid) - base < points / 100:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def sample(rng, n_per, mu, difficulty, shift) -> pd.DataFrame:
    """Two periods; agency a has n_per[a] respondents in each."""
    frames = []
    for period in ("2024-Q1", "2024-Q2"):
        agency = np.repeat(np.arange(len(n_per)), n_per)
        n = len(agency)
        field = rng.integers(0, N_FIELDS, n)
        person = rng.normal(0, SD_PERSON, n)
        latent = (mu[field] + shift[agency] + person)[:, None] - difficulty + rng.normal(
            0, SD_ITEM, (n, len(CRITERIA)))
        answers = np.clip(np.round(latent), 1, 5)
        answers[rng.random(answers.shape) < 0.05] = np.nan
        frame = pd.DataFrame(answers, columns=CRITERIA)
        frame.insert(0, "agency", [f"A{a:02d}" for a in agency])
        frame.insert(1, "field", [f"F{f}" for f in field])
        frame.insert(2, "period", period)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def holm_any(p: np.ndarray, eligible: np.ndarray, alpha: float = 0.05) -> bool:
    """Whether Holm over the family marks at least one eligible member."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    marked = np.zeros(m, dtype=bool)
    marked[order] = adjusted < alpha
    return bool((marked & eligible).any())


def one_run(analysis, frame, totals, n_per, has_periods: bool):
    """Per-test rows (size, level, p) and per-table rows (level, any mark) of one sample."""
    later = frame[frame["period"] == "2024-Q2"]
    table = analysis.compute_indices(later, ELEMENTS, weighting="poststrat", totals=totals,
                                     by="agency")
    tables = [("vs province", table[table["by"] == "agency"])]
    if has_periods:
        compared = analysis.compare_periods(frame, ELEMENTS, weighting="poststrat",
                                            totals=totals, by="agency")
        tables.append(("vs previous period", compared[compared["by"] == "agency"]))
    tests, families = [], []
    for name, rows in tables:
        rows = rows[rows["diff_p"].notna()]
        unit = rows["agency"].str[1:].astype(int).to_numpy()
        tests.append(pd.DataFrame({"test": name, "size": n_per[unit], "unit": unit,
                                   "level": rows["level"].to_numpy(),
                                   "p": rows["diff_p"].to_numpy(),
                                   "diff": rows["diff"].to_numpy()}))
        for (level, _key), fam in rows.groupby(["level", "key"], sort=False):
            p = fam["diff_p"].to_numpy()
            size = n_per[fam["agency"].str[1:].astype(int).to_numpy()]
            families.append({"test": name, "level": level,
                              "any_min_n_30": holm_any(p, size >= 30),
                              "any_min_n_1": holm_any(p, size >= 1)})
    return pd.concat(tests, ignore_index=True), pd.DataFrame(families)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000, help="null samples (1000)")
    parser.add_argument("--power-reps", type=int, default=200, help="alternative samples")
    parser.add_argument("--no-periods", action="store_true", help="skip compare_periods")
    parser.add_argument("--field-sd", type=float, default=0.0,
                        help="SD of the field effect on the latent scale (0: none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lib", help="import analysis from this directory (comparisons)")
    args = parser.parse_args(argv)
    if args.lib:
        sys.path.insert(0, args.lib)
    import analysis

    pd.set_option("display.width", 160)
    started = time.perf_counter()
    n_per, volumes, share, mu, difficulty = population(field_sd=args.field_sd)
    totals = pd.DataFrame(
        [(f"A{a:02d}", f"F{f}", volumes[a, f]) for a in range(len(n_per))
         for f in range(N_FIELDS)], columns=["agency", "field", "count"])
    rng = np.random.default_rng(args.seed)
    tests, families = [], []
    null_shift = np.zeros(len(n_per))
    for _ in range(args.reps):
        frame = sample(rng, n_per, mu, difficulty, null_shift)
        t, f = one_run(analysis, frame, totals, n_per, not args.no_periods)
        tests.append(t)
        families.append(f)
    tests = pd.concat(tests, ignore_index=True)
    families = pd.concat(families, ignore_index=True)
    print(f"=== null: {args.reps} samples, 32 agencies (8 each of {SIZES} respondents "
          "per period), post-stratified, library defaults ===")
    single = tests.assign(reject=tests["p"] < 0.05).pivot_table(
        index=["test", "level"], columns="size", values="reject", aggfunc="mean") * 100
    print("\nsingle-test rejection at 5% (%), by agency size:")
    print(single.round(1).to_string())
    tail = tests.assign(reject=tests["p"] < 0.05 / 32).pivot_table(
        index=["test", "level"], columns="size", values="reject", aggfunc="mean") * 100
    print(f"\nsingle-test rejection at 0.05/32 = {0.05 / 32 * 100:.3f}% (Holm's first step), "
          "by agency size (%):")
    print(tail.round(3).to_string())
    counts = tests.groupby(["test", "level", "size"]).size().unstack()
    print(f"(tests per cell: {int(counts.min().min())}-{int(counts.max().max())})")
    fw = families.groupby(["test", "level"]).agg(
        tables=("any_min_n_30", "size"), fwer_min_n_30=("any_min_n_30", "mean"),
        fwer_min_n_1=("any_min_n_1", "mean"))
    fw[["fwer_min_n_30", "fwer_min_n_1"]] *= 100
    fw["mc_se"] = np.sqrt(fw["fwer_min_n_1"] * (100 - fw["fwer_min_n_1"]) / fw["tables"])
    per_sample = families.groupby(["test", "level"])["any_min_n_1"].size() / args.reps
    fw["tables_per_sample"] = per_sample
    print("\nfamily-wise rate of any mark per table, Holm over the 32 agencies (%):")
    print(fw.round(1).to_string())
    sys.stdout.flush()

    if args.power_reps:
        shift = np.zeros(len(n_per))
        raised = [int(np.flatnonzero(n_per == s)[0]) for s in SIZES]
        shift[raised] = shift_for(10.0, mu, difficulty, share)
        hits = []
        for _ in range(args.power_reps):
            frame = sample(rng, n_per, mu, difficulty, shift)
            later = frame[frame["period"] == "2024-Q2"]
            table = analysis.compute_indices(later, ELEMENTS, weighting="poststrat",
                                             totals=totals, by="agency", min_n=1)
            rows = table[(table["by"] == "agency") & (table["level"] == "overall")]
            unit = rows["agency"].str[1:].astype(int).to_numpy()
            for a in raised:
                row = rows[unit == a].iloc[0]
                hits.append({"size": n_per[a], "significant": row["diff_p"] < 0.05,
                             "marked": row["mark"] == "higher", "diff": row["diff"]})
        hits = pd.DataFrame(hits).groupby("size").agg(
            samples=("significant", "size"), significant=("significant", "mean"),
            marked_holm=("marked", "mean"), mean_diff=("diff", "mean"))
        hits[["significant", "marked_holm"]] *= 100
        print(f"\n=== power: one agency of each size 10 points higher (SIPAS), "
              f"{args.power_reps} samples ===")
        print("overall index, that agency against the province (%):")
        print(hits.round(1).to_string())
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
