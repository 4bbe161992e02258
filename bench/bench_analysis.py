"""Benchmark of the analysis: wall time and peak memory, and the same job in R's survey package.

Generates synthetic files (22 criteria in 5 elements; 200,000 responses from 60 agencies and
1,000,000 from 1,000 agencies; 6 service fields), then runs the command line

    python -m analysis indices FILE --elements MAP --weighting poststrat --totals TOTALS
        --by agency -o OUT.csv

(post-stratified by agency x service field; the whole file and every agency) and prints its
wall time and peak resident memory. When Rscript and the survey package are installed it
also times R on the 200,000 file doing the same estimates (svydesign + postStratify, then
for the whole file and each agency: svytotal + svycontrast for the criterion, element and
overall indices with their joint covariance, svyciprop(xlogit) per criterion, svymean per
mean score) and prints the ratio; R is stopped at --r-timeout, and then the figure printed
is the lower bound of the ratio plus an extrapolation from the groups R finished. Budgets
(design.md and issue 3): 1,000,000 in <= 10 s and <= 2 GB; >= 20x faster than R. Figures
only, no pass/fail.

Usage: python bench/bench_analysis.py [--sizes 200000 1000000] [--r-timeout 240] [--no-r]
Files go to bench/out/ (ignored by git) and are reused when present.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
N_CRITERIA = 22
ELEMENTS = ["A"] * 5 + ["B"] * 5 + ["C"] * 4 + ["D"] * 4 + ["E"] * 4
FIELDS = ["tu_phap", "dat_dai", "xay_dung", "kinh_doanh", "lao_dong", "khac"]
AGENCIES = {200_000: 60, 1_000_000: 1_000}


def generate(n: int, n_agencies: int, seed: int = 1) -> Path:
    """Write responses, element map and totals for n responses; return the responses path."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"responses_{n}.csv"
    if path.exists() and (OUT / f"totals_{n}.csv").exists():
        return path
    rng = np.random.default_rng(seed)
    size = rng.lognormal(0, 1, n_agencies)
    agency = rng.choice(n_agencies, size=n, p=size / size.sum())
    field_p = rng.dirichlet(np.ones(len(FIELDS)), n_agencies)
    u = rng.random(n)[:, None]
    field = (u > np.cumsum(field_p[agency], axis=1)).sum(axis=1)
    field = np.minimum(field, len(FIELDS) - 1)
    level = rng.normal(0.4, 0.5, n_agencies)[agency] + rng.normal(0, 0.8, n)
    criteria = {}
    for j in range(N_CRITERIA):
        latent = 3.3 + level + rng.normal(0, 0.9, n) + 0.2 * np.sin(j)
        value = np.clip(np.rint(latent), 1, 5).astype("int64")
        text = value.astype(str).astype(object)
        text[rng.random(n) < 0.07] = ""  # item nonresponse
        criteria[f"q{j + 1:02d}"] = text
    names = np.array([f"Đơn vị {i:04d}" for i in range(n_agencies)], dtype=object)
    frame = pd.DataFrame(
        {
            "response_id": np.arange(1, n + 1),
            "agency": names[agency],
            "field": np.array(FIELDS, dtype=object)[field],
            "gender": np.where(rng.random(n) < 0.52, "Nữ", "Nam"),
            "age_band": rng.choice(["18–29", "30–44", "45–59", "60+"], n),
            "period": rng.choice(["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"], n),
            **criteria,
        }
    )
    frame.to_csv(path, index=False, encoding="utf-8")
    cells = frame.groupby(["agency", "field"]).size().rename("n").reset_index()
    cells["count"] = cells["n"] * rng.integers(5, 80, len(cells))
    cells[["agency", "field", "count"]].to_csv(OUT / f"totals_{n}.csv", index=False)
    pd.DataFrame(
        {"item": [f"q{j + 1:02d}" for j in range(N_CRITERIA)], "element": ELEMENTS}
    ).to_csv(OUT / "elements.csv", index=False)
    return path


