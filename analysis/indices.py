"""Satisfaction indices: criterion -> element -> overall (SIPAS), intervals and tests, per group."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from .design import DEFAULT_MIN_CELL_N, SurveyDesign, make_design
from .estimators import (
    DomainCells,
    calibration_residual,
    domain_cells,
    domain_variance,
    domain_variance_parts,
    influence_sums,
    interval_variance,
    margin_cross,
    margin_products,
    ratio_from_counts,
    residual_variance,
    row_freq,
)
from .io import AnalysisInputError, ElementMap
from .weighting import Notes, trim_weights

__all__ = [
    "COLUMNS",
    "PERIOD_COLUMNS",
    "compare_periods",
    "compute_indices",
    "criteria_used_text",
    "holm",
    "interval",
    "parse_by",
    "parse_criteria_used",
]

OVERALL_KEY = "SIPAS"
LEVELS = ("overall", "element", "criterion", "mean_score")
COLUMNS = (
    "level",
    "key",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "ci_method",
    "df",
    "n",
    "n_answered",
    "weight_sum",
    "weight_sum_answered",
    "kish_neff",
    "deff_kish",
    "deff",
    "flag",
    "criteria_used",
    "diff",
    "diff_se",
    "diff_p",
    "diff_p_adj",
    "mark",
    "note",
    "diff_df",
    "pooling_bias",
)
SCORES = np.arange(6, dtype="float64")  # answer codes 0 (blank) .. 5
SATISFIED = (SCORES >= 4).astype("float64")
ANSWERED = (SCORES >= 1).astype("float64")


def criteria_used_text(defined: int, total: int) -> str:
    """The ``criteria_used`` value: "4 of 5", not "4/5", which a spreadsheet opening the CSV
    reads as a date (4 May, or 5 April)."""
    return f"{defined} of {total}"


def parse_criteria_used(text: object) -> tuple[int, int] | None:
    """(defined, total) from a ``criteria_used`` value ("4 of 5", or "4/5" as files and
    cached reports written before 2026-12 have it); None for anything else."""
    found = re.fullmatch(r"(\d+)(?: of |/)(\d+)", text, re.ASCII) if isinstance(text, str) else None
    return (int(found[1]), int(found[2])) if found else None


def parse_by(by: str | Sequence[str | Sequence[str]] | None) -> list[tuple[str, ...]]:
    """Groupings as tuples of variable names.

    ``"agency"``, ``"agency,period"``, ``("agency", "period")`` and lists of those are
    accepted; duplicates are dropped. The whole-file grouping (``ALL``) is not listed here:
    it is always computed.
    """
    if by is None:
        return []
    items = [by] if isinstance(by, str) else list(by)
    out: list[tuple[str, ...]] = []
    for item in items:
        names = item.split(",") if isinstance(item, str) else list(item)
        names = tuple(n.strip() for n in names if n.strip())
        if not names or names == ("ALL",):
            continue
        if len(set(names)) != len(names):
            raise AnalysisInputError(f"grouping {'+'.join(names)}: a variable is repeated")
        if names not in out:
            out.append(names)
    return out


def compute_indices(
    responses: pd.DataFrame | SurveyDesign,
    elements: ElementMap | Mapping[str, Sequence[str]] | Sequence[tuple[str, str]],
    *,
    weighting: str | None = None,
    totals: pd.DataFrame | None = None,
    margins: Sequence[pd.DataFrame] | None = None,
    by: str | Sequence[str | Sequence[str]] | None = None,
    min_n: int = 30,
    trim: float | None = None,
    drop_empty_cells: bool | None = None,
    min_cell_n: int | None = None,
    level: float = 0.95,
    differences: bool = True,
) -> pd.DataFrame:
    """Satisfaction indices per grouping, group, element and criterion, with intervals.

    Parameters
    ----------
    responses : pandas.DataFrame or SurveyDesign
        Either raw responses -- one row per response: ``response_id``, categorical
        columns, one column per criterion holding 1-5 or blank (NaN/None/""); any other
        criterion value raises :class:`AnalysisInputError` naming the row and column -- and
        the weighting arguments below, or a design made by :func:`analysis.make_design`,
        which carries its own weighting: passing a design together with ``weighting``,
        ``totals``, ``margins``, ``trim``, ``drop_empty_cells`` or ``min_cell_n`` raises
        :class:`AnalysisInputError`.
    elements : ElementMap, mapping or sequence of pairs
        Which criterion belongs to which element: ``{"A": ["a1", "a2"], ...}`` or
        ``[("a1", "A"), ...]`` (element order = first appearance).
    weighting : {"none", "poststrat", "rake"}, default "none"
    totals : pandas.DataFrame, optional
        ``poststrat``: the post-stratum columns and ``count`` (e.g. served transactions per
        agency x service field; the first column is the agency, within which cells pool).
    margins : sequence of pandas.DataFrame, optional
        ``rake``: one table per margin, its variable column and ``count`` or ``share``
        (shares are scaled to the total of the first count margin).
    by : str or sequence, optional
        Groupings, e.g. ``["agency", "agency,period"]``. The whole file (``ALL``) always
        comes first.
    min_n : int, default 30
        Groups with fewer respondents get ``flag = "small_n"`` (they are not hidden) and
        no ``mark``.
    trim : float, optional
        Cap weights at this multiple of the mean weight, redistributing the excess.
    drop_empty_cells : bool, default False
        Only with ``min_cell_n=1``: ignore population cells without respondents instead of
        stopping (each is reported in the notes).
    min_cell_n : int, default 5
        ``poststrat``: pool, within each agency, the post-strata with fewer respondents and
        the population cells with none (see :func:`analysis.make_design`). 1 turns pooling
        off and reproduces R's ``postStratify``.
    level : float, default 0.95
        Confidence level of the intervals; tests of difference mark at 1 - level.
    differences : bool, default True
        Compute the ``diff*`` and ``mark`` columns (from the cell sums; with raking a few
        passes over the file per estimate).

    Returns
    -------
    pandas.DataFrame
        One row per grouping x group x level x key: ``by`` (variables joined by ``+``, or
        ``ALL``), one column per grouping variable (None outside its groupings), then the
        :data:`COLUMNS`:

        - ``level`` (``overall``, ``element``, ``criterion``, ``mean_score``), ``key``
          (``SIPAS``, element id or criterion id), ``estimate``, ``se`` (the linearization
          SE, equal to R's);
        - ``ci_low``, ``ci_high``, ``ci_method``: ``logit-t`` (logit interval with
          Student t, on the 0-1 scale; mean scores rescaled by (m - 1) / 4),
          ``exact-zero-se`` (the SE is zero -- everyone in the group agrees, or an index
          of 0 or 100: Clopper-Pearson bound on the Kish effective n, never zero width),
          ``exact-small-se`` (the same bound where the SE is below what one dissenting
          answer among the effective respondents would give) or ``none`` (no interval:
          fewer than 2 answered, or a Kish effective n below 2; ``note`` says why);
        - ``df``: Student t degrees of freedom: the smaller of Satterthwaite's over the
          group's weighting cells and the same with a common variance per respondent (the
          design's, :func:`_interval_design_df`; unweighted both n - 1), or, raking, the
          respondents behind the estimate (who answered, for criteria and mean scores)
          less their leverage in the margins' projection, at least 1 (see
          :func:`analysis.estimators.interval_variance`), at most the effective
          respondents less one (see :func:`interval`); NaN for the exact bounds and
          ``none``;
        - ``n``, ``n_answered``, ``weight_sum``, ``weight_sum_answered``, ``kish_neff``,
          ``deff_kish``, ``deff``, ``flag`` (``small_n`` below ``min_n``);
        - ``criteria_used``: composites, criteria defined in the group / criteria of the
          element or questionnaire (``"4 of 5"``: :func:`criteria_used_text`); None on
          criterion rows;
        - ``diff`` (group minus the whole file, same unit as the estimate), ``diff_se``
          (linearized SE of the difference, covariance included: R's), ``diff_p``
          (two-sided test with the intervals' small-sample rule: logit scale, stratified
          per-cell variance, Student t with ``diff_df``; exact binomial where the group's
          SE is zero), ``diff_p_adj`` (Holm over the groups of the grouping, for each
          level and key), ``mark`` (``higher``/``lower`` where ``diff_p_adj < 1 - level``
          and the group has at least ``min_n`` respondents, else ""); NaN / "" on ``ALL``
          rows;
        - ``note``: why a row has no interval or an exact bound ("" otherwise);
        - ``diff_df``: degrees of freedom of the test, Satterthwaite's from the design's
          cell sizes and weights (:func:`_design_df`; raking: as its intervals); NaN where
          exact.
        - ``pooling_bias``: post-stratification with pooled cells only (else NaN): the
          estimated bias the pooling brings to the estimate (the estimate with the unpooled
          weights less the pooled one, same unit); the interval's SE is
          sqrt(SE'^2 + pooling_bias^2 + V(pooling_bias)) (see :func:`_pooling_bias`).

        Indices, their SEs and intervals are percentages (0-100); mean scores are on 1-5.
        Undefined values are NaN (``n_answered`` is a nullable integer).

        ``table.attrs["notes"]`` is a DataFrame (:class:`analysis.weighting.Notes`, which
        ``pd.concat`` can compare: it keeps the notes of tables that agree and drops
        differing ones) of what the weighting did, one row each,
        columns ``kind`` (``pooled_cells``, ``empty_cells_pooled``, ``fallback``,
        ``unrepresented``, ``dropped_responses``, ``empty_cells_dropped``,
        ``zero_cells_pooled``, ``zero_total_dropped``, ``pooling_bias``), ``scope`` (the
        agency, or ``ALL``), ``cells`` (which cells, as text), ``responses``,
        ``transactions`` (population count concerned), ``share`` (of all transactions) and
        ``detail`` (one English sentence). Empty when there is nothing to report.

    Notes
    -----
    *Estimators.* Criterion index r_c = sum w [y >= 4] / sum w [answered] and mean score
    m_c = sum w y / sum w [answered], over the group's respondents who answered c (ratio
    estimators). Element index: the simple mean of its criteria defined in the group; the
    overall ``SIPAS`` index: the simple mean of the defined elements.

    *Variance.* Taylor linearization for a with-replacement sample of respondents, domain
    estimation on the full design as R ``svyby``, with the calibration residuals of
    ``postStratify`` or ``rake`` (see :func:`analysis.estimators.domain_variance`). A
    composite's influence value is the same average of its criteria's influence values,
    so the covariance between criteria is kept.

    *Intervals.* logit(r) +- t(df) SE' / (r (1 - r)), back-transformed, SE' = SE
    sqrt(n / df), df = n - H, H the post-strata of the n respondents (1 unless
    post-stratified): the small-domain correction. For a criterion
    index, R ``svyciprop(method = "xlogit")`` on the answered part of the group (Korn and
    Graubard, 1998); composites the same (their sampling distribution is skewed near
    100%, where a symmetric interval undercovers); mean scores on (m - 1) / 4. Where the SE is 0
    (including r = 0 or 1) a Clopper-Pearson interval for x = r n* successes in n*
    trials, n* the Kish effective n (mean scores rescaled to 0-1). None below 2 answers.

    *Pooling.* Where post-strata were pooled, the interval's SE' also holds the estimated
    bias of the pooling (``pooling_bias``, in quadrature) and that estimate's own variance
    (collapsed within the pooled cells): pooled cells of different
    satisfaction and weight would otherwise leave the interval centred off the index of
    every served transaction (analysis/METHODS.md section 9).

    *Differences.* diff = estimate_g - estimate_ALL; its influence value is z_g - z_ALL,
    so Var = V_g + V_ALL - 2 Cov, the covariance from the same calibrated residuals
    (``diff_se``, R's). The test: see :func:`_differences_split` and
    :func:`_test_differences` (analysis/METHODS.md section 4a).

    SE, estimate and sizes agree with R's ``survey`` package to 1e-6 with
    ``min_cell_n=1`` (tests/analysis/reference). References: Lumley, T. (2010) *Complex
    Surveys*; Kish, L. (1965) *Survey Sampling*; Korn, E. L. and Graubard, B. I. (1998)
    *Survey Methodology* 24, 193-201; Holm, S. (1979) *Scand. J. Statist.* 6, 65-70.
    """
    element_map = ElementMap.coerce(elements)
    if not 0 < float(level) < 1:
        raise AnalysisInputError(f"level must be between 0 and 1, not {level}")
    if isinstance(responses, SurveyDesign):
        given = {
            "weighting": weighting,
            "totals": totals,
            "margins": margins,
            "trim": trim,
            "drop_empty_cells": drop_empty_cells,
            "min_cell_n": min_cell_n,
        }
        mixed = [name for name, value in given.items() if value is not None]
        if mixed:
            raise AnalysisInputError(
                "compute_indices: a design from make_design already carries its weighting; "
                f"pass {', '.join(mixed)} to make_design, not with the design"
            )
        design = responses.with_criteria(element_map.criteria)
    else:
        design = make_design(
            responses,
            element_map.criteria,
            weighting=weighting or "none",
            totals=totals,
            margins=margins,
            trim=trim,
            drop_empty_cells=bool(drop_empty_cells),
            min_cell_n=DEFAULT_MIN_CELL_N if min_cell_n is None else int(min_cell_n),
        )
    groupings = [()] + parse_by(by)
    variables: list[str] = []
    for grouping in groupings:
        variables += [v for v in grouping if v not in variables]
    built = []
    split = differences and design.weighting != "rake"
    whole = None
    for grouping in groupings:
        group, labels = design.groups(grouping)
        if len(labels) == 0:
            continue
        part = _Grouping(
            design, element_map, group, len(labels),
            whole=whole if split else None, keep_rows=split and whole is None,
            across=_across_agencies(design, grouping),
        )  # fmt: skip
        if whole is None:
            whole = part
        elif split:
            _differences_split(design, whole, part)
        built.append((grouping, labels, part))
    if whole is not None:
        whole.comp_rows = None  # per-respondent values no longer needed
    if differences and not split:
        _differences(design, whole, [b[2] for b in built[1:]])
    if differences:
        for _, _, part in built[1:]:
            _test_differences(part, whole)
    parts = []
    for grouping, labels, computed in built:
        table = computed.table(float(level), int(min_n))
        repeat = len(table) // len(labels)
        front = {"by": "+".join(grouping) if grouping else "ALL"}
        for v in variables:
            if v in grouping:
                front[v] = np.repeat(labels[v].to_numpy(dtype=object), repeat)
            else:
                front[v] = None
        parts.append(pd.concat([pd.DataFrame(front, index=table.index), table], axis=1))
    out = pd.concat(parts, ignore_index=True)
    out["n_answered"] = out["n_answered"].astype("Int64")
    out["n"] = out["n"].astype("int64")
    _holm_and_marks(out, 1.0 - float(level), int(min_n))
    out.attrs["notes"] = Notes(_with_bias_note(design.notes, out, float(level)))
    return out


def _across_agencies(design: SurveyDesign, grouping: Sequence[str]) -> bool:
    """Whether a grouping's groups may span agencies (the first post-stratum variable)."""
    if design.weighting != "poststrat" or design.cells.shape[1] == 0:
        return False
    return design.cells.columns[0] not in grouping


def _with_bias_note(notes: pd.DataFrame, out: pd.DataFrame, level: float) -> pd.DataFrame:
    """The design's notes, led, where pooled post-strata put a bias allowance in the
    intervals, by one more (``pooling_bias``, scope ``ALL``): the allowance of the whole's
    overall index and the largest of an index (percentage points) with where it is."""
    notes = notes.copy()
    index = out[out["level"].isin(("overall", "element", "criterion"))]
    bias = index["pooling_bias"].abs()
    if not bias.notna().any() or not (bias > 0).any():
        return notes
    whole = index[(index["by"] == "ALL") & (index["level"] == "overall")]["pooling_bias"]
    overall = abs(float(whole.iloc[0])) if len(whole) and pd.notna(whole.iloc[0]) else 0.0
    top = index.loc[bias.idxmax()]
    variables = [v for v in str(top["by"]).split("+") if v in out.columns]
    group = ", ".join(f"{v}={top[v]}" for v in variables) or "ALL"
    answered = top["n_answered"] if pd.notna(top["n_answered"]) else top["n"]
    row = {
        "kind": "pooling_bias", "scope": "ALL", "cells": "", "responses": pd.NA,
        "transactions": np.nan, "share": np.nan,
        "detail": f"The {100 * level:g}% intervals are widened for the bias the pooling may bring, "
        f"estimated from the weights without pooling (column pooling_bias): {overall:.2f} "
        f"points for the whole's overall index; at most {float(bias.max()):.2f} points "
        f"({top['level']} {top['key']}, {group}, {int(answered)} answered).",
    }  # fmt: skip
    extra = pd.DataFrame([row], columns=notes.columns).astype(notes.dtypes.to_dict())
    return pd.concat([extra, notes], ignore_index=True) if len(notes) else extra


def _value_counts(design: SurveyDesign, cells: DomainCells) -> np.ndarray:
    """Respondents per domain cell, criterion and answer code 0-5: shape (cells, C, 6)."""
    keep = cells.row_cell >= 0
    everyone = bool(keep.all())
    base = cells.row_cell * 6 if everyone else cells.row_cell[keep] * 6
    size = len(cells.group) * 6
    freq = row_freq(design)  # rows that stand for several respondents (analysis.sufficient)
    if freq is not None and not everyone:
        freq = freq[keep]
    counts = np.empty((len(cells.group), design.answers.shape[1], 6))
    for j in range(design.answers.shape[1]):
        codes = design.answers[:, j] if everyone else design.answers[keep, j]
        counts[:, j, :] = np.bincount(base + codes, weights=freq, minlength=size).reshape(-1, 6)
    return counts


def _composite_estimates(
    idx_est: np.ndarray, defined: np.ndarray, element_of: np.ndarray, n_elem: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Element and overall indices from the criteria's (groups x criteria, NaN where no
    one answered): an element is the mean of its answered criteria, the overall index the
    mean of the elements that have one. Returns the answered criteria per group x element,
    each criterion's share 1/K_ge in its element, the elements, 1/(elements defined) and
    the overall index."""
    onehot = np.eye(n_elem)[element_of]  # (C, E)
    k_def = defined.astype("float64") @ onehot  # defined criteria per group x element
    elem_defined = k_def > 0
    e_def = elem_defined.sum(axis=1).astype("float64")
    crit_share = np.divide(
        defined, k_def[:, element_of], out=np.zeros(defined.shape), where=defined
    )  # 1/K_ge for defined criteria
    r0 = np.where(defined, idx_est, 0.0)
    elem_est = np.where(elem_defined, (crit_share * r0) @ onehot, np.nan)
    inv_e = np.divide(1.0, e_def, out=np.zeros(len(e_def)), where=e_def > 0)
    overall_est = np.where(
        e_def > 0, np.nansum(np.where(elem_defined, elem_est, 0), 1) * inv_e, np.nan
    )
    return k_def, crit_share, elem_est, inv_e, overall_est


def _variance_floor(
    q: np.ndarray, counts: np.ndarray, answered: np.ndarray, inv_den: np.ndarray,
    group_est: np.ndarray, group_var: np.ndarray, cells: DomainCells,
) -> np.ndarray:
    """The influence sums of squares the intervals use: ``q``, those of the criteria's
    indices and mean scores at least what one more respondent like the group would make
    them.

    Per domain cell and criterion (index and mean score), with m the cell's answerers, ybar
    and SSD their mean and sum of squares, G the group's estimate and V_G its weighted
    variance per answerer, the floor is

        m / (m + 1) * (SSD + m / (m + 1) * (ybar - G)^2 + V_G) / den^2,

    the sum of squares of the m answers and a pseudo-respondent drawn from the group,
    scaled back to m (for a 0/1 index: m p~(1 - p~) / den^2 with p~ = (x + G) / (m + 1),
    Agresti and Coull's idea, in the variance only). The m respondents of a cell often
    agree -- with ten of them and a share near 0 or 1 (0.7^10 = 3%) -- and then add no
    variance; where such a cell carries a large weight the interval was too short exactly
    when the estimate was off (an outside tester's province: the criteria of the whole
    covered 92%). Composites get their own floor, from their own influence values
    (:func:`_composite_floor`). The ``se`` column is never changed.
    """  # fmt: skip
    n_crit = answered.shape[1]
    g = cells.group
    m = answered
    with np.errstate(invalid="ignore", divide="ignore"):
        crit_floor = []
        for k, values in enumerate((SATISFIED, SCORES)):
            total = counts @ values
            ybar = np.divide(total, m, out=np.zeros(m.shape), where=m > 0)
            ssd = np.maximum(counts @ (values * values) - m * ybar * ybar, 0.0)
            est = np.nan_to_num(group_est[:, k * n_crit : (k + 1) * n_crit])[g]
            var = np.nan_to_num(group_var[:, k * n_crit : (k + 1) * n_crit])[g]
            floor = m / (m + 1) * (ssd + m / (m + 1) * (ybar - est) ** 2 + var)
            crit_floor.append(floor * inv_den[g] ** 2)
    out = q.copy()
    out[:, : 2 * n_crit] = np.maximum(q[:, : 2 * n_crit], np.concatenate(crit_floor, axis=1))
    return out


def _interval_design_df(design: SurveyDesign, cells: DomainCells, behind: np.ndarray) -> np.ndarray:
    """Satterthwaite's df of the intervals' variance with each domain cell's variance
    replaced by its expectation under a common variance per respondent (w_h^2 m_h), per
    group and estimate: what the design alone allows.

    The df from the sample's own sums of squares (:func:`analysis.estimators.interval_variance`)
    is largest exactly where a heavy cell's variance happens to be underestimated -- its
    few respondents agree, the other cells then dominate -- so the interval is shortest in
    t as well as in SE where it is already too short (a cell of 40% of the transactions
    and 10 respondents: the province's overall index covered 92.6%). The intervals use the
    smaller of the two; this one does not depend on the answers. Without weighting both are
    n - 1.
    """  # fmt: skip
    w2 = (design.cell_weight[cells.cell] ** 2)[:, None]
    a = w2 * behind
    total = cells.group_sum(a)
    spread = cells.group_sum(a * a / np.maximum(behind - 1, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, total * total / spread, np.nan)


def _composite_floor(
    design: SurveyDesign, cells: DomainCells, t: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """The composites' (elements, overall) influence sums of squares for the intervals: at
    least what one more respondent like the group would make them, as the criteria's
    (:func:`_variance_floor`), on the composite's own influence values z (no assumption
    about how its criteria are correlated).

    Per domain cell of m respondents with influence sum t and within-cell sum of squares
    SSD, and V the group's weighted mean of z^2 (z has weighted mean 0 over the group):
    m / (m + 1) * (SSD + m / (m + 1) * (t / m)^2 + V). A heavy cell whose few respondents
    answer alike otherwise adds almost nothing to the variance of the element and overall
    indices (a cell of 40% of the transactions and 10 respondents: the province's overall
    index covered 93%).
    """  # fmt: skip
    m = cells.size[:, None]
    cell_n = design.cell_size[cells.cell][:, None]
    a = t / cell_n  # the weighting cell's mean (respondents outside the group count as 0)
    inside = q - (cell_n - m) * a * a  # sum over the domain cell of (z - a)^2
    square = inside + 2 * a * t - m * a * a  # sum of z^2
    ssd = np.maximum(square - t * t / np.maximum(m, 1e-300), 0.0)
    w = design.cell_weight[cells.cell][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        v = cells.group_sum(w * square) / cells.group_sum(w * m)
    v = np.nan_to_num(v)[cells.group]
    floor = m / (m + 1) * (ssd + m / (m + 1) * (t / np.maximum(m, 1e-300)) ** 2 + v)
    return np.maximum(q, floor)


def _pooling_bias(part: _Grouping, across: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Estimated bias of the pooled post-strata estimates of ``part`` and its sampling
    variance: per group and estimate column (0 where either estimate is undefined).

    *The bias.* The same estimates with the weights the respondents would have without the
    pooling (each pool keeping its population, :class:`analysis.weighting.PostStrata`) less
    the pooled ones. Pooling gives the members of a pooled cell one weight N_h / n_h where
    their own cells would give N_c / n_c: the pooled estimate is biased by
    sum_c (N_c / N_h - n_c / n_h) times the mean of cell c, which this difference B
    estimates without bias (given the cells with respondents).

    *Its variance.* B rests on the few respondents of the small cells -- that is why they
    were pooled -- so it can be near 0 by chance where the true bias is not (a cell of 40%
    of the transactions and 3 respondents who happen to answer as their agency does). Its
    linearization variance V(B) is the variance of the difference of the two estimates'
    influence values x_i = w_i z_i (unpooled weights less pooled), taken, as collapsed
    strata (Wolter, 2007, sec. 2.5), within each pooled cell rather than each unpooled
    cell: cells of one respondent then still count, and the estimator errs on the
    conservative side. The interval's SE is sqrt(SE'^2 + B^2 + V(B)): the pooled estimate
    is off by B plus the error of the unpooled estimate, and B^2 + V(B) is what an interval
    centred on the pooled estimate must allow for both (the ``se`` column stays the
    linearization SE of the pooled estimate, R's).

    ``across``: for groupings that are not within one agency (the whole file, a service
    field, a period): the transactions of pooled cells without respondents are carried by
    the same field's respondents in the other agencies (``design.across_weight``), so the
    difference also probes the bias of standing for an empty field by the agency's other
    fields -- which no estimate within the agency can see.
    """  # fmt: skip
    design, emap, group, n_groups = part.design, part.emap, part.group, part.n_groups
    fine_cell, fine_weight = design.unpooled_cell, design.unpooled_weight
    if across and design.across_weight is not None:
        fine_weight = design.across_weight
    freq = row_freq(design)
    size = np.bincount(fine_cell, weights=freq, minlength=len(fine_weight)).astype("float64")
    weight = fine_weight
    if design.trim is not None:  # trimmed as the pooled weights are
        weight = trim_weights(fine_weight, size, float(design.trim))
    fine = replace(
        design, cell=fine_cell, cell_size=np.maximum(size, 1.0), cell_weight=weight,
        calibrated_weight=fine_weight, unpooled_cell=None, unpooled_weight=None,
    )  # fmt: skip
    cells = domain_cells(fine, group, n_groups)
    counts = _value_counts(fine, cells)
    idx_est, idx_den, _, _ = ratio_from_counts(fine, cells, counts, SATISFIED, ANSWERED)
    mean_est = ratio_from_counts(fine, cells, counts, SCORES, ANSWERED)[0]
    element_of = np.array(emap.element_of)
    defined = idx_den > 0
    _, crit_share, elem_est, inv_e, overall_est = _composite_estimates(
        idx_est, defined, element_of, len(emap.elements)
    )
    other = np.concatenate([idx_est, mean_est, elem_est, overall_est[:, None]], axis=1)
    with np.errstate(invalid="ignore"):
        bias = np.nan_to_num(other - part.estimate, nan=0.0)
    inv_den = np.divide(1.0, idx_den, out=np.zeros(idx_den.shape), where=defined)
    fine_z = (
        (SATISFIED - np.where(defined, idx_est, 0.0)[:, :, None] * ANSWERED) * inv_den[:, :, None],
        (SCORES - np.where(defined, mean_est, 0.0)[:, :, None] * ANSWERED) * inv_den[:, :, None],
    )  # fmt: skip
    variance = _pooling_bias_variance(part, weight[fine_cell], fine_z, crit_share, inv_e)
    return bias, variance


def _pooling_bias_variance(
    part: _Grouping, fine_w: np.ndarray, fine_z: tuple[np.ndarray, np.ndarray],
    fine_share: np.ndarray, fine_inv_e: np.ndarray,
) -> np.ndarray:
    """V(B) of :func:`_pooling_bias`: the collapsed-strata variance of x_F - x_P, per group.

    Every respondent of the group counts (also those whose weight the pooling left alone:
    the two estimates differ, and so do their influence values), in chunks.
    """  # fmt: skip
    design, cells = part.design, part.cells
    pooled_w = design.cell_weight[design.cell]
    sel = np.flatnonzero(part.group >= 0)
    n_cells, n_cols = len(cells.group), part.estimate.shape[1]
    t = np.zeros((n_cells, n_cols))
    q = np.zeros((n_cells, n_cols))
    freq = row_freq(design)
    n_crit, n_elem = part.n_crit, part.n_elem
    onehot = np.eye(n_elem)[part.element_of]
    cols = np.arange(n_crit)[None, :]
    step = max(1, 4_000_000 // (4 * n_cols))  # rows per chunk: a few temporaries of 4M
    for lo in range(0, len(sel), step):
        rows = sel[lo : lo + step]
        g, codes = part.group[rows], design.answers[rows].astype(np.intp)
        w_f, w_p = fine_w[rows][:, None], pooled_w[rows][:, None]
        x_f = w_f * fine_z[0][g[:, None], cols, codes]  # criteria, unpooled weights
        x_p = w_p * part.crit_z[g[:, None], cols, codes]
        m_f = w_f * fine_z[1][g[:, None], cols, codes]  # mean scores
        m_p = w_p * part.mean_z[g[:, None], cols, codes]
        e_f = (x_f * fine_share[g]) @ onehot  # elements: their criteria's shares
        e_p = (x_p * part.comp_beta[g]) @ onehot
        overall = e_f.sum(axis=1) * fine_inv_e[g] - e_p.sum(axis=1) * part.inv_e[g]
        d = np.concatenate([x_f - x_p, m_f - m_p, e_f - e_p, overall[:, None]], axis=1)
        at = cells.row_cell[rows]
        f = None if freq is None else freq[rows][:, None]
        fd = d if f is None else d * f
        for k in range(n_cols):
            t[:, k] += np.bincount(at, weights=fd[:, k], minlength=n_cells)
            q[:, k] += np.bincount(at, weights=fd[:, k] * d[:, k], minlength=n_cells)
    cell_n = design.cell_size[cells.cell][:, None]
    ssd = np.maximum(q - t * t / cell_n, 0.0)
    m = cells.size[:, None]
    factor = np.where(m >= 2, m / np.maximum(m - 1, 1), design.n / max(design.n - 1, 1))
    return cells.group_sum(ssd * factor)


def _field_spread(design: SurveyDesign, element_of: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """tau^2: the variance of the mean of a population cell (agency x service field) around
    its agency's, per estimate column (criteria, mean scores, elements, overall).

    The one-way random-effects estimate (method of moments, cells nested in agencies) from
    the respondents of the cells before pooling: (MS_b - MS_w) / n0 with the unbalanced
    n0 = (n - sum_a sum_c n_c^2 / n_a) / (cells - agencies), at least 0. A criterion's
    values are its answers (satisfied or not; the score); an element's, each respondent's
    satisfied share over its answered criteria, and the overall's the mean of those over
    the elements: the composites' spread between fields is estimated from their own
    values, with far less noise than from their criteria one by one. Where no agency has
    respondents in two cells tau cannot be estimated, and the variance of the values
    themselves (which no cell mean can exceed) stands for it. Cached on the design.

    Returns tau^2 and half the estimate's sampling variance, (MS_b^2 / df_b + MS_w^2 /
    df_w) / n0^2 (0 where not estimated): the allowance's degrees of freedom come from it
    (Satterthwaite), since few agencies with answers in several fields tell little about
    tau.
    """
    key = tuple(element_of)
    cache = design.cache.setdefault("field_spread", {})
    if key in cache:
        return cache[key]
    fine, agency_of = design.fine_cell, design.fine_agency
    n_fine, n_agencies = len(agency_of), int(agency_of.max(initial=-1)) + 1
    freq = row_freq(design)
    n_crit = design.answers.shape[1]
    element_of = np.asarray(element_of)
    n_elem = int(element_of.max(initial=-1)) + 1

    def anova(value: np.ndarray, present: np.ndarray) -> tuple[float, float]:
        weight = present.astype("float64") if freq is None else present * freq
        value = np.where(present, value, 0.0)
        n_c = np.bincount(fine, weights=weight, minlength=n_fine)
        s_c = np.bincount(fine, weights=weight * value, minlength=n_fine)
        ss = float((weight * value * value).sum())
        n_a = np.bincount(agency_of, weights=n_c, minlength=n_agencies)
        s_a = np.bincount(agency_of, weights=s_c, minlength=n_agencies)
        n_sq = np.bincount(agency_of, weights=n_c * n_c, minlength=n_agencies)
        cells, agencies, n = int((n_c > 0).sum()), int((n_a > 0).sum()), float(n_c.sum())
        df_b, df_w = cells - agencies, n - cells
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_ss = np.where(n_c > 0, s_c * s_c / n_c, 0.0).sum()
            agency_ss = np.where(n_a > 0, s_a * s_a / n_a, 0.0).sum()
            total = (ss - s_c.sum() ** 2 / n) / (n - 1) if n > 1 else 0.0
            n0 = (n - np.where(n_a > 0, n_sq / n_a, 0.0).sum()) / df_b if df_b >= 1 else 0.0
        if df_b < 1 or df_w < 1 or not n0 > 0:
            return max(total, 0.0), 0.0  # not estimable: the values' own variance
        ms_b, ms_w = (cell_ss - agency_ss) / df_b, (ss - cell_ss) / df_w
        return max((ms_b - ms_w) / n0, 0.0), (ms_b * ms_b / df_b + ms_w * ms_w / df_w) / n0**2

    # one criterion at a time (the answers stay int8): their ANOVAs, and the elements' sums
    rows = []
    sat_sum = np.zeros((len(fine), n_elem), dtype=np.int16)  # counts: exact, small
    ans_sum = np.zeros((len(fine), n_elem), dtype=np.int16)
    for j in range(n_crit):
        codes = design.answers[:, j]
        answered = codes > 0
        satisfied = codes >= 4
        rows.append((j, anova(satisfied, answered)))
        rows.append((n_crit + j, anova(codes.astype("float64"), answered)))
        sat_sum[:, element_of[j]] += satisfied
        ans_sum[:, element_of[j]] += answered
    overall = np.zeros(len(fine))
    n_known = np.zeros(len(fine))
    for e in range(n_elem):
        known = ans_sum[:, e] > 0
        elem = np.divide(sat_sum[:, e], ans_sum[:, e], out=np.zeros(len(fine)), where=known)
        rows.append((2 * n_crit + e, anova(elem, known)))
        overall += elem
        n_known += known
    overall = np.divide(overall, n_known, out=np.zeros(len(fine)), where=n_known > 0)
    rows.append((2 * n_crit + n_elem, anova(overall, n_known > 0)))
    tau2, half_var = np.zeros(len(rows)), np.zeros(len(rows))
    for k, (t, h) in rows:
        tau2[k], half_var[k] = t, h
    result = (tau2, half_var)
    cache[key] = result
    return result


def _empty_cell_allowance(part: _Grouping) -> tuple[np.ndarray, np.ndarray]:
    """Variance allowance, per group and estimate column, for the pooled cells without
    respondents, and half its sampling variance (for the interval's df).

    Their transactions are carried by the pooled cell's respondents, so an estimate stands
    for them by the mean of other service fields. If a cell's mean departs from its
    agency's sampled cells with variance tau^2 (:func:`_field_spread`), a group whose
    weight is a share S_h of such transactions in pooled cell h is off by a term of variance
    sum_h S_h^2 (sum_c (N_c / N_E)^2 + sum_p (n_p / n_h)^2) tau^2 (the empty cells' own
    departures, and the sampled cells' mean they are compared with; ``empty_spread``).
    """
    design, cells = part.design, part.cells
    e = design.empty_share[cells.cell]
    spread = design.empty_spread[cells.cell]
    w = design.cell_weight[cells.cell][:, None] * part.behind
    total = cells.group_sum(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[cells.group] > 0, e[:, None] * w / total[cells.group], 0.0)
    q = cells.group_sum(share * share * spread[:, None])
    tau2, half_var = _field_spread(design, part.element_of)
    return q * tau2[None, :], q * q * half_var[None, :]


class _Grouping:
    """Estimates, SEs, sizes and per-respondent influence values of one grouping.

    Estimate columns, in the order of ``t``/``q``: criteria (C), mean scores (C), elements
    (E), SIPAS (1).
    """

    def __init__(
        self,
        design: SurveyDesign,
        emap: ElementMap,
        group: np.ndarray,
        n_groups: int,
        whole: _Grouping | None = None,
        keep_rows: bool = False,
        across: bool = False,
    ):
        self.design, self.emap, self.group, self.n_groups = design, emap, group, n_groups
        self.keep_rows = keep_rows  # keep the composites' influence per respondent (ALL)
        self.cross: np.ndarray | None = None  # sums of z * z_ALL per domain cell
        cells = self.cells = domain_cells(design, group, n_groups)
        n_crit, n_elem = len(emap.criteria), len(emap.elements)
        self.n_crit, self.n_elem = n_crit, n_elem
        element_of = self.element_of = np.array(emap.element_of)
        counts = _value_counts(design, cells)
        answered = counts[:, :, 1:].sum(axis=2)
        total2 = counts @ (SCORES * SCORES)

        idx_est, idx_den, idx_t, idx_q = ratio_from_counts(
            design, cells, counts, SATISFIED, ANSWERED
        )
        mean_est, _, mean_t, mean_q = ratio_from_counts(design, cells, counts, SCORES, ANSWERED)
        defined = idx_den > 0

        k_def, crit_share, elem_est, inv_e, overall_est = _composite_estimates(
            idx_est, defined, element_of, n_elem
        )
        elem_defined = k_def > 0
        e_def = elem_defined.sum(axis=1).astype("float64")
        r0 = np.where(defined, idx_est, 0.0)
        inv_den = np.divide(1.0, idx_den, out=np.zeros(idx_den.shape), where=defined)
        m0 = np.where(defined, mean_est, 0.0)
        # Influence tables (group, criterion, answer code): z of a respondent of group g.
        self.crit_z = (SATISFIED - r0[:, :, None] * ANSWERED) * inv_den[:, :, None]
        self.mean_z = (SCORES - m0[:, :, None] * ANSWERED) * inv_den[:, :, None]
        self.comp_beta = crit_share  # a composite averages its criteria's z with these
        self.inv_e = inv_e

        self.counts = counts
        comp_t, comp_q = self._composite_sums(whole)
        t = np.concatenate([idx_t, mean_t, comp_t], axis=1)
        q = np.concatenate([idx_q, mean_q, comp_q], axis=1)
        self.t, self.q = t, q
        self.variance = domain_variance(design, cells, t, q)
        se = np.sqrt(self.variance)
        self.estimate = np.concatenate([idx_est, mean_est, elem_est, overall_est[:, None]], axis=1)
        ok = np.concatenate([defined, defined, elem_defined, (e_def > 0)[:, None]], axis=1)
        self.defined = ok
        self.se = np.where(ok, se, np.nan)

        # Sizes.
        w = design.cell_weight[cells.cell]
        self.n_g = cells.group_sum(cells.size)
        self.wsum = cells.group_sum(w * cells.size)
        w2sum = cells.group_sum(w * w * cells.size)
        self.n_ans = cells.group_sum(answered)
        w2_ans = cells.group_sum((w * w)[:, None] * answered)
        self.neff_g = self.wsum * self.wsum / w2sum
        self.neff_a = np.divide(
            idx_den * idx_den, w2_ans, out=np.full(idx_den.shape, np.nan), where=defined
        )
        self.idx_den = idx_den
        self.k_def = k_def
        # The intervals' variance: each domain cell a stratum of its own respondents
        # (criteria: of those who answered), with Satterthwaite's df; raking: R's variance
        # over the group's respondents less their leverage (interval_variance).
        behind = np.concatenate(
            [answered, answered, np.repeat(cells.size[:, None], n_elem + 1, axis=1)], axis=1
        )
        self.behind = behind
        # each criterion's weighted variance per answerer in the group (index, mean score)
        wsq = cells.group_sum(design.cell_weight[cells.cell][:, None] * total2)
        with np.errstate(invalid="ignore", divide="ignore"):
            answer_var = np.concatenate(
                [idx_est * (1 - idx_est), wsq / idx_den - m0 * m0], axis=1
            )
        floored = _variance_floor(q, counts, answered, inv_den, self.estimate, answer_var, cells)
        floored[:, 2 * n_crit :] = _composite_floor(design, cells, comp_t, comp_q)
        split = interval_variance(design, cells, floored, behind, self.variance)
        # se_sampling: the SE from the sums of squares alone (no floor, no allowance); it
        # decides whether the SE measures anything (interval), and its df bounds the df
        self.se_sampling: np.ndarray | None = None
        if split is None:
            self.se_ci = self.df_ci = None
        else:
            self.se_ci = np.where(ok, np.sqrt(split[0]), np.nan)
            df_ci = split[1]
            if design.weighting != "rake":  # raking: the respondents less their leverage
                raw = interval_variance(design, cells, q, behind)
                self.se_sampling = np.where(ok, np.sqrt(raw[0]), np.nan)
                # the smallest of the df with and without the floors and the design's: a
                # floor that evens the cells out must not buy degrees of freedom
                df_ci = np.fmin(np.fmin(df_ci, raw[1]), _interval_design_df(design, cells, behind))
            self.df_ci = np.where(ok, df_ci, np.nan)
        # Pooled post-strata: the interval also allows for the bias the pooling may bring.
        self.pool_bias: np.ndarray | None = None
        if design.unpooled_cell is not None and self.se_ci is not None:
            bias, bias_var = _pooling_bias(self, across)
            self.pool_bias = np.where(ok, bias, np.nan)
            self.se_ci = np.where(ok, np.sqrt(self.se_ci**2 + bias * bias + bias_var), np.nan)
        # Pooled cells without respondents: the interval allows for their unknown departure.
        self.empty_allow: np.ndarray | None = None
        if design.empty_share is not None and self.se_ci is not None:
            allow, allow_half_var = _empty_cell_allowance(self)
            self.empty_allow = np.where(ok, allow, np.nan)
            rest = self.se_ci**2
            self.se_ci = np.where(ok, np.sqrt(rest + allow), np.nan)
            # Satterthwaite: the allowance rests on tau's estimate, with its own df
            with np.errstate(invalid="ignore", divide="ignore"):
                df_both = (rest + allow) ** 2 / (rest * rest / self.df_ci + allow_half_var)
            self.df_ci = np.where(ok, np.fmin(self.df_ci, df_both), np.nan)
        self.e_def = e_def

        # Design effects against simple random sampling of the answers.
        group_counts = cells.group_sum(counts[:, :, 1:])  # (G, C, 5)
        spread = (group_counts > 0).sum(axis=2) > 1  # answers not all equal
        n_ans = self.n_ans
        idx_se, mean_se = self.se[:, :n_crit], self.se[:, n_crit : 2 * n_crit]
        with np.errstate(invalid="ignore", divide="ignore"):
            var_idx = idx_est * (1 - idx_est)
            var_mean = wsq / idx_den - mean_est * mean_est
            enough = n_ans >= 2
            self.deff_idx = np.where(
                enough & (var_idx > 0), idx_se**2 / (var_idx / (n_ans - 1)), np.nan
            )
            self.deff_mean = np.where(
                enough & spread & (var_mean > 0), mean_se**2 / (var_mean / (n_ans - 1)), np.nan
            )
        nan = np.full(self.estimate.shape, np.nan)
        self.diff, self.diff_se = nan, nan.copy()
        self.diff_se_test, self.diff_df, self.diff_p = nan.copy(), nan.copy(), nan.copy()
        self.diff_logit: np.ndarray | None = None  # the test's statistic, logit scale
        if whole is not None:
            self._cross_criteria(whole)

    # -- per-respondent influence values, for covariances ----------------------------------

    def _codes(self, j: int) -> np.ndarray:
        return self.design.answers[:, j]

    def influence(self, k: int) -> np.ndarray:
        """Influence value of every respondent for estimate column k (0 outside groups)."""
        g = np.where(self.group >= 0, self.group, 0)
        outside = self.group < 0
        n_crit = self.n_crit
        if k < 2 * n_crit:
            table = self.crit_z if k < n_crit else self.mean_z
            j = k % n_crit
            z = table[:, j, :][g, self._codes(j)]
        elif k < 2 * n_crit + self.n_elem:
            z = self._element_z(k - 2 * n_crit, g)
        else:
            z = np.zeros(len(g))
            for e in range(self.n_elem):
                z += self._element_z(e, g)
            z *= self.inv_e[g]
        z[outside] = 0.0
        return z

    def _element_z(self, e: int, g: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Influence of element e per respondent; ``base`` = 6 g when the caller has it."""
        z = np.zeros(len(g))
        single = self.n_groups == 1
        if base is None and not single:
            base = g * 6
        for j in np.flatnonzero(self.element_of == e):
            table = (self.comp_beta[:, j, None] * self.crit_z[:, j, :]).ravel()
            codes = self._codes(j)
            # a flat lookup: much faster than fancy indexing on two axes
            z += table.take(codes if single else base + codes)
        return z

    def _composite_sums(self, whole: _Grouping | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Influence sums per domain cell of the element and SIPAS indices.

        A composite's influence value is the average of its criteria's influence values;
        it depends on the respondent's answer codes and group only. With ``whole`` (the
        ``ALL`` grouping, built with ``keep_rows``), also the sums per domain cell of
        z_ALL, z_ALL^2 and z z_ALL that the difference from the whole needs (see
        :meth:`_cross_criteria`), in the same pass.
        """
        keep = self.group >= 0
        everyone = bool(keep.all())
        rows = self.cells.row_cell[keep]
        n_cells = len(self.cells.group)
        n_comp = self.n_elem + 1
        t = np.empty((n_cells, n_comp))
        ssd = np.empty((n_cells, n_comp))
        g = np.where(keep, self.group, 0)
        overall = np.zeros(len(g))
        freq = row_freq(self.design)
        if freq is not None and not everyone:
            freq = freq[keep]

        def count(values):  # sum per domain cell, each row as many respondents as it stands for
            return np.bincount(rows, values if freq is None else values * freq, minlength=n_cells)

        if self.keep_rows:
            self.comp_rows = np.empty((len(g), n_comp))
        if whole is not None:
            self.comp_cross = np.empty((n_cells, n_comp, 3))
            cell_n = self.design.cell_size[self.cells.cell]
            nested = bool(np.array_equal(self.cells.size, cell_n))
            if nested:
                where = np.full(len(self.design.cell_size), -1, dtype=np.int64)
                where[whole.cells.cell] = np.arange(len(whole.cells.cell))
                at = where[self.cells.cell]
                whole_t, whole_q = whole._comp_t[at], whole._comp_q[at]

        def store(k, z):
            t[:, k], ssd[:, k] = influence_sums(
                self.design, self.cells, z if everyone else z[keep], rows, freq
            )
            if self.keep_rows:
                self.comp_rows[:, k] = z
            if whole is not None:
                za = whole.comp_rows[:, k] if everyone else whole.comp_rows[keep, k]
                zk = z if everyone else z[keep]
                self.comp_cross[:, k, 2] = count(zk * za)
                if nested:  # each domain cell is a whole weighting cell: the whole's sums
                    t_a, q_a = whole_t[:, k], whole_q[:, k]
                    self.comp_cross[:, k, 0] = t_a
                    self.comp_cross[:, k, 1] = q_a + t_a * t_a / cell_n
                else:
                    self.comp_cross[:, k, 0] = count(za)
                    self.comp_cross[:, k, 1] = count(za * za)

        base = g * 6
        for e in range(self.n_elem):
            z = self._element_z(e, g, base)
            overall += z
            store(e, z)
        overall *= self.inv_e[g]
        store(self.n_elem, overall)
        self._comp_t, self._comp_q = t, ssd
        return t, ssd

    def _cross_criteria(self, whole: _Grouping) -> None:
        """Sums per domain cell of z_ALL, z_ALL^2 and z z_ALL for every estimate column.

        Criteria and mean scores from the answer-code counts (their influence values are a
        function of group, criterion and code); composites from :meth:`_composite_sums`.
        Shape (domain cells, K, 3).
        """
        counts = self.counts
        g = self.cells.group
        parts = []
        for table, table_all in ((self.crit_z, whole.crit_z), (self.mean_z, whole.mean_z)):
            za = table_all[0][None, :, :]  # (1, C, 6)
            zg = table[g]  # (D, C, 6)
            parts.append(
                np.stack(
                    [(counts * za).sum(2), (counts * za * za).sum(2), (counts * zg * za).sum(2)],
                    axis=2,
                )
            )
        parts.append(self.comp_cross)
        self.cross = np.concatenate(parts, axis=1)

    def _composite_behind(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per group, for SIPAS then each element: the respondents who answered at least one
        of its criteria, their Kish effective n, and the step one answer makes (1 / the
        criteria it averages)."""
        design, cells = self.design, self.cells
        keep = cells.row_cell >= 0
        rows = cells.row_cell[keep]
        freq = row_freq(design)
        freq = np.ones(int(keep.sum())) if freq is None else freq[keep]
        answered = design.answers[keep] > 0
        masks = [answered.any(axis=1)] + [
            answered[:, self.element_of == e].any(axis=1) for e in range(self.n_elem)
        ]
        per_cell = np.stack(
            [np.bincount(rows, weights=freq * m, minlength=len(cells.group)) for m in masks], 1
        )
        w = design.cell_weight[cells.cell][:, None]
        n = cells.group_sum(per_cell)
        wsum, w2sum = cells.group_sum(w * per_cell), cells.group_sum(w * w * per_cell)
        neff = np.divide(wsum * wsum, w2sum, out=np.zeros(n.shape), where=w2sum > 0)
        k = np.maximum(self.k_def, 1.0)
        e_def = np.maximum((self.k_def > 0).sum(axis=1), 1)
        step_all = 1.0 / (e_def * k.max(axis=1))
        return n, neff, np.concatenate([step_all[:, None], 1.0 / k], axis=1)

    def _criteria_floor(self, ci_idx: dict, level: float) -> np.ndarray:
        """Per group, the least variance of each composite (columns as ``estimate``; NaN
        on criteria and mean scores) that its criteria's own uncertainty implies:
        where a composite has thin criteria (answered by fewer than half of the group, or
        with an exact bound or no interval): per element, sum_c beta_c^2 SE*_c^2 over its
        other criteria plus (sum_c beta_c sqrt(V*_c))^2 over the thin ones; the overall
        index sums its elements' with (1 / elements)^2. beta_c is the criterion's share in
        its element; V*_c = ((high - low) / (2 z))^2, the variance of a normal interval as
        wide as the thin criterion's published one (its t quantile and exact bound
        included), or, with no interval (one answer, or one heavy answerer), of its
        Clopper-Pearson bound on the effective n (at least one). The thin criteria of an
        element are usually answered by the same few people, hence added as perfectly
        correlated. A composite without thin criteria has no such floor (0).

        The composite's own influence values miss a criterion that few answered when those
        few agree: its estimate is then as uncertain as its exact bound says, but adds no
        variance, while it weighs as much as any other in the element and the overall
        index (an outside statistician: a complaint-handling element answered by 1-3 people
        of an agency left its overall interval covering 46-75%).
        """  # fmt: skip
        from scipy.special import ndtri

        n_crit = self.n_crit
        est = self.estimate[:, :n_crit]
        z = float(ndtri(0.5 + level / 2))
        low = ci_idx["low"].reshape(est.shape)
        high = ci_idx["high"].reshape(est.shape)
        defined = np.isfinite(est)
        width = np.where(defined & np.isfinite(low) & np.isfinite(high), high - low, np.nan)
        bare = defined & ~np.isfinite(width)  # no interval: the bound on n* (at least 1)
        if bare.any():
            neff = np.where(np.isfinite(self.neff_a), self.neff_a, self.n_ans)
            m = np.maximum(np.minimum(neff, self.n_ans), 1.0)[bare]
            lo, hi = clopper_pearson(est[bare], m, level)
            width[bare] = hi - lo
        # thin: an exact bound or none, or answered by fewer than half of the group
        method = ci_idx["method"].reshape(est.shape)
        thin = defined & ((method != "logit-t") | (self.n_ans < self.n_g[:, None] / 2))
        sd_thin = np.where(thin, np.nan_to_num(width / (2 * z)), 0.0)
        se_ci = np.fmax(self.se_ci[:, :n_crit], self.se[:, :n_crit])  # as interval() does
        v_rest = np.where(defined & ~thin, np.nan_to_num(se_ci**2), 0.0)
        share = self.comp_beta  # (G, C): 1 / K_ge on defined criteria
        onehot = np.eye(self.n_elem)[self.element_of]
        # the others as if independent, the thin ones (often the same few people across an
        # element's criteria) as if perfectly correlated; only where there are thin ones
        elem = (share * share * v_rest) @ onehot + ((share * sd_thin) @ onehot) ** 2
        overall = elem.sum(axis=1) * self.inv_e**2
        elem = np.where(thin.astype("float64") @ onehot > 0, elem, 0.0)
        overall = np.where(thin.any(axis=1), overall, 0.0)
        out = np.full(self.estimate.shape, np.nan)
        out[:, 2 * n_crit : 2 * n_crit + self.n_elem] = elem
        out[:, -1] = overall
        return out

    # -- the table ----------------------------------------------------------------------

    def table(self, level: float, min_n: int) -> pd.DataFrame:
        """All rows of the grouping, groups in order, levels in order within a group."""
        n_groups, n_crit, n_elem = self.n_groups, self.n_crit, self.n_elem
        emap = self.emap
        est, se = self.estimate, self.se
        c_sl, m_sl = slice(0, n_crit), slice(n_crit, 2 * n_crit)
        e_sl, o_sl = slice(2 * n_crit, 2 * n_crit + n_elem), slice(-1, None)
        n_g = self.n_g.astype("float64")
        n_rep = np.repeat(n_g[:, None], n_elem + 1, axis=1)
        neff_rep = np.repeat(self.neff_g[:, None], n_elem + 1, axis=1)
        se_ci, df_ci = self.se_ci, self.df_ci
        split = se_ci is not None

        def part(a, sl):
            return None if a is None else a[:, sl]

        sampling = self.se_sampling
        ci_idx = interval(
            est[:, c_sl], se[:, c_sl], self.n_ans, self.neff_a, level, "logit",
            se_ci=part(se_ci, c_sl), df=part(df_ci, c_sl), se_sampling=part(sampling, c_sl),
        )
        ci_mean = interval(
            (est[:, m_sl] - 1) / 4,
            se[:, m_sl] / 4,
            self.n_ans,
            self.neff_a,
            level,
            "logit",
            se_ci=se_ci[:, m_sl] / 4 if split else None,
            df=part(df_ci, m_sl),
            step=0.25,
            se_sampling=None if sampling is None else sampling[:, m_sl] / 4,
        )

        def comp(a):
            return None if a is None else np.concatenate([a[:, o_sl], a[:, e_sl]], axis=1)

        comp_est, comp_se = comp(est), comp(se)
        # A composite rests on those who answered its criteria: at least the most answered
        # criterion's respondents (n, Kish effective n), who may be far fewer than the group's
        # (element E is asked only of those who gave feedback).
        # Their variance (and its df) is over the group's respondents, answering or not.
        behind_n, behind_neff, step = self._composite_behind()
        comp_se_ci = comp(se_ci)
        if comp_se_ci is not None:
            comp_se_ci = np.sqrt(
                np.fmax(comp_se_ci**2, comp(self._criteria_floor(ci_idx, level)))
            )  # fmt: skip
        ci_comp = interval(
            comp_est, comp_se, behind_n, behind_neff, level, "logit", se_ci=comp_se_ci,
            df=comp(df_ci), step=step, df_n=np.minimum(neff_rep, n_rep),
            se_sampling=comp(sampling),
        )

        def block(overall_elem, crit, mean):
            return np.concatenate([overall_elem, crit, mean], axis=1).ravel()

        def cols(a):  # SIPAS first, then elements: from the column order of estimate
            return np.concatenate([a[:, o_sl], a[:, e_sl]], axis=1)

        width = 1 + n_elem + 2 * n_crit
        pct = 100.0
        nan_c = np.full((n_groups, 1 + n_elem), np.nan)
        level_names = np.array(
            ["overall"] + ["element"] * n_elem + ["criterion"] * n_crit + ["mean_score"] * n_crit,
            dtype=object,
        )
        key = np.array([OVERALL_KEY, *emap.elements, *emap.criteria, *emap.criteria], dtype=object)
        sizes = np.array([len(emap.criteria_of(e)) for e in emap.elements])
        used = np.concatenate([self.k_def.sum(axis=1, keepdims=True), self.k_def], axis=1).astype(
            int
        )
        of = np.r_[n_crit, sizes]
        used_text = np.array(
            [[criteria_used_text(u, o) for u, o in zip(row, of, strict=True)] for row in used],
            dtype=object
        ).reshape(n_groups, 1 + n_elem)
        none_c = np.full((n_groups, 2 * n_crit), None, dtype=object)
        mean_scale = lambda a: 1 + 4 * a  # noqa: E731
        diff, diff_se = self.diff, self.diff_se
        bias = self.pool_bias if self.pool_bias is not None else np.full(est.shape, np.nan)
        table = pd.DataFrame(
            {
                "level": np.tile(level_names, n_groups),
                "key": np.tile(key, n_groups),
                "estimate": block(comp_est * pct, est[:, c_sl] * pct, est[:, m_sl]),
                "se": block(comp_se * pct, se[:, c_sl] * pct, se[:, m_sl]),
                "ci_low": block(
                    ci_comp["low"] * pct, ci_idx["low"] * pct, mean_scale(ci_mean["low"])
                ),
                "ci_high": block(
                    ci_comp["high"] * pct, ci_idx["high"] * pct, mean_scale(ci_mean["high"])
                ),
                "ci_method": block(ci_comp["method"], ci_idx["method"], ci_mean["method"]),
                "df": block(ci_comp["df"], ci_idx["df"], ci_mean["df"]),
                "n": np.repeat(self.n_g, width),
                "n_answered": block(nan_c, self.n_ans, self.n_ans),
                "weight_sum": np.repeat(self.wsum, width),
                "weight_sum_answered": block(nan_c, self.idx_den, self.idx_den),
                "kish_neff": block(neff_rep, self.neff_a, self.neff_a),
                "deff_kish": block(
                    n_rep / neff_rep, self.n_ans / self.neff_a, self.n_ans / self.neff_a
                ),
                "deff": block(nan_c, self.deff_idx, self.deff_mean),
                "flag": np.repeat(np.where(self.n_g < min_n, "small_n", ""), width),
                "criteria_used": block(used_text, none_c[:, :n_crit], none_c[:, n_crit:]),
                "diff": block(cols(diff) * pct, diff[:, c_sl] * pct, diff[:, m_sl]),
                "diff_se": block(cols(diff_se) * pct, diff_se[:, c_sl] * pct, diff_se[:, m_sl]),
                "diff_p": block(cols(self.diff_p), self.diff_p[:, c_sl], self.diff_p[:, m_sl]),
                "diff_p_adj": np.nan,
                "mark": "",
                "note": block(ci_comp["note"], ci_idx["note"], ci_mean["note"]),
                "diff_df": block(cols(self.diff_df), self.diff_df[:, c_sl], self.diff_df[:, m_sl]),
                "pooling_bias": block(cols(bias) * pct, bias[:, c_sl] * pct, bias[:, m_sl]),
            }
        )
        return table


def _differences(design: SurveyDesign, whole: _Grouping, groupings: list[_Grouping]) -> None:
    """Fill ``diff``/``diff_se`` of every grouping: each group against the whole file.

    The difference's influence value is z_g - z_ALL, so with x the calibrated residuals
    Var = V_g + V_ALL - 2 Cov(x_g, x_ALL); sum_i x_g,i x_ALL,i = sum_(i in g) w_i z_g,i
    x_ALL,i - b_g' X'(c x_ALL) (see :func:`analysis.estimators.domain_variance_parts`),
    one pass over the file per estimate.
    """
    if not groupings:
        return
    n = design.n
    k_cols = whole.t.shape[1]
    mg = margin_products(design) if design.weighting == "rake" else None
    w = design.weights
    x_sum = np.empty(k_cols)
    u: list[np.ndarray] | None = None
    if mg is not None:
        u = [np.empty((size, k_cols)) for size in mg.sizes]
    for k in range(k_cols):
        x = calibration_residual(design, whole.influence(k), mg)
        x_sum[k] = x.sum()
        if u is not None:
            for m, column in enumerate(margin_cross(design, x, mg)):
                u[m][:, k] = column
    v_all = whole.variance[0]
    est_all = whole.estimate[0]
    for part in groupings:
        _, sum_x, bu = domain_variance_parts(design, part.cells, part.t, part.q, u)
        cross = np.zeros((part.n_groups, k_cols))
        keep = part.group >= 0
        for k in range(k_cols):
            x = calibration_residual(design, whole.influence(k), mg)
            z = part.influence(k)
            cross[:, k] = np.bincount(
                part.group[keep], weights=(w * z * x)[keep], minlength=part.n_groups
            )
        cov = n / (n - 1) * (cross - bu - sum_x * x_sum / n)
        var = part.variance + v_all - 2 * cov
        ok = part.defined & whole.defined[0]
        part.diff = np.where(ok, part.estimate - est_all, np.nan)
        part.diff_se = np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan)


def _stratum_factor(m: np.ndarray, n: int) -> np.ndarray:
    """m / (m - 1) for a stratum of m respondents (n / (n - 1) below 2), as the intervals."""
    return np.where(m >= 2, m / np.maximum(m - 1, 1), n / (n - 1))


def _weighted_sizes(part: _Grouping) -> np.ndarray:
    """Weighted respondents behind each estimate column (answered, for criteria and mean
    scores; the group's weight for composites), shape (groups, K)."""
    n_comp = part.n_elem + 1
    return np.concatenate(
        [part.idx_den, part.idx_den, np.repeat(part.wsum[:, None], n_comp, axis=1)], axis=1
    )


def _design_df(design: SurveyDesign, whole: _Grouping, part: _Grouping) -> np.ndarray:
    """Degrees of freedom of each group's test against the whole, from the design only.

    Satterthwaite's df over the same strata as the test's variance (each group's part of a
    weighting cell, the rest of it, the cells the group does not touch), with each
    stratum's variance replaced by its expectation when every respondent has the same
    variance: w_h^2 m_h c, c = (1/W_g - 1/W_ALL)^2 for the group's part and 1/W_ALL^2
    for the rest (W the weighted respondents behind the estimate, m_h the stratum's
    respondents). The df computed from the sample's own sums of squares is largest exactly
    where the group's variance happens to be underestimated (the whole's well-estimated
    strata then dominate), which made the test reject too often far in the tail (what
    Holm over many groups uses); this df does not depend on the answers.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_g = 1.0 / _weighted_sizes(part)
        inv_a = 1.0 / _weighted_sizes(whole)[0]
    n_cells = len(design.cell_size)
    w2_all = design.cell_weight**2
    m_a = np.zeros((n_cells, whole.t.shape[1]))
    m_a[whole.cells.cell] = whole.behind
    a_cell = w2_all[:, None] * m_a
    b_cell = a_cell * a_cell / np.maximum(m_a - 1, 1)
    cells = part.cells
    h = cells.cell
    w2 = w2_all[h][:, None]
    m_in = part.behind
    m_out = np.maximum(m_a[h] - m_in, 0.0)
    a_in, a_out = w2 * m_in, w2 * m_out
    c_in = (inv_g - inv_a) ** 2
    c_out = inv_a**2
    total = (
        (a_cell.sum(axis=0) - cells.group_sum(a_cell[h]) + cells.group_sum(a_out)) * c_out
        + cells.group_sum(a_in) * c_in
    )
    spread = (
        (b_cell.sum(axis=0) - cells.group_sum(b_cell[h])
         + cells.group_sum(a_out * a_out / np.maximum(m_out - 1, 1))) * c_out * c_out
        + cells.group_sum(a_in * a_in / np.maximum(m_in - 1, 1)) * c_in * c_in
    )  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, total * total / spread, np.nan)


def _differences_split(design: SurveyDesign, whole: _Grouping, part: _Grouping) -> None:
    """``diff``, its linearization SE and the SE and df its test uses, from cell sums.

    Post-stratification or no weighting. The difference's influence value is
    d_i = z_g,i [i in g] - z_ALL,i. Within a weighting cell h its calibration residual is
    d_i minus the cell's mean of d, so R's variance is n/(n - 1) sum_h w_h^2 SSD_h(d),
    SSD_h(d) the squared deviations of d about its mean over the whole cell: the cells
    the group does not touch keep the whole's SSD_h(z_ALL); in a cell it touches, the
    group's part g n h (values z_g - z_ALL) and the rest h minus g (values -z_ALL) give

        SSD_h(d) = within(g n h) + within(h \\ g) + between,

    each computed from sums per domain cell of z_g, z_g^2 (``t``, ``q``), z_ALL, z_ALL^2
    and z_g z_ALL (``cross``). The test's variance treats each part as a stratum of its
    own respondents (those who answered, for criteria and mean scores), as the intervals
    do: v = w_h^2 within m / (m - 1); the between-part term keeps R's factor n / (n - 1).
    With pooled post-strata it also holds, as the intervals do, the square of the
    difference's estimated pooling bias (the group's ``pooling_bias`` less the whole's, on
    the logit scale).
    Its df: Satterthwaite's over the same strata with each stratum's expected variance
    under a common variance per respondent (:func:`_design_df`), not the sample's.
    """
    lin, _, _ = _split_parts(design, whole, part, np.ones_like(part.t), np.ones(part.t.shape[1]))
    ok = part.defined & whole.defined[0]
    part.diff = np.where(ok, part.estimate - whole.estimate[0], np.nan)
    se = np.sqrt(np.maximum(lin, 0.0))
    part.diff_se = np.where(ok, se, np.nan)
    # The test, on the logit scale of the intervals: the influence of logit(u) is
    # z / (u (1 - u)) / divisor, u the estimate on 0-1.
    offset, divisor = _unit_scale(part)
    with np.errstate(invalid="ignore", divide="ignore"):
        u_g = (part.estimate - offset) / divisor
        u_a = (whole.estimate[0] - offset) / divisor
        alpha_g = np.where(ok & (u_g > 0) & (u_g < 1), 1 / (u_g * (1 - u_g) * divisor), 0.0)
        alpha_a = np.where((u_a > 0) & (u_a < 1), 1 / (u_a * (1 - u_a) * divisor), 0.0)
    lin_l, star_l, _ = _split_parts(
        design, whole, part, alpha_g[part.cells.group], alpha_a
    )
    star_l = np.maximum(star_l, np.maximum(lin_l, 0.0))
    if part.pool_bias is not None and whole.pool_bias is not None:
        # pooled post-strata: the difference's estimated pooling bias, as the intervals
        bias = alpha_g * np.nan_to_num(part.pool_bias) - alpha_a * np.nan_to_num(
            whole.pool_bias[0]
        )
        star_l = star_l + bias * bias
    if part.empty_allow is not None and whole.empty_allow is not None:
        # pooled cells without respondents: both allowances, as the intervals (their
        # departures are unknown, so their covariance too: taken at its largest)
        spread = alpha_g * np.sqrt(np.nan_to_num(part.empty_allow)) + alpha_a * np.sqrt(
            np.nan_to_num(whole.empty_allow[0])
        )
        star_l = star_l + spread * spread
    with np.errstate(invalid="ignore", divide="ignore"):
        df = _design_df(design, whole, part)
        part.diff_logit = np.where(ok, np.log(u_g / (1 - u_g)) - np.log(u_a / (1 - u_a)), np.nan)
    part.diff_se_test = np.where(ok, np.sqrt(star_l), np.nan)
    part.diff_df = np.where(ok, df, np.nan)


def _above_rounding(value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``value``, or 0 where it is below 1e-12 of ``scale`` (what it was computed from)."""
    return np.where(value <= 1e-12 * np.abs(scale), 0.0, value)


def _split_parts(
    design: SurveyDesign,
    whole: _Grouping,
    part: _Grouping,
    alpha_g: np.ndarray,
    alpha_a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's variance, the stratified variance and its Satterthwaite spread of
    alpha_g z_g - alpha_a z_ALL per group (see :func:`_differences_split`).

    ``alpha_g`` has one row per domain cell of ``part``, ``alpha_a`` one value per column.
    """
    n = design.n
    scale = n / (n - 1)
    n_cells = len(design.cell_size)
    k_cols = whole.t.shape[1]
    h_all = whole.cells.cell
    w_all = design.cell_weight[h_all][:, None] ** 2
    t_a = np.zeros((n_cells, k_cols))
    q_a = np.zeros((n_cells, k_cols))
    m_a = np.zeros((n_cells, k_cols))
    t_a[h_all], q_a[h_all], m_a[h_all] = whole.t * alpha_a, whole.q * alpha_a**2, whole.behind
    v_a = w_all * np.maximum(q_a[h_all], 0.0) * _stratum_factor(whole.behind, n)
    lin_a = (w_all * q_a[h_all]).sum(axis=0)
    star_a = v_a.sum(axis=0)
    spread_a = (v_a * v_a / np.maximum(whole.behind - 1, 1)).sum(axis=0)
    v_a_cell = np.zeros((n_cells, k_cols))
    v_a_cell[h_all] = v_a

    cells = part.cells
    h = cells.cell
    w2 = design.cell_weight[h][:, None] ** 2
    n_h = design.cell_size[h][:, None]
    n_in = cells.size[:, None]
    n_out = n_h - n_in
    has_out = n_out > 0
    safe_out = np.where(has_out, n_out, 1.0)
    a1 = part.cross[:, :, 0] * alpha_a
    a2 = part.cross[:, :, 1] * alpha_a**2
    c = part.cross[:, :, 2] * alpha_a * alpha_g
    t_g = part.t * alpha_g
    s1 = t_g - a1
    s2 = part.q * alpha_g**2 + t_g * t_g / n_h - 2 * c + a2
    t1 = a1 - t_a[h]
    t2 = q_a[h] + t_a[h] * t_a[h] / n_h - a2
    within_in = np.maximum(s2 - s1 * s1 / n_in, 0.0)
    within_out = np.where(has_out, np.maximum(t2 - t1 * t1 / safe_out, 0.0), 0.0)
    between = np.maximum(
        s1 * s1 / n_in + np.where(has_out, t1 * t1 / safe_out, 0.0) - (s1 + t1) ** 2 / n_h, 0.0
    )
    # Where the group's values equal the whole's (a group that is the whole scope) these
    # differences of sums cancel: what is left is rounding, which depends on how the sums
    # were accumulated (respondent by respondent, or counted answer vectors as in
    # analysis.sufficient), so it is zero below 1e-12 of the sums it came from.
    within_in = _above_rounding(
        within_in, part.q * alpha_g**2 + t_g * t_g / n_h + 2 * np.abs(c) + a2 + s1 * s1 / n_in)
    within_out = _above_rounding(
        within_out, q_a[h] + t_a[h] * t_a[h] / n_h + a2 + t1 * t1 / safe_out)
    between = _above_rounding(
        between, s1 * s1 / n_in + t1 * t1 / safe_out + (s1 + t1) ** 2 / n_h)
    m_in = part.behind
    m_out = np.maximum(m_a[h] - m_in, 0.0)
    v_in = w2 * within_in * _stratum_factor(m_in, n)
    v_out = w2 * within_out * _stratum_factor(m_out, n)
    lin = scale * (lin_a - cells.group_sum(w2 * q_a[h])
                   + cells.group_sum(w2 * (within_in + within_out + between)))  # fmt: skip
    star = (star_a - cells.group_sum(v_a_cell[h])
            + cells.group_sum(v_in + v_out + scale * w2 * between))  # fmt: skip
    spread = (spread_a
              - cells.group_sum(v_a_cell[h] ** 2 / np.maximum(m_a[h] - 1, 1))
              + cells.group_sum(v_in * v_in / np.maximum(m_in - 1, 1)
                                + v_out * v_out / np.maximum(m_out - 1, 1)))  # fmt: skip
    return lin, np.maximum(star, 0.0), spread


def _period_variances(
    design: SurveyDesign, part: _Grouping, later: np.ndarray, earlier: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Variance of later - earlier (R's), the test's statistic, its variance and its df.

    Post-stratification or no weighting, from the sums per domain cell of ``part`` (the
    grouping with the period). The two domains a (later) and b (earlier) are disjoint, so
    in a weighting cell h the difference's influence d = z_a - z_b has
    SSD_h(d) = SSD_ah + SSD_bh + 2 t_ah t_bh / n_h, and R's variance is
    n/(n - 1) sum_h w_h^2 SSD_h(d). The test works on the logit scale of the intervals,
    logit u_a - logit u_b (u the estimates on 0-1, influence z / (u (1 - u))), with a
    variance that splits SSD_h into the within-part of a n h and of b n h (each a stratum
    of its respondents, factor m / (m - 1), m - 1 degrees of freedom, as the intervals)
    and the between-part (factor n / (n - 1)); Satterthwaite's df from the design
    (:func:`_design_df_pairs`, not from the sample's sums of squares). Where a period's own
    SE is zero (everyone agrees, or 0% / 100%) the logit is not usable and its spread is
    unknown: the test is then on u_a - u_b, that period's part replaced by the binomial
    variance p0 (1 - p0) / (n* - 1) at the other period's estimate p0 (the pooled one
    when both agree), n* its Kish effective n, with n* - 1 degrees of freedom. With pooled
    post-strata the variance also holds the square of the difference of the two periods'
    estimated pooling biases (``pooling_bias``), as the intervals do.
    """
    n_obs, neff = _respondents(part)
    offset, divisor = _unit_scale(part)
    unit = np.clip((part.estimate - offset) / divisor, 0.0, 1.0)
    zero = _zero_spread(part) | ~part.defined
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(zero, 0.0, 1 / (unit * (1 - unit) * divisor))
        logit = np.log(unit / (1 - unit))
    ones = np.ones_like(part.estimate)
    lin, star_u, spread_u, star_g_u, spread_g_u = _pair_parts(design, part, later, earlier, ones)
    _, star_l, spread_l, _, _ = _pair_parts(design, part, later, earlier, alpha)
    either = zero[later] | zero[earlier]
    with np.errstate(invalid="ignore"):
        statistic = np.where(either, unit[later] - unit[earlier], logit[later] - logit[earlier])
    star = np.where(either, star_u / divisor**2, star_l)
    spread = np.where(either, spread_u / divisor**4, spread_l)
    n_star = np.minimum(np.where(np.isfinite(neff), neff, n_obs), n_obs)
    for this, other in ((later, earlier), (earlier, later)):
        z_this, z_other = zero[this], zero[other]
        if not z_this.any():
            continue
        pooled = (unit[this] * n_star[this] + unit[other] * n_star[other]) / np.maximum(
            n_star[this] + n_star[other], 1e-300
        )
        p0 = np.where(z_other, pooled, unit[other])
        dof = np.maximum(n_star[this] - 1, 1)
        sub = p0 * (1 - p0) / dof
        own = star_g_u[this] / divisor**2
        star = np.where(z_this, star - own + sub, star)
        spread = np.where(
            z_this, spread - spread_g_u[this] / divisor**4 + sub * sub / dof, spread
        )
    if part.pool_bias is not None:  # pooled post-strata: each period's bias, as the intervals
        b = np.nan_to_num(part.pool_bias)
        bias = np.where(
            either, (b[later] - b[earlier]) / divisor, alpha[later] * b[later] - alpha[earlier]
            * b[earlier],
        )  # fmt: skip
        star = star + bias * bias
    star = np.maximum(star, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(spread > 0, star * star / spread, np.nan)
    # On the logit scale the df comes from the design, not the sample (see _design_df).
    df = np.where(either, df, _design_df_pairs(design, part, later, earlier))
    return lin, statistic, star, df


def _design_df_pairs(
    design: SurveyDesign, part: _Grouping, later: np.ndarray, earlier: np.ndarray
) -> np.ndarray:
    """Satterthwaite's df of a later-minus-earlier test from the design only: each period's
    part of a weighting cell a stratum of variance w_h^2 m_h / W^2 (W the period's weighted
    respondents behind the estimate), as :func:`_design_df` for the whole."""
    cells = part.cells
    w2 = design.cell_weight[cells.cell][:, None] ** 2
    a = w2 * part.behind
    total = cells.group_sum(a)
    spread = cells.group_sum(a * a / np.maximum(part.behind - 1, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        inv2 = 1.0 / _weighted_sizes(part) ** 2
        total = total[later] * inv2[later] + total[earlier] * inv2[earlier]
        spread = spread[later] * inv2[later] ** 2 + spread[earlier] * inv2[earlier] ** 2
        return np.where(spread > 0, total * total / spread, np.nan)


def _pair_parts(
    design: SurveyDesign,
    part: _Grouping,
    later: np.ndarray,
    earlier: np.ndarray,
    alpha: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """For alpha_a z_a - alpha_b z_b per pair: R's variance, the stratified variance and
    its Satterthwaite spread, and each group's own stratified variance and spread."""
    n = design.n
    scale = n / (n - 1)
    cells = part.cells
    h = cells.cell
    w2 = design.cell_weight[h][:, None] ** 2
    n_h = design.cell_size[h][:, None]
    n_r = cells.size[:, None]
    a = alpha[cells.group]
    t, q = part.t * a, part.q * a * a
    within = np.maximum(q + t * t / n_h - t * t / n_r, 0.0)
    own_between = t * t / n_r - t * t / n_h
    v = w2 * within * _stratum_factor(part.behind, n)
    lin_g = cells.group_sum(w2 * q)
    star_g = cells.group_sum(v + scale * w2 * own_between)
    spread_g = cells.group_sum(v * v / np.maximum(part.behind - 1, 1))
    # The cells the two periods share: 2 w_h^2 t_ah t_bh / n_h.
    n_cells = len(design.cell_size)
    code = cells.group * n_cells + h
    bounds = np.r_[cells.starts, len(cells.group)]
    sizes = bounds[later + 1] - bounds[later]
    pair = np.repeat(np.arange(len(later)), sizes)
    starts = np.repeat(bounds[later], sizes)
    r_a = starts + np.arange(len(pair)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    want = earlier[pair] * n_cells + h[r_a]
    r_b = np.minimum(np.searchsorted(code, want), len(code) - 1)
    shared = code[r_b] == want
    pair, r_a, r_b = pair[shared], r_a[shared], r_b[shared]
    cross = np.zeros((len(later), t.shape[1]))
    np.add.at(cross, pair, 2 * w2[r_a] * t[r_a] * t[r_b] / n_h[r_a])
    lin = scale * (lin_g[later] + lin_g[earlier] + cross)
    star = star_g[later] + star_g[earlier] + scale * cross
    spread = spread_g[later] + spread_g[earlier]
    return lin, star, spread, star_g, spread_g


def _unit_scale(part: _Grouping) -> tuple[np.ndarray, np.ndarray]:
    """Offset and divisor that put each estimate column on 0-1 (mean scores (m - 1) / 4)."""
    k = part.estimate.shape[1]
    n_crit = part.n_crit
    offset = np.zeros(k)
    divisor = np.ones(k)
    offset[n_crit : 2 * n_crit] = 1.0
    divisor[n_crit : 2 * n_crit] = 4.0
    return offset, divisor


def _respondents(part: _Grouping) -> tuple[np.ndarray, np.ndarray]:
    """Respondents behind each estimate (answered, for criteria and mean scores) and the
    Kish effective n, shape (groups, K), as the intervals use them."""
    n_comp = part.n_elem + 1
    n_obs = np.concatenate(
        [part.n_ans, part.n_ans, np.repeat(part.n_g[:, None], n_comp, axis=1)], axis=1
    ).astype("float64")
    neff = np.concatenate(
        [part.neff_a, part.neff_a, np.repeat(part.neff_g[:, None], n_comp, axis=1)], axis=1
    )
    return n_obs, neff


def _zero_spread(part: _Grouping) -> np.ndarray:
    """Where a group's own interval is an exact bound (its SE is zero, or 0% / 100%)."""
    offset, divisor = _unit_scale(part)
    unit = (part.estimate - offset) / divisor
    with np.errstate(invalid="ignore"):
        return (part.se / divisor <= 1e-9) | (unit <= 0) | (unit >= 1)


def _test_differences(part: _Grouping, whole: _Grouping) -> None:
    """``diff_p`` and ``diff_df`` of each group against the whole file.

    Post-stratification or no weighting: Student t on (logit u_g - logit u_ALL) / SE',
    u the estimates on 0-1 (the scale of the intervals), SE' and df from
    :func:`_differences_split`. Raking, whose residuals do not split by cell: t on
    diff / SE', SE' = diff_se sqrt(V* / V) and the df of the group's interval (the
    respondents behind the estimate less their leverage in the margins' projection, see
    :func:`analysis.estimators.interval_variance`). Where the group's own SE is zero
    (every respondent agrees, or 0% / 100%) a variance estimate says nothing about its
    spread: the exact binomial test of x = r n* successes in n* trials (n* the Kish
    effective n, at most the respondents) against the whole's estimate, two-sided
    (twice the smaller tail, at most 1) -- the counterpart of the interval's
    Clopper-Pearson bound. Fewer than 2 respondents: no test.
    """
    from scipy.special import betainc

    n_obs, neff = _respondents(part)
    if part.design.weighting == "rake":
        # the intervals' correction (interval_variance): V* / V and df of the group
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(part.se > 0, part.se_ci / part.se, 1.0)
        part.diff_se_test = part.diff_se * ratio
        part.diff_df = np.where(np.isfinite(part.diff), part.df_ci, np.nan)
    enough = np.isfinite(part.diff) & (n_obs >= 2)
    df = np.where(enough, np.maximum(part.diff_df, 1.0), np.nan)
    part.diff_df = np.where(enough, np.round(part.diff_df, 2), np.nan)
    statistic = part.diff if part.diff_logit is None else part.diff_logit
    p = _p_values(np.where(enough, statistic, np.nan), part.diff_se_test, df)
    exact = enough & (_zero_spread(part) | ~np.isfinite(statistic))
    if exact.any():
        offset, divisor = _unit_scale(part)
        r = np.clip(((part.estimate - offset) / divisor)[exact], 0.0, 1.0)
        p0 = np.clip(((whole.estimate[0] - offset) / divisor)[None, :], 0.0, 1.0)
        p0 = np.broadcast_to(p0, part.estimate.shape)[exact]
        m = np.minimum(np.where(np.isfinite(neff), neff, n_obs), n_obs)[exact]
        x = r * m
        with np.errstate(invalid="ignore", divide="ignore"):
            upper = np.where(x > 1e-12, betainc(np.maximum(x, 1e-300), m - x + 1, p0), 1.0)
            lower = np.where(
                x < m - 1e-12, 1 - betainc(x + 1, np.maximum(m - x, 1e-300), p0), 1.0
            )
        p[exact] = np.minimum(1.0, 2 * np.minimum(upper, lower))
        part.diff_df[exact] = np.nan
    part.diff_p = p


def _p_values(diff: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p-values of diff / se against Student t with df (normal where df = inf)."""
    from scipy.special import stdtr

    p = np.full(diff.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(diff) & np.isfinite(se) & (df >= 1)
        tiny = ok & (se <= 1e-12 * np.maximum(1.0, np.abs(diff)))
        p[tiny & (np.abs(diff) <= 1e-12)] = 1.0
        test = ok & ~tiny
        p[test] = 2 * stdtr(df[test], -np.abs(diff[test] / se[test]))
    return p


def _holm_and_marks(out: pd.DataFrame, alpha: float, min_n: int) -> None:
    """Holm-adjusted p-values per grouping, level and key; marks where they are small."""
    rows = out[(out["by"] != "ALL") & out["diff_p"].notna()]
    if rows.empty:
        return
    adjusted = pd.Series(np.nan, index=out.index)
    for _, part in rows.groupby(["by", "level", "key"], sort=False)["diff_p"]:
        adjusted[part.index] = holm(part.to_numpy())
    out["diff_p_adj"] = adjusted.to_numpy()
    significant = (out["diff_p_adj"] < alpha) & (out["n"] >= min_n)
    out["mark"] = np.where(
        significant & (out["diff"] > 0),
        "higher",
        np.where(significant & (out["diff"] < 0), "lower", ""),
    )


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, 1979), as R ``p.adjust(method = "holm")``."""
    p = np.asarray(p, dtype="float64")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def clopper_pearson(est: np.ndarray, m: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson bounds for x = est m successes in m trials (x and m need not be
    whole: the beta quantiles take any positive values), on the 0-1 scale."""
    from scipy.special import betaincinv

    alpha = 1.0 - level
    m = np.asarray(m, dtype="float64")
    x = np.clip(est, 0.0, 1.0) * m
    lo, hi = np.zeros(len(m)), np.ones(len(m))
    pos, below = x > 1e-12, x < m - 1e-12
    lo[pos] = betaincinv(x[pos], m[pos] - x[pos] + 1, alpha / 2)
    hi[below] = betaincinv(x[below] + 1, m[below] - x[below], 1 - alpha / 2)
    return lo, hi


def interval(
    est: np.ndarray,
    se: np.ndarray,
    n_obs: np.ndarray,
    neff: np.ndarray,
    level: float = 0.95,
    kind: str = "normal",
    n_cells: np.ndarray | float = 1.0,
    *,
    se_ci: np.ndarray | None = None,
    df: np.ndarray | None = None,
    step: np.ndarray | float = 1.0,
    df_n: np.ndarray | None = None,
    se_sampling: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Confidence intervals of estimates on the 0-1 scale, with their method and reason.

    Parameters
    ----------
    est, se : numpy.ndarray
        Estimates in [0, 1] and their SEs.
    n_obs : numpy.ndarray
        Respondents behind each estimate.
    n_cells : numpy.ndarray or float, default 1
        Without ``se_ci``: post-strata those respondents fall in (1 without
        post-stratification): each costs a degree of freedom, df = max(n_obs - n_cells, 1),
        and the interval's SE is SE sqrt(n_obs / df).
    se_ci, df : numpy.ndarray, optional
        The SE the interval uses and its degrees of freedom (see
        :func:`analysis.estimators.interval_variance`); df below 1 counts as 1.
    neff : numpy.ndarray
        Kish effective n of the respondents behind each estimate: the t's df is at most
        n* - 1 with n* = min(neff, n_obs); below 2, no interval; the exact bound uses n*.
    step : numpy.ndarray or float, default 1
        The least change one respondent's answer makes to the estimate, in units of the
        0-1 scale (a criterion 1, a mean score 1/4, a composite 1 / its criteria): an SE
        below step sqrt(p (1 - p) / n*) at p = 1/n* -- less than a single dissenting answer
        among n* effective respondents would give -- is taken as zero.
    df_n : numpy.ndarray, optional
        The effective respondents the variance is taken over, when not n* (composites:
        the group's respondents, answering or not): the df is at most df_n - 1.
    se_sampling : numpy.ndarray, optional
        The SE from the sample's sums of squares alone, where ``se_ci`` also holds floors
        (:func:`_variance_floor`, :func:`_composite_floor`) or allowances (pooled
        post-strata: the pooling's bias, :func:`_pooling_bias`): the test for an SE too
        small to measure anything uses it, and where it is too small the interval is the
        exact bound widened to hold the t interval from ``se_ci``, so neither a floor nor an
        allowance ever swaps the exact bound for a narrower t interval.
    level : float
    kind : {"logit", "normal"}
        ``logit``: logit(est) +- t SE' / (est (1 - est)), back-transformed (``logit-t``);
        ``normal``: est +- t SE' clipped to [0, 1] (``normal-t``); SE' = ``se_ci``, or
        SE sqrt(n_obs / df) with df = n_obs - n_cells.

    Returns
    -------
    dict
        ``low``, ``high``, ``df`` (NaN unless a t interval), ``df_t`` (n_obs - 1, for
        tests), ``method`` and ``note`` arrays.

    Notes
    -----
    Where the SE is zero (every respondent agrees, or r = 0 or 1) an interval from the
    sampling variance would have zero width: the Clopper-Pearson interval for x = est n*
    successes in n* = min(neff, n_obs) trials is given instead (``exact-zero-se``; the
    beta quantiles accept a non-integer x and n*). The same bound is given where the SE is
    not exactly zero but smaller than one dissenting answer among n* effective respondents
    would make it (``exact-small-se``): with a few respondents carrying the weight, their
    answers agreeing or their influences cancelling leave a linearization SE near zero that
    is no measure of the sampling error. Fewer than 2 respondents, or a Kish effective n
    below 2 (one respondent carries almost all the weight): no interval.
    """
    from scipy.special import expit, stdtrit

    shape = est.shape
    n_obs = np.broadcast_to(np.asarray(n_obs, dtype="float64"), shape)
    n_cells = np.broadcast_to(np.asarray(n_cells, dtype="float64"), shape)
    neff = np.broadcast_to(np.asarray(neff, dtype="float64"), shape)
    low = np.full(shape, np.nan)
    high = np.full(shape, np.nan)
    given_se, given_df = se_ci, df
    df = np.full(shape, np.nan)
    method = np.full(shape, "none", dtype=object)
    note = np.full(shape, "", dtype=object)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        defined = np.isfinite(est)
        note[~defined] = "no answers"
        few = defined & (n_obs < 2)
        note[few] = "fewer than 2 answered"
        n_star = np.minimum(np.where(np.isfinite(neff), neff, n_obs), n_obs)
        heavy = defined & ~few & (n_star < 2 - 1e-9)
        note[heavy] = "fewer than 2 effective respondents: one carries almost all the weight"
        enough = defined & ~few & ~heavy
        zero = enough & ((se <= 1e-9) | (est <= 0) | (est >= 1))
        sampled = enough & ~zero
    small = np.zeros(shape, dtype=bool)
    widen = np.zeros(shape, dtype=bool)
    if sampled.any():
        r = est[sampled]
        if given_se is not None:
            # Satterthwaite's df, to two decimals as published (whole where it is whole)
            d = np.maximum(np.round(np.broadcast_to(given_df, shape)[sampled], 2), 1.0)
            s = np.maximum(np.broadcast_to(given_se, shape)[sampled], se[sampled])
        else:
            d = np.maximum(n_obs[sampled] - n_cells[sampled], 1.0)
            # A domain's linearization SE behaves as a divisor n_obs instead of
            # n_obs - n_cells: undone here, in the interval only (the se column stays R's).
            s = se[sampled] * np.sqrt(n_obs[sampled] / d)
        # No more degrees of freedom than the effective respondents less one.
        ns = n_star[sampled]
        cap = ns if df_n is None else np.broadcast_to(df_n, shape)[sampled]
        d = np.maximum(np.minimum(d, np.round(cap - 1, 2)), 1.0)
        least = np.broadcast_to(np.asarray(step, dtype="float64"), shape)[sampled] * np.sqrt(
            (ns - 1) / ns**3
        )
        s_test = s
        if se_sampling is not None:
            s_test = np.maximum(np.broadcast_to(se_sampling, shape)[sampled], se[sampled])
        small[sampled] = s_test < least
        # too small a sampling SE, but allowances (the pooling's bias) above it: the exact
        # bound, widened to the t interval of the whole SE
        widen[sampled] = (s_test < least) & (s >= least)
        keep = ~small[sampled] | widen[sampled]
        at = sampled & (~small | widen)
        sampled &= ~small
        zero |= small
        r, s, d = r[keep], s[keep], d[keep]
        t = stdtrit(d, 1 - alpha / 2)
        if kind == "logit":
            half = t * s / (r * (1 - r))
            centre = np.log(r / (1 - r))
            low[at] = expit(centre - half)  # no overflow warning for a wide half
            high[at] = expit(centre + half)
            method[sampled] = "logit-t"
        else:
            low[at] = np.clip(r - t * s, 0.0, 1.0)
            high[at] = np.clip(r + t * s, 0.0, 1.0)
            method[sampled] = "normal-t"
        df[sampled] = d[~small[at]]
        wide_low, wide_high = low[widen], high[widen]
    if zero.any():
        m = np.minimum(np.where(np.isfinite(neff[zero]), neff[zero], n_obs[zero]), n_obs[zero])
        low[zero], high[zero] = clopper_pearson(est[zero], m, level)
        if widen.any():
            low[widen] = np.minimum(low[widen], wide_low)
            high[widen] = np.maximum(high[widen], wide_high)
        method[zero] = np.where(small[zero], "exact-small-se", "exact-zero-se")
        note[zero] = np.where(
            small[zero],
            "standard error below one dissenting answer: exact bound on the effective sample "
            "size",
            "standard error is zero: exact bound on the effective sample size",
        )
    df_t = np.where(n_obs >= 2, n_obs - 1, np.nan)
    return {"low": low, "high": high, "df": df, "df_t": df_t, "method": method, "note": note}


PERIOD_COLUMNS = (
    "level",
    "key",
    "previous",
    "estimate",
    "previous_estimate",
    "diff",
    "diff_se",
    "df",
    "diff_p",
    "diff_p_adj",
    "mark",
    "n",
    "previous_n",
)


def compare_periods(
    responses: pd.DataFrame | SurveyDesign,
    elements: ElementMap | Mapping[str, Sequence[str]] | Sequence[tuple[str, str]],
    *,
    period: str = "period",
    by: str | Sequence[str | Sequence[str]] | None = None,
    min_n: int = 30,
    level: float = 0.95,
    **weighting,
) -> pd.DataFrame:
    """Each group's indices in each period against the same group's previous period.

    Parameters
    ----------
    responses : pandas.DataFrame or SurveyDesign
        As :func:`compute_indices` (raw responses with the weighting keyword arguments
        ``weighting``, ``totals``, ``margins``, ``trim``, ``drop_empty_cells``,
        ``min_cell_n``, or a design from :func:`analysis.make_design` without them).
    elements
        As :func:`compute_indices`.
    period : str, default "period"
        The period column; periods are ordered as text (``2024-Q1`` < ``2024-Q2``), and a
        period is compared with the closest earlier period in which the group has
        respondents.
    by : str or sequence, optional
        Groupings (without the period), e.g. ``"agency"``; the whole file (``ALL``) always
        comes first.
    min_n : int, default 30
        Both periods need at least this many respondents for a ``mark``.
    level : float, default 0.95
        Marks where the Holm-adjusted p-value is below 1 - level.

    Returns
    -------
    pandas.DataFrame
        ``by``, the grouping variables, ``period`` (the later period), then
        :data:`PERIOD_COLUMNS`: ``level``, ``key``, ``previous`` (the earlier period),
        ``estimate`` and ``previous_estimate`` (points, or 1-5 for mean scores), ``diff``
        (later minus earlier), ``diff_se`` (linearized: the influence of the later domain
        minus that of the earlier one, calibrated on the whole design, so the covariance
        that calibration induces between the two periods is included: R's), ``df``
        (Satterthwaite df of the test from the design; raking: the smaller period's
        respondents minus 1),
        ``diff_p`` (two-sided, Student t on the logit scale with a stratified per-cell
        variance, see :func:`_period_variances`), ``diff_p_adj``
        (Holm over the groups of the grouping, per period, level and key), ``mark``
        (``higher``/``lower`` or ""), ``n``, ``previous_n``. ``attrs["notes"]`` as in
        :func:`compute_indices`.

    Notes
    -----
    Post-stratified and unweighted: from the sums per (group, weighting cell), no pass
    over the file per pair. Raking: one pass per compared pair and estimate, meant for the
    periods of a report (tens of groups).
    """
    element_map = ElementMap.coerce(elements)
    if not 0 < float(level) < 1:
        raise AnalysisInputError(f"level must be between 0 and 1, not {level}")
    if isinstance(responses, SurveyDesign):
        mixed = [k for k, v in weighting.items() if v is not None]
        if mixed:
            raise AnalysisInputError(
                "compare_periods: a design from make_design already carries its weighting; "
                f"pass {', '.join(mixed)} to make_design, not with the design"
            )
        design = responses.with_criteria(element_map.criteria)
    else:
        unknown = set(weighting) - {
            "weighting",
            "totals",
            "margins",
            "trim",
            "drop_empty_cells",
            "min_cell_n",
        }
        if unknown:
            raise TypeError(f"compare_periods: unexpected arguments {sorted(unknown)}")
        options = {k: v for k, v in weighting.items() if v is not None}
        options.setdefault("weighting", "none")
        options.setdefault("min_cell_n", DEFAULT_MIN_CELL_N)
        design = make_design(responses, element_map.criteria, **options)
    groupings = [g for g in [()] + parse_by(by) if period not in g]
    n_crit, n_elem = len(element_map.criteria), len(element_map.elements)
    level_names = ["criterion"] * n_crit + ["mean_score"] * n_crit + ["element"] * n_elem
    level_names.append("overall")
    keys = [*element_map.criteria, *element_map.criteria, *element_map.elements, OVERALL_KEY]
    scale = np.array([100.0] * n_crit + [1.0] * n_crit + [100.0] * (n_elem + 1))
    variables = list(dict.fromkeys(v for g in groupings for v in g))
    rows = []
    for grouping in groupings:
        group, labels = design.groups(list(grouping) + [period])
        if len(labels) == 0:
            continue
        part = _Grouping(design, element_map, group, len(labels),
                         across=_across_agencies(design, grouping))
        pairs = []
        keyed = labels.groupby(list(grouping), sort=False) if grouping else [((), labels)]
        for _, sub in keyed:
            order = sub.sort_values(period).index.to_numpy()
            pairs += list(zip(order[1:], order[:-1], strict=True))
        if not pairs:
            continue
        later = np.array([a for a, _ in pairs])
        earlier = np.array([b for _, b in pairs])
        k_cols = part.t.shape[1]
        n_obs, neff = _respondents(part)
        if design.weighting == "rake":
            var = np.full((len(pairs), k_cols), np.nan)
            mg = margin_products(design)
            for k in range(k_cols):
                z = part.influence(k)
                for p, (a, b) in enumerate(pairs):
                    d = np.where(group == a, z, 0.0) - np.where(group == b, z, 0.0)
                    var[p, k] = residual_variance(calibration_residual(design, d, mg))
            m = np.minimum(n_obs[later], n_obs[earlier])
            with np.errstate(invalid="ignore", divide="ignore"):
                var_test = var * m / np.maximum(m - 1, 1)
            df = m - 1.0
            statistic = None
        else:
            var, statistic, var_test, df = _period_variances(design, part, later, earlier)
        ok = part.defined[later] & part.defined[earlier]
        ok &= (n_obs[later] >= 2) & (n_obs[earlier] >= 2)
        diff = np.where(ok, part.estimate[later] - part.estimate[earlier], np.nan)
        se = np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan)
        if statistic is None:
            statistic = diff
            var_test = np.maximum(var_test, var)
        se_test = np.where(ok, np.sqrt(np.maximum(var_test, 0.0)), np.nan)
        df = np.where(ok, np.round(np.maximum(df, 1.0), 2), np.nan)
        n_later, n_earlier = part.n_g[later], part.n_g[earlier]
        p_values = _p_values(np.where(ok, statistic, np.nan), se_test, df)
        for p in range(len(pairs)):
            a, b = later[p], earlier[p]
            front = {"by": "+".join(grouping) if grouping else "ALL"}
            for v in variables:
                front[v] = labels.at[a, v] if v in grouping else None
            front["period"] = labels.at[a, period]
            for k in range(k_cols):
                rows.append(
                    {
                        **front,
                        "level": level_names[k],
                        "key": keys[k],
                        "previous": labels.at[b, period],
                        "estimate": part.estimate[a, k] * scale[k],
                        "previous_estimate": part.estimate[b, k] * scale[k],
                        "diff": diff[p, k] * scale[k],
                        "diff_se": se[p, k] * scale[k],
                        "df": df[p, k],
                        "diff_p": p_values[p, k],
                        "n": int(n_later[p]),
                        "previous_n": int(n_earlier[p]),
                    }
                )
    columns = ["by", *variables, "period", *PERIOD_COLUMNS]
    out = pd.DataFrame(rows, columns=columns)
    out["diff_p_adj"] = np.nan
    out["mark"] = ""
    if not out.empty:
        alpha = 1.0 - float(level)
        tested = out[out["diff_p"].notna()]
        for _, sub in tested.groupby(["by", "period", "level", "key"], sort=False)["diff_p"]:
            out.loc[sub.index, "diff_p_adj"] = holm(sub.to_numpy())
        big = (out["n"] >= min_n) & (out["previous_n"] >= min_n)
        significant = (out["diff_p_adj"] < alpha) & big
        out["mark"] = np.where(
            significant & (out["diff"] > 0),
            "higher",
            np.where(significant & (out["diff"] < 0), "lower", ""),
        )
    out.attrs["notes"] = Notes(design.notes.copy())
    return out
