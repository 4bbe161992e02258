"""The variance from cell sums equals the textbook computation over the whole file.

The library never builds the whole-file influence vector of a group; these tests do, for
every group, and follow the definitions literally (R's svyrecvar for the calibration
residuals), so a slip in the cell-sum algebra cannot hide behind the R reference data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.estimators import ratio

from .helpers import element_map, options, responses

GROUPINGS = [(), ("agency",), ("gender",), ("age_band",), ("agency", "period")]


def naive_variance(design, x_weighted: np.ndarray) -> float:
    """R's svyrecvar for ids = ~1 with the design's calibration, on x = w z (columns)."""
    x = x_weighted.copy()
    w = design.weights
    psw = design.calibrated_weight[design.cell]  # weights stored by postStratify / rake
    if design.weighting == "poststrat":
        cell = pd.Series(design.cell)
        mean = pd.DataFrame(x / psw[:, None]).groupby(cell).transform("mean").to_numpy()
        x = x - psw[:, None] * mean
    elif design.weighting == "none":
        x = x - x.mean(axis=0)
    else:
        q = x / psw[:, None]
        dummies = np.hstack(
            [
                np.eye(size)[level[design.cell]]
                for level, size in zip(design.margin_levels, design.margin_sizes, strict=True)
            ]
        )
        if design.rake_rounds is None:
            b, *_ = np.linalg.lstsq(dummies, q, rcond=None)
            x = psw[:, None] * (q - dummies @ b)
        else:
            for _ in range(design.rake_rounds):
                for level in design.margin_levels:
                    cell_level = pd.Series(level[design.cell])
                    mean = pd.DataFrame(x / psw[:, None]).groupby(cell_level).transform("mean")
                    x = x - psw[:, None] * mean.to_numpy()
    n = len(w)
    centred = x - x.mean(axis=0)
    return n / (n - 1) * (centred**2).sum(axis=0)


def naive_influences(design, emap, grouping):
    """(group label) -> (whole-file influence columns, defined mask), by the definitions.

    Columns: criteria, mean scores, elements, SIPAS (zeros where undefined).
    """
    w = design.weights
    y = design.answers.astype(float)
    a = (y > 0).astype(float)
    s = (y >= 4).astype(float)
    codes, labels = design.groups(grouping)
    out = {}
    for g in range(len(labels)):
        d = (codes == g).astype(float)
        label = tuple(labels.iloc[g]) if grouping else ()
        den = (w * d) @ a
        defined = den > 0
        r = np.where(defined, (w * d) @ s / np.where(defined, den, 1), 0)
        m = np.where(defined, (w * d) @ y / np.where(defined, den, 1), 0)
        inv = np.where(defined, 1 / np.where(defined, den, 1), 0)
        z_idx = d[:, None] * (s - r * a) * inv
        z_mean = d[:, None] * (y - m * a) * inv
        elem_z, elem_ok = [], []
        for e in emap.elements:
            cols = [
                j
                for j, c in enumerate(emap.criteria)
                if emap.element_of[j] == emap.elements.index(e) and defined[j]
            ]
            elem_ok.append(bool(cols))
            elem_z.append(z_idx[:, cols].mean(axis=1) if cols else np.zeros(len(w)))
        ok = [z for z, k in zip(elem_z, elem_ok, strict=True) if k]
        overall = np.mean(ok, axis=0) if ok else np.zeros(len(w))
        cols = np.column_stack([z_idx, z_mean, *elem_z, overall])
        mask = np.r_[defined, defined, elem_ok, bool(ok)]
        out[label] = (cols, mask)
    return out


def naive_table(design, emap, grouping):
    """(group label, level, key) -> SE, from whole-file influence vectors."""
    w = design.weights
    out = {}
    k = len(emap.criteria)
    for label, (cols, mask) in naive_influences(design, emap, grouping).items():
        se = np.sqrt(np.maximum(naive_variance(design, w[:, None] * cols), 0))
        se = np.where(mask, se, np.nan)
        for j, c in enumerate(emap.criteria):
            out[(label, "criterion", c)] = 100 * se[j]
            out[(label, "mean_score", c)] = se[k + j]
        for i, e in enumerate(emap.elements):
            out[(label, "element", e)] = 100 * se[2 * k + i]
        out[(label, "overall", "SIPAS")] = 100 * se[-1]
    return out


def row_column(emap, level, key):
    """Column of an estimate in the naive influence matrix."""
    k = len(emap.criteria)
    if level == "criterion":
        return emap.criteria.index(key)
    if level == "mean_score":
        return k + emap.criteria.index(key)
    if level == "element":
        return 2 * k + emap.elements.index(key)
    return 2 * k + len(emap.elements)


@pytest.mark.parametrize("config", ["none", "poststrat", "poststrat_trim", "rake", "rake_trim"])
def test_difference_from_the_whole_equals_whole_file_computation(config):
    """diff_se: the variance of z_g - z_ALL computed literally, a second implementation."""
    emap = element_map()
    opts = options(config)
    opts.pop("by")
    design = analysis.make_design(responses(), emap.criteria, **opts)
    table = analysis.compute_indices(design, emap, by=["agency", "gender"])
    w = design.weights
    whole_cols, whole_mask = naive_influences(design, emap, ())[()]
    for grouping in [("agency",), ("gender",)]:
        naive = naive_influences(design, emap, grouping)
        rows = table[table["by"] == grouping[0]]
        for row in rows.itertuples(index=False):
            cols, mask = naive[(getattr(row, grouping[0]),)]
            j = row_column(emap, row.level, row.key)
            if not (mask[j] and whole_mask[j]):
                assert np.isnan(row.diff_se)
                continue
            diff = w[:, None] * (cols[:, [j]] - whole_cols[:, [j]])
            want = np.sqrt(max(naive_variance(design, diff)[0], 0))
            scale = 1 if row.level == "mean_score" else 100
            assert row.diff_se == pytest.approx(scale * want, rel=1e-8, abs=1e-9)
    # Holm within grouping x level x key; marks only where adjusted p < 0.05 and n >= 30
    agency = table[(table["by"] == "agency") & (table["key"] == "SIPAS")]
    p = np.sort(agency["diff_p"].dropna().to_numpy())
    m = len(p)
    holm = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p), 1)
    np.testing.assert_allclose(np.sort(agency["diff_p_adj"].dropna()), holm)
    marked = table[table["mark"] != ""]
    assert (marked["diff_p_adj"] < 0.05).all() and (marked["n"] >= 30).all()
    assert set(table.loc[table["by"] == "ALL", "mark"]) == {""}


@pytest.mark.parametrize("config", ["poststrat", "rake"])
def test_period_comparison_equals_whole_file_computation(config):
    emap = element_map()
    opts = options(config)
    opts.pop("by")
    design = analysis.make_design(responses(), emap.criteria, **opts)
    compared = analysis.compare_periods(design, emap, by="agency")
    w = design.weights
    naive = naive_influences(design, emap, ("agency", "period"))
    rows = compared[(compared["by"] == "agency") & compared["diff_se"].notna()]
    assert len(rows) > 50
    for row in rows.itertuples(index=False):
        later, mask_l = naive[(row.agency, row.period)]
        earlier, mask_e = naive[(row.agency, row.previous)]
        j = row_column(emap, row.level, row.key)
        diff = w[:, None] * (later[:, [j]] - earlier[:, [j]])
        want = np.sqrt(max(naive_variance(design, diff)[0], 0))
        scale = 1 if row.level == "mean_score" else 100
        assert row.diff_se == pytest.approx(scale * want, rel=1e-8, abs=1e-9)
    assert set(compared["period"]) == {"2024-Q2"} and set(compared["previous"]) == {"2024-Q1"}


@pytest.mark.parametrize(
    "config", ["none", "poststrat", "poststrat_trim", "rake", "rake_trim", "rake_exact"]
)
def test_cell_sums_equal_whole_file_computation(config):
    emap = element_map()
    opts = options(config.replace("_exact", ""))
    opts.pop("by")
    design = analysis.make_design(
        responses(), emap.criteria, rake_rounds=None if config.endswith("_exact") else 10, **opts
    )
    table = analysis.compute_indices(design, emap, by=[",".join(g) for g in GROUPINGS if g])
    for grouping in GROUPINGS:
        expected = naive_table(design, emap, grouping)
        rows = table[table["by"] == ("+".join(grouping) if grouping else "ALL")]
        assert len(rows) == len(expected)
        for row in rows.itertuples(index=False):
            label = tuple(getattr(row, v) for v in grouping)
            want = expected[(label, row.level, row.key)]
            if np.isnan(want):
                assert np.isnan(row.se)
            else:
                assert row.se == pytest.approx(want, rel=1e-9, abs=1e-9), (
                    label,
                    row.level,
                    row.key,
                )


def test_exact_projection_is_the_limit_of_backfitting():
    emap = element_map()
    opts = options("rake")
    opts.pop("by")
    frame = responses()
    exact = analysis.make_design(frame, emap.criteria, rake_rounds=None, **opts)
    many = analysis.make_design(frame, emap.criteria, rake_rounds=300, **opts)
    a = analysis.compute_indices(exact, emap, by="gender")
    b = analysis.compute_indices(many, emap, by="gender")
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", ["none", "poststrat", "rake"])
def test_generic_ratio_equals_mean_score_rows(config):
    emap = element_map()
    opts = options(config)
    opts.pop("by")
    design = analysis.make_design(responses(), emap.criteria, **opts)
    group, labels = design.groups(["agency"])
    y = design.answers[:, 0].astype(float)
    result = ratio(design, y, (y > 0).astype(float), group)
    table = analysis.compute_indices(design, emap, by="agency")
    rows = table[
        (table["by"] == "agency")
        & (table["level"] == "mean_score")
        & (table["key"] == emap.criteria[0])
    ]
    np.testing.assert_allclose(result["estimate"], rows["estimate"], rtol=1e-12)
    np.testing.assert_allclose(result["se"], rows["se"], rtol=1e-9, atol=1e-12)
    assert list(labels["agency"]) == list(rows["agency"])
