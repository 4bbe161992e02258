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

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Integer, Text, cast, func, literal, select, text
from sqlalchemy.orm import Session

from analysis import compute_indices
from analysis.questionnaire import SERVICE_FIELD, Questionnaire
from analysis.sufficient import codes_from_bytes, compute_from_vectors

from .domain.vectors import fill_missing
from .models import Agency, Response
from .reports_data import period_days, response_filters, responses_frame

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


def _filters(questionnaire_id: str, agency_ids: set[int] | None = None,
             include_flagged: bool = False, date_from: date | None = None,
             date_to: date | None = None) -> list:
    """The responses a report counts (survey.reports_data's conditions), encoded."""
    return [*response_filters(questionnaire_id, agency_ids, include_flagged, date_from, date_to),
            Response.criteria_codes.is_not(None)]


def vector_query(
    questionnaire_id: str,
    *,
    agency_ids: set[int] | None = None,
    include_flagged: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
    with_field: bool = True,
):
    """The SQL: per agency (id), answered version, service field (``with_field``) and
    answer vector, how many responses (``count``). Encoded responses only."""
    keys = _keys(with_field)
    filters = _filters(questionnaire_id, agency_ids, include_flagged, date_from, date_to)
    return select(*keys, func.count().label(COUNT)).where(*filters).group_by(*keys)


def _keys(with_field: bool) -> list:
    keys = [Response.agency_id, Response.questionnaire_version]
    if with_field:
        keys.append(Response.service_field)
    return keys + [Response.criteria_codes]


# PostgreSQL: the same query as fixed-width text lines through COPY, read by numpy
# (millions of rows without a Python object each).
_WIDTHS = {"agency": 10, "version": 4, "field": 5, "count": 10}
_NO_FIELD = 99999  # a service field is a SMALLINT; NULL is written as this
_LINES_A_BLOCK = 8192
READ_PARTS = 2  # connections reading at once (the server's processes working for one page)


