"""Ratio estimators for domains, with Taylor-linearization variances computed from cell sums.

The variance of a domain estimate is, in principle, a sum over the *whole* file of the
respondents' calibrated, weighted influence values. Here it is computed from sums per
(group, weighting cell) -- a *domain cell* -- so one pass over the respondents serves every
group of a grouping and the cost does not grow with rows x groups. The algebra is in the
Notes of :func:`domain_variance`; ``analysis/METHODS.md`` states it for analysts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import SurveyDesign, unique_codes

__all__ = [
    "DomainCells",
    "calibration_residual",
    "domain_cells",
    "domain_variance",
    "domain_variance_parts",
    "influence_sums",
    "interval_variance",
    "margin_cross",
    "margin_products",
    "ratio",
    "ratio_from_counts",
    "residual_variance",
    "row_freq",
]

# Work on at most this many doubles per temporary array when raking (chunks of groups).
_CHUNK_DOUBLES = 4_000_000


@dataclass(eq=False)
class DomainCells:
    """Respondents split by group and weighting cell.

    Attributes
    ----------
    n_groups : int
        Number of groups.
    row_cell : numpy.ndarray
        Domain cell of each respondent, -1 for a respondent in no group (blank grouping
        value); such respondents still count in the variance, as zeros.
    group, cell, size : numpy.ndarray
        For each domain cell: its group, its weighting cell, its respondents. Domain cells
        are sorted by group.
    starts : numpy.ndarray
        Index of the first domain cell of each group.
    """

    n_groups: int
    row_cell: np.ndarray
    group: np.ndarray
    cell: np.ndarray
    size: np.ndarray
    starts: np.ndarray

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum per group of values given per domain cell (rows)."""
        return np.add.reduceat(values, self.starts, axis=0)

    def row_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum per domain cell of values given per respondent (all respondents)."""
        keep = self.row_cell >= 0
        if keep.all():
            return np.bincount(self.row_cell, weights=values, minlength=len(self.group))
        return np.bincount(self.row_cell[keep], weights=values[keep], minlength=len(self.group))


def row_freq(design: SurveyDesign) -> np.ndarray | None:
    """Respondents each row of the design stands for, or None where a row is a respondent.

    Set by :mod:`analysis.sufficient`, whose rows are distinct answer vectors of a weighting
    cell with their counts (sufficient statistics read from a database).
    """
    return getattr(design, "freq", None)


def domain_cells(design: SurveyDesign, group: np.ndarray, n_groups: int) -> DomainCells:
    """Split the respondents by group (codes 0..n_groups-1, -1 for none) and weighting cell."""
    n_cells = len(design.cell_size)
    keep = group >= 0
    code = group[keep] * n_cells + design.cell[keep]
    present, _, inverse, size = unique_codes(code)
    freq = row_freq(design)
    if freq is not None:
        size = np.bincount(inverse, weights=freq[keep], minlength=len(present))
    row_cell = np.full(len(group), -1, dtype=np.int64)
    row_cell[keep] = inverse
    groups = present // n_cells
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    if len(starts) != n_groups:
        raise ValueError("every group must have at least one respondent")
    return DomainCells(
        n_groups, row_cell, groups, present % n_cells, size.astype("float64"), starts
    )


def influence_sums(
    design: SurveyDesign,
    cells: DomainCells,
    z: np.ndarray,
    rows: np.ndarray | None = None,
    freq: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and centred sum of squares of per-respondent influence values, per domain cell.

    Parameters
    ----------
    design : SurveyDesign
    cells : DomainCells
    z : numpy.ndarray
        Influence value of each respondent in a group (shape (m,)).
    rows : numpy.ndarray, optional
        Domain cell of each value of ``z`` (default ``cells.row_cell``, everyone in a group).
    freq : numpy.ndarray, optional
        Respondents each value stands for (see :func:`row_freq`); default one each.

    Returns
    -------
    t : numpy.ndarray
        Sum of z over the domain cell.
    ssd : numpy.ndarray
        Sum over the whole weighting cell of (z_i - zbar)^2, zbar = t / n_cell, the cell's
        respondents outside the group counting with z = 0. Computed from deviations (two
        passes), so that it is exactly 0 when z is constant over the cell.
    """
    rows = cells.row_cell if rows is None else rows
    n_pairs = len(cells.group)
    t = np.bincount(rows, weights=z if freq is None else z * freq, minlength=n_pairs)
    cell_n = design.cell_size[cells.cell]
    zbar = t / cell_n
    dev = z - zbar[rows]
    square = dev * dev if freq is None else dev * dev * freq
    ssd = np.bincount(rows, weights=square, minlength=n_pairs)
    ssd += (cell_n - cells.size) * zbar * zbar
    return t, ssd


