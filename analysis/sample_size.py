"""Respondents needed per agency for a given margin of error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from .io import AnalysisInputError

__all__ = ["published_margin", "sample_size"]


def published_margin(
    n: float | np.ndarray,
    proportion: float = 0.5,
    design_effect: float = 1.0,
    level: float = 0.95,
) -> np.ndarray:
    """Half-width of the interval the indices would publish for a proportion at n answers.

    The published SE is the with-replacement linearization SE, sqrt(p (1 - p) deff /
    (n - 1)) for a proportion (no finite-population correction), and the interval uses
    Student t with n - 1 df: the half-width is t(1 - alpha/2, n - 1) times that SE (the
    logit interval of a criterion is close to it near p = 0.5). NaN below 2 answers.
    """
    from scipy.special import stdtrit

    n = np.asarray(n, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(n >= 2, n - 1, np.nan)
        return stdtrit(df, 0.5 + level / 2) * np.sqrt(
            proportion * (1 - proportion) * design_effect / df
        )


def sample_size(
    volume: float | Sequence[float] | pd.DataFrame,
    margin_of_error: float = 0.05,
    proportion: float = 0.5,
    level: float = 0.95,
    by: Sequence[str] | None = None,
    design_effect: float = 1.0,
    response_rate: float = 1.0,
) -> pd.DataFrame:
    """Respondents needed to estimate a proportion within a margin of error.

    Parameters
    ----------
    volume : number, sequence of numbers or pandas.DataFrame
        Served volume N (transactions) per unit. A DataFrame has a ``count`` column and
        unit columns; rows are summed per ``by`` columns (default: every other column).
    margin_of_error : float, default 0.05
        Half-width e of the interval, as a proportion (0.05 = 5 percentage points).
    proportion : float, default 0.5
        Expected proportion p (0.5 is the most conservative).
    level : float, default 0.95
        The confidence level (the ``level`` of the published intervals).
    design_effect : float, default 1.0
        Expected design effect of the weighting (e.g. the ``deff`` or ``deff_kish`` of a
        previous period); multiplies the variance.
    response_rate : float, default 1.0
        Expected share of invited people who answer; ``n_to_invite`` = n_needed / rate.

    Returns
    -------
    pandas.DataFrame
        The unit columns, ``N``, ``n_needed`` (answers for the *published* interval to
        be at most +-e: t(n-1) sqrt(p (1-p) deff / (n-1)) <= e, with no finite-population
        correction, as the published SEs), ``n_to_invite``, ``reachable`` (n_needed <= N),
        ``margin_at_N`` (the published half-width if all N answered, in points), and the
        textbook figures ``n_infinite`` (n0 = z^2 p (1 - p) / e^2), ``n_finite_population``
        and ``n_yamane``, with ``margin_at_n_finite_population`` (points): what the
        published interval would really be at that n.

    Notes
    -----
    The indices are estimated as from a with-replacement sample (R ``svydesign(ids =
    ~1)``), without a finite-population correction, so a sample-size rule that uses one
    (Cochran, 1977, sec. 4.4: n = n0 / (1 + (n0 - 1) / N); Yamane, 1967: n = N / (1 + N
    e^2)) promises a narrower interval than the one published: at N = 50, e = 0.05, they
    ask for 45 answers, whose published interval is about +-15 points. ``n_needed``
    matches what is published; it can exceed N, in which case ``reachable`` is False and
    ``margin_at_N`` says what even a census of the period would publish.
    """
    e = float(margin_of_error)
    p = float(proportion)
    if not 0 < e < 1:
        raise AnalysisInputError(f"margin of error must be between 0 and 1, not {margin_of_error}")
    if not 0 < p < 1:
        raise AnalysisInputError(f"proportion must be between 0 and 1, not {proportion}")
    if not 0 < level < 1:
        raise AnalysisInputError(f"level must be between 0 and 1, not {level}")
    deff = float(design_effect)
    rate = float(response_rate)
    if not (math.isfinite(deff) and deff > 0):
        raise AnalysisInputError(f"design effect must be positive, not {design_effect}")
    if not 0 < rate <= 1:
        raise AnalysisInputError(f"response rate must be in (0, 1], not {response_rate}")
    if isinstance(volume, pd.DataFrame):
        if "count" not in volume.columns:
            raise AnalysisInputError("volumes: no count column")
        keys = list(by) if by else [c for c in volume.columns if c != "count"]
        missing = [k for k in keys if k not in volume.columns]
        if missing:
            raise AnalysisInputError(f"volumes: no column(s) {', '.join(missing)}")
        table = (
            volume.groupby(keys, sort=False)["count"]
            .sum()
            .reset_index()
            .rename(columns={"count": "N"})
            if keys
            else pd.DataFrame({"N": [volume["count"].sum()]})
        )
    else:
        values = np.atleast_1d(np.asarray(volume, dtype="float64"))
        table = pd.DataFrame({"N": values})
    big_n = table["N"].to_numpy(dtype="float64")
    if (~np.isfinite(big_n) | (big_n < 1)).any():
        raise AnalysisInputError("served volume N must be at least 1")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    n0 = z * z * p * (1 - p) / (e * e)
    needed = _needed(e, p, deff, level, n0)
    finite = n0 / (1 + (n0 - 1) / big_n)
    yamane = big_n / (1 + big_n * e * e)
    table["N"] = big_n
    table["n_needed"] = needed
    table["n_to_invite"] = math.ceil(needed / rate - 1e-9)
    table["reachable"] = needed <= big_n
    table["margin_at_N"] = 100 * published_margin(big_n, p, deff, level)
    table["n_infinite"] = math.ceil(n0 - 1e-9)
    table["n_finite_population"] = np.minimum(np.ceil(finite - 1e-9), big_n).astype("int64")
    table["n_yamane"] = np.minimum(np.ceil(yamane - 1e-9), big_n).astype("int64")
    table["margin_at_n_finite_population"] = 100 * published_margin(
        table["n_finite_population"].to_numpy(), p, deff, level
    )
    return table


def _needed(e: float, p: float, deff: float, level: float, n0: float) -> int:
    """Smallest n whose published half-width is at most e (search upward from n0 deff)."""
    n = max(2, math.ceil(n0 * deff))
    while published_margin(n, p, deff, level) > e + 1e-12:
        n += max(1, n // 200)
    while n > 2 and published_margin(n - 1, p, deff, level) <= e + 1e-12:
        n -= 1
    return int(n)
