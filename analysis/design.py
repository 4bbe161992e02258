"""A survey design: the validated answers, the respondents' weighting cells and their weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .io import AnalysisInputError, criterion_answers, normalize_text
from .weighting import margin_counts, notes_frame, poststratify, rake, trim_weights

__all__ = [
    "DEFAULT_MIN_CELL_N", "SurveyDesign", "factorize", "make_design", "unique_codes", "unpooled",
]

WEIGHTINGS = ("none", "poststrat", "rake")
# Post-strata with fewer respondents are pooled by default; chosen by bench/bench_coverage.py.
DEFAULT_MIN_CELL_N = 5


def factorize(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and sorted labels of a categorical column; blank values get code -1.

    Values are compared as text, trimmed and in Unicode NFC, so ``"Sở Tư pháp "`` typed
    in a spreadsheet matches ``"Sở Tư pháp"`` in the totals file.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    labels = [normalize_text(u) for u in uniques]
    order = sorted({x for x in labels if x})
    position = {x: i for i, x in enumerate(order)}
    remap = np.array([position.get(x, -1) for x in labels] + [-1], dtype=np.int64)
    return remap[codes], order


@dataclass(eq=False)
class SurveyDesign:
    """A with-replacement sample of respondents, its answers and its (calibrated) weights.

    Build it with :func:`make_design`. All respondents have base weight 1; calibration gives
    every respondent of a weighting cell the same weight.

    Attributes
    ----------
    data : pandas.DataFrame
        The responses as given (grouping variables are read from it).
    criteria : tuple of str
        Criterion columns, in the order of ``answers``.
    answers : numpy.ndarray
        ``int8`` (respondents, criteria), 1-5, 0 for blank.
    weighting : str
        ``"none"``, ``"poststrat"`` or ``"rake"``.
    cell : numpy.ndarray
        Weighting cell of each respondent (post-stratum, or raking-variable combination;
        a single cell when unweighted).
    cell_size : numpy.ndarray
        Respondents per cell.
    cell_weight : numpy.ndarray
        Final weight per cell (after trimming, if any).
    calibrated_weight : numpy.ndarray
        Weight per cell before trimming: the one the variance's calibration residuals use.
    cells : pandas.DataFrame
        Labels of the cells (weighting variables as columns).
    margin_levels, margin_sizes : list
        Raking only: for each margin, the level of each cell and the number of levels.
    trim : float or None
        The trimming cap (multiple of the mean weight), if any.
    rake_rounds : int or None
        Raking only: rounds of backfitting for the variance's calibration residuals (10,
        as R's ``svyrecvar``), or None for the exact least-squares projection.
    min_cell_n : int
        Post-stratification: the pooling threshold used (1: no pooling).
    unpooled_cell, unpooled_weight, across_weight : numpy.ndarray or None
        Post-stratification with pooling: each respondent's post-stratum before pooling, the
        weight of each such post-stratum without the pooling, and the same with the empty
        cells carried by their field in other agencies (see
        :class:`analysis.weighting.PostStrata`); None when nothing was pooled.
    empty_share, empty_spread : numpy.ndarray or None
        Post-stratification with population cells without respondents pooled: per
        weighting cell, the share of its population in those cells and the spread of the
        error they may bring (:class:`analysis.weighting.PostStrata`); None otherwise.
    fine_cell, fine_agency : numpy.ndarray or None
        With ``empty_share``: each respondent's post-stratum before pooling, and each such
        post-stratum's agency (a code): what the spread of satisfaction between an agency's
        service fields is estimated from.
    cache : dict
        Values derived from the design once and reused by every estimate made from it
        (the raking leverage, the spread between service fields), keyed by name.
    notes : pandas.DataFrame
        What the weighting pooled, dropped or could not represent, one row each, with the
        columns ``kind``, ``scope``, ``cells``, ``responses``, ``transactions``, ``share``,
        ``detail`` (see :func:`analysis.compute_indices`). Empty when there is nothing to say.
    """

    data: pd.DataFrame
    criteria: tuple[str, ...]
    answers: np.ndarray
    weighting: str
    cell: np.ndarray
    cell_size: np.ndarray
    cell_weight: np.ndarray
    calibrated_weight: np.ndarray
    cells: pd.DataFrame
    margin_levels: list[np.ndarray] = field(default_factory=list)
    margin_sizes: list[int] = field(default_factory=list)
    trim: float | None = None
    rake_rounds: int | None = 10
    min_cell_n: int = 1
    notes: pd.DataFrame = field(default_factory=notes_frame)
    unpooled_cell: np.ndarray | None = None
    unpooled_weight: np.ndarray | None = None
    across_weight: np.ndarray | None = None
    empty_share: np.ndarray | None = None
    empty_spread: np.ndarray | None = None
    fine_cell: np.ndarray | None = None
    fine_agency: np.ndarray | None = None
    cache: dict = field(default_factory=dict, init=False, repr=False)  # not copied by replace
    _codes: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Respondents in the whole file."""
        return int(self.cell.shape[0])

    @property
    def weights(self) -> np.ndarray:
        """Weight of each respondent."""
        return self.cell_weight[self.cell]

    def codes(self, variable: str) -> tuple[np.ndarray, list[str]]:
        """Codes (-1 for blank) and sorted labels of a categorical variable, cached."""
        if variable not in self._codes:
            if variable not in self.data.columns:
                raise AnalysisInputError(f"responses: no column {variable!r}")
            self._codes[variable] = factorize(self.data[variable])
        return self._codes[variable]

    def with_criteria(self, criteria: Sequence[str]) -> SurveyDesign:
        """The same design restricted to (or reordered as) these criteria."""
        criteria = tuple(criteria)
        if criteria == self.criteria:
            return self
        position = {c: i for i, c in enumerate(self.criteria)}
        missing = [c for c in criteria if c not in position]
        if missing:
            raise AnalysisInputError(f"design: criteria not in the design: {', '.join(missing)}")
        answers = np.asfortranarray(self.answers[:, [position[c] for c in criteria]])
        return replace(self, criteria=criteria, answers=answers, _codes=self._codes)

    def groups(self, variables: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
        """Group of each respondent for a grouping (-1 when a grouping value is blank).

        Returns the codes and a table of the groups present, in sorted order, one column
        per variable. An empty ``variables`` puts everyone in one group.
        """
        if not variables:
            return np.zeros(self.n, dtype=np.int64), pd.DataFrame(index=[0])
        code_arrays, labels = [], []
        for variable in variables:
            codes, names = self.codes(variable)
            code_arrays.append(codes)
            labels.append(names)
        missing = np.zeros(self.n, dtype=bool)
        for codes in code_arrays:
            missing |= codes < 0
        kept = [codes[~missing] for codes in code_arrays]
        combined = _combine(kept, [len(names) for names in labels])
        _, first, inverse, _ = unique_codes(combined)
        group = np.full(self.n, -1, dtype=np.int64)
        group[~missing] = inverse
        table = pd.DataFrame(
            {
                v: [names[int(i)] for i in codes[first]]
                for v, names, codes in zip(variables, labels, kept, strict=True)
            }
        )
        return group, table


def make_design(
    responses: pd.DataFrame,
    criteria: Sequence[str],
    weighting: str = "none",
    totals: pd.DataFrame | None = None,
    margins: Sequence[pd.DataFrame] | None = None,
    trim: float | None = None,
    drop_empty_cells: bool = False,
    rake_rounds: int | None = 10,
    min_cell_n: int = DEFAULT_MIN_CELL_N,
) -> SurveyDesign:
    """Validate the responses and weight them.

    Parameters
    ----------
    responses : pandas.DataFrame
        One row per response; criterion columns hold 1-5 or blank.
    criteria : sequence of str
        The criterion columns.
    weighting : {"none", "poststrat", "rake"}
        ``none``: every weight 1. ``poststrat``: w = N_h / n_h in each post-stratum h, the
        post-strata being the columns of ``totals`` other than ``count``. ``rake``: iterative
        proportional fitting to ``margins``.
    totals : pandas.DataFrame, optional
        For ``poststrat``: post-stratum columns plus ``count``.
    margins : sequence of pandas.DataFrame, optional
        For ``rake``: per margin, its variable column(s) plus ``count`` or ``share``.
    trim : float, optional
        Cap weights at this multiple of the mean weight (see :func:`.weighting.trim_weights`).
    drop_empty_cells : bool, default False
        Without pooling (``min_cell_n=1``): ignore population cells without respondents
        instead of stopping (each is reported in ``notes``).
    rake_rounds : int or None, default 10
        Raking only: the variance's calibration residuals are the residuals of the
        least-squares projection on the margins' dummies, computed like R's ``svyrecvar``
        by 10 rounds of backfitting (the same to machine precision unless the margins are
        strongly associated, where R's 10 rounds stop short by up to ~1e-5 relative). None
        gives the exact projection.
    min_cell_n : int, default DEFAULT_MIN_CELL_N (5)
        Post-stratification: within each value of the first post-stratum variable (the
        agency), cells with fewer respondents -- and population cells with none -- are
        pooled into one cell (see :func:`analysis.weighting.poststratify`). 1 turns pooling
        off and gives R's ``postStratify`` exactly. Responses with a blank post-stratum
        value are left out of a post-stratified design and reported in ``notes``.

    Returns
    -------
    SurveyDesign

    Notes
    -----
    The design is R's ``svydesign(ids = ~1, weights = ~1)`` -- a with-replacement sample of
    respondents -- calibrated by ``postStratify`` or ``rake`` and optionally
    ``trimWeights``; see :mod:`analysis.weighting` for the weights and
    :func:`analysis.estimators.domain_variance` for how calibration enters the variance
    (Lumley, 2010, *Complex Surveys*, ch. 7).
    """
    if weighting not in WEIGHTINGS:
        raise AnalysisInputError(
            f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}"
        )
    if len(responses) < 2:
        raise AnalysisInputError("responses: at least 2 responses are needed")
    answers = criterion_answers(responses, list(criteria))
    design_args: dict = {}
    notes: list[dict] = []
    coded: dict[str, tuple[np.ndarray, list[str]]] = {}  # factorized once, reused below
    if weighting == "poststrat" and totals is not None:
        responses, answers, notes = _drop_blank_strata(responses, answers, totals, coded)
    n = len(responses)
    if weighting == "none":
        if totals is not None or margins:
            raise AnalysisInputError("weighting none takes no totals or margins")
        cell = np.zeros(n, dtype=np.int64)
        cells = pd.DataFrame(index=[0])
        size = np.array([n])
        weights = np.ones(1)
    elif weighting == "poststrat":
        if totals is None:
            raise AnalysisInputError("weighting poststrat needs a totals table (--totals)")
        variables = [c for c in totals.columns if c != "count"]
        cell, cells, size = weighting_cells(responses, variables, coded)
        strata = poststratify(cells, size, totals, drop_empty_cells, min_cell_n)
        fine = cell
        cell, cells, size, weights = strata.cell_of[cell], strata.cells, strata.size, strata.weights
        notes += strata.notes
        if (cell < 0).any():  # agencies whose total is 0: left out, each said in the notes
            keep = cell >= 0
            if keep.sum() < 2:
                raise AnalysisInputError(
                    "totals: fewer than 2 responses are left once the agencies with a total "
                    "of 0 are left out"
                )
            responses, answers, cell = responses[keep], np.asfortranarray(answers[keep]), cell[keep]
            fine = fine[keep]
            coded.clear()  # the cached codes were of the rows before
            n = len(responses)
        design_args = {"min_cell_n": int(min_cell_n), **unpooled(strata, fine)}
    else:
        if not margins:
            raise AnalysisInputError("weighting rake needs at least one margin (--margin)")
        counted = margin_counts(margins, n)
        variables: list[str] = []
        for margin in counted:
            variables += [c for c in margin.columns if c != "count" and c not in variables]
        cell, cells, size = weighting_cells(responses, variables, coded)
        weights, levels, sizes = rake(cells, size, counted, drop_empty_cells)
        design_args = {"margin_levels": levels, "margin_sizes": sizes}
    calibrated = weights
    if trim is not None:
        weights = trim_weights(weights, size, float(trim))
    return SurveyDesign(
        data=responses,
        criteria=tuple(criteria),
        answers=answers,
        weighting=weighting,
        cell=cell,
        cell_size=size.astype("float64"),
        cell_weight=weights,
        calibrated_weight=calibrated,
        cells=cells,
        trim=trim,
        rake_rounds=rake_rounds,
        notes=notes_frame(notes),
        _codes=coded,
        **design_args,
    )


