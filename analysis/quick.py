"""The counter quick form's own indices: the share satisfied overall and the reasons tallied.

A questionnaire of kind ``counter-quick`` (``questionnaires/counter-quick-v*.yaml``) asks an
overall rating with three levels (the question with role ``overall_rating``), coded 3 Rất hài
lòng (very satisfied), 2 Hài lòng (satisfied) and 1 Không hài lòng (not satisfied); the
reasons of those not satisfied (role ``reasons``, multiple choice, codes as in the file); and
a few quick ``likert5`` criteria, whose indices are the ordinary criterion and element indices
of :func:`analysis.compute_indices`. Which column is which comes from the questionnaire model,
never from the ids.

Command line (:mod:`analysis.cli`)::

    python -m analysis.quick typed.csv --questionnaire questionnaires/counter-quick-v1.yaml \\
        --by agency -o quick.csv      # writes quick-satisfaction.csv, -reasons, -criteria
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from .design import make_design
from .indices import COLUMNS, compute_indices, parse_by
from .io import AnalysisInputError, normalize_text
from .questionnaire import OVERALL_RATING, REASONS, Questionnaire

__all__ = [
    "NOT_SATISFIED",
    "SATISFIED",
    "VERY_SATISFIED",
    "QuickIndices",
    "overall_codes",
    "quick_indices",
    "reason_sets",
    "wilson_interval",
]

VERY_SATISFIED, SATISFIED, NOT_SATISFIED = 3, 2, 1
# The overall rating as a five-level answer, so that "satisfied" means the same as for a
# criterion (4 or 5) and the estimator, variance and interval are exactly the criterion's.
AS_FIVE_LEVELS = {VERY_SATISFIED: 5.0, SATISFIED: 4.0, NOT_SATISFIED: 1.0}
_SEPARATORS = re.compile(r"[;,\s]+")
_LISTS = (list, tuple, set, frozenset, np.ndarray)
# A space: no element id of a questionnaire file can be this.
_RATING_ELEMENT = "overall rating"


@dataclass(frozen=True)
class QuickIndices:
    """The three tables of the quick form, each one row per grouping x group (x key).

    Attributes
    ----------
    satisfaction : pandas.DataFrame
        Share satisfied (Rất hài lòng + Hài lòng among those who rated), weighted with its
        linearized SE and logit interval, and unweighted with its Wilson interval.
    reasons : pandas.DataFrame
        Reasons given by those not satisfied: counts and shares.
    criteria : pandas.DataFrame
        The quick criteria's indices and their element ``Q``, as :func:`compute_indices`.
    """

    satisfaction: pd.DataFrame
    reasons: pd.DataFrame
    criteria: pd.DataFrame


def overall_codes(column: pd.Series, name: str = "overall") -> np.ndarray:
    """The overall rating of each response as 0 (blank), 1, 2 or 3.

    Raises
    ------
    AnalysisInputError
        For any other value, naming the 1-based data row and the column.
    """
    position, distinct = _distinct(column)
    rating = np.zeros(len(distinct), dtype=np.int8)
    bad = np.zeros(len(distinct), dtype=bool)
    for k, raw in enumerate(distinct):
        text = normalize_text(raw)
        if text == "":
            continue
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if number in AS_FIVE_LEVELS:
            rating[k] = int(number)
        else:
            bad[k] = True
    if bad.any():
        row = int(np.flatnonzero(bad[position])[0])
        raise AnalysisInputError(
            f"responses: row {row + 1}, column {name}: {normalize_text(column.iloc[row])!r} "
            "is not 3 (Rất hài lòng), 2 (Hài lòng), 1 (Không hài lòng) or blank"
        )
    return rating[position]


def reason_sets(
    column: pd.Series, name: str = "reasons", codes: Sequence[int] | None = None
) -> list[frozenset[int]]:
    """The reason codes ticked on each response.

    A cell holds codes separated by ``;`` (as the paper form's typing rules say; commas
    and spaces are accepted too), or a list of codes (a frame built from the database).
    ``codes``, when given, are the only valid ones.
    """
    position, distinct = _reason_sets_of_distinct(column, name, codes)
    return [distinct[k] for k in position]


def _reason_sets_of_distinct(
    column: pd.Series, name: str, codes: Sequence[int] | None
) -> tuple[np.ndarray, list[frozenset[int]]]:
    """:func:`reason_sets` of the column's distinct cells, and each cell's position among them."""
    valid = None if codes is None else set(codes)
    position, distinct = _distinct(column)
    out = []
    for raw in distinct:
        parsed = _reason_set(raw, valid)
        if isinstance(parsed, str):
            k = len(out)
            row = int(np.flatnonzero(position == k)[0])
            raise AnalysisInputError(
                f"responses: row {row + 1}, column {name}: {parsed!r} is not a reason code"
                + (f" ({', '.join(map(str, sorted(valid)))})" if valid else "")
            )
        out.append(parsed)
    return position, out


def _reason_set(raw, valid: set[int] | None) -> frozenset[int] | str:
    """The codes of one cell, or the first part that is not a valid code."""
    if isinstance(raw, tuple):
        parts = [normalize_text(v) for v in raw]
    else:
        parts = _SEPARATORS.split(normalize_text(raw))
    found = set()
    for part in parts:
        if part == "":
            continue
        try:
            number = float(part)
        except ValueError:
            return part
        if (
            not number.is_integer()
            or number < 0
            or (valid is not None and int(number) not in valid)
        ):
            return part
        found.add(int(number))
    return frozenset(found)


def _distinct(column: pd.Series) -> tuple[np.ndarray, list]:
    """Each cell's position among the column's distinct values, and those values.

    The values come in order of first appearance, so the first invalid one is on the
    earliest invalid row. Parsing each distinct value once keeps the Python work to the
    few distinct cells a coded column has, whatever the number of rows. Lists (from the
    database) are compared as tuples.
    """
    values = column.tolist()
    if any(isinstance(v, _LISTS) for v in values):
        values = [tuple(v) if isinstance(v, _LISTS) else v for v in values]
    position, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    return position, list(distinct)


def wilson_interval(successes, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion, as fractions (NaN where n = 0).

    Parameters
    ----------
    successes, n : array_like
        Number of successes and of trials.
    level : float, default 0.95

    Returns
    -------
    low, high : numpy.ndarray

    Notes
    -----
    With p = x / n and z the normal quantile, the bounds are
    (p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n): the proportions
    the score test does not reject. Unlike the Wald interval it stays inside [0, 1] and
    keeps close to its nominal coverage for small n and for p near 0 or 1 (Brown, Cai and
    DasGupta, 2001). It ignores weights: it is the interval of the unweighted share.
    Same as statsmodels ``proportion_confint(method="wilson")``.

    References
    ----------
    Wilson, E. B. (1927) Probable inference, the law of succession, and statistical
    inference. *JASA* 22, 209-212. Brown, L. D., Cai, T. T. and DasGupta, A. (2001)
    Interval estimation for a binomial proportion. *Statistical Science* 16, 101-133.
    """
    x = np.asarray(successes, dtype="float64")
    n = np.asarray(n, dtype="float64")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    defined = n > 0
    return np.where(defined, low, np.nan), np.where(defined, high, np.nan)