def run_measured(
    command: list[str], timeout: float | None = None, stdout=subprocess.DEVNULL
) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit status of a child process (killed at timeout)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=stdout)
    deadline = None if timeout is None else started + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            return float("inf"), float("nan"), -9
        time.sleep(0.02)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, child.returncode


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = "character", na.strings = character(0), encoding = "UTF-8")
emap <- read.csv(args[2], colClasses = "character")
tot <- read.csv(args[3], colClasses = c("character", "character", "numeric"), encoding = "UTF-8")
crit <- emap$item
for (cr in crit) {
  v <- suppressWarnings(as.integer(d[[cr]]))
  d[[paste0("a_", cr)]] <- as.numeric(!is.na(v))
  d[[paste0("s_", cr)]] <- ifelse(is.na(v), 0, as.numeric(v >= 4))
  d[[paste0("y_", cr)]] <- ifelse(is.na(v), 0, v)
}
d$one <- 1
des <- svydesign(ids = ~1, weights = ~one, data = d)
pop <- data.frame(agency = tot$agency, field = tot$field, Freq = tot$count)
des <- postStratify(des, ~agency + field, pop)
ratio <- function(cr) sprintf("(s_%s/a_%s)", cr, cr)
one_group <- function(idx) {
  dg <- des[idx, ]
  t <- svytotal(make.formula(c(paste0("s_", crit), paste0("a_", crit))), dg)
  ex <- list()
  el_txt <- c()
  for (el in unique(emap$element)) {
    crs <- crit[emap$element == el]
    el_txt[el] <- sprintf("((%s)/%d)", paste(sapply(crs, ratio), collapse = "+"), length(crs))
  }
  for (cr in crit) ex[[cr]] <- parse(text = ratio(cr))[[1]]
  for (el in names(el_txt)) ex[[el]] <- parse(text = el_txt[el])[[1]]
  ex[["SIPAS"]] <- parse(text = sprintf("((%s)/%d)", paste(el_txt, collapse = "+"),
                                       length(el_txt)))[[1]]
  con <- svycontrast(t, ex)
  for (cr in crit) {
    ans <- des[idx & d[[paste0("a_", cr)]] == 1, ]
    ci <- svyciprop(make.formula(paste0("s_", cr)), ans, method = "xlogit")
    m <- svymean(make.formula(paste0("y_", cr)), ans)
  }
  coef(con)
}
started <- proc.time()[["elapsed"]]
groups <- c(list(rep(TRUE, nrow(d))), lapply(unique(d$agency), function(a) d$agency == a))
for (i in seq_along(groups)) {
  invisible(one_group(groups[[i]]))
  cat(i, length(groups), proc.time()[["elapsed"]] - started, "\n")
  flush(stdout())
}
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--r-timeout", type=float, default=240.0)
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    ours: dict[int, float] = {}
    for n in args.sizes:
        n_agencies = AGENCIES.get(n, max(1, n // 3_000))
        started = time.perf_counter()
        path = generate(n, n_agencies)
        print(f"\n{n:,} responses, {n_agencies:,} agencies, {N_CRITERIA} criteria "
              f"(data ready in {time.perf_counter() - started:.1f} s: {path.name})")  # fmt: skip
        command = [
            sys.executable, "-m", "analysis", "indices", str(path),
            "--elements", str(OUT / "elements.csv"),
            "--weighting", "poststrat", "--totals", str(OUT / f"totals_{n}.csv"),
            "--by", "agency", "-o", str(OUT / f"indices_{n}.csv"),
        ]  # fmt: skip
        wall, rss, status = run_measured(command)
        ours[n] = wall
        rows = sum(1 for _ in open(OUT / f"indices_{n}.csv", encoding="utf-8-sig")) - 1
        print(f"  python -m analysis (read CSV, weight, estimate, write {rows:,} rows): "
              f"{wall:.2f} s, peak RSS {rss:,.0f} MB, exit {status}")  # fmt: skip
        _phases(path, n)

    if args.no_r:
        return
    rscript = shutil.which("Rscript")
    has_survey = rscript and subprocess.run(
        [rscript, "-e", "quit(status = !requireNamespace('survey', quietly = TRUE))"],
        capture_output=True,
    ).returncode == 0  # fmt: skip
    if not has_survey:
        print("\nR: Rscript or the survey package is missing; no comparison.")
        return
    n = 200_000
    if n not in ours:
        print("\nR: the comparison uses the 200,000 file; add it to --sizes.")
        return
    script = OUT / "bench_survey.R"
    script.write_text(R_SCRIPT, encoding="utf-8")
    command = [
        rscript, str(script), str(OUT / f"responses_{n}.csv"), str(OUT / "elements.csv"),
        str(OUT / f"totals_{n}.csv"),
    ]  # fmt: skip
    print(f"\nR survey {_r_version(rscript)} on the {n:,} file (timeout {args.r_timeout:.0f} s)...")
    progress = OUT / "bench_survey.log"
    with open(progress, "w") as log:
        wall, rss, status = run_measured(command, timeout=args.r_timeout, stdout=log)
    done = [line.split() for line in progress.read_text().splitlines() if line.strip()]
    if status == -9:
        print(f"  R timed out after {args.r_timeout:.0f} s: "
              f"Python is at least {args.r_timeout / ours[n]:.0f}x faster")  # fmt: skip
        if done:
            k, total, spent = int(done[-1][0]), int(done[-1][1]), float(done[-1][2])
            # the whole file (group 1) costs about as much as the agencies together; the
            # agencies are then extrapolated from those finished
            if k > 1:
                whole = float(done[0][2])
                estimate = whole + (spent - whole) / (k - 1) * (total - 1)
                print(f"  R finished {k} of {total} groups (whole file + {k - 1} agencies); "
                      f"extrapolated full run ~{estimate:.0f} s, ~{estimate / ours[n]:.0f}x "
                      "the Python time")  # fmt: skip
    elif status != 0:
        print(f"  R failed (exit {status})")
    else:
        print(f"  R: {wall:.1f} s, peak RSS {rss:,.0f} MB; "
              f"Python {ours[n]:.2f} s: {wall / ours[n]:.0f}x faster")  # fmt: skip


def _phases(path: Path, n: int) -> None:
    """In-process breakdown (reading vs computing), for information."""
    code = f"""
import time, sys
sys.path.insert(0, {str(ROOT)!r})
import analysis
t0 = time.perf_counter()
emap = analysis.read_elements({str(OUT / "elements.csv")!r})
frame = analysis.read_responses({str(path)!r}, emap.criteria, columns=["agency", "field"])
totals = analysis.read_totals({str(OUT / f"totals_{n}.csv")!r})
t1 = time.perf_counter()
table = analysis.compute_indices(frame, emap, weighting="poststrat", totals=totals, by="agency")
t2 = time.perf_counter()
print(f"  of which: read CSV {{t1 - t0:.2f}} s, compute {{t2 - t1:.2f}} s")
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False)


def _r_version(rscript: str) -> str:
    done = subprocess.run(
        [rscript, "-e", "cat(as.character(packageVersion('survey')))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


if __name__ == "__main__":
    main()
