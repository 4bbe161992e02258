"""Shared test data: the synthetic files, the weighting configurations, the table comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import analysis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = HERE / "data"
EXPECTED = HERE / "reference" / "expected"
GROUP_VARIABLES = ["agency", "gender", "period", "age_band"]
KEYS = ["by", *GROUP_VARIABLES, "level", "key"]
TEXT = ["ci_method", "flag"]
BY = ["agency", "gender", "agency,period", "age_band"]
TRIM = 1.5  # as make_reference.R
CONFIGS = ["none", "poststrat", "rake", "poststrat_trim", "rake_trim"]


def element_map() -> analysis.ElementMap:
    return analysis.read_elements(DATA / "elements.csv")


def responses() -> pd.DataFrame:
    return analysis.read_responses(DATA / "responses.csv", element_map().criteria)


def margins() -> list[pd.DataFrame]:
    names = ("margin_agency.csv", "margin_field.csv", "margin_gender.csv")
    return [analysis.read_margin(DATA / name) for name in names]


def options(config: str) -> dict:
    """Keyword arguments of compute_indices for a configuration of make_reference.R.

    Post-stratification pools nothing (``min_cell_n=1``): R's ``postStratify``.
    """
    out: dict = {"by": BY}
    if config.startswith("poststrat"):
        out.update(
            weighting="poststrat",
            totals=analysis.read_totals(DATA / "totals_agency_field.csv"),
            min_cell_n=1,
        )
    elif config.startswith("rake"):
        out.update(weighting="rake", margins=margins())
    if config.endswith("_trim"):
        out["trim"] = TRIM
    return out


def cli_options(config: str) -> list[str]:
    """The same configuration as command-line arguments."""
    args = []
    for by in BY:
        args += ["--by", by]
    if config.startswith("poststrat"):
        args += ["--weighting", "poststrat", "--totals", str(DATA / "totals_agency_field.csv")]
        args += ["--min-cell-n", "1"]
    elif config.startswith("rake"):
        args += ["--weighting", "rake"]
        for name in ("margin_agency.csv", "margin_field.csv", "margin_gender.csv"):
            args += ["--margin", str(DATA / name)]
    if config.endswith("_trim"):
        args += ["--trim", str(TRIM)]
    return args


def read_table(path: Path) -> pd.DataFrame:
    """A tidy table written by R or by the CLI: key and text columns as text, others numbers."""
    header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    text = {c: str for c in header if c in KEYS or c in TEXT}
    table = pd.read_csv(
        path,
        dtype=text,
        keep_default_na=False,
        na_values={c: [""] for c in header if c not in text},
        encoding="utf-8-sig",
    )
    return table


def assert_tables_match(
    got: pd.DataFrame, expected: pd.DataFrame, atol: float = 1e-6, rtol: float = 1e-10
) -> None:
    """Every column of ``expected`` agrees with ``got`` row by row (matched on the keys).

    Numbers agree when |a - b| <= atol + rtol |a| (rtol only matters for large sums of
    weights); blanks must be blank on both sides; text must be equal.
    """
    got = got.copy()
    expected = expected.copy()
    for table in (got, expected):
        for column in KEYS:
            table[column] = table[column].fillna("").astype(str) if column in table else ""
    assert not got.duplicated(KEYS).any()
    merged = expected.merge(got, on=KEYS, how="outer", suffixes=("_r", "_py"), indicator=True)
    unmatched = merged[merged["_merge"] != "both"]
    assert unmatched.empty, f"rows only on one side:\n{unmatched[KEYS + ['_merge']]}"
    for column in expected.columns:
        if column in KEYS:
            continue
        want, have = merged[f"{column}_r"], merged[f"{column}_py"]
        if column in TEXT:
            bad = want.fillna("").astype(str) != have.fillna("").astype(str)
        else:
            a = pd.to_numeric(want, errors="coerce").to_numpy(dtype="float64")
            b = pd.to_numeric(have, errors="coerce").astype("float64").to_numpy()
            same = (np.isnan(a) & np.isnan(b)) | (a == b)
            with np.errstate(invalid="ignore"):
                same |= np.abs(a - b) <= atol + rtol * np.abs(a)
            bad = ~same
        if np.asarray(bad).any():
            rows = merged.loc[np.asarray(bad), KEYS + [f"{column}_r", f"{column}_py"]]
            raise AssertionError(
                f"column {column}: {int(np.sum(bad))} rows differ\n{rows.head(10)}"
            )
