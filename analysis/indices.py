"""Satisfaction indices: criterion -> element -> overall (SIPAS), with 95% intervals, per group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from .design import SurveyDesign, make_design
from .estimators import (
    DomainCells,
    domain_cells,
    domain_variance,
    influence_sums,
    ratio_from_counts,
)
from .io import AnalysisInputError, ElementMap

__all__ = ["COLUMNS", "compute_indices", "parse_by"]

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
)
Z975 = NormalDist().inv_cdf(0.975)  # 1.959963984540054, R's qnorm(0.975)
SCORES = np.arange(6, dtype="float64")  # answer codes 0 (blank) .. 5
SATISFIED = (SCORES >= 4).astype("float64")
ANSWERED = (SCORES >= 1).astype("float64")


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
    weighting: str = "none",
    totals: pd.DataFrame | None = None,
    margins: Sequence[pd.DataFrame] | None = None,
    by: str | Sequence[str | Sequence[str]] | None = None,
    min_n: int = 30,
    trim: float | None = None,
    drop_empty_cells: bool = False,
) -> pd.DataFrame:
    """Satisfaction indices per grouping, group, element and criterion, with 95% intervals.

    Parameters
    ----------
    responses : pandas.DataFrame or SurveyDesign
        One row per response: ``response_id``, categorical columns, one column per
        criterion holding 1-5 or blank (NaN/None/""). Any other criterion value raises
        :class:`AnalysisInputError` naming the row and column. A design made by
        :func:`analysis.make_design` may be passed instead (weighting arguments are then
        ignored).
    elements : ElementMap, mapping or sequence of pairs
        Which criterion belongs to which element: ``{"A": ["a1", "a2"], ...}`` or
        ``[("a1", "A"), ...]`` (element order = first appearance).
    weighting : {"none", "poststrat", "rake"}, default "none"
    totals : pandas.DataFrame, optional
        ``poststrat``: the post-stratum columns and ``count`` (e.g. served transactions per
        agency x service field).
    margins : sequence of pandas.DataFrame, optional
        ``rake``: one table per margin, its variable column and ``count`` or ``share``
        (shares are scaled to the total of the first count margin).
    by : str or sequence, optional
        Groupings, e.g. ``["agency", "agency,period"]``. The whole file (``ALL``) always
        comes first.
    min_n : int, default 30
        Groups with fewer respondents get ``flag = "small_n"`` (they are not hidden).
    trim : float, optional
        Cap weights at this multiple of the mean weight, redistributing the excess.
    drop_empty_cells : bool, default False
        Ignore population cells (or margin levels) without respondents instead of stopping.

    Returns
    -------
    pandas.DataFrame
        One row per grouping x group x level x key: ``by`` (variables joined by ``+``, or
        ``ALL``), one column per grouping variable (None outside its groupings), then
        ``level`` (``overall``, ``element``, ``criterion``, ``mean_score``), ``key``
        (``SIPAS``, element id or criterion id), ``estimate``, ``se``, ``ci_low``,
        ``ci_high``, ``ci_method`` (``logit``, ``clopper-pearson``, ``normal`` or ``none``),
        ``df`` (float; ``inf`` for a normal interval), ``n``, ``n_answered``,
        ``weight_sum``, ``weight_sum_answered``, ``kish_neff``, ``deff_kish``, ``deff``,
        ``flag``. Indices, their SEs and intervals are percentages (0-100); mean scores are
        on 1-5. Undefined values are NaN (``n_answered`` is a nullable integer).

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

    *Intervals (95%).* Criterion index: logit interval logit(r) +- t(0.975, df) SE /
    (r (1 - r)), df = n_answered - 1, back-transformed, as R ``svyciprop(method =
    "xlogit")`` on the answered part of the group (Korn and Graubard, 1998); at r = 0 or
    1 the Clopper-Pearson interval on the number who answered; none below 2 answers.
    Element, SIPAS and mean scores: normal interval estimate +- 1.959964 SE, clipped to
    [0, 100] or [1, 5].

    *Sizes.* Kish effective n = (sum w)^2 / sum w^2 and Kish design effect = respondents /
    effective n, over those who answered (criterion and mean-score rows) or the group;
    ``deff`` = SE^2 / (s^2 / (n_answered - 1)), s^2 the weighted variance of the answers
    about the estimate (r (1 - r) for an index).

    Every column agrees with R's ``survey`` package to 1e-6 (tests/analysis/reference).
    References: Lumley, T. (2010) *Complex Surveys: A Guide to Analysis Using R*; Kish, L.
    (1965) *Survey Sampling*; Korn, E. L. and Graubard, B. I. (1998) Confidence intervals
    for proportions with small expected number of positive counts estimated from survey
    data, *Survey Methodology* 24, 193-201.
    """
    element_map = ElementMap.coerce(elements)
    if isinstance(responses, SurveyDesign):
        design = responses
        if tuple(design.criteria) != element_map.criteria:
            design = _with_criteria(design, element_map.criteria)
    else:
        design = make_design(
            responses,
            element_map.criteria,
            weighting=weighting,
            totals=totals,
            margins=margins,
            trim=trim,
            drop_empty_cells=drop_empty_cells,
        )
    groupings = [()] + parse_by(by)
    variables: list[str] = []
    for grouping in groupings:
        variables += [v for v in grouping if v not in variables]
    parts = []
    for grouping in groupings:
        group, labels = design.groups(grouping)
        if len(labels) == 0:
            continue
        table = _grouping_table(design, element_map, group, len(labels), int(min_n))
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
    return out


def _with_criteria(design: SurveyDesign, criteria: Sequence[str]) -> SurveyDesign:
    position = {c: i for i, c in enumerate(design.criteria)}
    missing = [c for c in criteria if c not in position]
    if missing:
        raise AnalysisInputError(f"design: criteria not in the design: {', '.join(missing)}")
    from dataclasses import replace

    answers = np.asfortranarray(design.answers[:, [position[c] for c in criteria]])
    return replace(design, criteria=tuple(criteria), answers=answers, _codes=design._codes)


def _value_counts(design: SurveyDesign, cells: DomainCells) -> np.ndarray:
    """Respondents per domain cell, criterion and answer code 0-5: shape (cells, C, 6)."""
    keep = cells.row_cell >= 0
    everyone = bool(keep.all())
    base = cells.row_cell * 6 if everyone else cells.row_cell[keep] * 6
    size = len(cells.group) * 6
    counts = np.empty((len(cells.group), design.answers.shape[1], 6))
    for j in range(design.answers.shape[1]):
        codes = design.answers[:, j] if everyone else design.answers[keep, j]
        counts[:, j, :] = np.bincount(base + codes, minlength=size).reshape(-1, 6)
    return counts


def _grouping_table(
    design: SurveyDesign, emap: ElementMap, group: np.ndarray, n_groups: int, min_n: int
) -> pd.DataFrame:
    """All rows of one grouping, groups in order, levels in order within a group."""
    cells = domain_cells(design, group, n_groups)
    n_crit, n_elem = len(emap.criteria), len(emap.elements)
    element_of = np.array(emap.element_of)
    counts = _value_counts(design, cells)
    answered = counts[:, :, 1:].sum(axis=2)
    total2 = counts @ (SCORES * SCORES)

    idx_est, idx_den, idx_t, idx_q = ratio_from_counts(design, cells, counts, SATISFIED, ANSWERED)
    mean_est, _, mean_t, mean_q = ratio_from_counts(design, cells, counts, SCORES, ANSWERED)
    defined = idx_den > 0

    # Composite weights: element = mean of its defined criteria, SIPAS = mean of defined elements.
    onehot = np.eye(n_elem)[element_of]  # (C, E)
    k_def = defined.astype("float64") @ onehot  # defined criteria per group x element
    elem_defined = k_def > 0
    e_def = elem_defined.sum(axis=1).astype("float64")
    crit_share = np.divide(
        defined, k_def[:, element_of], out=np.zeros(defined.shape), where=defined
    )  # 1/K_ge for defined criteria
    r0 = np.where(defined, idx_est, 0.0)
    elem_est = np.where(elem_defined, (crit_share * r0) @ onehot, np.nan)
    inv_e = np.divide(1.0, e_def, out=np.zeros(n_groups), where=e_def > 0)
    overall_est = np.where(
        e_def > 0, np.nansum(np.where(elem_defined, elem_est, 0), 1) * inv_e, np.nan
    )

    comp_t, comp_q = _composite_influence(
        design, cells, group, idx_den, r0, crit_share, element_of, n_elem, inv_e
    )

    t = np.concatenate([idx_t, mean_t, comp_t], axis=1)
    q = np.concatenate([idx_q, mean_q, comp_q], axis=1)
    se = np.sqrt(domain_variance(design, cells, t, q))
    idx_se = se[:, :n_crit]
    mean_se = se[:, n_crit : 2 * n_crit]
    elem_se = np.where(elem_defined, se[:, 2 * n_crit : 2 * n_crit + n_elem], np.nan)
    overall_se = np.where(e_def > 0, se[:, -1], np.nan)
    idx_se = np.where(defined, idx_se, np.nan)
    mean_se = np.where(defined, mean_se, np.nan)

    # Sizes.
    w = design.cell_weight[cells.cell]
    n_g = cells.group_sum(cells.size)
    wsum = cells.group_sum(w * cells.size)
    w2sum = cells.group_sum(w * w * cells.size)
    n_ans = cells.group_sum(answered)
    w2_ans = cells.group_sum((w * w)[:, None] * answered)
    neff_g = wsum * wsum / w2sum
    neff_a = np.divide(idx_den * idx_den, w2_ans, out=np.full(idx_den.shape, np.nan), where=defined)
    deffk_a = np.divide(n_ans, neff_a, out=np.full(idx_den.shape, np.nan), where=defined)

    # Design effects against simple random sampling of the answers.
    wsq = cells.group_sum(w[:, None] * total2)
    group_counts = cells.group_sum(counts[:, :, 1:])  # (G, C, 5)
    spread = (group_counts > 0).sum(axis=2) > 1  # answers not all equal
    with np.errstate(invalid="ignore", divide="ignore"):
        var_idx = idx_est * (1 - idx_est)
        var_mean = wsq / idx_den - mean_est * mean_est
        enough = n_ans >= 2
        deff_idx = np.where(enough & (var_idx > 0), idx_se**2 / (var_idx / (n_ans - 1)), np.nan)
        deff_mean = np.where(
            enough & spread & (var_mean > 0), mean_se**2 / (var_mean / (n_ans - 1)), np.nan
        )

    ci_idx = _criterion_intervals(idx_est, idx_se, n_ans)
    elem_ci = _normal_interval(elem_est, elem_se, 0.0, 1.0)
    overall_ci = _normal_interval(overall_est, overall_se, 0.0, 1.0)
    mean_ci = _normal_interval(mean_est, mean_se, 1.0, 5.0)

    # Assemble: per group, overall, elements, criteria, mean scores.
    width = 1 + n_elem + 2 * n_crit

    def block(overall, elem, crit, mean):
        return np.concatenate(
            [np.reshape(overall, (n_groups, 1)), elem, crit, mean], axis=1
        ).ravel()

    nan_g = np.full((n_groups, 1), np.nan)
    nan_e = np.full((n_groups, n_elem), np.nan)
    pct = 100.0
    level = np.array(
        ["overall"] + ["element"] * n_elem + ["criterion"] * n_crit + ["mean_score"] * n_crit,
        dtype=object,
    )
    key = np.array([OVERALL_KEY, *emap.elements, *emap.criteria, *emap.criteria], dtype=object)
    normal = np.where(np.isfinite(elem_est), "normal", "none")
    method = np.concatenate(
        [
            np.where(np.isfinite(overall_est), "normal", "none")[:, None],
            normal,
            ci_idx["method"],
            np.where(np.isfinite(mean_est), "normal", "none"),
        ],
        axis=1,
    ).ravel()
    inf_or_nan = lambda est: np.where(np.isfinite(est), np.inf, np.nan)  # noqa: E731
    table = pd.DataFrame(
        {
            "level": np.tile(level, n_groups),
            "key": np.tile(key, n_groups),
            "estimate": block(overall_est * pct, elem_est * pct, idx_est * pct, mean_est),
            "se": block(overall_se * pct, elem_se * pct, idx_se * pct, mean_se),
            "ci_low": block(overall_ci[0] * pct, elem_ci[0] * pct, ci_idx["low"] * pct, mean_ci[0]),
            "ci_high": block(
                overall_ci[1] * pct, elem_ci[1] * pct, ci_idx["high"] * pct, mean_ci[1]
            ),
            "ci_method": method,
            "df": block(
                inf_or_nan(overall_est), inf_or_nan(elem_est), ci_idx["df"], inf_or_nan(mean_est)
            ),
            "n": np.repeat(n_g, width),
            "n_answered": block(nan_g, nan_e, n_ans, n_ans),
            "weight_sum": np.repeat(wsum, width),
            "weight_sum_answered": block(nan_g, nan_e, idx_den, idx_den),
            "kish_neff": block(neff_g, np.repeat(neff_g[:, None], n_elem, 1), neff_a, neff_a),
            "deff_kish": block(
                n_g / neff_g, np.repeat((n_g / neff_g)[:, None], n_elem, 1), deffk_a, deffk_a
            ),
            "deff": block(nan_g, nan_e, deff_idx, deff_mean),
            "flag": np.repeat(np.where(n_g < min_n, "small_n", ""), width),
        }
    )
    return table


def _composite_influence(
    design: SurveyDesign,
    cells: DomainCells,
    group: np.ndarray,
    denominator: np.ndarray,
    r0: np.ndarray,
    crit_share: np.ndarray,
    element_of: np.ndarray,
    n_elem: int,
    inv_e: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Influence sums per domain cell of the element and SIPAS indices.

    A composite's influence value is the average of its criteria's influence values
    z_ic = ([y_ic >= 4] - r_gc [answered]) / sum_D w [answered]; it depends on the
    respondent's answer code and group only, so it is read from a (group x code) table per
    criterion -- one gather per criterion over the respondents.
    """
    keep = group >= 0
    everyone = bool(keep.all())
    g = group if everyone else group[keep]
    beta = np.divide(crit_share, denominator, out=np.zeros(crit_share.shape), where=crit_share > 0)
    sat = beta * (1.0 - r0)
    unsat = -beta * r0
    # table[g, code] for codes 0 (blank: 0), 1-3 (unsatisfied), 4-5 (satisfied)
    tables = np.zeros((beta.shape[1], beta.shape[0], 6))
    tables[:, :, 1:4] = unsat.T[:, :, None]
    tables[:, :, 4:6] = sat.T[:, :, None]
    base = g * 6
    z = np.zeros((n_elem, len(g)))
    for j in range(beta.shape[1]):
        codes = design.answers[:, j] if everyone else design.answers[keep, j]
        z[element_of[j]] += tables[j].ravel()[base + codes]
    overall = (z.sum(axis=0)) * inv_e[g] if n_elem else np.zeros(len(g))
    n_cells = len(cells.group)
    rows = cells.row_cell if everyone else cells.row_cell[keep]
    t = np.empty((n_cells, n_elem + 1))
    ssd = np.empty((n_cells, n_elem + 1))
    for e in range(n_elem):
        t[:, e], ssd[:, e] = influence_sums(design, cells, z[e], rows)
    t[:, -1], ssd[:, -1] = influence_sums(design, cells, overall, rows)
    return t, ssd