def _copy_query(questionnaire_id: str, width: int, with_field: bool, grouped: bool = True,
                part: tuple[int, int] = (0, 1), **filters):
    """:func:`vector_query` as one fixed-width line a row: agency id, version, service
    field + 32768 (NULL: 99999), the codes padded with '.' to ``width``, count. Without
    ``grouped``, one line a response (count 1): no hash table in the server. ``part``
    (k, parts): only the agencies whose id is k modulo parts."""
    def digits(value, size):
        return func.lpad(cast(value, Text), size, "0")

    # agency, version (and field) as one number written once: the same digits as each
    # written to its width, one conversion a row fewer
    key = cast(Response.agency_id, BigInteger) * 10 ** _WIDTHS["version"] + (
        Response.questionnaire_version)
    size = _WIDTHS["agency"] + _WIDTHS["version"]
    if with_field:
        field_value = func.coalesce(cast(Response.service_field, Integer) + 32768, _NO_FIELD)
        key = key * 10 ** _WIDTHS["field"] + field_value
        size += _WIDTHS["field"]
    parts = [digits(key, size)]
    one = "1".rjust(_WIDTHS["count"], "0")
    parts += [func.rpad(Response.criteria_codes, width, "."),
              digits(func.count(), _WIDTHS["count"]) if grouped else literal(one)]
    where = _filters(questionnaire_id, **filters)
    if part[1] > 1:
        where.append(Response.agency_id % part[1] == part[0])
    lines = select(func.concat(*parts).label("line"),
                   (func.row_number().over() // _LINES_A_BLOCK).label("block")).where(*where)
    lines = (lines.group_by(*_keys(with_field)) if grouped else lines).subquery()
    # Blocks of lines, one COPY row each: the client reads a few hundred rows, not millions.
    return select(func.string_agg(lines.c.line, "")).group_by(lines.c.block)


def _read_copy_parts(db: Session, questionnaire_id: str, width: int, with_field: bool,
                     grouped: bool = True, **filters) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`_read_copy` over ``READ_PARTS`` connections at once, each counting the
    vectors of its share of the agencies (a vector never spans two agencies): the
    server's work spread over as many processes. Every part reads the snapshot of the
    caller's transaction (PostgreSQL's exported snapshots), so the parts together are
    one consistent read: a response stored meanwhile counts in none of them."""
    if READ_PARTS < 2:
        return _read_copy(db, questionnaire_id, width, with_field, grouped, **filters)
    engine = db.get_bind()
    # The caller's transaction stays open (and its snapshot importable) until it returns.
    snapshot = db.execute(text("SELECT pg_export_snapshot()")).scalar_one()

    def one(k):
        with Session(engine) as own:
            own.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            # A snapshot name is the server's own text (hex digits and dashes).
            own.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            return _read_copy(own, questionnaire_id, width, with_field, grouped,
                              part=(k, READ_PARTS), **filters)

    with ThreadPoolExecutor(READ_PARTS) as pool:
        parts = list(pool.map(one, range(READ_PARTS)))
    frame = pd.concat([p[0] for p in parts], ignore_index=True)
    return frame, np.concatenate([p[1] for p in parts])


def _read_copy(db: Session, questionnaire_id: str, width: int, with_field: bool,
               grouped: bool = True, part: tuple[int, int] = (0, 1),
               **filters) -> tuple[pd.DataFrame, np.ndarray]:
    """Run :func:`_copy_query` through COPY and split the lines with numpy: the numbers
    and the codes' bytes."""
    query = _copy_query(questionnaire_id, width, with_field, grouped, part, **filters)
    compiled = query.compile(dialect=db.get_bind().dialect,
                             compile_kwargs={"render_postcompile": True})
    # the server's hash table of a part's vectors (~150 bytes a vector) stays in memory
    db.execute(text("SET LOCAL work_mem = '512MB'"))
    cursor = db.connection().connection.driver_connection.cursor()
    chunks = bytearray()
    with cursor.copy(f"COPY ({compiled}) TO STDOUT", compiled.params) as copy:
        for block in copy:
            chunks += bytes(block)[:-1]  # each COPY row ends with a newline
    sizes = [_WIDTHS["agency"], _WIDTHS["version"]] + ([_WIDTHS["field"]] if with_field else [])
    line = sum(sizes) + width + _WIDTHS["count"]
    raw = np.frombuffer(chunks, dtype=np.uint8).reshape(-1, line)

    def number(first, size):  # digit by digit: no (rows x digits) int64 temporary
        value = np.zeros(len(raw), dtype=np.int64)
        for column in range(first, first + size):
            value *= 10
            value += raw[:, column]
            value -= ord("0")
        return value

    out = {}
    at = 0
    for name, size in zip(["agency_id", "version", "service_field"], sizes, strict=False):
        out[name] = number(at, size)
        at += size
    out["codes"] = raw[:, at:at + width].copy()  # the rest of the lines can go
    out[COUNT] = number(at + width, _WIDTHS["count"])
    frame = pd.DataFrame({k: v for k, v in out.items() if k != "codes"})
    if with_field:
        stored = frame["service_field"].to_numpy()
        frame["service_field"] = pd.array(
            np.where(stored == _NO_FIELD, 0, stored - 32768), dtype="Int64")
        frame.loc[stored == _NO_FIELD, "service_field"] = pd.NA
    return frame, out["codes"]


def unencoded(db: Session, questionnaire_id: str, agency_ids: set[int] | None = None) -> int:
    """Responses of the questionnaire whose vector is still NULL (in scope)."""
    query = select(func.count()).select_from(Response).where(
        Response.questionnaire_id == questionnaire_id, Response.criteria_codes.is_(None))
    if agency_ids is not None:
        query = query.where(Response.agency_id.in_(agency_ids or {-1}))
    return int(db.execute(query).scalar_one())


def read_vectors(db: Session, questionnaire: Questionnaire, registry, *, with_field: bool = True,
                 grouped: bool = True, **filters) -> Vectors:
    """Run :func:`vector_query` (PostgreSQL: through COPY) and put every version's codes in
    the latest version's criterion order (criteria a version does not ask are blank)."""
    # Encoded responses answered versions the registry knows (survey/domain/vectors.py).
    versions = {v: [q.id for q in known.criteria]
                for (qid, v), known in registry.versions.items() if qid == questionnaire.id}
    width = max([len(c) for c in versions.values()] + [1])
    if db.get_bind().dialect.name == "postgresql":
        raw, padded = _read_copy_parts(db, questionnaire.id, width, with_field, grouped,
                                       **filters)
    else:
        rows = db.execute(vector_query(questionnaire.id, with_field=with_field,
                                       **filters)).all()
        names = ["agency_id", "version"] + (["service_field"] if with_field else [])
        raw = pd.DataFrame(rows, columns=names + ["codes", COUNT])
        text_codes = raw.pop("codes").str.pad(width, side="right", fillchar=".")
        padded = np.frombuffer("".join(text_codes).encode("ascii"), dtype=np.uint8)
        padded = padded.reshape(len(raw), width)
    criteria = [q.id for q in questionnaire.criteria]
    answers = np.zeros((len(raw), len(criteria)), dtype=np.int8)
    by_version = raw.groupby("version").indices
    if len(by_version) == 1 and versions[int(next(iter(by_version)))] == criteria:
        answers = codes_from_bytes(padded[:, :len(criteria)])
        by_version = {}
    for version, index in by_version.items():
        asked = versions[int(version)]
        codes = codes_from_bytes(padded[index, :len(asked)])
        for j, criterion in enumerate(asked):
            if criterion in criteria:
                answers[index, criteria.index(criterion)] = codes[:, j]
    codes_of = dict(db.execute(select(Agency.id, Agency.code)).all())
    ids = raw["agency_id"].to_numpy()
    present = np.unique(ids)
    labels = np.array([codes_of[int(i)] for i in present], dtype=object)
    frame = pd.DataFrame({"agency": labels[np.searchsorted(present, ids)],
                          COUNT: raw[COUNT].to_numpy(dtype=np.int64)})
    field_question = questionnaire.roles.get(SERVICE_FIELD)
    column = field_question.id if field_question is not None and with_field else None
    if column is not None:
        values = pd.array(raw["service_field"], dtype="Int64")
        known = ~values.isna()
        given = values[known].to_numpy(dtype=np.int64)
        present = np.unique(given)
        names = np.array([str(v) for v in present], dtype=object)
        text_values = np.full(len(values), None, dtype=object)
        text_values[known] = names[np.searchsorted(present, given)]
        frame[column] = text_values
    return Vectors(frame, np.asfortranarray(answers), column)


def _respondent_frame(vectors: Vectors) -> pd.DataFrame:
    """One row a response with its agency and field only: what the page's volume rules
    (reports.served_totals) count respondents from."""
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
    drop_empty_cells: bool | None = None,
    margins: list[pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, list[dict], str]:
    """The scope's table of indices (analysis.compute_indices' columns and notes) for one
    period (a label such as '2026-Q3', or None for everything), as the reports page
    computes it: flagged responses left out unless included; ``poststrat`` weighted by the
    served volumes of the period, with the page's fallbacks (reports.served_totals).

    ``rake`` (with ``margins``, as analysis.compute_indices) is computed from the wide
    frame: its calibration residuals need the respondents.

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
        if weighting == "rake":
            options["margins"] = margins
        if weighting == "poststrat":
            totals, volume_notes = _totals(db, period, scale_volumes, agency_ids, questionnaire,
                                           frame)
            options = {"weighting": "poststrat", "totals": totals} if totals is not None else {}
        table = compute_indices(frame, elements, by=list(by), min_n=min_n,
                                min_cell_n=min_cell_n, drop_empty_cells=drop_empty_cells,
                                **options)
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
                                 min_cell_n=min_cell_n, drop_empty_cells=drop_empty_cells,
                                 answers=vectors.answers, **options)
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
    """The page's served-volume totals and notes (survey.reports.served_totals)."""
    from .reports import served_totals

    if not period:
        return None, []
    return served_totals(db, period, scale, agency_ids, questionnaire.roles.get(SERVICE_FIELD),
                       frame)
