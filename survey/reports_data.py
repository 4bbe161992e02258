"""From stored responses to the wide table the analysis library reads (one row a response)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

import click
import numpy as np
import pandas as pd
from flask.cli import with_appcontext
from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Text,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from analysis.questionnaire import NOT_APPLICABLE, SERVICE_FIELD, Questionnaire

from .config import LOCAL_TIME
from .domain import vectors
from .models import Agency, Answer, Counter, Response, ServiceVolume

# At most this many missing response vectors are computed while a frame is built; the
# rest (e.g. a large database just upgraded) are read from their Answer rows meanwhile.
FILL_PER_FRAME = 50_000
# Up to this many responses read from their Answer rows are named in a list; more, by range.
FALLBACK_BY_LIST = 5000
PERIODS = ("month", "quarter", "year")
# Columns that are answers to a single-code question and can serve as grouping variables.
GROUPING_TYPES = ("single", "yesno")


def period_label(moment: pd.Series, period: str) -> pd.Series:
    """'2026-11', '2026-Q4' or '2026' for each UTC timestamp, in Vietnamese local time."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r} (one of {', '.join(PERIODS)})")
    # The zone by name (pandas' own zone objects compute local times several times faster
    # than zoneinfo's), turned into local wall times once for the fields read below.
    local = pd.to_datetime(moment, utc=True).dt.tz_convert(LOCAL_TIME).dt.tz_localize(None)
    if not len(local):
        return pd.Series([], index=local.index, dtype=object)
    # One label per distinct period, mapped back: formatting a million timestamps one by one
    # (strftime) is what the reports at scale spent their time on.
    year = local.dt.year.to_numpy()
    if period == "month":
        key = year * 100 + local.dt.month.to_numpy()
        names = {k: f"{k // 100}-{k % 100:02d}" for k in np.unique(key)}
    elif period == "quarter":
        key = year * 10 + local.dt.quarter.to_numpy()
        names = {k: f"{k // 10}-Q{k % 10}" for k in np.unique(key)}
    else:
        key = year
        names = {k: str(k) for k in np.unique(key)}
    return pd.Series(pd.Series(key).map(names).to_numpy(), index=local.index)