def _normal_interval(est, se, low, high):
    with np.errstate(invalid="ignore"):
        lo = np.clip(est - Z975 * se, low, high)
        hi = np.clip(est + Z975 * se, low, high)
    return lo, hi


def _criterion_intervals(est, se, n_ans) -> dict[str, np.ndarray]:
    """Logit intervals (Clopper-Pearson at 0% and 100%, none below 2 answers)."""
    shape = est.shape
    low = np.full(shape, np.nan)
    high = np.full(shape, np.nan)
    df = np.full(shape, np.nan)
    method = np.full(shape, "none", dtype=object)
    # scipy.special, imported here: scipy.stats would add a second to every start-up
    from scipy.special import betaincinv, stdtrit

    enough = np.isfinite(est) & (n_ans >= 2)
    inner = enough & (est > 0) & (est < 1)
    edge = enough & ~inner
    if inner.any():
        r, s, d = est[inner], se[inner], n_ans[inner] - 1
        half = stdtrit(d, 0.975) * s / (r * (1 - r))
        centre = np.log(r / (1 - r))
        low[inner] = 1 / (1 + np.exp(-(centre - half)))
        high[inner] = 1 / (1 + np.exp(-(centre + half)))
        df[inner] = d
        method[inner] = "logit"
    if edge.any():
        # r is exactly 0 or 1 here: nobody or everybody who answered is satisfied.
        n = n_ans[edge]
        x = np.where(est[edge] >= 1, n, 0.0)
        low[edge] = np.where(x > 0, betaincinv(np.maximum(x, 1), n - x + 1, 0.025), 0.0)
        high[edge] = np.where(x < n, betaincinv(x + 1, np.maximum(n - x, 1), 0.975), 1.0)
        method[edge] = "clopper-pearson"
    return {"low": low, "high": high, "df": df, "method": method}