def quick_indices(
    responses: pd.DataFrame,
    questionnaire: Questionnaire,
    *,
    locale: str = "vi",
    weighting: str = "none",
    totals: pd.DataFrame | None = None,
    margins: Sequence[pd.DataFrame] | None = None,
    by: str | Sequence[str | Sequence[str]] | None = None,
    min_n: int = 30,
    trim: float | None = None,
    drop_empty_cells: bool = False,
    level: float = 0.95,
) -> QuickIndices:
    """Share satisfied, reasons and quick-criteria indices of the counter quick form.

    Parameters
    ----------
    responses : pandas.DataFrame
        One row per response, a column per question id: the overall rating (3, 2, 1 or
        blank), the reasons (codes separated by ``;``, or lists; optional column), the quick
        criteria (1-5 or blank) and the grouping and weighting variables (e.g. ``agency``,
        ``period``). The CSV template of the paper form (``/phieu/counter-quick.csv``) has
        exactly these columns.
    questionnaire : Questionnaire
        The quick form (:mod:`analysis.questionnaire`): its question with role
        ``overall_rating``, the one with role ``reasons`` (optional; its options are the
        valid reason codes, each listed even when nobody gave it) and its criteria with
        their elements (possibly none).
    locale : str, default "vi"
        Language of the reason labels (``vi`` or ``en``).
    weighting, totals, margins, trim, drop_empty_cells
        As :func:`analysis.compute_indices`; the same design weights every table.
    by : str or sequence, optional
        Groupings, e.g. ``["agency", "agency,period"]``; the whole file (``ALL``) comes
        first.
    min_n : int, default 30
        Groups with fewer respondents get ``flag = "small_n"`` (as compute_indices).
    level : float, default 0.95
        Confidence level of every interval (the logit intervals and Wilson's).

    Returns
    -------
    QuickIndices
        ``satisfaction``: ``by``, the grouping columns, ``n`` (respondents in the group),
        ``n_answered`` (who rated overall), ``very_satisfied``, ``satisfied``,
        ``not_satisfied`` (counts), ``estimate`` (weighted share satisfied, %), ``se``,
        ``ci_low``, ``ci_high``, ``ci_method``, ``df``, ``weight_sum_answered``,
        ``kish_neff``, ``deff``, ``unweighted`` (share satisfied, %), ``wilson_low``,
        ``wilson_high``, ``flag``.
        ``reasons``: ``by``, the grouping columns, ``reason``, ``label``, ``count`` (not
        satisfied respondents who gave it), ``share`` (% of the not satisfied who gave at
        least one reason), ``weighted_share`` (the same with the design weights),
        ``respondents`` (not satisfied who gave a reason), ``not_satisfied``. A reason
        typed for a respondent who was satisfied is ignored, as the web form does.
        ``criteria``: the rows of :func:`compute_indices` for the quick criteria and
        their elements.

    Notes
    -----
    *Share satisfied.* A respondent who rated overall is satisfied when the rating is
    Rất hài lòng or Hài lòng (codes 3, 2). The weighted share is the ratio estimator
    sum w [satisfied] / sum w [rated], computed as a criterion index of
    :func:`compute_indices` on the rating recoded 3 -> 5, 2 -> 4, 1 -> 1: so its SE is the
    same Taylor linearization (with the calibration residuals of post-stratification or
    raking, domains on the full design as R ``svyby``) and its interval (95% by default)
    the same logit interval as every criterion (METHODS section 4): logit(r) +- t(0.975,
    df) SE* /
    (r (1 - r)), SE* the stratified variance of the group's weighting cells with
    Satterthwaite's df (unweighted: SE sqrt(n (N - 1) / ((n - 1) N)), df = n - 1), with
    Clopper-Pearson where the SE is zero (0%, 100%, or everyone agrees). Post-strata pool
    as :func:`analysis.make_design` does by default (``min_cell_n`` = 5).
    The unweighted share x / n comes with the Wilson score interval
    (:func:`wilson_interval`), the usual interval for a simple count.
    Percentages are on 0-100.
    """
    rated = questionnaire.roles.get(OVERALL_RATING)
    if rated is None:
        raise AnalysisInputError(
            f"questionnaire {questionnaire.id}: no question with role {OVERALL_RATING} "
            "(a counter-quick questionnaire has one)"
        )
    overall = rated.id
    if overall not in responses.columns:
        raise AnalysisInputError(f"responses: no column {overall!r}")
    asked = questionnaire.roles.get(REASONS)
    reasons = asked.id if asked is not None else None
    reason_labels = {o.code: o.text.get(locale) for o in asked.options} if asked else {}
    criteria = [q.id for q in questionnaire.criteria]
    element_of = {q.id: q.element for q in questionnaire.criteria}
    elements = list(dict.fromkeys(element_of.values()))
    rating = overall_codes(responses[overall], overall)
    frame = responses.copy()
    frame[overall] = pd.Series(rating, index=frame.index).map(AS_FIVE_LEVELS)
    design = make_design(
        frame,
        [overall, *criteria],
        weighting=weighting,
        totals=totals,
        margins=margins,
        trim=trim,
        drop_empty_cells=drop_empty_cells,
    )
    # The rating as one more criterion, in an element of its own whose name no file can use.
    pairs = [(overall, _RATING_ELEMENT), *element_of.items()]
    table = compute_indices(design, pairs, by=by, min_n=min_n, level=level)
    # The satisfaction rows of compute_indices give the groups, in order, with their columns.
    sat = table[(table["level"] == "criterion") & (table["key"] == overall)]
    sat = sat.reset_index(drop=True)
    front = [c for c in table.columns if c not in COLUMNS]

    # Reasons as a (respondent x reason code) table; only the not satisfied count.
    if reasons is not None and reasons in responses.columns:
        position, distinct = _reason_sets_of_distinct(
            responses[reasons], reasons, list(reason_labels)
        )
    else:
        position, distinct = np.zeros(len(responses), dtype=np.int64), [frozenset()]
    codes = sorted(set(reason_labels).union(*distinct))
    column_of = {code: k for k, code in enumerate(codes)}
    ticked_distinct = np.zeros((len(distinct), len(codes)), dtype=bool)
    for k, found in enumerate(distinct):
        ticked_distinct[k, [column_of[code] for code in found]] = True
    ticked = ticked_distinct[position]
    not_satisfied = rating == NOT_SATISFIED
    gave = not_satisfied & ticked.any(axis=1)
    weights = design.weights

    # Tallies per group: one pass over the respondents per grouping, never one per group.
    by_level, n_reasons, w_reasons, count, w_count = [], [], [], [], []
    for grouping in [()] + parse_by(by):
        group, labels = design.groups(grouping)
        size = len(labels)
        if size == 0:
            continue
        inside = group >= 0
        by_level.append(
            np.bincount(group[inside] * 4 + rating[inside], minlength=4 * size).reshape(size, 4)
        )
        g = group[gave & inside]
        w = weights[gave & inside]
        n_reasons.append(np.bincount(g, minlength=size))
        w_reasons.append(np.bincount(g, weights=w, minlength=size))
        rows, k = np.nonzero(ticked[gave & inside])
        slot = g[rows] * len(codes) + k
        count.append(np.bincount(slot, minlength=size * len(codes)))
        w_count.append(np.bincount(slot, weights=w[rows], minlength=size * len(codes)))
    by_level = np.concatenate(by_level)
    if len(by_level) != len(sat) or not (by_level.sum(axis=1) == sat["n"].to_numpy()).all():
        raise AssertionError("quick_indices: groups out of step with compute_indices")

    very, satisfied_only, unhappy = (by_level[:, c] for c in (3, 2, 1))
    satisfied = very + satisfied_only
    rated = satisfied + unhappy
    low, high = wilson_interval(satisfied, rated, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        unweighted = 100 * satisfied / rated
    satisfaction = pd.concat(
        [
            sat[[*front, "n", "n_answered"]],
            pd.DataFrame(
                {"very_satisfied": very, "satisfied": satisfied_only, "not_satisfied": unhappy}
            ),
            sat[
                [
                    "estimate",
                    "se",
                    "ci_low",
                    "ci_high",
                    "ci_method",
                    "df",
                    "weight_sum_answered",
                    "kish_neff",
                    "deff",
                ]
            ],
            pd.DataFrame(
                {"unweighted": unweighted, "wilson_low": 100 * low, "wilson_high": 100 * high}
            ),
            sat[["flag"]],
        ],
        axis=1,
    )

    n_codes = len(codes)
    respondents = np.repeat(np.concatenate(n_reasons), n_codes)
    w_respondents = np.repeat(np.concatenate(w_reasons), n_codes)
    count = np.concatenate(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(respondents > 0, 100 * count / respondents, np.nan)
        weighted_share = np.where(
            respondents > 0, 100 * np.concatenate(w_count) / w_respondents, np.nan
        )
    reason_table = pd.concat(
        [
            sat.loc[np.repeat(sat.index, n_codes), front].reset_index(drop=True),
            pd.DataFrame(
                {
                    "reason": np.tile(np.array(codes, dtype=np.int64), len(sat)),
                    "label": np.tile(
                        np.array([reason_labels.get(c, "") for c in codes], dtype=object),
                        len(sat),
                    ),
                    "count": count,
                    "share": share,
                    "weighted_share": weighted_share,
                    "respondents": respondents,
                    "not_satisfied": np.repeat(unhappy, n_codes),
                }
            ),
        ],
        axis=1,
    )
    quick = table[
        ((table["level"] == "element") & table["key"].isin(elements))
        | (table["level"].isin(["criterion", "mean_score"]) & table["key"].isin(criteria))
    ].reset_index(drop=True)
    return QuickIndices(satisfaction, reason_table, quick)


if __name__ == "__main__":
    # python -m analysis.quick: the command line lives in analysis.cli, so that importing
    # this library module loads no argparse.
    from .cli import quick_main

    sys.exit(quick_main())
