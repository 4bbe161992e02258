"""From stored responses to the wide table the analysis library reads (one row a response)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.questionnaire import NOT_APPLICABLE, Questionnaire

from .config import TIMEZONE
from .models import Agency, Answer, Counter, Response, ServiceVolume

LOCAL_TIME = ZoneInfo(TIMEZONE)
PERIODS = ("month", "quarter", "year")
# Columns that are answers to a single-code question and can serve as grouping variables.
GROUPING_TYPES = ("single", "yesno")


def period_label(moment: pd.Series, period: str) -> pd.Series:
    """'2026-11', '2026-Q4' or '2026' for each UTC timestamp, in Vietnamese local time."""
    local = pd.to_datetime(moment, utc=True).dt.tz_convert(LOCAL_TIME)
    if period == "month":
        return local.dt.strftime("%Y-%m")
    if period == "quarter":
        return local.dt.year.astype(str) + "-Q" + local.dt.quarter.astype(str)
    if period == "year":
        return local.dt.year.astype(str)
    raise ValueError(f"unknown period {period!r} (one of {', '.join(PERIODS)})")


def responses_frame(
    db: Session,
    questionnaire: Questionnaire,
    agency_ids: set[int] | None = None,
    period: str = "quarter",
    include_flagged: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
    with_counter: bool = False,
) -> pd.DataFrame:
    """The responses to one questionnaire (every version), wide; flagged responses
    (survey/integrity.py) only with ``include_flagged``.

    Columns: ``response_id``, ``agency`` (code), ``agency_name``, ``period``, ``flags``,
    one column per single-choice or yes/no question (its code as text, blank when not
    answered), one per multiple-choice question (the list of codes chosen), and one column
    per criterion (1–5, blank when not answered or "not applicable"). Criterion ids are
    stable across versions, so older versions contribute to the same columns.

    ``date_from``/``date_to`` keep the responses submitted on those local days (both
    included); ``with_counter`` adds ``counter`` (the counter's id as text) and
    ``counter_label``.
    """
    filters = [Response.questionnaire_id == questionnaire.id]
    if agency_ids is not None:
        filters.append(Response.agency_id.in_(agency_ids or {-1}))
    if not include_flagged:
        filters.append(Response.flags == "")
    if date_from is not None:
        filters.append(Response.submitted_at >= local_day_start(date_from))
    if date_to is not None:
        filters.append(Response.submitted_at < local_day_start(date_to + timedelta(days=1)))

    columns = [Response.id, Agency.code, Agency.name, Response.submitted_at, Response.flags]
    names = ["response_id", "agency", "agency_name", "submitted_at", "flags"]
    query = select(*columns).join(Agency, Agency.id == Response.agency_id)
    if with_counter:
        query = query.add_columns(Response.counter_id, Counter.label).join(
            Counter, Counter.id == Response.counter_id)
        names += ["counter", "counter_label"]
    rows = db.execute(query.where(*filters).order_by(Response.id)).all()
    base = pd.DataFrame(rows, columns=names)
    if with_counter:
        base["counter"] = base["counter"].astype(str)
    base["period"] = period_label(base["submitted_at"], period) if len(base) else []
    base = base.drop(columns="submitted_at")

    criteria = [q.id for q in questionnaire.criteria]
    groupings = [q.id for q in questionnaire.questions.values() if q.type in GROUPING_TYPES]
    multiple = [q.id for q in questionnaire.questions.values() if q.type == "multiple"]
    wanted = criteria + groupings + multiple
    answers = pd.DataFrame(
        db.execute(
            select(Answer.response_id, Answer.question_id, Answer.value)
            .join(Response, Response.id == Answer.response_id)
            .where(*filters, Answer.question_id.in_(wanted), Answer.value.is_not(None))
        ).all(),
        columns=["response_id", "question_id", "value"],
    )
    chosen = answers[answers["question_id"].isin(multiple)]
    answers = answers[~answers["question_id"].isin(multiple)]
    wide = answers.pivot(index="response_id", columns="question_id", values="value")
    wide = wide.reindex(index=base["response_id"], columns=criteria + groupings)
    for qid in multiple:
        # A multiple choice is one list of codes per response (empty when none chosen).
        lists = chosen[chosen["question_id"] == qid].groupby("response_id")["value"].agg(
            lambda codes: sorted(int(c) for c in codes))
        wide[qid] = [lists.get(rid, []) for rid in wide.index]
    for qid in criteria:
        column = wide[qid].astype("Int64")
        wide[qid] = column.mask(column == NOT_APPLICABLE)
    for qid in groupings:
        wide[qid] = wide[qid].astype("Int64").astype("string")
    frame = base.set_index("response_id").join(wide).reset_index()
    return frame


def local_day_start(day: date) -> datetime:
    """The UTC moment a local (Vietnamese) calendar day begins."""
    return datetime.combine(day, time(0), tzinfo=LOCAL_TIME).astimezone(UTC)


def volume_rows(db: Session, year: str, agency_ids: set[int] | None = None) -> pd.DataFrame:
    """The stored served volumes of one year (its yearly, quarterly and monthly rows):
    columns ``agency``, ``service_field``, ``period``, ``count``."""
    query = (select(Agency.code, ServiceVolume.service_field, ServiceVolume.period,
                    ServiceVolume.transactions)
             .join(Agency, Agency.id == ServiceVolume.agency_id)
             .where(ServiceVolume.period.startswith(year[:4])))
    if agency_ids is not None:
        query = query.where(ServiceVolume.agency_id.in_(agency_ids or {-1}))
    return pd.DataFrame(db.execute(query).all(),
                        columns=["agency", "service_field", "period", "count"])


def period_days(period: str) -> int:
    """Days in a period written '2026', '2026-Q3' or '2026-07'."""
    year = int(period[:4])
    if len(period) == 4:
        start, end = pd.Timestamp(year, 1, 1), pd.Timestamp(year + 1, 1, 1)
    elif period[5] == "Q":
        start = pd.Timestamp(year, 3 * int(period[6]) - 2, 1)
        end = start + pd.DateOffset(months=3)
    else:
        start = pd.Timestamp(year, int(period[5:7]), 1)
        end = start + pd.DateOffset(months=1)
    return (end - start).days


def period_parts(period: str) -> list[list[str]]:
    """The ways to make a period exactly from smaller ones, preferred first: a year from
    its 12 months or its 4 quarters, a quarter from its 3 months; a month from nothing."""
    year = period[:4]
    if len(period) == 4:
        return [[f"{year}-{m:02d}" for m in range(1, 13)], [f"{year}-Q{q}" for q in range(1, 5)]]
    if period[5] == "Q":
        first = 3 * int(period[6]) - 2
        return [[f"{year}-{m:02d}" for m in range(first, first + 3)]]
    return []


def period_containers(period: str) -> list[str]:
    """The larger periods a quarter or a month lies in, nearest first."""
    year = period[:4]
    if len(period) == 4:
        return []
    if period[5] == "Q":
        return [year]
    return [f"{year}-Q{(int(period[5:7]) + 2) // 3}", year]


def resolve_volumes(rows: pd.DataFrame, period: str, scale: bool = False
                    ) -> tuple[pd.DataFrame, list[dict]]:
    """Served volumes of exactly one period, per agency × service field, and how each was had.

    For every agency × field: the period's own row; else the sum of its parts when every
    part is there (a quarter's three months; a year's 12 months or 4 quarters); else, only
    when ``scale`` is asked, a larger period's row (quarter, then year) times the period's
    share of its days. Rows of different lengths are never added together. Returns the
    totals (``agency``, ``service_field``, ``count``) and one note per agency that used a
    fallback (the library's note columns, kind ``fallback``).
    """
    counts = {(a, f, p): c for a, f, p, c in rows[["agency", "service_field", "period",
                                                   "count"]].itertuples(index=False)}
    cells = sorted({(a, f) for a, f, _p in counts})
    out, how = [], {}
    for agency, field in cells:
        value, source = counts.get((agency, field, period)), None
        if value is None:
            for parts in period_parts(period):
                found = [counts.get((agency, field, p)) for p in parts]
                if all(v is not None for v in found):
                    value, source = sum(found), ("sum", parts[0], parts[-1], len(parts))
                    break
        if value is None and scale:
            for larger in period_containers(period):
                if (agency, field, larger) in counts:
                    share = period_days(period) / period_days(larger)
                    value = counts[(agency, field, larger)] * share
                    source = ("scaled", larger, period_days(period), period_days(larger))
                    break
        if value is None:
            continue
        out.append((agency, field, float(value)))
        if source is not None:
            how.setdefault(agency, {}).setdefault(source, []).append(field)
    totals = pd.DataFrame(out, columns=["agency", "service_field", "count"])
    grand = totals["count"].sum()
    notes = []
    for agency, sources in how.items():
        for source, fields in sources.items():
            transactions = float(totals[(totals["agency"] == agency)
                                        & totals["service_field"].isin(fields)]["count"].sum())
            if source[0] == "sum":
                detail = (f"{period}: the sum of {source[3]} periods {source[1]} to {source[2]} "
                          f"(no row for {period} itself).")
                cells_text = f"period={period} <- {source[1]}..{source[2]}"
            else:
                detail = (f"{period}: the {source[1]} row scaled by {source[2]}/{source[3]} "
                          "days (asked for).")
                cells_text = f"period={period} <- {source[1]} x {source[2]}/{source[3]}"
            notes.append({"kind": "fallback", "scope": agency,
                          "cells": cells_text + "; service_field=" + ",".join(fields),
                          "responses": np.nan, "transactions": transactions,
                          "share": transactions / grand if grand > 0 else np.nan,
                          "detail": detail})
    return totals, notes
