"""Coverage of the published intervals: repeated samples from a known province.

Population. A province of 28 agencies x 10 service fields with served volumes (20-4,000
transactions per cell). The satisfaction of a person served is latent = mu(agency, field)
+ person + item noise - criterion difficulty (normal; agency SD 0.3, field-within-agency SD
0.25, person 0.6, item 0.7), the answer is the latent rounded to 1-5, and 5% of the answers
are left blank at random. The satisfied probability of every (agency, field, criterion) is
known exactly, so the true indices are computed exactly as the library defines them: a
criterion index is the share satisfied among those who would answer it, an element index the
mean of its criteria, the overall index the mean of the elements; a mean score the expected
answer (shown on the 0-1 scale of its interval, (m - 1) / 4).

``--population high``: the province, except that one cell (an agency of four counters, one
field) holds 40% of all transactions and is 0.6 below its agency on the latent scale (an
outside statistician's case): about 3 respondents at 300 responses stand for 40% of the
province, their cell is pooled, and the pooled estimate's bias rests on those 3.

``--population dominant``: the province, except that one cell (an agency of four counters,
one field) holds half of all transactions, is 0.6 below its agency, and its citizens hardly
answer (about 0.5 respondents expected at 300 responses): an outside statistician's case.

``--population onefield``: the province, except that a quarter of the agencies collect
responses in their first service field only: their other fields' transactions have no
respondent (an outside statistician's case).

``--population heavy``: an outside tester's harsher province, 10 agencies x 8 fields with
heavy-tailed volumes (about 10 to 9,400 a cell; one cell holds 23% of the total), fields far
apart (SD 0.8 on the latent scale, agency SD 0.4), responses spread evenly over agencies and
fields: most cells are pooled at 300 responses, and the pooled cells differ in weight and in
satisfaction, which is what the intervals' pooling-bias allowance is for.

Sampling. Each sample is drawn as the demo's quarters are: every response picks one of the
province's counters at random (an agency with 3 counters is 3 times as likely as one with 1)
and a service field at random, independently of the volumes, so the sample is not
proportional to the volumes and post-stratification has work to do. The library's defaults
then compute the indices (``none`` and ``poststrat``) and we count how often the published
interval contains the truth:

- ``poststrat``: the index over every served transaction (fields weighted by their volume);
- ``none``: the index of the population the respondents are drawn from (fields in equal
  shares, agencies in their counters' shares): what an unweighted estimate estimates;
- ``rake`` (``--weighting ...,rake``): raked to the agency totals and the service-field
  totals (two margins, not their cross-table), the index a raked estimate estimates: the
  sample's expected agency x field table is of product form, so its raked limit is
  N_a N_f / N, and the truth weights an agency's fields by the province's field totals
  (and the province's cells by N_a N_f / N).

Besides the coverage, each line decomposes the misses: ``bias/sd`` is the root mean square,
over the units of the line (agency x key, or key for the province), of (mean estimate -
truth) / empirical SD of the estimate, less its Monte Carlo noise 1/samples; ``se/sd`` the
mean ratio of the published ``se`` (R's linearization SE) to the empirical SD, ``ci_se/sd``
the same for the SE the interval uses (its half-width on the logit scale over t, back on
the index scale). Units with fewer than 20 samples in a line are left out of the
decomposition. ``mc_se`` is the binomial Monte Carlo standard error of the coverage
(intervals of one sample are correlated, so for the agency lines it is a lower bound; for
the province's overall index, one interval per sample, it is exact).

Samples: 1,000 at 300 responses and 2,500 at 1,000 (``--reps``, one figure per size), 400
for raking (``--rake-reps``, slower). At 1,000 responses the agencies above 60 respondents
are the upper tail of the agencies of three counters (about 50 on average), some 0.8
intervals per sample: at 500 samples their overall line has a Monte Carlo error of about
+-1.3 points, too wide to tell 93% from 95%; 2,500 give about +-0.5. The last line names the
lowest coverage of the run with its error.

Run: ``python bench/bench_coverage.py [--population province|heavy|high] [--reps 1000,2500]
[--rake-reps 400] [--sizes 300,1000] [--weighting none,poststrat,rake] [--min-cell-n 5]``
(about 5 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr, stdtrit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_AGENCIES, N_FIELDS = 28, 10
ELEMENTS = {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3", "b4"], "C": ["c1", "c2", "c3"],
            "D": ["d1", "d2", "d3"], "E": ["e1", "e2", "e3"]}
CRITERIA = [c for crits in ELEMENTS.values() for c in crits]
KEYS = ["SIPAS", *ELEMENTS, *CRITERIA]
MEAN_KEYS = [f"mean {c}" for c in CRITERIA]  # mean scores, on (m - 1) / 4
SD_PERSON, SD_ITEM = 0.6, 0.7
BANDS = ((4, "agency n 3-4"), (9, "agency n 5-9"), (14, "agency n 10-14"),
         (60, "agency n 15-60"), (np.inf, "agency n > 60"))


def population(kind: str = "province", seed: int | None = None):
    """Volumes, counters and the satisfaction model of the population (fixed).

    ``province``: 28 agencies x 10 fields, volumes 20-4,000, agency SD 0.3, field SD 0.25,
    responses drawn by counter. ``heavy``: an outside tester's harsher one, 10 agencies x 8
    fields with heavy-tailed volumes (log-normal, about 10 to 9,000 a cell), agency SD 0.4,
    field SD 0.8 (fields that differ by most of a scale point), responses drawn uniformly
    over agencies and fields: small cells pooled together differ in weight and in
    satisfaction, so pooling biases the estimate unless the interval allows for it.
    """
    fields = None  # (A, F) the chance a response of an agency is in each field; None: equal
    if kind == "heavy":
        rng = np.random.default_rng(5 if seed is None else seed)
        volumes = np.round(np.exp(rng.normal(5.5, 1.5, (10, 8)))) + 1
        counters = np.ones(10, dtype=int)
        agency = rng.normal(0, 0.4, 10)
        field = rng.normal(0, 0.8, (10, 8))
        base = 3.6
    elif kind == "high":
        # the province, but one cell (an agency of four counters, its first field) holds
        # 40% of the transactions and is a field apart (0.6 below its agency on the latent
        # scale): about 3 respondents at 300 stand for 40% of the province
        rng = np.random.default_rng(11 if seed is None else seed)
        volumes = rng.integers(20, 4000, size=(N_AGENCIES, N_FIELDS)).astype(float)
        counters = rng.choice([1, 1, 1, 2, 2, 3], size=N_AGENCIES)
        agency = rng.normal(0, 0.3, N_AGENCIES)
        field = rng.normal(0, 0.25, (N_AGENCIES, N_FIELDS))
        big = int(np.argmax(counters))
        counters[big] = 4
        rest = volumes.sum() - volumes[big, 0]
        volumes[big, 0] = rest * 0.4 / 0.6
        field[big, 0] = -0.6
        base = 4.1
    else:
        rng = np.random.default_rng(11 if seed is None else seed)
        volumes = rng.integers(20, 4000, size=(N_AGENCIES, N_FIELDS)).astype(float)
        counters = rng.choice([1, 1, 1, 2, 2, 3], size=N_AGENCIES)
        agency = rng.normal(0, 0.3, N_AGENCIES)
        field = rng.normal(0, 0.25, (N_AGENCIES, N_FIELDS))
        base = 4.1
        if kind == "dominant":
            # one cell (an agency of four counters, its first field) holds half of the
            # province's transactions, is 0.6 below its agency, and its citizens hardly
            # answer: about 0.5 respondents expected at 300 responses
            big = int(np.argmax(counters))
            counters[big] = 4
            rest = volumes.sum() - volumes[big, 0]
            volumes[big, 0] = rest
            field[big, 0] = -0.6
            fields = np.full((N_AGENCIES, N_FIELDS), 1.0)
            fields[big, 0] = 0.012
        elif kind == "onefield":
            # a quarter of the agencies collect responses in one service field only (their
            # first); the rest of their transactions have no respondent
            fields = np.full((N_AGENCIES, N_FIELDS), 1.0)
            fields[::4, 1:] = 0.0
    if fields is None:
        fields = np.ones((len(counters), volumes.shape[1]))
    fields = fields / fields.sum(axis=1, keepdims=True)
    difficulty = (np.arange(len(CRITERIA)) % 7 - 3) * 0.12
    mu = base + agency[:, None] + field  # (A, F)
    # satisfied = answer >= 4 = latent >= 3.5, latent ~ N(mu - difficulty, person^2 + item^2)
    centre = (mu[:, :, None] - difficulty) / np.hypot(SD_PERSON, SD_ITEM)
    p = ndtr(centre - 3.5 / np.hypot(SD_PERSON, SD_ITEM))  # (A, F, C)
    # and the mean answer: 1 + sum over k = 1..4 of P(latent >= k + 0.5), on (m - 1) / 4
    mean = sum(ndtr(centre - (k + 0.5) / np.hypot(SD_PERSON, SD_ITEM)) for k in range(1, 5)) / 4
    # one array: the satisfied shares (C) then the mean scores (C), both averaged alike
    return volumes, counters, mu, difficulty, np.concatenate([p, mean], axis=2), fields


def composite(crit: np.ndarray) -> np.ndarray:
    """Criterion indices and mean scores (..., 2C) -> the values of KEYS + MEAN_KEYS
    (..., 1 + E + 2C), as the library."""
    elems = [crit[..., [CRITERIA.index(c) for c in crits]].mean(axis=-1)
             for crits in ELEMENTS.values()]
    overall = np.mean(elems, axis=0)
    return np.concatenate([overall[..., None], np.stack(elems, axis=-1), crit], axis=-1)


def truths(volumes, counters, p, fields):
    """True indices (0-1) of KEYS: agencies (A, K) and the province (K,), per weighting."""
    served = (volumes[:, :, None] * p).sum(axis=1) / volumes.sum(axis=1)[:, None]  # (A, C)
    served_all = (volumes[:, :, None] * p).sum(axis=(0, 1)) / volumes.sum()
    drawn = (fields[:, :, None] * p).sum(axis=1)  # fields as the responses are drawn
    share = counters / counters.sum()
    drawn_all = (share[:, None] * drawn).sum(axis=0)
    return {
        "poststrat": (composite(served), composite(served_all)),
        "none": (composite(drawn), composite(drawn_all)),
        "rake": raked_truth(volumes, p, np.ones(len(volumes), dtype=bool)),
    }


def raked_truth(volumes, p, present):
    """Raking to the agency and field margins of the agencies ``present`` in the sample.

    The sample's expected agency x field table is of product form, so its raked limit is
    N_a N_f / N: an agency's fields weighted by the field totals.
    """
    v = volumes[present]
    field_share = v.sum(axis=0) / v.sum()
    raked = (field_share[None, :, None] * p).sum(axis=1)  # (A, C)
    agency_share = v.sum(axis=1) / v.sum()
    raked_all = (agency_share[:, None] * raked[present]).sum(axis=0)
    return composite(raked), composite(raked_all)


def sample(rng, n, counters, mu, difficulty, fields):
    """One sample of n responses, drawn as the demo's quarters."""
    share = counters / counters.sum()
    agency = rng.choice(len(counters), size=n, p=share)
    cumulative = np.cumsum(fields, axis=1)[agency]
    field = np.minimum((cumulative < rng.random(n)[:, None]).sum(axis=1), mu.shape[1] - 1)
    person = rng.normal(0, SD_PERSON, n)
    latent = (mu[agency, field] + person)[:, None] - difficulty + rng.normal(
        0, SD_ITEM, (n, len(CRITERIA)))
    answers = np.clip(np.round(latent), 1, 5)
    answers[rng.random(answers.shape) < 0.05] = np.nan
    frame = pd.DataFrame(answers, columns=CRITERIA)
    frame.insert(0, "agency", [f"A{a:02d}" for a in agency])
    frame.insert(1, "field", [f"F{f}" for f in field])
    return frame