def responses_frame(
    db: Session,
    questionnaire: Questionnaire,
    agency_ids: set[int] | None = None,
    period: str = "quarter",
    include_flagged: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
    with_counter: bool = False,
    questions: Collection[str] | None = None,
    registry=None,
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
    ``counter_label``; ``questions`` keeps only these of the single, yes/no and
    multiple-choice columns (the criteria are always there).

    The criteria and the service field come from each response's vector
    (survey/domain/vectors.py; missing vectors are computed first), the other questions
    from the Answer rows; a response whose vector cannot say what its Answer rows say (an
    unknown version, codes the vector cannot hold) is read from its Answer rows whole.
    ``registry`` defaults to the app's questionnaires.
    """
    if registry is None:
        from .questionnaires import registry as app_registry

        registry = app_registry()
    vectors.fill_missing(db, registry, limit=FILL_PER_FRAME)
    filters = response_filters(questionnaire.id, agency_ids, include_flagged, date_from, date_to)

    raw, coded = _response_rows(db, filters, with_counter)
    agencies = dict(db.execute(select(Agency.id, Agency.code)).all()) if len(raw) else {}
    agency_names = dict(db.execute(select(Agency.id, Agency.name)).all()) if len(raw) else {}
    base = pd.DataFrame({"response_id": raw["response_id"],
                         "agency": raw["agency_id"].map(agencies).astype(object),
                         "agency_name": raw["agency_id"].map(agency_names).astype(object),
                         "flags": raw["flags"]})
    if with_counter:
        labels = dict(db.execute(select(Counter.id, Counter.label).where(
            Counter.id.in_(raw["counter"].unique().tolist() or [-1]))).all())
        base["counter"] = raw["counter"].astype(str)
        base["counter_label"] = raw["counter"].map(labels).astype(object)
    if len(base):
        moments = pd.to_datetime(raw["epoch"], unit="s", utc=True)
        base["period"] = period_label(moments, period)
    else:
        base["period"] = []

    criteria = [q.id for q in questionnaire.criteria]
    field_question = questionnaire.roles.get(SERVICE_FIELD)
    field_id = field_question.id if field_question is not None else None
    groupings = [q.id for q in questionnaire.questions.values() if q.type in GROUPING_TYPES
                 and (questions is None or q.id in questions)]
    multiple = [q.id for q in questionnaire.questions.values() if q.type == "multiple"
                and (questions is None or q.id in questions)]
    with_field = field_id in groupings

    # Criteria (and the field) from the vectors, version by version.
    n = len(raw)
    values = np.full((n, len(criteria)), np.nan)
    field = np.full(n, np.nan)
    from_answers = np.zeros(n, dtype=bool)
    version_of = raw["version"].to_numpy()
    encoded = raw["codes"].notna().to_numpy()
    for version in np.unique(version_of) if n else []:
        rows_of = version_of == version
        plan = _vector_plan(registry.versions.get((questionnaire.id, int(version))),
                            criteria, field_id if with_field else None)
        if plan is None:
            from_answers |= rows_of
            continue
        positions, field_from_vector = plan
        from_answers |= rows_of & ~encoded
        use = rows_of & encoded
        if not use.any():
            continue
        width = len(registry.versions[(questionnaire.id, int(version))].criteria)
        decoded = vectors.decode_bytes(coded[use, :width])
        index = np.flatnonzero(use)
        for column, position in enumerate(positions):
            if position is not None:
                values[index, column] = decoded[:, position]
        if field_from_vector:
            field[index] = raw["vector_field"].to_numpy(dtype=float, na_value=np.nan)[use]

    singles = [g for g in groupings if g != field_id]
    answered = _answer_rows(db, filters, singles, multiple)
    if from_answers.any():
        # Responses the vectors do not cover: their criteria and field from the Answer rows.
        ids = raw["response_id"].to_numpy()[from_answers]
        # By id, not by "still NULL": another worker may encode some of them meanwhile.
        which = (Response.id.in_(ids.tolist()) if len(ids) <= FALLBACK_BY_LIST else
                 Response.id.between(int(ids.min()), int(ids.max())))
        extra = [field_id] if with_field else []
        pivot = _pivot(_answer_rows(db, [*filters, which], criteria + extra, []), ids,
                       criteria + extra)
        for column, qid in enumerate(criteria):
            values[from_answers, column] = pivot[qid].to_numpy(dtype=float, na_value=np.nan)
        if with_field:
            field[from_answers] = pivot[field_id].to_numpy(dtype=float, na_value=np.nan)
    values[values == NOT_APPLICABLE] = np.nan
    index = pd.Index(raw["response_id"], name="response_id")
    wide = {qid: _integers(values[:, column]) for column, qid in enumerate(criteria)}
    others = _pivot(answered[answered["question_id"].isin(singles)], index, singles)
    for qid in groupings:
        codes = field if qid == field_id else others[qid].to_numpy(dtype=float,
                                                                     na_value=np.nan)
        wide[qid] = _code_texts(codes)
    chosen = answered[answered["question_id"].isin(multiple)]
    for qid in multiple:
        # A multiple choice is one list of codes per response (empty when none chosen).
        lists = chosen[chosen["question_id"] == qid].groupby("response_id")["value"].agg(
            lambda codes: sorted(int(c) for c in codes))
        wide[qid] = [lists.get(rid, []) for rid in index]
    frame = pd.DataFrame(wide, index=index)
    return base.set_index("response_id").join(frame).reset_index()


def _integers(values: np.ndarray) -> pd.arrays.IntegerArray:
    """Whole numbers with NaN as a nullable Int64 array (no per-value checks)."""
    missing = np.isnan(values)
    return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing)


def _code_texts(values: np.ndarray) -> pd.arrays.StringArray:
    """Codes with NaN as text ("3"), missing as <NA>: made once per distinct code."""
    missing = np.isnan(values)
    out = np.full(len(values), pd.NA, dtype=object)
    present = values[~missing].astype(np.int64)
    if len(present):
        distinct, position = np.unique(present, return_inverse=True)
        out[~missing] = np.array([str(code) for code in distinct], dtype=object)[position]
    return pd.array(out, dtype="string")


# The responses' own columns as _response_rows reads them: name -> (column, digits), each
# written as a fixed-width field of digits (a missing service field as all nines).
ROW_FIELDS = {"response_id": (Response.id, 12), "agency_id": (Response.agency_id, 10),
              "epoch": (Response.submitted_at, 12), "version": (Response.questionnaire_version, 6),
              "vector_field": (Response.service_field, 6), "counter": (Response.counter_id, 10)}
CODES_WIDTH = vectors.MAX_CRITERIA + 1  # a leading "+" (a vector) or "-" (NULL)
ROW_BATCH = 250_000


def _response_rows(db: Session, filters: list, with_counter: bool
                   ) -> tuple[pd.DataFrame, np.ndarray]:
    """The responses' own columns (``ROW_FIELDS``, ``codes``: "+" where the response has a
    vector, ``flags``), one row a response in id order, ``epoch`` in whole seconds (UTC,
    enough for a period); and their vectors' codes as ASCII bytes, a row each.

    The database writes each response as one fixed-width line of digits and codes and joins
    a batch of lines into one string, which numpy slices: no Python object per response
    (reading a million responses as row objects took longer than all the rest). The flags
    (free words) are read apart, for the few flagged responses only.
    """
    sqlite = db.get_bind().dialect.name == "sqlite"
    fields = {name: spec for name, spec in ROW_FIELDS.items()
              if name != "counter" or with_counter}
    parts = []
    for name, (column, width) in fields.items():
        if name == "epoch":
            column = (cast(func.strftime("%s", column), Integer) if sqlite else
                      cast(func.floor(func.extract("epoch", column)), BigInteger))
        elif name == "vector_field":
            column = func.coalesce(column, 10 ** width - 1)
        parts.append(func.printf(f"%0{width}d", column, type_=String) if sqlite else
                     func.lpad(cast(column, Text), width, "0", type_=String))
    codes = case((Response.criteria_codes.is_(None), literal_column("'-'", String)),
                 else_=literal_column("'+'", String).concat(Response.criteria_codes))
    parts.append(func.printf(f"%-{CODES_WIDTH}s", codes, type_=String) if sqlite else
                 func.rpad(codes, CODES_WIDTH, " ", type_=String))
    line = parts[0]
    for part in parts[1:]:
        line = line.concat(part)
    width = sum(w for _c, w in fields.values()) + CODES_WIDTH
    chunks, last = [], None
    while True:
        batch = select(line.label("line"), Response.id.label("id")).where(*filters)
        if last is not None:
            batch = batch.where(Response.id > last)
        batch = batch.order_by(Response.id).limit(ROW_BATCH).subquery()
        joined = (func.group_concat(batch.c.line, literal_column("''"), type_=String)
                  if sqlite else
                  func.string_agg(batch.c.line, literal_column("''"), type_=String))
        text, last, count = db.connection().execute(
            select(joined, func.max(batch.c.id), func.count())).one()
        if count:
            chunks.append(np.frombuffer(text.encode("ascii"), dtype=np.uint8)
                          .reshape(count, width))
        if count < ROW_BATCH:
            break
    names = [*fields, "codes", "flags"]
    if not chunks:
        # No rows: every column is of object dtype, as pandas makes an empty frame of rows.
        return pd.DataFrame(columns=names), np.empty((0, CODES_WIDTH - 1), dtype=np.uint8)
    table = np.concatenate(chunks)
    columns, start = {}, 0
    for name, (_column, digits) in fields.items():
        numbers = (table[:, start:start + digits].astype(np.int64) - ord("0")) @ (
            10 ** np.arange(digits - 1, -1, -1, dtype=np.int64))
        columns[name] = numbers
        start += digits
    order = np.argsort(columns["response_id"], kind="stable")
    raw = pd.DataFrame({name: values[order] for name, values in columns.items()})
    missing = 10 ** fields["vector_field"][1] - 1
    raw["vector_field"] = raw["vector_field"].where(raw["vector_field"] != missing).astype(
        float)
    coded = table[order, start:]
    # "codes": whether the response has a vector; the codes themselves stay bytes.
    raw["codes"] = np.where(coded[:, 0] == ord("+"), "+", None)
    flagged = dict(db.connection().execute(
        select(Response.id, Response.flags)
        .where(*filters, Response.flags != literal_column("''"))).all())
    flags = np.full(len(raw), "", dtype=object)
    if flagged:
        at = raw["response_id"].isin(flagged).to_numpy()
        flags[at] = raw["response_id"][at].map(flagged).to_numpy()
    raw["flags"] = flags
    return raw, coded[:, 1:]


def report_questions(questionnaire: Questionnaire) -> set[str]:
    """The questions besides the criteria the report pages compute from: those with a role
    (service field, overall rating, reasons)."""
    return {question.id for question in questionnaire.roles.values()}


def response_filters(questionnaire_id: str, agency_ids: set[int] | None = None,
                     include_flagged: bool = False, date_from: date | None = None,
                     date_to: date | None = None) -> list:
    """The WHERE conditions of the responses a report counts (also survey.stats_sql's)."""
    filters = [Response.questionnaire_id == questionnaire_id]
    # A bound at the calendar's ends (0001-01-01, 9999-12-31) cannot become a UTC moment
    # a day later or earlier; no response is that old or that new, so it bounds nothing.
    if date_from is not None and date_from < FIRST_DAY:
        date_from = None
    if date_to is not None and date_to > LAST_DAY:
        date_to = None
    if agency_ids is not None:
        filters.append(Response.agency_id.in_(agency_ids or {-1}))
    if not include_flagged:
        filters.append(Response.flags == "")
    if date_from is not None:
        filters.append(Response.submitted_at >= local_day_start(date_from))
    if date_to is not None:
        filters.append(Response.submitted_at < local_day_start(date_to + timedelta(days=1)))
    return filters


def _vector_plan(version: Questionnaire | None, criteria: list[str], field_id: str | None
                 ) -> tuple[list[int | None], bool] | None:
    """How one version's vectors give the columns: per criterion column its position in the
    version's codes (None: the version does not ask it), and whether the field column is
    the vector's field. None when the vectors cannot say it (unknown version, or a column
    the version asks as another kind of question): read the Answer rows instead."""
    if version is None:
        return None
    own = [q.id for q in version.criteria]
    positions = []
    for qid in criteria:
        if qid in own:
            positions.append(own.index(qid))
        elif qid in version.questions:
            return None
        else:
            positions.append(None)
    field_from_vector = False
    if field_id is not None:
        own_field = version.roles.get(SERVICE_FIELD)
        if own_field is not None and own_field.id == field_id:
            field_from_vector = True
        elif field_id in version.questions:
            return None
    return positions, field_from_vector


def _answer_rows(db: Session, filters: list, single: list[str], multiple: list[str]
                 ) -> pd.DataFrame:
    """The coded Answer rows of these questions for the responses the filters keep."""
    wanted = single + multiple
    rows = db.execute(
        select(Answer.response_id, Answer.question_id, Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .where(*filters, Answer.question_id.in_(wanted), Answer.value.is_not(None))
    ).all() if wanted else []
    if not rows:
        # Typed even when empty: response ids are looked up as labels, never positions.
        return pd.DataFrame({"response_id": pd.Series([], dtype="int64"),
                             "question_id": pd.Series([], dtype=object),
                             "value": pd.Series([], dtype="int64")})
    return pd.DataFrame(rows, columns=["response_id", "question_id", "value"])


def _pivot(answers: pd.DataFrame, index, columns: list[str]) -> pd.DataFrame:
    """One row per response (``index``), one column per single-code question."""
    wide = answers.pivot(index="response_id", columns="question_id", values="value")
    return wide.reindex(index=index, columns=columns)


@click.command("encode-responses")
@click.option("--batch-size", default=vectors.DEFAULT_BATCH, show_default=True, type=int)
@with_appcontext
def encode_responses_command(batch_size: int) -> None:
    """Compute every missing response vector now (e.g. after upgrading a large database)."""
    from .db import get_db

    done = vectors.fill_missing(get_db(), batch_size=max(1, batch_size))
    click.echo(f"{done} responses encoded.")


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


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