def unpooled(strata, fine: np.ndarray) -> dict:
    """The design fields ``unpooled_cell``/``unpooled_weight`` (and ``empty_share`` ...) of
    post-strata whose respondents (rows) are in the sample cells ``fine``; empty when nothing
    was pooled."""
    fine = np.asarray(fine, dtype=np.int64)
    out: dict = {}
    if strata.unpooled_weight is not None:
        out = {"unpooled_cell": fine, "unpooled_weight": strata.unpooled_weight,
               "across_weight": strata.across_weight}
    if strata.empty_share is not None:
        out.update(empty_share=strata.empty_share, empty_spread=strata.empty_spread,
                   fine_cell=fine, fine_agency=strata.agency_of)
    return out


def _drop_blank_strata(
    responses: pd.DataFrame,
    answers: np.ndarray,
    totals: pd.DataFrame,
    coded: dict | None = None,
) -> tuple[pd.DataFrame, np.ndarray, list[dict]]:
    """Leave out responses with a blank post-stratum value; a note says how many.

    When none is left out, the codes of each variable go into ``coded`` for reuse.
    """
    variables = [c for c in totals.columns if c != "count" and c in responses.columns]
    blank = np.zeros(len(responses), dtype=bool)
    which = []
    found = {}
    for variable in variables:
        codes, names = found[variable] = factorize(responses[variable])
        if (codes < 0).any():
            which.append(variable)
        blank |= codes < 0
    if not blank.any():
        if coded is not None:
            coded.update(found)
        return responses, answers, []
    dropped = int(blank.sum())
    if dropped > len(responses) - 2:
        raise AnalysisInputError(
            f"responses: {dropped} of {len(responses)} responses have no value for "
            f"{', '.join(which)}; post-stratification needs at least 2 with one"
        )
    note = {
        "kind": "dropped_responses",
        "scope": "ALL",
        "cells": "; ".join(f"{v} blank" for v in which),
        "responses": dropped,
        "transactions": np.nan,
        "share": np.nan,
        "detail": f"{dropped} response(s) with no {' or '.join(which)} were left out of the "
        "post-stratified estimates.",
    }
    keep = ~blank
    return responses[keep], np.asfortranarray(answers[keep]), [note]