def totals_table(volumes) -> pd.DataFrame:
    """The post-stratification totals: agency x field served volumes."""
    return pd.DataFrame(
        [(f"A{a:02d}", f"F{f}", volumes[a, f]) for a in range(volumes.shape[0])
         for f in range(volumes.shape[1])],
        columns=["agency", "field", "count"],
    )


def margins_of(totals: pd.DataFrame) -> list[pd.DataFrame]:
    """The raking margins: agency totals and service-field totals of the served volumes."""
    return [totals.groupby(v, as_index=False)["count"].sum() for v in ("agency", "field")]


def published_rows(analysis, frame, totals, truth, weighting, min_cell_n) -> pd.DataFrame:
    """The library's rows (indices only) of one sample, with the truth of each row."""
    opts = {"weighting": weighting, "differences": False}
    if weighting == "poststrat":
        opts.update(totals=totals, min_cell_n=min_cell_n)
    elif weighting == "rake":
        # an agency without respondents leaves both margins (raking cannot represent it)
        agencies = [f"A{a:02d}" for a in range(len(truth["volumes"]))]
        present = np.isin(agencies, frame["agency"].unique())
        opts.update(margins=margins_of(totals[totals["agency"].isin(frame["agency"])]))
        if not present.all():
            truth = {**truth, "rake": raked_truth(truth["volumes"], truth["p"], present)}
    table = analysis.compute_indices(frame, ELEMENTS, by="agency", **opts)
    agency_truth, all_truth = truth[weighting]
    mean = (table["level"] == "mean_score").to_numpy()
    keys = np.where(mean, "mean " + table["key"], table["key"])
    key_index = pd.Index(KEYS + MEAN_KEYS).get_indexer(keys)
    # mean scores on the 0-1 scale of their intervals, (m - 1) / 4, as percentages
    for column in ("estimate", "se", "ci_low", "ci_high"):
        shift = 0.0 if column == "se" else 1.0
        table[column] = np.where(mean, (table[column] - shift) * 25, table[column])
    is_all = (table["by"] == "ALL").to_numpy()
    unit = np.where(is_all, -1, table["agency"].str[1:].fillna("-1").astype(int))
    value = np.where(is_all, all_truth[key_index], agency_truth[np.maximum(unit, 0), key_index])
    return pd.DataFrame({
        "weighting": weighting, "unit": unit, "key": keys,
        "level": table["level"].to_numpy(), "n": table["n"].to_numpy(),
        "estimate": table["estimate"].to_numpy() / 100, "se": table["se"].to_numpy() / 100,
        "low": table["ci_low"].to_numpy() / 100, "high": table["ci_high"].to_numpy() / 100,
        "method": table["ci_method"].to_numpy(), "df": table["df"].to_numpy(dtype=float),
        "truth": value,
    })


