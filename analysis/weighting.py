"""Weights: post-stratification to known totals, raking to margins, and trimming.

Every respondent's base weight is 1, so weights are constant within a *weighting cell*: a
post-stratum, or for raking one combination of the raking variables seen in the sample. The
functions here work on cells (a few thousand at most), never on respondents.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .io import AnalysisInputError, _text

__all__ = ["poststratify", "rake", "trim_weights", "margin_counts"]


def _cell_label(variables: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{v}={x!r}" for v, x in zip(variables, values, strict=True))


def _population_table(
    table: pd.DataFrame, variables: Sequence[str], value: str, what: str
) -> dict[tuple[str, ...], float]:
    """Totals keyed by the cell's values (text, NFC), duplicates rejected."""
    keys = [tuple(_text(x) for x in row) for row in table[list(variables)].itertuples(False)]
    out: dict[tuple[str, ...], float] = {}
    for key, count in zip(keys, table[value].to_numpy(dtype="float64"), strict=True):
        if key in out:
            raise AnalysisInputError(f"{what}: cell {_cell_label(variables, key)} is listed twice")
        if not np.isfinite(count) or count < 0:
            raise AnalysisInputError(
                f"{what}: cell {_cell_label(variables, key)} has an invalid {value} {count!r}"
            )
        out[key] = float(count)
    return out


