"""Indices from sufficient statistics: each weighting cell's distinct answer vectors, counted.

A database holds millions of responses; the indices need far less. Every estimate of
:func:`analysis.compute_indices` -- criterion ratios, mean scores, the element and overall
composites, their linearized SEs, the intervals' stratified variances and Satterthwaite
df, the tests of difference from the whole scope -- depends on the responses only through

    for every cell (grouping values x post-stratum): each distinct vector of answer codes
    (one code 0-5 per criterion) and how many respondents gave it,

because the weight is constant within a post-stratum and a respondent's influence value
is a function of its group, cell and codes. A criterion needs only the counts per code; a
composite (element, overall) needs the joint codes, since its variance holds every
criterion pair's covariance. The database returns these counts with one ``GROUP BY``
(:mod:`survey.stats_sql`); here they become a design whose rows stand for ``count``
respondents each, and :func:`analysis.compute_indices` finishes it with the same code as
the in-memory path (same results to rounding, ~1e-12). Post-stratified designs
(pooling included) and unweighted ones; raking's residuals need the respondents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from .design import DEFAULT_MIN_CELL_N, SurveyDesign, factorize, unpooled, weighting_cells
from .indices import compute_indices
from .io import AnalysisInputError, ElementMap
from .weighting import notes_frame, poststratify

__all__ = [
    "VectorDesign",
    "codes_from_bytes",
    "compute_from_vectors",
    "encode_codes",
    "vector_counts",
    "vector_design",
]

BLANK_CODES = b".0"  # no answer, not applicable: both blank for a criterion


@dataclass(eq=False)
class VectorDesign(SurveyDesign):
    """A design whose rows are distinct answer vectors of a cell, row i standing for
    ``freq[i]`` respondents; ``n`` counts respondents."""

    freq: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Respondents in the whole file."""
        return int(round(float(self.freq.sum())))

    def groups(self, variables: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
        """Group of each row (see :meth:`SurveyDesign.groups`)."""
        rows = SurveyDesign(**{f.name: getattr(self, f.name) for f in fields(SurveyDesign)
                                if f.init})
        return rows.groups(variables)


def encode_codes(codes: pd.Series | Sequence[str], n_criteria: int) -> np.ndarray:
    """Answer codes from strings of one character per criterion ('1'-'5'; '0' not
    applicable and '.' no answer are blank, 0), as an ``int8`` (rows, criteria) matrix."""
    texts = pd.Series(codes, dtype="object")
    if len(texts) == 0:
        return np.zeros((0, n_criteria), dtype=np.int8)
    if texts.isna().any() or (texts.str.len() != n_criteria).any():
        raise AnalysisInputError(f"answer vectors must have {n_criteria} characters each")
    try:
        raw = np.frombuffer("".join(texts.tolist()).encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        raise AnalysisInputError("answer vectors: a code is not one of 1-5, 0 or '.'") from None
    return codes_from_bytes(raw.reshape(len(texts), n_criteria))


def codes_from_bytes(raw: np.ndarray) -> np.ndarray:
    """:func:`encode_codes` of a (rows, criteria) matrix of ASCII bytes."""
    codes = raw.astype(np.int16) - ord("0")
    blank = (raw == BLANK_CODES[0]) | (raw == BLANK_CODES[1])
    if ((codes < 1) | (codes > 5))[~blank].any():
        raise AnalysisInputError("answer vectors: a code is not one of 1-5, 0 or '.'")
    return np.asfortranarray(np.where(blank, 0, codes).astype(np.int8))


def vector_counts(
    responses: pd.DataFrame, criteria: Sequence[str], keys: Sequence[str]
) -> pd.DataFrame:
    """The sufficient statistics of a wide response table: one row per distinct
    (``keys`` values, answer vector), with ``codes`` (as :func:`encode_codes` reads them)
    and ``count``. What :mod:`survey.stats_sql` asks the database for."""
    from .io import criterion_answers

    answers = criterion_answers(responses, list(criteria))
    text = np.where(answers == 0, ord("."), answers + ord("0")).astype(np.uint8)
    codes = [bytes(row).decode("ascii") for row in np.ascontiguousarray(text)]
    frame = pd.DataFrame({k: responses[k].to_numpy(dtype=object) for k in keys})
    frame["codes"] = codes
    out = frame.groupby(list(keys) + ["codes"], dropna=False, sort=True).size()
    return out.rename("count").reset_index()


def vector_design(
    vectors: pd.DataFrame,
    criteria: Sequence[str],
    *,
    weighting: str = "none",
    totals: pd.DataFrame | None = None,
    min_cell_n: int = DEFAULT_MIN_CELL_N,
    drop_empty_cells: bool = False,
    answers: np.ndarray | None = None,
) -> VectorDesign:
    """The design of :func:`analysis.make_design` from counted answer vectors.

    ``vectors``: grouping and post-stratum columns, ``codes`` (unless ``answers`` gives
    the matrix) and ``count`` (respondents with these values and codes). ``none`` and
    ``poststrat`` with the same pooling (``min_cell_n``), dropped-response and
    unrepresented-population notes as :func:`analysis.make_design`.
    """
    if weighting not in ("none", "poststrat"):
        raise AnalysisInputError(
            f"weighting {weighting!r} needs the responses: use analysis.compute_indices"
        )
    freq = vectors["count"].to_numpy(dtype="float64")
    if answers is None:
        answers = encode_codes(vectors["codes"], len(criteria))
    total = float(freq.sum())
    if total < 2:
        raise AnalysisInputError("responses: at least 2 responses are needed")
    notes: list[dict] = []
    if weighting == "none":
        if totals is not None:
            raise AnalysisInputError("weighting none takes no totals or margins")
        cell = np.zeros(len(vectors), dtype=np.int64)
        cells = pd.DataFrame(index=[0])
        size = np.array([total])
        weights = np.ones(1)
        extra: dict = {}
    else:
        if totals is None:
            raise AnalysisInputError("weighting poststrat needs a totals table (--totals)")
        variables = [c for c in totals.columns if c != "count"]
        blank = np.zeros(len(vectors), dtype=bool)
        which = []
        for variable in (v for v in variables if v in vectors.columns):
            missing = factorize(vectors[variable])[0] < 0
            if missing.any():
                which.append(variable)
            blank |= missing
        if blank.any():
            dropped = int(round(freq[blank].sum()))
            if dropped > total - 2:
                raise AnalysisInputError(
                    f"responses: {dropped} of {int(total)} responses have no value for "
                    f"{', '.join(which)}; post-stratification needs at least 2 with one"
                )
            notes.append({
                "kind": "dropped_responses",
                "scope": "ALL",
                "cells": "; ".join(f"{v} blank" for v in which),
                "responses": dropped,
                "transactions": np.nan,
                "share": np.nan,
                "detail": f"{dropped} response(s) with no {' or '.join(which)} were left out "
                "of the post-stratified estimates.",
            })  # fmt: skip
            keep = ~blank
            vectors, answers, freq = vectors[keep], answers[keep], freq[keep]
        cell, cells, _ = weighting_cells(vectors, variables)
        sample = np.bincount(cell, weights=freq, minlength=len(cells))
        strata = poststratify(cells, sample, totals, drop_empty_cells, min_cell_n)
        fine = cell
        cell, cells = strata.cell_of[cell], strata.cells
        size, weights = strata.size.astype("float64"), strata.weights
        notes += strata.notes
        if (cell < 0).any():  # agencies whose total is 0: left out (noted), as make_design
            keep = cell >= 0
            if freq[keep].sum() < 2:
                raise AnalysisInputError(
                    "totals: fewer than 2 responses are left once the agencies with a total "
                    "of 0 are left out"
                )
            vectors, answers, freq = vectors[keep], answers[keep], freq[keep]
            cell, fine = cell[keep], fine[keep]
        extra = {"min_cell_n": int(min_cell_n), **unpooled(strata, fine)}
    return VectorDesign(
        data=vectors.reset_index(drop=True),
        criteria=tuple(criteria),
        answers=np.asfortranarray(answers),
        weighting=weighting,
        cell=np.asarray(cell, dtype=np.int64),
        cell_size=np.asarray(size, dtype="float64"),
        cell_weight=weights,
        calibrated_weight=weights,
        cells=cells,
        notes=notes_frame(notes),
        freq=freq,
        **extra,
    )


def compute_from_vectors(
    vectors: pd.DataFrame,
    elements: ElementMap | Mapping[str, Sequence[str]] | Sequence[tuple[str, str]],
    *,
    weighting: str | None = None,
    totals: pd.DataFrame | None = None,
    by: str | Sequence[str | Sequence[str]] | None = None,
    min_n: int = 30,
    min_cell_n: int | None = None,
    drop_empty_cells: bool | None = None,
    level: float = 0.95,
    differences: bool = True,
    answers: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`analysis.compute_indices` from counted answer vectors (see
    :func:`vector_design`): the same table, columns, ``attrs["notes"]``, intervals, tests
    and marks. The criterion order of ``codes`` is the element map's."""
    element_map = ElementMap.coerce(elements)
    design = vector_design(
        vectors,
        element_map.criteria,
        weighting=weighting or "none",
        totals=totals,
        min_cell_n=DEFAULT_MIN_CELL_N if min_cell_n is None else int(min_cell_n),
        drop_empty_cells=bool(drop_empty_cells),
        answers=answers,
    )
    return compute_indices(
        design, element_map, by=by, min_n=min_n, level=level, differences=differences
    )
