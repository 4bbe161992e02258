"""Weights: post-stratification to known totals, raking to margins, and trimming.

Every respondent's base weight is 1, so weights are constant within a *weighting cell*: a
post-stratum, or for raking one combination of the raking variables seen in the sample. The
functions here work on cells (a few thousand at most), never on respondents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .io import AnalysisInputError, normalize_text

__all__ = [
    "NOTE_COLUMNS",
    "Notes",
    "PostStrata",
    "margin_counts",
    "notes_frame",
    "poststratify",
    "rake",
    "trim_weights",
]


def _cell_label(variables: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{v}={x!r}" for v, x in zip(variables, values, strict=True))


# No population cell holds more (squares of weights must stay finite in the variance).
MAX_COUNT = 1e15
# Nor a positive count below this: a weight near 1e-284 overflows the influence values.
MIN_COUNT = 1e-9


def _population_table(
    table: pd.DataFrame, variables: Sequence[str], value: str, what: str
) -> dict[tuple[str, ...], float]:
    """Totals keyed by the cell's values (text, NFC), duplicates rejected."""
    keys = [
        tuple(normalize_text(x) for x in row) for row in table[list(variables)].itertuples(False)
    ]
    out: dict[tuple[str, ...], float] = {}
    for key, count in zip(keys, table[value].to_numpy(dtype="float64"), strict=True):
        if key in out:
            raise AnalysisInputError(f"{what}: cell {_cell_label(variables, key)} is listed twice")
        if not np.isfinite(count) or count < 0 or count > MAX_COUNT or 0 < count < MIN_COUNT:
            raise AnalysisInputError(
                f"{what}: cell {_cell_label(variables, key)} has an invalid {value} {count!r}"
                + (f" (more than {MAX_COUNT:.0e})" if np.isfinite(count) and count > 1 else "")
                + (f" (positive but below {MIN_COUNT:.0e})" if 0 < count < MIN_COUNT else "")
            )
        out[key] = float(count)
    return out


NOTE_COLUMNS = ("kind", "scope", "cells", "responses", "transactions", "share", "detail")


class Notes(pd.DataFrame):
    """The notes of a result table (``table.attrs["notes"]``): a DataFrame whose ``==``
    with another DataFrame is one bool (:meth:`pandas.DataFrame.equals`).

    pandas compares the ``attrs`` of the tables ``pd.concat`` joins and keeps them only
    where they are all equal; with plain DataFrames in ``attrs`` that comparison raised
    "The truth value of a DataFrame is ambiguous" as soon as two results had different
    notes (an analyst joining two periods' tables). Now the concatenation keeps the notes
    when they agree and drops them otherwise (join ``attrs["notes"]`` yourself then).
    Anything else is a DataFrame as usual.
    """

    @property
    def _constructor(self):
        return Notes

    def __eq__(self, other):
        if isinstance(other, pd.DataFrame):
            return bool(self.equals(other))
        return super().__eq__(other)

    __hash__ = None


def notes_frame(rows: Sequence[dict] = ()) -> pd.DataFrame:
    """The weighting notes as a table with the columns of :data:`NOTE_COLUMNS`."""
    frame = pd.DataFrame(list(rows), columns=list(NOTE_COLUMNS))
    frame["responses"] = frame["responses"].astype("Int64")
    frame["transactions"] = frame["transactions"].astype("float64")
    frame["share"] = frame["share"].astype("float64")
    return frame


@dataclass(eq=False)
class PostStrata:
    """The weighting cells of a post-stratification, after any pooling.

    Attributes
    ----------
    cell_of : numpy.ndarray
        For each sample cell (row of the ``cells`` given), its weighting cell.
    cells : pandas.DataFrame
        Labels of the weighting cells (a pooled cell joins its members' values with
        `` + ``).
    size : numpy.ndarray
        Respondents per weighting cell (n_h).
    population : numpy.ndarray
        Population count per weighting cell (N_h).
    notes : list of dict
        What was pooled, dropped or not represented (see :data:`NOTE_COLUMNS`).
    unpooled_weight : numpy.ndarray or None
        Per sample cell (the rows of the ``cells`` given to :func:`poststratify`): the
        weight its respondents would have without the pooling, N_c / n_c scaled so that
        each pooled cell keeps its population (N_h / sum of N_c over its members with
        respondents; 0 for a cell whose total is 0). None when nothing was pooled. Its
        estimate less the pooled one estimates the bias the pooling brings (see
        :func:`analysis.compute_indices`).
    across_weight : numpy.ndarray or None
        Per sample cell: as ``unpooled_weight``, except that the transactions of a pooled
        population cell without respondents go to the respondents of the same service
        field (the variables after the first) in the other agencies, in proportion to their
        cells' N_c, instead of to its own agency's other fields. A probe of the bias of
        estimates over several agencies; None when no empty cell's field has respondents.
    """

    cell_of: np.ndarray
    cells: pd.DataFrame
    size: np.ndarray
    population: np.ndarray
    notes: list[dict]
    unpooled_weight: np.ndarray | None = None
    across_weight: np.ndarray | None = None
    empty_share: np.ndarray | None = None
    empty_spread: np.ndarray | None = None
    agency_of: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        """Weight N_h / n_h of each weighting cell."""
        return self.population / self.size