def ratio_from_counts(
    design: SurveyDesign,
    cells: DomainCells,
    counts: np.ndarray,
    num_values: np.ndarray,
    den_values: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Domain ratios of variables with few distinct values, from counts per domain cell.

    Parameters
    ----------
    design : SurveyDesign
    cells : DomainCells
    counts : numpy.ndarray
        Shape (domain cells, k, V): respondents of the domain cell with code v, for k
        variables (e.g. criteria) sharing the V codes.
    num_values, den_values : numpy.ndarray
        Shape (V,): numerator y and denominator x of a respondent with code v (for a
        satisfaction index, y = [code >= 4] and x = [code >= 1]).

    Returns
    -------
    estimate : numpy.ndarray
        R = sum(w y) / sum(w x) per group and variable (shape (groups, k)); NaN where
        sum(w x) = 0.
    denominator : numpy.ndarray
        sum(w x) per group and variable.
    t, ssd : numpy.ndarray
        Per domain cell and variable: as :func:`influence_sums` for the influence values
        z_i = (y_i - R x_i) / sum_D(w x).
    """
    w = design.cell_weight[cells.cell][:, None]
    numerator = cells.group_sum(w * (counts @ num_values))
    denominator = cells.group_sum(w * (counts @ den_values))
    defined = denominator > 0
    estimate = np.divide(
        numerator, denominator, out=np.full(numerator.shape, np.nan), where=defined
    )
    r = np.where(defined, estimate, 0.0)[cells.group][:, :, None]
    inv = np.divide(1.0, denominator, out=np.zeros(denominator.shape), where=defined)
    z = (num_values - r * den_values) * inv[cells.group][:, :, None]  # (pairs, k, V)
    t = (counts * z).sum(axis=2)
    cell_n = design.cell_size[cells.cell][:, None]
    zbar = t / cell_n
    dev = z - zbar[:, :, None]
    ssd = (counts * dev * dev).sum(axis=2) + (cell_n - cells.size[:, None]) * zbar * zbar
    return estimate, denominator, t, ssd


def domain_variance(
    design: SurveyDesign, cells: DomainCells, t: np.ndarray, ssd: np.ndarray
) -> np.ndarray:
    """Linearized variance of domain estimates from the influence sums per domain cell.

    Parameters
    ----------
    design : SurveyDesign
    cells : DomainCells
    t, ssd : numpy.ndarray
        Shape (domain cells, k): for k estimates, the sum of the influence values z_i over
        the domain cell, and their sum of squares about the weighting cell's mean (see
        :func:`influence_sums`).

    Returns
    -------
    numpy.ndarray
        Variance, shape (groups, k).

    Notes
    -----
    Taylor linearization for a with-replacement sample of n respondents (no strata, no
    clusters, no finite-population correction), domains estimated on the full design, as
    R ``survey::svyby``: with e_i the calibration residual of the influence value z_i
    (z_i = 0 outside the group) and x_i = w_i e_i, V = n/(n-1) * sum_i (x_i - mean(x))^2
    over the whole file.

    Post-stratification (and no weighting: one cell): e_i = z_i - zbar_h, zbar_h the
    unweighted mean of z over post-stratum h. With w constant in h, sum_i x_i = 0 and

        V = n/(n-1) * sum_(g,h) w_h^2 SSD_gh,

    SSD_gh = sum over h of (z_i - zbar_h)^2, a sum per domain cell. This also holds with
    trimmed weights, where R's residual w_t z - w_c * mean_h(w_t z / w_c) reduces to
    w_t (z - zbar_h).

    Raking: x_i = w_i z_i - c_i (X b)_i, X the dummy columns of every margin, c the raked
    weight before trimming (c = w without trimming) and b the coefficients of the
    unweighted least-squares projection of q = (w / c) z on X, reached as R's
    ``svyrecvar`` does by 10 rounds of backfitting (block Gauss-Seidel over the margins,
    in their order, from b = 0); with nearly independent margins that is the projection to
    machine precision. Then, per group,

        sum x   = sum_k w_k T_k - b' X'c,
        sum x^2 = sum_k w_k^2 (SSD_k + T_k^2 / n_k) - 2 sum_k c_k w_k T_k (X b)_k + b' M b,

    with M = X' diag(c^2) X and X'q, X'c, M built from sums per domain cell and per
    weighting cell: the whole file is never revisited per group.

    References: Binder (1983), On the variances of asymptotically normal estimators from
    complex surveys, *Int. Stat. Rev.* 51; Lumley (2010), *Complex Surveys*, ch. 2 and 7;
    Deville and Sarndal (1992), Calibration estimators in survey sampling, *JASA* 87.
    """
    return domain_variance_parts(design, cells, t, ssd)[0]


def domain_variance_parts(
    design: SurveyDesign,
    cells: DomainCells,
    t: np.ndarray,
    ssd: np.ndarray,
    u: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`domain_variance`, plus what a covariance with another estimate needs.

    Parameters
    ----------
    design, cells, t, ssd
        As :func:`domain_variance`.
    u : list of numpy.ndarray, optional
        Raking only: for each margin, X_m'(c x*) of shape (levels, k), x* the calibrated
        residuals of another estimate (one column per estimate, as ``t``).

    Returns
    -------
    variance : numpy.ndarray
        As :func:`domain_variance`, shape (groups, k).
    sum_x : numpy.ndarray
        sum_i x_i per group and estimate (0 for post-stratification and no weighting).
    bu : numpy.ndarray
        b_g' u, the part of sum_i x_i x*_i that the projection takes away (0 without
        raking, where sum_i c_i (X b)_i x*_i = 0 because x* sums to 0 in every cell).
        Then sum_i x_i x*_i = sum_(i in g) w_i z_i x*_i - bu.
    """
    n = design.n
    scale = n / (n - 1)
    w = design.cell_weight[cells.cell][:, None]
    zeros = np.zeros((cells.n_groups, t.shape[1]))
    if design.weighting != "rake":
        var = cells.group_sum(w * w * ssd)
        return np.maximum(var * scale, 0.0), zeros, zeros.copy()
    core, sum_x, bu = _raking_variance(design, cells, t, ssd, u)
    return np.maximum(core * scale, 0.0), sum_x, bu if bu is not None else zeros


