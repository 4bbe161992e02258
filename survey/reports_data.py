"""From stored responses to the wide table the analysis library reads (one row a response)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.questionnaire import NOT_APPLICABLE, Questionnaire

from .config import TIMEZONE
from .models import Agency, Answer, Response, ServiceVolume

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
) -> pd.DataFrame:
    """The responses to one questionnaire (every version), wide; flagged responses
    (survey/integrity.py) only with ``include_flagged``.

    Columns: ``response_id``, ``agency`` (code), ``agency_name``, ``period``, ``flags``,
    one column per single-choice or yes/no question (its code as text, blank when not
    answered), one per multiple-choice question (the list of codes chosen), and one column
    per criterion (1–5, blank when not answered or "not applicable"). Criterion ids are
    stable across versions, so older versions contribute to the same columns.
    """
    filters = [Response.questionnaire_id == questionnaire.id]
    if agency_ids is not None:
        filters.append(Response.agency_id.in_(agency_ids or {-1}))
    if not include_flagged:
        filters.append(Response.flags == "")

    rows = db.execute(
        select(Response.id, Agency.code, Agency.name, Response.submitted_at, Response.flags)
        .join(Agency, Agency.id == Response.agency_id)
        .where(*filters)
        .order_by(Response.id)
    ).all()
    base = pd.DataFrame(rows, columns=["response_id", "agency", "agency_name", "submitted_at",
                                       "flags"])
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


def volume_totals(db: Session, field_question: str, period: str | None = None,
                  agency_ids: set[int] | None = None) -> pd.DataFrame:
    """Served transactions per agency × service field: the post-stratification totals.

    Columns ``agency``, ``<field_question>`` and ``count``, summed over the periods that
    match ``period`` (a prefix: '2026' takes every month and quarter of 2026).
    """
    query = select(Agency.code, ServiceVolume.service_field, ServiceVolume.period,
                   ServiceVolume.transactions).join(Agency, Agency.id == ServiceVolume.agency_id)
    if agency_ids is not None:
        query = query.where(ServiceVolume.agency_id.in_(agency_ids or {-1}))
    frame = pd.DataFrame(db.execute(query).all(),
                         columns=["agency", field_question, "period", "count"])
    if period:
        frame = frame[frame["period"].str.startswith(period)]
    return frame.groupby(["agency", field_question], as_index=False)["count"].sum()
