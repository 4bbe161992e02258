"""Indices from the database at scale: answer vectors counted per cell in SQL, finished in
analysis/ (analysis.sufficient) with the same results as the in-memory path.

One ``GROUP BY`` over ``response`` (agency, service field, the answered version and its
``criteria_codes``; see survey/domain/vectors.py) returns each cell's distinct answer
vectors with their counts: everything the indices, their variances, intervals and tests
need, a fraction of the responses' size when answers agree, never more than one row a
response. Raking, and responses whose vector cannot be encoded, fall back to the wide
frame of survey.reports_data and analysis.compute_indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analysis import compute_indices
from analysis.questionnaire import SERVICE_FIELD, Questionnaire
from analysis.sufficient import compute_from_vectors, encode_codes

from .domain.vectors import fill_missing
from .models import Agency, Response
from .reports_data import local_day_start, period_days, responses_frame

COUNT = "count"


@dataclass
class Vectors:
    """Counted answer vectors of a scope: ``frame`` (``agency``, the service field column
    when asked, ``count``) and ``answers`` (int8 codes 0-5, one column per criterion of the
    latest version, blank 0), row for row."""

    frame: pd.DataFrame
    answers: np.ndarray
    field_column: str | None = None
    notes: list = field(default_factory=list)

    @property
    def responses(self) -> int:
        """Responses counted."""
        return int(self.frame[COUNT].sum()) if len(self.frame) else 0


def period_bounds(period: str) -> tuple[date, date]:
    """First and last local day of a period written '2026', '2026-Q3' or '2026-07'."""
    year = int(period[:4])
    if len(period) == 4:
        first = date(year, 1, 1)
    elif period[5] == "Q":
        first = date(year, 3 * int(period[6]) - 2, 1)
    else:
        first = date(year, int(period[5:7]), 1)
    return first, first + timedelta(days=period_days(period) - 1)


def vector_query(
    questionnaire_id: str,
    *,
    agency_ids: set[int] | None = None,
    include_flagged: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
    with_field: bool = True,
):
    """The SQL: per agency (code), answered version, service field (``with_field``) and
    answer vector, how many responses (``count``). Encoded responses only."""
    keys = [Agency.code, Response.questionnaire_version]
    if with_field:
        keys.append(Response.service_field)
    keys.append(Response.criteria_codes)
    filters = [Response.questionnaire_id == questionnaire_id, Response.criteria_codes.is_not(None)]
    if agency_ids is not None:
        filters.append(Response.agency_id.in_(agency_ids or {-1}))
    if not include_flagged:
        filters.append(Response.flags == "")
    if date_from is not None:
        filters.append(Response.submitted_at >= local_day_start(date_from))
    if date_to is not None:
        filters.append(Response.submitted_at < local_day_start(date_to + timedelta(days=1)))
    return (
        select(*keys, func.count().label(COUNT))
        .select_from(Response)
        .join(Agency, Agency.id == Response.agency_id)
        .where(*filters)
        .group_by(*keys)
    )


def unencoded(db: Session, questionnaire_id: str, agency_ids: set[int] | None = None) -> int:
    """Responses of the questionnaire whose vector is still NULL (in scope)."""
    query = select(func.count()).select_from(Response).where(
        Response.questionnaire_id == questionnaire_id, Response.criteria_codes.is_(None))
    if agency_ids is not None:
        query = query.where(Response.agency_id.in_(agency_ids or {-1}))
    return int(db.execute(query).scalar_one())


def read_vectors(db: Session, questionnaire: Questionnaire, registry, *, with_field: bool = True,
                 **filters) -> Vectors:
    """Run :func:`vector_query` and put every version's codes in the latest version's
    criterion order (criteria a version does not ask are blank)."""
    rows = db.execute(vector_query(questionnaire.id, with_field=with_field, **filters)).all()
    names = ["agency", "version"] + (["service_field"] if with_field else []) + ["codes", COUNT]
    raw = pd.DataFrame(rows, columns=names)
    criteria = [q.id for q in questionnaire.criteria]
    answers = np.zeros((len(raw), len(criteria)), dtype=np.int8)
    for version, index in raw.groupby("version").indices.items():
        asked = [q.id for q in registry.get(questionnaire.id, int(version)).criteria]
        codes = encode_codes(raw["codes"].iloc[index], len(asked))
        for j, criterion in enumerate(asked):
            if criterion in criteria:
                answers[index, criteria.index(criterion)] = codes[:, j]
    field_question = questionnaire.roles.get(SERVICE_FIELD)
    column = field_question.id if field_question is not None and with_field else None
    frame = raw[["agency", COUNT]].copy()
    if column is not None:
        values = raw["service_field"]
        frame[column] = np.where(values.isna(), None, values.astype("Int64").astype(str))
    return Vectors(frame, np.asfortranarray(answers), column)


def _respondent_frame(vectors: Vectors) -> pd.DataFrame:
    """One row a response with its agency and field only: what the page's volume rules
    (reports._totals_for) count respondents from."""
    keys = ["agency"] + ([vectors.field_column] if vectors.field_column else [])
    cells = vectors.frame.groupby(keys, dropna=False, sort=False)[COUNT].sum().reset_index()
    repeat = cells[COUNT].to_numpy(dtype=np.int64)
    return pd.DataFrame({k: np.repeat(cells[k].to_numpy(dtype=object), repeat) for k in keys})


def scope_indices(
    db: Session,
    questionnaire: Questionnaire,
    registry,
    *,
    agency_ids: set[int] | None = None,
    period: str | None = None,
    include_flagged: bool = False,
    weighting: str = "none",
    scale_volumes: bool = False,
    by=("agency",),
    min_n: int = 30,
    min_cell_n: int | None = None,
) -> tuple[pd.DataFrame, list[dict], str]:
    """The scope's table of indices (analysis.compute_indices' columns and notes) for one
    period (a label such as '2026-Q3', or None for everything), as the reports page
    computes it: flagged responses left out unless included; ``poststrat`` weighted by the
    served volumes of the period, with the page's fallbacks (reports._totals_for).

    Returns the table, the served volumes' notes, and how it was computed: ``"sql"``
    (counted vectors) or ``"frame"`` (raking, or responses not yet encodable).
    """
    filters: dict = {"agency_ids": agency_ids, "include_flagged": include_flagged}
    if period:
        filters["date_from"], filters["date_to"] = period_bounds(period)
    elements = [(q.id, q.element) for q in questionnaire.criteria]
    if unencoded(db, questionnaire.id, agency_ids):
        fill_missing(db, registry)
    if weighting not in ("none", "poststrat") or unencoded(db, questionnaire.id, agency_ids):
        frame = responses_frame(db, questionnaire, agency_ids=agency_ids, period="month",
                                include_flagged=include_flagged, registry=registry,
                                **{k: v for k, v in filters.items() if k.startswith("date")})
        totals, volume_notes = None, []
        options: dict = {"weighting": weighting}
        if weighting == "poststrat":
            totals, volume_notes = _totals(db, period, scale_volumes, agency_ids, questionnaire,
                                           frame)
            options = {"weighting": "poststrat", "totals": totals} if totals is not None else {}
        table = compute_indices(frame, elements, by=list(by), min_n=min_n,
                                min_cell_n=min_cell_n, **options)
        return table, volume_notes, "frame"
    vectors = read_vectors(db, questionnaire, registry, with_field=weighting == "poststrat",
                           **filters)
    options = {"weighting": "none"}
    volume_notes: list[dict] = []
    if weighting == "poststrat":
        totals, volume_notes = _totals(db, period, scale_volumes, agency_ids, questionnaire,
                                       _respondent_frame(vectors))
        if totals is not None:
            options = {"weighting": "poststrat", "totals": totals}
    frame = vectors.frame
    if options["weighting"] == "none" and vectors.field_column:
        # Unweighted: the field does not matter; fewer, larger rows.
        keys = ["agency"]
        frame = frame.drop(columns=vectors.field_column)
        vectors = _merge_rows(frame, vectors.answers, keys)
        frame = vectors.frame
    table = compute_from_vectors(frame, elements, by=list(by), min_n=min_n,
                                 min_cell_n=min_cell_n, answers=vectors.answers, **options)
    return table, volume_notes, "sql"


def _merge_rows(frame: pd.DataFrame, answers: np.ndarray, keys: list[str]) -> Vectors:
    """Add up the counts of rows with the same keys and answers."""
    view = np.ascontiguousarray(answers).view(np.dtype((np.void, answers.shape[1])))[:, 0]
    key = pd.MultiIndex.from_arrays([frame[k].to_numpy(dtype=object) for k in keys] + [view])
    codes, uniques = pd.factorize(key)
    counts = np.bincount(codes, weights=frame[COUNT].to_numpy(dtype="float64"))
    first = np.full(len(uniques), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    out = frame.iloc[first][keys].reset_index(drop=True)
    out[COUNT] = counts.astype(np.int64)
    return Vectors(out, np.asfortranarray(answers[first]))


def _totals(db, period, scale, agency_ids, questionnaire, frame):
    """The page's served-volume totals and notes (survey.reports._totals_for)."""
    from .reports import _totals_for

    if not period:
        return None, []
    return _totals_for(db, period, scale, agency_ids, questionnaire.roles.get(SERVICE_FIELD),
                       frame)