def scope_of(rows: pd.DataFrame) -> np.ndarray:
    """Province, or the agency's size band."""
    out = np.full(len(rows), "province", dtype=object)
    agency = (rows["unit"] >= 0).to_numpy()
    n = rows["n"].to_numpy()
    band = np.searchsorted([b for b, _ in BANDS], n, side="left")
    names = np.array([name for _, name in BANDS], dtype=object)
    out[agency] = names[np.minimum(band, len(BANDS) - 1)][agency]
    return out


def summarise(rows: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Coverage and the bias / SE decomposition per weighting, scope and level."""
    rows = rows.copy()
    rows["scope"] = scope_of(rows)
    pub = rows[rows["method"] != "none"].copy()
    pub["covered"] = (pub["low"] <= pub["truth"]) & (pub["truth"] <= pub["high"])
    pub["zero_width"] = (pub["high"] - pub["low"]) <= 1e-11
    t = stdtrit(np.where(pub["df"].notna(), pub["df"], 1e9), 0.5 + level / 2)
    r = pub["estimate"].clip(1e-12, 1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        logit = lambda x: np.log(x / (1 - x))  # noqa: E731
        hi, lo = (pub[c].clip(1e-12, 1 - 1e-12) for c in ("high", "low"))
        half = (logit(hi) - logit(lo)) / 2
        pub["ci_se"] = np.where(pub["method"] == "logit-t", half / t * r * (1 - r), np.nan)
    pub["err"] = pub["estimate"] - pub["truth"]
    keys = ["weighting", "scope", "level"]
    summary = pub.groupby(keys).agg(
        intervals=("covered", "size"), coverage=("covered", "mean"),
        zero_width=("zero_width", "sum"))
    summary["mc_se"] = np.sqrt(summary["coverage"] * (1 - summary["coverage"])
                               / summary["intervals"])
    units = pub.groupby([*keys, "unit", "key"]).agg(
        reps=("err", "size"), bias=("err", "mean"), sd=("estimate", "std"),
        se=("se", "mean"), ci_se=("ci_se", "mean"))
    units = units[(units["reps"] >= 20) & (units["sd"] > 0)]
    # (mean - truth)^2 / sd^2 carries the Monte Carlo noise 1/reps: taken off.
    units["bias_sd2"] = (units["bias"] / units["sd"]) ** 2 - 1 / units["reps"]
    units["se_sd"] = units["se"] / units["sd"]
    units["ci_se_sd"] = units["ci_se"] / units["sd"]
    dec = units.groupby(keys).agg(bias_sd2=("bias_sd2", "mean"), se_sd=("se_sd", "mean"),
                                  ci_se_sd=("ci_se_sd", "mean"))
    summary = summary.join(dec)
    summary["bias/sd"] = np.sqrt(np.maximum(summary.pop("bias_sd2"), 0))
    summary["coverage"] *= 100
    summary["mc_se"] *= 100
    summary = summary.rename(columns={"se_sd": "se/sd", "ci_se_sd": "ci_se/sd"})
    return summary.round({"coverage": 1, "mc_se": 1, "bias/sd": 2, "se/sd": 2, "ci_se/sd": 2})


def run(analysis, total: int, reps: int, min_cell_n: int, seed: int,
        weightings=("none", "poststrat"), kind: str = "province") -> pd.DataFrame:
    """All published rows of ``reps`` samples of about ``total`` responses."""
    volumes, counters, mu, difficulty, p, fields = population(kind)
    truth = {**truths(volumes, counters, p, fields), "volumes": volumes, "p": p}
    totals = totals_table(volumes)
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(reps):
        frame = sample(rng, total, counters, mu, difficulty, fields)
        for weighting in weightings:
            parts.append(published_rows(analysis, frame, totals, truth, weighting, min_cell_n))
    return pd.concat(parts, ignore_index=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", default="1000,2500",
                        help="samples per size, one figure or one per size (1000,2500)")
    parser.add_argument("--rake-reps", default="400", help="samples per size when raking")
    parser.add_argument("--sizes", default="300,1000", help="total responses per sample")
    parser.add_argument("--min-cell-n", type=int, default=None,
                        help="pooling threshold (default: the library's)")
    parser.add_argument("--weighting", default="none,poststrat,rake")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--population", default="province",
                        choices=("province", "heavy", "high", "dominant", "onefield"),
                        help="the population sampled (see population())")
    parser.add_argument("--lib", help="import analysis from this directory (comparisons)")
    args = parser.parse_args(argv)
    if args.lib:
        sys.path.insert(0, args.lib)
    import analysis

    min_cell_n = analysis.DEFAULT_MIN_CELL_N if args.min_cell_n is None else args.min_cell_n
    pd.set_option("display.width", 160)
    started = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]

    def per_size(text):
        values = [int(v) for v in text.split(",")]
        return values * len(sizes) if len(values) == 1 else values

    reps, rake_reps = per_size(args.reps), per_size(args.rake_reps)
    weightings = tuple(args.weighting.split(","))
    lowest = []
    for total, n_reps, n_rake in zip(sizes, reps, rake_reps, strict=True):
        parts, said = [], []
        others = tuple(w for w in weightings if w != "rake")
        if others:
            parts.append(run(analysis, total, n_reps, min_cell_n, args.seed, others,
                             args.population))
            said.append(f"{n_reps} samples ({', '.join(others)})")
        if "rake" in weightings:
            parts.append(run(analysis, total, n_rake, min_cell_n, args.seed, ("rake",),
                             args.population))
            said.append(f"{n_rake} samples (rake)")
        rows = pd.concat(parts, ignore_index=True)
        print(f"\n=== {args.population}: about {total} responses per sample, "
              f"{'; '.join(said)}, min_cell_n={min_cell_n} ===")
        summary = summarise(rows)
        print(summary.to_string())
        missing = rows[rows["method"] == "none"]
        if len(missing):
            print(f"rows without an interval (fewer than 2 answered): {len(missing)}")
        low = summary[summary["intervals"] >= 100]["coverage"].idxmin()
        lowest.append((summary.loc[low, "coverage"], summary.loc[low, "mc_se"], total, low))
        sys.stdout.flush()
    cov, se, total, where = min(lowest)
    print(f"\nlowest coverage (lines of at least 100 intervals): {cov:.1f}% +- {se:.1f} "
          f"({' / '.join(where)}, about {total} responses)")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
