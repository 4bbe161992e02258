"""Satisfaction indices with weighting and confidence intervals (a plain library, no web code).

Public entry point
------------------
``compute_indices(responses_or_design, elements, *, weighting="none", totals=None,
margins=None, by=None, min_n=30, trim=None, drop_empty_cells=False, min_cell_n=5,
level=0.95) -> pandas.DataFrame``

- ``responses``: DataFrame, one row per response (``response_id``, categorical columns,
  one column per criterion holding 1-5 or blank), e.g. built from the database.
- ``elements``: ``{"A": ["a1", "a2"], ...}``, ``[("a1", "A"), ...]`` or an
  :class:`ElementMap` (from :func:`read_questionnaire` or :func:`read_elements`).
- ``weighting``: ``"none"``, ``"poststrat"`` (``totals``: post-stratum columns + ``count``)
  or ``"rake"`` (``margins``: list of tables, variable column + ``count`` or ``share``).
- ``by``: groupings such as ``["agency", "agency,period"]``; the whole file (``ALL``) is
  always included.

It returns the tidy table described in :func:`analysis.indices.compute_indices`: one row
per grouping x group x level (``overall``/``element``/``criterion``/``mean_score``) x key
with estimate, SE, interval (method, df, reason), sizes, design effects, a small-group
flag and the test of the group against the whole file (``diff``, ``diff_se``, ``diff_p``,
Holm ``diff_p_adj``, ``mark``); ``table.attrs["notes"]`` lists what the weighting pooled,
dropped or could not represent. :func:`compare_periods` tests each period against the
previous one. The command line (``python -m analysis indices ...``) calls the same
functions.

Also: :func:`make_design` (validate and weight once, then reuse), :func:`ratio` (a generic
domain ratio with linearized SE), :func:`sample_size` (respondents needed per agency),
the readers ``read_responses``, ``read_elements``, ``read_questionnaire``, ``read_totals``,
``read_margin`` and :func:`write_table`. Methods: ``analysis/METHODS.md``.
"""

from .design import DEFAULT_MIN_CELL_N, SurveyDesign, make_design
from .estimators import ratio
from .indices import COLUMNS, PERIOD_COLUMNS, compare_periods, compute_indices, parse_by
from .io import (
    AnalysisInputError,
    ElementMap,
    read_elements,
    read_margin,
    read_questionnaire,
    read_responses,
    read_totals,
    write_table,
)
from .sample_size import sample_size

__all__ = [
    "COLUMNS",
    "DEFAULT_MIN_CELL_N",
    "PERIOD_COLUMNS",
    "AnalysisInputError",
    "ElementMap",
    "SurveyDesign",
    "compare_periods",
    "compute_indices",
    "make_design",
    "parse_by",
    "ratio",
    "read_elements",
    "read_margin",
    "read_questionnaire",
    "read_responses",
    "read_totals",
    "sample_size",
    "write_table",
]
