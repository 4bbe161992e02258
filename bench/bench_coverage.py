"""Coverage of the published intervals: repeated samples from a known province.

A province of 28 agencies x 10 service fields with served volumes (transactions); the
satisfaction of a person served varies by agency, field, criterion and person. Each
sample is drawn as the demo's quarters are: every response picks one of the agencies'
counters at random and a service field at random, so the sample is not proportional to
the volumes and post-stratification has work to do. For each sample the library's
defaults compute the indices (``none`` and ``poststrat``); we count how often the
published interval contains the true index:

- ``poststrat``: the index over every served transaction (fields weighted by volume);
- ``none``: the index of the population the respondents are drawn from (fields in equal
  shares, agencies in their counters' shares): what an unweighted estimate estimates.

Run: ``python bench/bench_coverage.py [--reps 100] [--min-cell-n 5]``. Prints coverage by
level (SIPAS, elements, criteria) for the province and agencies by sample size, and the
number of zero-width intervals. Two total sample sizes, about 300 and about 1,000.
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

import analysis  # noqa: E402

N_AGENCIES, N_FIELDS = 28, 10
ELEMENTS = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3", "b4"], "C": ["c1", "c2", "c3"],
            "D": ["d1", "d2", "d3"], "E": ["e1", "e2", "e3"]}
CRITERIA = [c for crits in ELEMENTS.values() for c in crits]
SD_PERSON, SD_ITEM = 0.6, 0.7


def population(seed: int = 11):
    """Volumes, counters and the satisfaction model of the province (fixed)."""
    rng = np.random.default_rng(seed)
    volumes = rng.integers(20, 4000, size=(N_AGENCIES, N_FIELDS)).astype(float)
    counters = rng.choice([1, 1, 1, 2, 2, 3], size=N_AGENCIES)
    agency = rng.normal(0, 0.3, N_AGENCIES)
    field = rng.normal(0, 0.25, (N_AGENCIES, N_FIELDS))
    difficulty = (np.arange(len(CRITERIA)) % 7 - 3) * 0.12
    mu = 4.1 + agency[:, None] + field  # (A, F)
    p = ndtr((mu[:, :, None] - difficulty - 3.5) / np.hypot(SD_PERSON, SD_ITEM))  # (A, F, C)
    return volumes, counters, mu, difficulty, p


def truths(volumes, counters, p):
    """True indices (percent) per (scope, level, key): transactions and respondent mix."""
    def composite(crit):  # crit: (..., C) -> dict of level/key -> value
        out = {("criterion", c): crit[..., j] for j, c in enumerate(CRITERIA)}
        elems = {}
        for e, crits in ELEMENTS.items():
            cols = [CRITERIA.index(c) for c in crits]
            elems[e] = crit[..., cols].mean(axis=-1)
            out[("element", e)] = elems[e]
        out[("overall", "SIPAS")] = np.mean(list(elems.values()), axis=0)
        return out

    served = (volumes[:, :, None] * p).sum(axis=1) / volumes.sum(axis=1)[:, None]  # (A, C)
    served_all = (volumes[:, :, None] * p).sum(axis=(0, 1)) / volumes.sum()
    drawn = p.mean(axis=1)  # fields in equal shares
    share = counters / counters.sum()
    drawn_all = (share[:, None] * drawn).sum(axis=0)
    return {
        "poststrat": (composite(served), composite(served_all)),
        "none": (composite(drawn), composite(drawn_all)),
    }


def sample(rng, n, counters, mu, difficulty):
    share = counters / counters.sum()
    agency = rng.choice(N_AGENCIES, size=n, p=share)
    field = rng.integers(0, N_FIELDS, size=n)
    person = rng.normal(0, SD_PERSON, n)
    latent = (mu[agency, field] + person)[:, None] - difficulty + rng.normal(0, SD_ITEM,
                                                                            (n, len(CRITERIA)))
    answers = np.clip(np.round(latent), 1, 5)
    answers[rng.random(answers.shape) < 0.05] = np.nan
    frame = pd.DataFrame(answers, columns=CRITERIA)
    frame.insert(0, "agency", [f"A{a:02d}" for a in agency])
    frame.insert(1, "field", [f"F{f}" for f in field])
    return frame


def size_band(n):
    if n <= 4:
        return "agency n 3-4"
    if n <= 9:
        return "agency n 5-9"
    if n <= 14:
        return "agency n 10-14"
    if n <= 60:
        return "agency n 15-60"
    return "agency n > 60"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60, help="samples per scenario (60)")
    parser.add_argument("--sizes", default="300,1000", help="total responses per sample")
    parser.add_argument("--min-cell-n", type=int, default=analysis.DEFAULT_MIN_CELL_N)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    volumes, counters, mu, difficulty, p = population()
    truth = truths(volumes, counters, p)
    totals = pd.DataFrame(
        [(f"A{a:02d}", f"F{f}", volumes[a, f]) for a in range(N_AGENCIES)
         for f in range(N_FIELDS)],
        columns=["agency", "field", "count"],
    )
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for total in [int(s) for s in args.sizes.split(",")]:
        tallies = []
        for _ in range(args.reps):
            frame = sample(rng, total, counters, mu, difficulty)
            for weighting in ("none", "poststrat"):
                opts = {"weighting": weighting, "differences": False}
                if weighting == "poststrat":
                    opts.update(totals=totals, min_cell_n=args.min_cell_n)
                table = analysis.compute_indices(frame, ELEMENTS, by="agency", **opts)
                table = table[table["level"] != "mean_score"]
                agency_truth, all_truth = truth[weighting]
                rows = table.itertuples(index=False)
                for row in rows:
                    key = (row.level, row.key)
                    if row.by == "ALL":
                        value, scope = all_truth[key], "province"
                    else:
                        value = agency_truth[key][int(row.agency[1:])]
                        scope = size_band(row.n)
                    published = row.ci_method != "none"
                    tallies.append((weighting, scope, row.level, published,
                                    published and row.ci_low <= 100 * value <= row.ci_high,
                                    published and row.ci_high - row.ci_low <= 1e-9))
        frame = pd.DataFrame(tallies, columns=["weighting", "scope", "level", "published",
                                               "covered", "zero_width"])
        published = frame[frame["published"]]
        summary = published.groupby(["weighting", "scope", "level"]).agg(
            intervals=("covered", "size"), coverage=("covered", "mean"),
            zero_width=("zero_width", "sum"))
        summary["coverage"] = (100 * summary["coverage"]).round(1)
        unpublished = (~frame["published"]).groupby([frame["weighting"], frame["scope"]]).sum()
        print(f"\n=== about {total} responses per sample, {args.reps} samples, "
              f"min_cell_n={args.min_cell_n} ===")
        print(summary.to_string())
        print("rows without an interval (fewer than 2 answered):")
        print(unpublished[unpublished > 0].to_string())
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