def poststratify(
    cells: pd.DataFrame,
    cell_size: np.ndarray,
    totals: pd.DataFrame,
    drop_empty_cells: bool = False,
    min_cell_n: int = 1,
) -> PostStrata:
    """Post-stratification cells and weights, small and empty cells pooled.

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
        Without pooling (``min_cell_n = 1``): ignore population cells that have no
        respondents instead of stopping (their population is then represented by nobody, as
        R ``postStratify(partial=TRUE)``); each is reported in the notes.
    min_cell_n : int, default 1
        Pool, within each value of the first post-stratum variable (the agency), the cells
        with fewer respondents than this -- empty population cells included -- into cells
        of at least ``min_cell_n`` respondents carrying their population counts, cells of
        similar weight N_h / n_h together (empty cells with the largest weights; see
        :func:`_pools`); if a single pool is still short, the agency's smallest other cell
        joins it, repeatedly (in the end the agency may be one cell). Cells with at least
        ``min_cell_n`` respondents are kept. 1 pools nothing: R's ``postStratify``.

    Returns
    -------
    PostStrata
        The weighting cells, their sizes, population counts and weights N_h / n_h, and the
        notes.

    Raises
    ------
    AnalysisInputError
        A sample cell whose agency has no totals at all; without pooling, a sample cell
        absent from the totals or with total 0 (R's ``postStratify`` stops there too), or a
        population cell with a positive total and no respondents (unless
        ``drop_empty_cells``); the message names it.

    Notes
    -----
    With pooling, a sample cell whose total is 0 (or missing while its agency has totals)
    is pooled like a small cell: its respondents join the agency's pooled cell, whose total
    is the sum of its members' (note ``zero_cells_pooled``). An agency whose whole total is
    0 has respondents who represent nothing: its sample cells get ``cell_of = -1`` and
    :func:`analysis.design.make_design` leaves their responses out (note
    ``zero_total_dropped``), as a population without respondents is left out.

    With base weights 1 the post-stratified weight is w_i = N_h / n_h (Holt and Smith,
    1979); it is what R's ``survey::postStratify`` gives for ``svydesign(ids = ~1)``. Cells
    with count 0 and no respondents are ignored, as in R. Pooling collapses post-strata
    (Kalton and Flores-Cervantes, 2003): a cell of one respondent adds nothing to the
    linearized variance, so small cells make the published intervals too narrow.
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
    min_cell_n = int(min_cell_n)
    if min_cell_n < 1:
        raise AnalysisInputError(f"min_cell_n must be at least 1, not {min_cell_n}")
    population = _population_table(totals, variables, "count", "totals")
    keys = [tuple(row) for row in cells.itertuples(False)]
    sizes = np.asarray(cell_size, dtype="float64")
    agency_total: dict[str, float] = {}
    for key, count in population.items():
        agency_total[key[0]] = agency_total.get(key[0], 0.0) + count
    zero: list[int] = []  # sample cells whose population is 0 or not given
    for k, key in enumerate(keys):
        count = population.get(key)
        if count is not None and count > 0:
            continue
        reason = "is missing from the totals" if count is None else "has a total of 0"
        label = f"totals: sample cell {_cell_label(variables, key)} ({int(sizes[k])} respondents)"
        if key[0] not in agency_total:
            raise AnalysisInputError(
                f"{label} {reason}, and {variables[0]}={key[0]!r} has no totals at all"
            )
        if min_cell_n <= 1:
            raise AnalysisInputError(
                f"{label} {reason}: its respondents represent no transaction (R's "
                "postStratify stops here too). Pool it within its agency with min_cell_n / "
                "--min-cell-n 2 or more (the default), or correct the totals."
            )
        zero.append(k)
    population = dict(population)
    for k in zero:
        population.setdefault(keys[k], 0.0)
    sampled = set(keys)
    empty = [key for key, count in population.items() if count > 0 and key not in sampled]
    grand = sum(c for c in population.values() if c > 0)
    notes: list[dict] = []
    # An agency whose whole total is 0 has respondents but no transaction to represent: like
    # a population without respondents, it is left out of the weighted estimates and said.
    left_out = {k for k in zero if agency_total[keys[k][0]] <= 0}
    for scope, members in _by_first([keys[k] for k in sorted(left_out)]).items():
        n_out = int(sum(sizes[keys.index(key)] for key in members))
        notes.append(
            _note(
                "zero_total_dropped",
                scope,
                variables,
                members,
                n_out,
                0.0,
                grand,
                f"{scope} has {n_out} respondent(s) but a total of 0 transactions in the "
                "totals: its responses represent nobody and were left out of the weighted "
                "estimates.",
            )
        )
    zero_cells = {keys[k] for k in zero if k not in left_out}
    if min_cell_n <= 1:
        if empty and not drop_empty_cells:
            shown = "; ".join(_cell_label(variables, key) for key in empty[:5])
            more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
            raise AnalysisInputError(
                f"totals: population cell {shown}{more} has no respondents (pool such cells "
                "with min_cell_n / --min-cell-n, or drop them with drop_empty_cells / "
                "--drop-empty-cells)"
            )
        notes += _unrepresented(variables, keys, population, grand)
        represented = {key[0] for key in keys}
        for scope, members in _by_first(empty).items():
            if scope not in represented:
                continue
            transactions = sum(population[key] for key in members)
            notes.append(
                _note(
                    "empty_cells_dropped",
                    scope,
                    variables,
                    members,
                    0,
                    transactions,
                    grand,
                    f"{len(members)} population cell(s) of {scope} had no respondents and were "
                    f"left out: {transactions:,.0f} transactions are represented by nobody.",
                )
            )
        cell_of = np.arange(len(keys))
        pooled = cells.reset_index(drop=True)
        population_h = np.array([population[key] for key in keys])
        return PostStrata(cell_of, pooled, sizes.copy(), population_h, notes)

    notes += _unrepresented(variables, keys, population, grand)
    members_of: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    index_of = {key: k for k, key in enumerate(keys)}
    for k, (key, size) in enumerate(zip(keys, sizes, strict=True)):
        if k not in left_out:
            members_of.setdefault(key[0], []).append((key, float(size)))
    for key in empty:
        if key[0] in members_of:
            members_of[key[0]].append((key, 0.0))
    cell_of = np.full(len(keys), -1, dtype=np.int64)
    labels: list[tuple[str, ...]] = []
    sizes_h: list[float] = []
    population_h: list[float] = []

    empty_of: dict[tuple[str, ...], int] = {}  # pooled empty population cell -> its pool

    def add_cell(group: list[tuple[tuple[str, ...], float]]) -> None:
        h = len(labels)
        for key, _ in group:
            if key in index_of:
                cell_of[index_of[key]] = h
            else:
                empty_of[key] = h
        labels.append(_joined(group))
        sizes_h.append(sum(size for _, size in group))
        population_h.append(sum(population[key] for key, _ in group))

    for scope, members in members_of.items():
        if len(variables) == 1:
            for member in members:
                add_cell([member])
            continue
        # A cell of total 0 carries its respondents into a pool like a small cell.
        small = [m for m in members if m[1] < min_cell_n or m[0] in zero_cells]
        big = sorted(
            (m for m in members if m[1] >= min_cell_n and m[0] not in zero_cells),
            key=lambda m: (m[1], m[0]),
        )
        if not small:
            for member in big:
                add_cell([member])
            continue
        pools, absorbed = _pools(small, big, population, min_cell_n)
        for member in big:
            add_cell([member])
        for pooled in pools:
            add_cell(pooled)
        sampled_small = [key for key, size in small if size > 0 and key not in zero_cells]
        empty_small = [key for key, size in small if size == 0]
        zero_small = [key for key, _ in small if key in zero_cells]
        if zero_small:
            n_zero = int(sum(size for key, size in small if key in zero_cells))
            notes.append(
                _note(
                    "zero_cells_pooled",
                    scope,
                    variables,
                    zero_small,
                    n_zero,
                    0.0,
                    grand,
                    f"In {scope}, {len(zero_small)} cell(s) with respondents ({n_zero} in all) "
                    "have a total of 0 or none in the totals; their respondents were pooled "
                    "with the agency's other cells and represent the pooled cell's "
                    "transactions.",
                )
            )
        if sampled_small:
            n_small = int(sum(size for _, size in small))
            notes.append(
                _note(
                    "pooled_cells",
                    scope,
                    variables,
                    sampled_small,
                    n_small,
                    sum(population[key] for key in sampled_small),
                    grand,
                    f"In {scope}, {len(sampled_small)} cell(s) with fewer than {min_cell_n} "
                    f"respondents ({n_small} in all) were pooled into {len(pools)} weighting "
                    "cell(s), cells of similar weight together.",
                )
            )
        if empty_small:
            transactions = sum(population[key] for key in empty_small)
            own = sum(population[m[0]] for m in members)
            own_share = transactions / own if own > 0 else 0.0
            notes.append(
                _note(
                    "empty_cells_pooled",
                    scope,
                    variables,
                    empty_small,
                    0,
                    transactions,
                    grand,
                    f"In {scope}, {len(empty_small)} cell(s) had no respondents; their "
                    f"{transactions:,.0f} transactions ({own_share:.0%} of {scope}'s) are "
                    "carried by the pooled cell of the largest weight, as if they were as "
                    "satisfied as its respondents: the sample cannot tell. The intervals "
                    "allow for how much an agency's service fields differ (estimated from "
                    "the agencies with respondents in several fields).",
                )
            )
        if absorbed:
            whole = not big
            n_abs = int(sum(size for _, size in absorbed))
            notes.append(
                _note(
                    "fallback",
                    scope,
                    variables,
                    [key for key, _ in absorbed],
                    n_abs,
                    sum(population[key] for key, _ in absorbed),
                    grand,
                    f"In {scope}, the pooled cell still had fewer than {min_cell_n} "
                    "respondents or no transactions, so "
                    + (
                        "the whole agency is one weighting cell."
                        if whole
                        else f"{len(absorbed)} more cell(s) were pooled with it."
                    ),
                )
            )
    cells_h = pd.DataFrame(labels, columns=variables)
    sizes_h, population_h = np.array(sizes_h), np.array(population_h)
    args = (keys, sizes, cell_of, population, sizes_h, population_h)
    across = _fine_weights(*args, empty_of=empty_of)
    inside = cell_of >= 0
    merged = inside.any() and np.bincount(cell_of[inside]).max(initial=0) > 1
    unpooled = _fine_weights(*args) if merged or across is not None else None
    strata = PostStrata(cell_of, cells_h, sizes_h, population_h, notes, unpooled, across)
    if empty_of:
        _empty_cells(strata, empty_of, population, keys, sizes)
    return strata


def _empty_cells(strata: PostStrata, empty_of, population, keys, sizes) -> None:
    """Set ``empty_share``, ``empty_spread`` and ``agency_of`` of ``strata`` (see
    :class:`PostStrata`) from its pooled empty population cells."""
    n_h = len(strata.size)
    empty_total, empty_sq = np.zeros(n_h), np.zeros(n_h)
    for key, h in empty_of.items():
        count = max(population.get(key, 0.0), 0.0)
        empty_total[h] += count
        empty_sq[h] += count * count
    inside = strata.cell_of >= 0
    h = strata.cell_of[inside]
    sampled_sq = np.bincount(h, weights=sizes[inside] ** 2, minlength=n_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        strata.empty_share = np.where(
            strata.population > 0, empty_total / strata.population, 0.0)
        strata.empty_spread = np.where(empty_total > 0, empty_sq / empty_total**2, 0.0) + \
            np.where(strata.size > 0, sampled_sq / strata.size**2, 0.0)
    agencies = sorted({key[0] for key in keys})
    position = {a: i for i, a in enumerate(agencies)}
    strata.agency_of = np.array([position[key[0]] for key in keys], dtype=np.int64)


def _fine_weights(keys, sizes, cell_of, population, sizes_h, population_h, empty_of=None):
    """Per sample cell, the weight of the fine post-strata: N_c / n_c times
    (N_h - moved_h) / (sum of N_c over the pool's sampled members), so each pool keeps its
    population (its empty cells' transactions spread over its sampled cells in proportion
    to theirs); a pool with no transactions of its own keeps the pooled weight.

    With ``empty_of`` (pooled empty population cell -> its pool): each empty cell's
    transactions leave its pool (``moved_h``) for its field's respondents in every agency,
    in proportion to their cells' N_c (:attr:`PostStrata.across_weight`); None when no
    empty cell's field has respondents.
    """
    inside = (cell_of >= 0) & (sizes > 0)
    own = np.array([max(population.get(key, 0.0), 0.0) for key in keys])
    moved = np.zeros(len(sizes_h))  # transactions leaving each pool
    extra = np.zeros(len(keys))  # per sample cell: its field's share of the moved ones
    if empty_of is not None:
        field_of = [key[1:] for key in keys]
        field_total: dict[tuple[str, ...], float] = {}
        for k in np.flatnonzero(inside):
            field_total[field_of[k]] = field_total.get(field_of[k], 0.0) + own[k]
        field_extra: dict[tuple[str, ...], float] = {}
        for key, pool in empty_of.items():
            count = population.get(key, 0.0)
            if count > 0 and field_total.get(key[1:], 0.0) > 0:
                moved[pool] += count
                field_extra[key[1:]] = field_extra.get(key[1:], 0.0) + count
        if not field_extra:
            return None
        extra = np.array([field_extra.get(f, 0.0) / field_total[f]
                          if field_total.get(f, 0.0) > 0 else 0.0 for f in field_of])
    h = np.where(inside, cell_of, 0)
    held = np.bincount(h[inside], weights=own[inside], minlength=len(sizes_h))
    left = population_h[h] - moved[h]
    with np.errstate(divide="ignore", invalid="ignore"):
        fine = own / sizes
        base = np.where(held[h] > 0, fine * left / held[h], left / sizes_h[h])
    return np.where(inside, base + fine * extra, 0.0)


def _pools(small, big, population, min_cell_n):
    """Pools of the small cells of one agency, each of at least ``min_cell_n`` respondents.

    The small cells are taken in the order of their weight N_h / n_h (an empty cell's is
    infinite, so empty cells join the pool of the most under-represented cells) and cut
    into consecutive pools as soon as a pool reaches ``min_cell_n``; a short last pool
    joins the one before. Cells of similar weight pooled together keep nearly their own
    weight, so pooling changes the estimate little. When the only pool is still short,
    the agency's smallest large cells join it, one at a time (``absorbed``).
    """

    def weight(member):
        key, size = member
        return (population[key] / size if size else np.inf, key)

    def short(pool):
        size = sum(size for _, size in pool)
        return size < min_cell_n or (size > 0 and sum(population[k] for k, _ in pool) <= 0)

    pools: list[list] = [[]]
    for member in sorted(small, key=weight):
        if not short(pools[-1]):
            pools.append([])
        pools[-1].append(member)
    if len(pools) > 1 and short(pools[-1]):
        last = pools.pop()
        pools[-1] += last
    absorbed = []
    while len(pools) == 1 and short(pools[0]) and big:
        absorbed.append(big.pop(0))
        pools[0].append(absorbed[-1])
    return pools, absorbed


def _by_first(keys) -> dict[str, list[tuple[str, ...]]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for key in keys:
        out.setdefault(key[0], []).append(key)
    return out


def _joined(group) -> tuple[str, ...]:
    """Label of a pooled cell: the first variable's value, the others' values joined."""
    keys = [key for key, _ in group]
    out = [keys[0][0]]
    for j in range(1, len(keys[0])):
        out.append(" + ".join(dict.fromkeys(key[j] for key in keys)))
    return tuple(out)


def _note(kind, scope, variables, keys, responses, transactions, grand, detail) -> dict:
    cells = "; ".join(
        ", ".join(f"{v}={x}" for v, x in zip(variables[1:], key[1:], strict=True)) or key[0]
        for key in keys
    )
    return {
        "kind": kind,
        "scope": scope,
        "cells": cells,
        "responses": int(responses),
        "transactions": float(transactions),
        "share": float(transactions) / grand if grand > 0 else np.nan,
        "detail": detail,
    }


def _unrepresented(variables, keys, population, grand) -> list[dict]:
    """A note for each value of the first variable with population but no respondent."""
    represented = {key[0] for key in keys}
    lost: dict[str, list[tuple[str, ...]]] = {}
    for key, count in population.items():
        if count > 0 and key[0] not in represented:
            lost.setdefault(key[0], []).append(key)
    out = []
    for scope, members in lost.items():
        transactions = sum(population[key] for key in members)
        out.append(
            _note(
                "unrepresented",
                scope,
                variables[:1],
                [(scope,)],
                0,
                transactions,
                grand,
                f"{scope} has {transactions:,.0f} transactions and no respondent: it is not "
                "represented in any weighted estimate.",
            )
        )
    return out


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
