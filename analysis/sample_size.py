"""Respondents needed per agency for a given margin of error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from .io import AnalysisInputError

__all__ = ["sample_size"]


def sample_size(
    volume: float | Sequence[float] | pd.DataFrame,
    margin_of_error: float = 0.05,
    proportion: float = 0.5,
    confidence: float = 0.95,
    by: Sequence[str] | None = None,
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
    confidence : float, default 0.95

    Returns
    -------
    pandas.DataFrame
        The unit columns, ``N``, ``n_infinite`` (n0 = z^2 p (1 - p) / e^2),
        ``n_finite_population`` and ``n_yamane``, rounded up.

    Notes
    -----
    Finite-population formula for simple random sampling without replacement (Cochran,
    1977, *Sampling Techniques*, sec. 4.4): solving z^2 p(1-p) (N - n) / ((N - 1) n) = e^2
    gives n = n0 / (1 + (n0 - 1) / N). The rule n = N / (1 + N e^2) (Yamane, 1967), used in
    Vietnamese guidance on satisfaction surveys, is the same with p = 0.5, z = 2 and N - 1
    replaced by N. Both assume simple random sampling and full response; inflate them for
    expected nonresponse and for weighting (Kish design effect).
    """
    e = float(margin_of_error)
    p = float(proportion)
    if not 0 < e < 1:
        raise AnalysisInputError(f"margin of error must be between 0 and 1, not {margin_of_error}")
    if not 0 < p < 1:
        raise AnalysisInputError(f"proportion must be between 0 and 1, not {proportion}")
    if not 0 < confidence < 1:
        raise AnalysisInputError(f"confidence must be between 0 and 1, not {confidence}")
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
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n0 = z * z * p * (1 - p) / (e * e)
    finite = n0 / (1 + (n0 - 1) / big_n)
    yamane = big_n / (1 + big_n * e * e)
    table["n_infinite"] = math.ceil(n0 - 1e-9)
    table["n_finite_population"] = np.minimum(np.ceil(finite - 1e-9), big_n).astype("int64")
    table["n_yamane"] = np.minimum(np.ceil(yamane - 1e-9), big_n).astype("int64")
    table["N"] = big_n
    return table