def weighting_cells(
    responses: pd.DataFrame, variables: Sequence[str], coded: dict | None = None
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Weighting cell of each respondent; blank values are kept as a value ('') here.

    ``coded`` holds the variables already factorized (codes for ``responses``' rows) and
    receives the others, so that the design's groupings reuse them.
    """
    coded = {} if coded is None else coded
    if not variables:
        raise AnalysisInputError("weighting: no weighting variable given")
    missing = [v for v in variables if v not in responses.columns]
    if missing:
        raise AnalysisInputError(f"responses: weighting variable(s) missing: {', '.join(missing)}")
    code_arrays, labels = [], []
    for variable in variables:
        if variable not in coded:
            coded[variable] = factorize(responses[variable])
        codes, names = coded[variable]
        code_arrays.append(codes + 1)  # blank becomes a level that can be named in an error
        labels.append([""] + names)
    combined = _combine(code_arrays, [len(names) for names in labels])
    _, first, inverse, counts = unique_codes(combined)
    cells = pd.DataFrame(
        {
            v: [names[int(i)] for i in codes[first]]
            for v, names, codes in zip(variables, labels, code_arrays, strict=True)
        }
    )
    return inverse.astype(np.int64), cells, counts


def unique_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct values of non-negative integer codes, one row holding each, the
    position of each code among them, and their counts.

    Like ``np.unique(..., return_index, return_inverse, return_counts)`` except that the
    row returned for a value is *a* row holding it (not necessarily the first). When the
    codes are dense enough, a counting pass replaces the sort: O(n) instead of O(n log n).
    """
    n = len(codes)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    span = int(codes.max()) + 1
    if span > max(8 * n, 1 << 20):  # e.g. 1,000 agencies x 6,000 cells over 1,000,000 rows
        values, first, inverse, counts = np.unique(
            codes, return_index=True, return_inverse=True, return_counts=True
        )
        return values, first, inverse.reshape(-1), counts
    counts = np.bincount(codes, minlength=span)
    values = np.flatnonzero(counts)
    rank = np.cumsum(counts > 0) - 1
    holder = np.empty(span, dtype=np.int64)
    holder[codes] = np.arange(n)  # any row of each value will do
    return values, holder[values], rank[codes], counts[values]


def _combine(code_arrays: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """One non-negative int64 per combination of codes, ordered as the tuples of codes."""
    combined = np.zeros(len(code_arrays[0]) if code_arrays else 0, dtype=np.int64)
    span = 1
    for codes, size in zip(code_arrays, sizes, strict=True):
        size = max(int(size), 1)
        if span * size >= 2**62:  # renumber densely before the mixed radix overflows
            present, _, combined, _ = unique_codes(combined)
            span = len(present)
        combined = combined * size + codes
        span *= size
    return combined