def poststratify(
    cells: pd.DataFrame,
    cell_size: np.ndarray,
    totals: pd.DataFrame,
    drop_empty_cells: bool = False,
) -> np.ndarray:
    """Post-stratification weights of the sample cells.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per post-stratum present in the sample; columns are the post-stratum
        variables, values as text.
    cell_size : numpy.ndarray
        Respondents in each post-stratum (n_h).
    totals : pandas.DataFrame
        The same variables plus ``count``: the population size N_h of each post-stratum.
    drop_empty_cells : bool, default False
        Ignore population cells that have no respondents instead of stopping (their
        population is then represented by nobody, as R ``postStratify(partial=TRUE)``).

    Returns
    -------
    numpy.ndarray
        The weight N_h / n_h of each sample cell.

    Raises
    ------
    AnalysisInputError
        A sample cell absent from the totals (or with total 0), or a population cell with a
        positive total and no respondents (unless ``drop_empty_cells``); the message names it.

    Notes
    -----
    With base weights 1 the post-stratified weight is w_i = N_h / n_h (Holt and Smith,
    1979); it is what R's ``survey::postStratify`` gives for ``svydesign(ids = ~1)``. Cells
    with count 0 and no respondents are ignored, as in R.
    """
    variables = list(cells.columns)
    if "count" not in totals.columns:
        raise AnalysisInputError("totals: no count column")
    missing = [v for v in variables if v not in totals.columns]
    extra = [c for c in totals.columns if c != "count" and c not in variables]
    if missing or extra:
        raise AnalysisInputError(
            "totals: the post-stratum columns must be the same in the totals and the "
            f"weighting (totals have {[c for c in totals.columns if c != 'count']}, "
            f"weighting uses {variables})"
        )
    population = _population_table(totals, variables, "count", "totals")
    keys = [tuple(row) for row in cells.itertuples(False)]
    weights = np.empty(len(keys))
    for k, key in enumerate(keys):
        count = population.get(key)
        if count is None or count == 0:
            reason = "is missing from the totals" if count is None else "has a total of 0"
            raise AnalysisInputError(
                f"totals: sample cell {_cell_label(variables, key)} ({int(cell_size[k])} "
                f"respondents) {reason}"
            )
        weights[k] = count / cell_size[k]
    sampled = set(keys)
    empty = [key for key, count in population.items() if count > 0 and key not in sampled]
    if empty and not drop_empty_cells:
        shown = "; ".join(_cell_label(variables, key) for key in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        raise AnalysisInputError(
            f"totals: population cell {shown}{more} has no respondents (drop such cells with "
            "the option drop_empty_cells / --drop-empty-cells)"
        )
    return weights


def margin_counts(margins: Sequence[pd.DataFrame], n_respondents: int) -> list[pd.DataFrame]:
    """Turn share margins into counts.

    Shares are normalised to sum to 1 (so percentages work too) and scaled to the total of
    the first margin given as counts; when every margin is a share, to the number of
    respondents.
    """
    totals = [m["count"].sum() for m in margins if "count" in m.columns]
    grand = float(totals[0]) if totals else float(n_respondents)
    out = []
    for i, margin in enumerate(margins):
        if "count" in margin.columns:
            out.append(margin)
            continue
        if "share" not in margin.columns:
            raise AnalysisInputError(f"margin {i + 1}: needs a count or a share column")
        share = margin["share"].to_numpy(dtype="float64")
        if not np.all(np.isfinite(share)) or (share < 0).any() or share.sum() <= 0:
            raise AnalysisInputError(f"margin {i + 1}: shares must be non-negative, not all 0")
        converted = margin.drop(columns="share").copy()
        converted["count"] = share / share.sum() * grand
        out.append(converted)
    return out


def rake(
    cells: pd.DataFrame,
    cell_size: np.ndarray,
    margins: Sequence[pd.DataFrame],
    drop_empty_cells: bool = False,
    tol: float = 1e-13,
    maxit: int = 10_000,
) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """Raking (iterative proportional fitting) weights of the sample cells.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per combination of the raking variables present in the sample.
    cell_size : numpy.ndarray
        Respondents in each cell.
    margins : sequence of pandas.DataFrame
        One table per margin, with its variable column(s) and ``count`` (share margins are
        converted by :func:`margin_counts` beforehand).
    drop_empty_cells : bool, default False
        Ignore margin levels that have no respondents instead of stopping.
    tol : float, default 1e-13
        Convergence: stop when a full pass over the margins changes no cell weight by more
        than ``tol`` relative. The default is tighter than the 1e-9 asked for, so that the
        weights are the limit to ~1e-12; should rounding keep the change above ``tol``,
        a change below 1e-9 after ``maxit`` passes is accepted.
    maxit : int
        Largest number of passes.

    Returns
    -------
    weights : numpy.ndarray
        The raked weight of each cell.
    levels : list of numpy.ndarray
        For each margin, the level index of each cell.
    sizes : list of int
        For each margin, its number of levels.

    Notes
    -----
    Iterative proportional fitting (Deming and Stephan, 1940): starting from base weights 1,
    the weights are multiplied, margin after margin in the order given, by the ratio of the
    population count to the current weighted count of the level, until convergence. This is
    R's ``survey::rake()`` with a tight ``epsilon``. The margins must agree on the total.
    """
    levels: list[np.ndarray] = []
    sizes: list[int] = []
    targets: list[np.ndarray] = []
    for i, margin in enumerate(margins):
        variables = [c for c in margin.columns if c != "count"]
        absent = [v for v in variables if v not in cells.columns]
        if absent:
            raise AnalysisInputError(f"margin {i + 1}: unknown variable(s) {absent}")
        population = _population_table(margin, variables, "count", f"margin {i + 1}")
        sub = cells[variables]
        keys = [tuple(row) for row in sub.itertuples(False)]
        present: dict[tuple[str, ...], int] = {}
        for key, size in zip(keys, cell_size, strict=True):
            present[key] = present.get(key, 0) + int(size)
        for key, size in present.items():
            if population.get(key, 0) == 0:
                reason = "is missing from the margin" if key not in population else "has count 0"
                raise AnalysisInputError(
                    f"margin {i + 1}: sample cell {_cell_label(variables, key)} ({size} "
                    f"respondents) {reason}"
                )
        empty = [k for k, c in population.items() if c > 0 and k not in present]
        if empty and not drop_empty_cells:
            shown = "; ".join(_cell_label(variables, k) for k in empty[:5])
            raise AnalysisInputError(
                f"margin {i + 1}: population cell {shown} has no respondents (drop such "
                "cells with the option drop_empty_cells / --drop-empty-cells)"
            )
        order = list(present)
        index = {key: j for j, key in enumerate(order)}
        levels.append(np.array([index[key] for key in keys], dtype=np.int64))
        sizes.append(len(order))
        targets.append(np.array([population[key] for key in order]))

    grand = [t.sum() for t in targets]
    if max(grand) - min(grand) > 1e-9 * max(grand):
        shown = ", ".join(f"margin {i + 1}: {g:.10g}" for i, g in enumerate(grand))
        raise AnalysisInputError(f"raking margins disagree on the population total ({shown})")

    weights = np.ones(len(cell_size))
    change = np.inf
    for _ in range(maxit):
        before = weights.copy()
        for level, size, target in zip(levels, sizes, targets, strict=True):
            current = np.bincount(level, weights=weights * cell_size, minlength=size)
            weights = weights * (target / current)[level]
        change = float(np.max(np.abs(weights - before) / before))
        if change < tol:
            return weights, levels, sizes
    if change < 1e-9:
        return weights, levels, sizes
    raise AnalysisInputError(
        f"raking did not converge in {maxit} passes over the margins (last relative change "
        f"{change:.1e})"
    )


def trim_weights(weights: np.ndarray, cell_size: np.ndarray, upper: float) -> np.ndarray:
    """Trim cell weights at ``upper`` times the mean weight and share out the excess.

    Parameters
    ----------
    weights : numpy.ndarray
        Weight of each cell.
    cell_size : numpy.ndarray
        Respondents in each cell.
    upper : float
        The cap, as a multiple of the mean weight per respondent (e.g. 3.5). Must be > 1.

    Returns
    -------
    numpy.ndarray
        Trimmed weights; their total is unchanged.

    Notes
    -----
    As R's ``trimWeights(design, upper = upper * mean(weights(design)), strict = TRUE)``:
    weights above the cap are set to it and the amount removed is added in equal parts to
    every respondent below the cap; repeated until no weight exceeds the cap. The cap is
    fixed in absolute terms from the mean weight before trimming (which trimming keeps).
    Trimming lowers the variance from extreme weights at the cost of a bias; the variance
    is then computed with the trimmed weights and the calibration of the untrimmed ones,
    as R does.
    """
    if not upper > 1:
        raise AnalysisInputError(
            f"trim: the cap must be a multiple > 1 of the mean weight, not {upper}"
        )
    n = cell_size.sum()
    cap = upper * float((weights * cell_size).sum() / n)
    weights = weights.astype("float64").copy()
    for _ in range(1000):
        outside = weights > cap
        if not outside.any():
            break
        excess = float(((weights - cap) * cell_size)[outside].sum())
        inside_n = cell_size[~outside].sum()
        if inside_n == 0:
            raise AnalysisInputError("trim: every weight is above the cap")
        weights[outside] = cap
        weights[~outside] += excess / inside_n
    return weights
