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


def naive_table(design, emap, grouping):
    """(group label, level, key) -> SE, from whole-file influence vectors."""
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
        var = naive_variance(design, w[:, None] * cols)
        se = np.sqrt(np.maximum(var, 0))
        k = len(emap.criteria)
        for j, c in enumerate(emap.criteria):
            out[(label, "criterion", c)] = 100 * se[j] if defined[j] else np.nan
            out[(label, "mean_score", c)] = se[k + j] if defined[j] else np.nan
        for i, e in enumerate(emap.elements):
            out[(label, "element", e)] = 100 * se[2 * k + i] if elem_ok[i] else np.nan
        out[(label, "overall", "SIPAS")] = 100 * se[-1] if ok else np.nan
    return out


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