def interval_variance(
    design: SurveyDesign,
    cells: DomainCells,
    ssd: np.ndarray,
    m: np.ndarray,
    variance: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The variance an interval uses and its Satterthwaite degrees of freedom, per group.

    Parameters
    ----------
    design, cells
        As :func:`domain_variance`; post-stratification or no weighting (one cell).
    ssd : numpy.ndarray
        Shape (domain cells, k): sums of squares of the influence values about their
        weighting cell's mean (see :func:`influence_sums`).
    m : numpy.ndarray
        Respondents behind each domain cell's sum (shape (domain cells,) or (domain cells,
        k)): the domain cell's respondents, or those of them who answered a criterion.
    variance : numpy.ndarray, optional
        Raking: the linearization variance of the groups' estimates (shape (groups, k),
        from :func:`domain_variance`); without it raking gives None.

    Returns
    -------
    variance, df : numpy.ndarray
        Shape (groups, k).

    Notes
    -----
    The linearization variance (R's) is V = n/(n-1) sum_(g,h) w_h^2 SSD_gh: one factor
    n/(n-1) for the whole file. Each domain cell is in fact a stratum of m_gh respondents
    whose sum of squares estimates m_gh - 1 degrees of freedom' worth of variance, so the
    textbook stratified estimator (Cochran, 1977, 5A; Holt and Smith, 1979, conditional on
    the cell sizes) is

        V* = sum_(g,h) v_gh,  v_gh = w_h^2 SSD_gh m_gh / (m_gh - 1),

    (n/(n-1) where m_gh < 2). V* >= V; the gap is large where cells of a few respondents
    carry large weights, which is where the linearization variance falls short. Its degrees
    of freedom are Satterthwaite's, df = (sum v_gh)^2 / sum v_gh^2 / (m_gh - 1) (Korn and
    Graubard, 1999, sec. 5.2): between the smallest m_gh - 1 and sum (m_gh - 1). Without
    weighting (one cell) this is V n_g (n - 1) / ((n_g - 1) n) with df = n_g - 1.

    Raking's residuals do not split by cell: the calibration costs the degrees of freedom
    of its parameters, spread over the respondents by their leverage h_i (the diagonal of
    the projection on the margins' dummy columns, a function of the respondent's weighting
    cell; the leverages sum to the rank p of those columns). As the HC2 residual variance
    sum x_i^2 / (1 - h_i) of a regression, a group of n_g respondents with leverage
    L_g = max(sum_(i in g) h_i, 1) gets df = max(n_g - L_g, 1) and
    V* = V (n - 1) / n * n_g / df: for the whole file V (n - 1) / (n - p) with n - p; for a
    group that is a level of a margin (an agency) about post-stratification's
    n_g / (n_g - 1).
    """
    if design.weighting == "rake":
        if variance is None:
            return None
        m = np.asarray(m, dtype="float64")
        m = np.broadcast_to(m[:, None] if m.ndim == 1 else m, ssd.shape)
        n = design.n
        n_g = cells.group_sum(m)
        lev = _cell_leverage(design)[cells.cell][:, None]
        used = np.maximum(cells.group_sum(m * lev), 1.0)
        df = np.maximum(n_g - used, 1.0)
        return variance * ((n - 1) / n * n_g / df), df
    n = design.n
    w = design.cell_weight[cells.cell][:, None]
    m = np.asarray(m, dtype="float64")
    m = np.broadcast_to(m[:, None] if m.ndim == 1 else m, ssd.shape)
    factor = np.where(m >= 2, m / np.maximum(m - 1, 1), n / (n - 1))
    v = w * w * np.maximum(ssd, 0.0) * factor
    variance = cells.group_sum(v)
    spread = cells.group_sum(v * v / np.maximum(m - 1, 1))
    df = np.divide(
        variance * variance, spread, out=np.full(variance.shape, np.nan), where=spread > 0
    )
    return variance, df


def _cell_leverage(design: SurveyDesign) -> np.ndarray:
    """Raking: leverage x_h' (X'X)^+ x_h of a respondent of each weighting cell, X the dummy
    columns of every margin (unweighted, as the variance's projection)."""
    cached = design.cache.get("leverage")
    if cached is not None:
        return cached
    mg = margin_products(design)
    sizes = mg.sizes
    offsets = np.r_[0, np.cumsum(sizes)]
    gram = np.zeros((offsets[-1], offsets[-1]))
    for a in range(len(sizes)):
        for b in range(len(sizes)):
            block = np.diag(mg.counts[a][a]) if a == b else mg.counts[a][b]
            gram[offsets[a] : offsets[a + 1], offsets[b] : offsets[b + 1]] = block
    inverse = np.linalg.pinv(gram, rcond=1e-10, hermitian=True)
    leverage = np.zeros(len(design.cell_size))
    for a in range(len(sizes)):
        for b in range(len(sizes)):
            leverage += inverse[offsets[a] + mg.levels[a], offsets[b] + mg.levels[b]]
    design.cache["leverage"] = leverage
    return leverage


def calibration_residual(design: SurveyDesign, z: np.ndarray, margins=None) -> np.ndarray:
    """The calibrated, weighted influence values x_i of one estimate, per respondent.

    ``z`` holds the influence value of every respondent (0 where it does not count). The
    result is x = w z - c (X b), b the coefficients of the projection of q = (w / c) z on
    the weighting cells (post-stratification, no weighting) or on the margins' dummies
    (raking, with the design's rounds of backfitting), exactly as :func:`domain_variance`
    uses them; its variance is n/(n-1) sum (x - mean x)^2. Costs one pass over the file:
    used for a few whole-file estimates (the ALL row, a difference of two domains), not per
    group.
    """
    z = np.asarray(z, dtype="float64")
    w = design.weights
    c = design.calibrated_weight[design.cell]
    q = w / c * z
    if design.weighting != "rake":
        qbar = np.bincount(design.cell, weights=q, minlength=len(design.cell_size))
        fitted = (qbar / design.cell_size)[design.cell]
    else:
        mg = margins if margins is not None else margin_products(design)
        t_m = [
            np.bincount(mg.levels[m][design.cell], weights=q, minlength=size)[:, None]
            for m, size in enumerate(mg.sizes)
        ]
        b = _backfit(mg, t_m, design.rake_rounds)
        fitted = np.zeros(design.n)
        for m in range(len(mg.sizes)):
            fitted += b[m][:, 0][mg.levels[m][design.cell]]
    return w * z - c * fitted


def residual_variance(x: np.ndarray) -> float:
    """n/(n-1) sum (x - mean x)^2 of calibrated residuals (see :func:`calibration_residual`)."""
    n = len(x)
    centred = x - x.mean()
    return float(n / (n - 1) * (centred @ centred))


def margin_cross(design: SurveyDesign, x: np.ndarray, margins=None) -> list[np.ndarray]:
    """Raking: X_m'(c x) per margin, the ``u`` of :func:`domain_variance_parts` (one column)."""
    mg = margins if margins is not None else margin_products(design)
    c = design.calibrated_weight[design.cell]
    return [
        np.bincount(mg.levels[m][design.cell], weights=c * x, minlength=size)
        for m, size in enumerate(mg.sizes)
    ]


@dataclass(eq=False)
class _Margins:
    """Whole-file cross-products of the margin dummy columns, by blocks of margins."""

    sizes: list[int]
    levels: list[np.ndarray]
    counts: list[list[np.ndarray]]  # X_m' X_m' (diagonal blocks as vectors)
    squares: list[list[np.ndarray]]  # X_m' diag(c^2) X_m'
    calibrated: list[np.ndarray]  # X_m' c


def margin_products(design: SurveyDesign) -> _Margins:
    """Raking: whole-file cross-products of the margins' dummy columns (built once per design)."""
    levels, sizes = design.margin_levels, design.margin_sizes
    nk = design.cell_size
    ck = design.calibrated_weight

    def blocks(weights):
        out = []
        for a in range(len(sizes)):
            row = []
            for b in range(len(sizes)):
                if a == b:
                    row.append(np.bincount(levels[a], weights=weights, minlength=sizes[a]))
                else:
                    row.append(
                        np.bincount(
                            levels[a] * sizes[b] + levels[b],
                            weights=weights,
                            minlength=sizes[a] * sizes[b],
                        ).reshape(sizes[a], sizes[b])
                    )
            out.append(row)
        return out

    calibrated = [
        np.bincount(levels[m], weights=ck * nk, minlength=sizes[m]) for m in range(len(sizes))
    ]
    return _Margins(list(sizes), list(levels), blocks(nk), blocks(ck * ck * nk), calibrated)


def _backfit(mg: _Margins, t: list[np.ndarray], rounds: int | None) -> list[np.ndarray]:
    """Coefficients b of the projection of q on X, per margin as (levels, groups x k).

    ``t[m]`` holds X_m'q in the same layout (one column per group and estimate, so every
    product below is one matrix multiplication). With ``rounds`` (R: 10), block
    Gauss-Seidel from b = 0, which is what R's backfitting computes; with None, the exact
    least-squares solution, the margin with most levels being eliminated first (its block
    of X'X is diagonal).
    """
    n_m = len(mg.sizes)
    if rounds is not None:
        return _gauss_seidel(mg, t, rounds)
    big = int(np.argmax(mg.sizes))
    small = [m for m in range(n_m) if m != big]
    n_big = mg.counts[big][big][:, None]
    if not small:
        return [t[big] / n_big]
    cross = np.concatenate([mg.counts[big][m] for m in small], axis=1)
    inner = np.block(
        [[np.diag(mg.counts[a][a]) if a == b else mg.counts[a][b] for b in small] for a in small]
    )
    schur = inner - cross.T @ (cross / n_big)
    s_pinv = np.linalg.pinv(schur, rcond=1e-10, hermitian=True)
    t_small = np.concatenate([t[m] for m in small], axis=0)
    b_small = s_pinv @ (t_small - cross.T @ (t[big] / n_big))
    b = [None] * n_m
    b[big] = (t[big] - cross @ b_small) / n_big
    start = 0
    for m in small:
        b[m] = b_small[start : start + mg.sizes[m]]
        start += mg.sizes[m]
    return b


def _gauss_seidel(mg: _Margins, t: list[np.ndarray], rounds: int) -> list[np.ndarray]:
    """``rounds`` rounds of block Gauss-Seidel over the margins in order, from b = 0.

    The largest margin (e.g. 1,000 agencies) is never iterated explicitly: after its update
    b_big = (t_big - sum_s N_big,s beta_s) / n_big, with beta the other margins'
    coefficients at that moment, so the other margins see it through the small matrices
    N_s,big diag(1/n_big) N_big,s' and one product with t_big. b_big is formed once at the
    end. Same numbers as iterating on all margins, a fraction of the memory traffic.
    """
    n_m = len(mg.sizes)
    big = int(np.argmax(mg.sizes))
    small = [m for m in range(n_m) if m != big]
    inv_big = 1.0 / mg.counts[big][big]
    scaled_t = t[big] * inv_big[:, None]
    seen = {m: mg.counts[m][big] @ scaled_t for m in small}  # N_s,big D^-1 t_big
    via = {
        (m, m2): (mg.counts[m][big] * inv_big) @ mg.counts[big][m2] for m in small for m2 in small
    }
    b = {m: np.zeros_like(t[m]) for m in small}
    beta = None  # the small margins' coefficients when the big margin was last updated
    for _ in range(rounds):
        for m in range(n_m):
            if m == big:
                beta = {m2: b[m2].copy() for m2 in small}
                continue
            acc = t[m].copy()
            for m2 in small:
                if m2 != m:
                    acc -= mg.counts[m][m2] @ b[m2]
            if beta is not None:
                acc -= seen[m]
                for m2 in small:
                    acc += via[(m, m2)] @ beta[m2]
            b[m] = acc / mg.counts[m][m][:, None]
    out: list = [None] * n_m
    for m in small:
        out[m] = b[m]
    if beta is None:
        out[big] = np.zeros_like(t[big])
    else:
        fitted = t[big].copy()
        for m2 in small:
            fitted -= mg.counts[big][m2] @ beta[m2]
        out[big] = fitted * inv_big[:, None]
    return out


def _raking_variance(
    design: SurveyDesign,
    cells: DomainCells,
    t: np.ndarray,
    ssd: np.ndarray,
    u: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    mg = margin_products(design)
    k = t.shape[1]
    wk = design.cell_weight[cells.cell]
    ck = design.calibrated_weight[cells.cell]
    nk = design.cell_size[cells.cell]
    sum_wz = cells.group_sum(wk[:, None] * t)
    sum_w2z2 = cells.group_sum((wk * wk)[:, None] * (ssd + t * t / nk[:, None]))
    qt = (wk / ck)[:, None] * t  # X'q gathers these
    cwt = (ck * wk)[:, None] * t  # the cross term gathers these
    lev = [mg.levels[m][cells.cell] for m in range(len(mg.sizes))]
    rounds = design.rake_rounds

    out = np.empty((cells.n_groups, k))
    sums = np.empty((cells.n_groups, k))
    bu = None if u is None else np.zeros((cells.n_groups, k))
    chunk = max(1, _CHUNK_DOUBLES // max(1, sum(mg.sizes) * k))
    bounds = np.r_[cells.starts, len(cells.group)]
    for g0 in range(0, cells.n_groups, chunk):
        g1 = min(cells.n_groups, g0 + chunk)
        s0, s1 = bounds[g0], bounds[g1]
        width = (g1 - g0) * k  # one column per group of the chunk and estimate
        column = ((cells.group[s0:s1] - g0) * k)[:, None] + np.arange(k)
        qt_c = qt[s0:s1].ravel()
        t_m = []
        for m, size in enumerate(mg.sizes):
            slot = (lev[m][s0:s1, None] * width + column).ravel()
            t_m.append(np.bincount(slot, weights=qt_c, minlength=size * width).reshape(size, width))
        b = _backfit(mg, t_m, rounds)
        quad = np.zeros(width)
        bv = np.zeros(width)
        fitted = np.zeros((s1 - s0, k))
        for m in range(len(mg.sizes)):
            mb = mg.squares[m][m][:, None] * b[m]
            for m2 in range(len(mg.sizes)):
                if m2 != m:
                    mb += mg.squares[m][m2] @ b[m2]
            quad += (b[m] * mb).sum(axis=0)
            bv += mg.calibrated[m] @ b[m]
            fitted += b[m][lev[m][s0:s1, None], column]
        cross = np.add.reduceat(cwt[s0:s1] * fitted, bounds[g0:g1] - s0, axis=0)
        sum_x = sum_wz[g0:g1] - bv.reshape(-1, k)
        sum_x2 = sum_w2z2[g0:g1] - 2 * cross + quad.reshape(-1, k)
        out[g0:g1] = sum_x2 - sum_x * sum_x / design.n
        sums[g0:g1] = sum_x
        if u is not None:
            acc = np.zeros(width)
            for m in range(len(mg.sizes)):
                acc += (b[m] * np.tile(u[m], (1, g1 - g0))).sum(axis=0)
            bu[g0:g1] = acc.reshape(-1, k)
    return out, sums, bu


def ratio(
    design: SurveyDesign,
    numerator: np.ndarray,
    denominator: np.ndarray,
    group: np.ndarray | None = None,
) -> pd.DataFrame:
    """Ratio of weighted totals per domain with its linearized standard error.

    Parameters
    ----------
    design : SurveyDesign
    numerator, denominator : numpy.ndarray
        y_i and x_i per respondent (use 0, not NaN, for a respondent who does not count).
    group : numpy.ndarray, optional
        Group code of each respondent (0..G-1, -1 for none); default: one group.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``estimate`` = sum(w y) / sum(w x), ``se``, ``denominator``.

    Notes
    -----
    Ratio estimator R = sum_D w y / sum_D w x with influence z_i = (y_i - R x_i) /
    sum_D w x for i in the domain D and 0 elsewhere; the variance is the calibrated
    linearization of :func:`domain_variance`, as R's ``svyby(~y, ~g, design, svyratio,
    denominator = ~x)`` on the same design (Binder, 1983; Lumley, 2010, sec. 2.3).
    """
    if group is None:
        group = np.zeros(design.n, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    n_groups = int(group.max()) + 1
    cells = domain_cells(design, group, n_groups)
    y = np.asarray(numerator, dtype="float64")
    x = np.asarray(denominator, dtype="float64")
    w = design.cell_weight[cells.cell]
    num = cells.group_sum(w * cells.row_sum(y))
    den = cells.group_sum(w * cells.row_sum(x))
    defined = den > 0
    estimate = np.divide(num, den, out=np.full(num.shape, np.nan), where=defined)
    keep = group >= 0
    g = group[keep]
    r = np.where(defined, estimate, 0.0)
    inv = np.divide(1.0, den, out=np.zeros(den.shape), where=defined)
    z = (y[keep] - r[g] * x[keep]) * inv[g]
    t, ssd = influence_sums(design, cells, z, cells.row_cell[keep])
    variance = domain_variance(design, cells, t[:, None], ssd[:, None])[:, 0]
    se = np.where(defined, np.sqrt(variance), np.nan)
    return pd.DataFrame({"estimate": estimate, "se": se, "denominator": den})
