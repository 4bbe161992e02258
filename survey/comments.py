"""Citizens' comments (free-text answers): per agency and for the scope, filtered, paged,
phone and ID numbers masked, downloadable as shown."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from flask import Blueprint, abort, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select

from analysis.questionnaire import OVERALL_RATING

from . import workbook
from .auth import current_user, require_role, visible_to
from .config import LOCAL_TIME
from .db import get_db
from .domain.scope import subtree_ids
from .models import Agency, Answer, Counter, Response
from .questionnaires import registry
from .reports import (
    DOWNLOADS,
    PERIOD_NAMES,
    ReportQuery,
    build_report,
    check_format,
    report_error,
)

bp = Blueprint("comments", __name__, url_prefix="/reports/comments")

PAGE_SIZE = 50
# A run of digits joined by single spaces, dots or dashes (a leading +84 or an area code
# in brackets, "(028) 3829 1234"): with 9 or more digits it is a phone number or an ID
# number (9 or 12 digits) as far as this page can tell, and is masked; years and counts
# are shorter. A sum of money grouped by dots in thousands ("1.500.000.000 đồng") is not
# personal and stays: no phone or ID number is written that way (they start with 0 or +).
_DIGIT_RUN = re.compile(r"(?:\(\+?\d{1,4}\)[ .\-]?|\+)?\d(?:[ .\-]?\d)*")
_AMOUNT = re.compile(r"[1-9]\d{0,2}(?:\.\d{3}){2,}")
_KEEP_LAST = 2


def mask_personal(text: str) -> str:
    """The text with every run of 9 or more digits (phone or ID numbers, written with or
    without spaces, dots, dashes or an area code in brackets) masked: all digits but the
    last two become '*'. Sums of money grouped in thousands by dots are left alone."""
    def mask(found: re.Match) -> str:
        run = found.group(0)
        digits = sum(ch.isdigit() for ch in run)
        if digits < 9 or _AMOUNT.fullmatch(run):
            return run
        seen, out = 0, []
        for ch in run:
            if ch.isdigit():
                seen += 1
                out.append(ch if seen > digits - _KEEP_LAST else "*")
            else:
                out.append(ch)
        return "".join(out)

    return _DIGIT_RUN.sub(mask, text)


def period_bounds(kind: str, period: str) -> tuple[datetime, datetime]:
    """The UTC start and end of '2026', '2026-Q4' or '2026-12' in Vietnamese local time;
    an empty range for a year no response can have (0000, 9999: the calendar ends there)."""
    year = int(period[:4])
    if not 1900 <= year <= 9998:
        nothing = datetime(1900, 1, 1)
        return nothing, nothing
    if kind == "year":
        start, months = datetime(year, 1, 1), 12
    elif kind == "quarter":
        start, months = datetime(year, 3 * int(period[6]) - 2, 1), 3
    else:
        start, months = datetime(year, int(period[5:7]), 1), 1
    index = start.month - 1 + months
    end = datetime(year + index // 12, index % 12 + 1, 1)

    def utc(moment):
        return pd.Timestamp(moment, tz=LOCAL_TIME).tz_convert("UTC").tz_localize(None)

    return utc(start).to_pydatetime(), utc(end).to_pydatetime()


@dataclass
class CommentQuery:
    """The filters of the comments page, read from the query string and checked."""

    questionnaire_id: str
    period_kind: str = "quarter"
    period: str = ""
    counter: int | None = None
    rating: int | None = None
    include_flagged: bool = False
    page: int = 1

    # As ReportQuery's: what cannot be used (page shown with status 400 and no comments),
    # what was ignored (said on the page).
    problems: list[str] = field(default_factory=list, compare=False, repr=False)
    ignored: list[str] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def from_args(cls, args) -> CommentQuery:
        """The filters of a query string; never aborts: the questionnaire, period kind and
        period are read and checked as the report pages read them (ReportQuery), the
        counter, rating and page here; problems are said in Vietnamese."""
        shared = ReportQuery.from_args(
            {k: args[k] for k in ("questionnaire", "period_kind", "period",
                                  "include_flagged") if k in args})
        query = cls(questionnaire_id=shared.questionnaire_id,
                    period_kind=shared.period_kind, period=shared.period,
                    include_flagged=shared.include_flagged,
                    problems=shared.problems, ignored=shared.ignored)
        query.counter = _number(args.get("counter"), 2**31 - 1, 1, query.problems, _(
            "Quầy đã chọn không hợp lệ: chọn một quầy trong danh sách."))
        query.rating = _number(args.get("rating"), 99, 0, query.problems, _(
            "Mức đánh giá đã chọn không hợp lệ: chọn một mức trong danh sách."))
        query.page = _number(args.get("page"), 10**6, 1, query.problems, _(
            "Số trang không hợp lệ: dùng các nút “Trang trước” và “Trang sau”.")) or 1
        return query

    def args(self, **changes) -> dict:
        values = {"questionnaire": self.questionnaire_id, "period_kind": self.period_kind,
                  "period": self.period, "counter": self.counter, "rating": self.rating,
                  "include_flagged": "1" if self.include_flagged else None}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


def _number(text: str | None, top: int, bottom: int, problems: list[str],
            message: str) -> int | None:
    """A whole-number filter between bottom and top (None when empty); otherwise None and
    `message` added to problems."""
    if not text:
        return None
    if re.fullmatch(r"\d{1,10}", text.strip()) and bottom <= int(text) <= top:
        return int(text)
    problems.append(message)
    return None


def _scope(code: str | None) -> tuple[set[int] | None, str | None]:
    """The agencies whose comments may be shown (None: all) and the agency's name; 404 for
    an agency outside the user's scope (it looks the same as one that does not exist)."""
    db = get_db()
    scope = visible_to(current_user())
    if code is None:
        return scope, None
    if "\x00" in code or len(code) > 40:  # no agency code (PostgreSQL refuses a NUL)
        abort(404)
    agency = db.execute(select(Agency.id, Agency.name).where(Agency.code == code)).first()
    if agency is None or (scope is not None and agency.id not in scope):
        abort(404)
    below = subtree_ids(db, agency.id)
    return (below if scope is None else below & scope), agency.name


def comment_rows(query: CommentQuery, agencies: set[int] | None, questionnaire,
                 limit: int | None = None, offset: int = 0) -> tuple[int, list[dict]]:
    """The comments that match, newest first (how many, and the rows of one page)."""
    texts = [q.id for q in questionnaire.questions.values() if q.type == "text"]
    rating_question = questionnaire.roles.get(OVERALL_RATING)
    rating = Answer.__table__.alias("rating")
    filters = [Response.questionnaire_id == questionnaire.id,
               Answer.question_id.in_(texts or ["-"]), Answer.text.is_not(None),
               Answer.text != ""]
    if agencies is not None:
        filters.append(Response.agency_id.in_(agencies or {-1}))
    if not query.include_flagged:
        filters.append(Response.flags == "")
    if query.period:
        start, end = period_bounds(query.period_kind, query.period)
        filters += [Response.submitted_at >= start, Response.submitted_at < end]
    if query.counter is not None:
        filters.append(Response.counter_id == query.counter)
    if query.rating is not None and rating_question is not None:
        filters.append(rating.c.value == query.rating)
    base = (select(Answer.id).join(Response, Response.id == Answer.response_id)
            .outerjoin(rating, and_(rating.c.response_id == Response.id,
                                    rating.c.question_id == (rating_question.id
                                                             if rating_question else "-")))
            .where(*filters))
    db = get_db()
    total = db.scalar(select(func.count()).select_from(base.subquery()))
    rows = db.execute(
        base.with_only_columns(Response.submitted_at, Agency.code, Agency.name, Counter.label,
                               Answer.question_id, Answer.text, rating.c.value, Response.flags)
        .join(Agency, Agency.id == Response.agency_id)
        .join(Counter, Counter.id == Response.counter_id)
        .order_by(Response.submitted_at.desc(), Response.id.desc(), Answer.id)
        .limit(limit).offset(offset)).all()
    locale = str(get_locale())
    labels = {o.code: o.text.get(locale) for o in rating_question.options} \
        if rating_question is not None else {}
    out = []
    for when, code, name, counter, question_id, text, value, flags in rows:
        moment = pd.Timestamp(when)  # naive UTC from SQLite, aware from PostgreSQL
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
        local = moment.tz_convert(LOCAL_TIME)
        out.append({"when": local.strftime("%d/%m/%Y %H:%M"), "agency": code,
                    "agency_name": name, "counter": counter,
                    "question": questionnaire.questions[question_id].text.get(locale)
                    if question_id in questionnaire.questions else question_id,
                    "rating": labels.get(value, "") if value is not None else "",
                    "text": mask_personal(text), "flags": flags})
    return total, out


def _counters(agencies: set[int] | None, questionnaire_id: str) -> list:
    query = select(Counter.id, Counter.label, Agency.name).join(Agency).where(
        Counter.questionnaire_id == questionnaire_id).order_by(Agency.name, Counter.label)
    if agencies is not None:
        query = query.where(Counter.agency_id.in_(agencies or {-1}))
    return get_db().execute(query).all()


@bp.get("/")
@require_role("admin", "agency", "analyst")
def index():
    """The comments of the whole scope, newest first, filtered and paged."""
    return _page(None)


@bp.get("/agency/<code>")
@require_role("admin", "agency", "analyst")
def agency(code):
    """One agency's comments (and those of the agencies below it), filtered and paged."""
    return _page(code)


def _page(code: str | None):
    query = CommentQuery.from_args(request.args)
    agencies, name = _scope(code)
    questionnaire = registry().latest(query.questionnaire_id)
    if query.problems:
        total, rows = 0, []
    else:
        total, rows = comment_rows(query, agencies, questionnaire, limit=PAGE_SIZE,
                                   offset=(query.page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    # The same periods as the report pages' filter (the report of the same questionnaire,
    # period kind and flag choice, cached).
    periods = build_report(ReportQuery(query.questionnaire_id, query.period_kind,
                                       include_flagged=query.include_flagged),
                           cached=True).periods
    page = render_template(
        "reports/comments.html", query=query, rows=rows, total=total, pages=pages, code=code,
        name=name, questionnaire=questionnaire, questionnaires=registry(), periods=periods,
        period_names=PERIOD_NAMES, counters=_counters(agencies, query.questionnaire_id),
        rating_question=questionnaire.roles.get(OVERALL_RATING), first=(query.page - 1)
        * PAGE_SIZE, page_size=PAGE_SIZE)
    return page, 400 if query.problems else 200


COLUMNS = {"when": _l("Thời điểm"), "agency": _l("Mã cơ quan"), "agency_name": _l("Cơ quan"),
           "counter": _l("Quầy"), "question": _l("Câu hỏi"), "rating": _l("Đánh giá chung"),
           "text": _l("Ý kiến"), "flags": _l("Lý do gắn cờ")}
COLUMN_WIDTHS = [17, 10, 28, 20, 30, 16, 60, 16]


@bp.get("/comments.<fmt>")
@require_role("admin", "agency", "analyst")
def download(fmt):
    """The comments the page shows with these filters (every page of them, newest first,
    masked as on screen) as CSV or XLSX, every cell through safe_cell."""
    check_format(fmt)
    query = CommentQuery.from_args(request.args)
    code = request.args.get("agency") or None
    if query.problems:
        back = url_for("comments.agency", code=code, **query.args()) if code else url_for(
            "comments.index", **query.args())
        abort(report_error(400, " ".join(query.problems), back))
    agencies, _name = _scope(code)
    questionnaire = registry().latest(query.questionnaire_id)
    _total, rows = comment_rows(query, agencies, questionnaire)
    table = pd.DataFrame(rows, columns=list(COLUMNS)).rename(
        columns={k: str(v) for k, v in COLUMNS.items()})
    if fmt == "xlsx":
        # One sheet "Ý kiến", header frozen and filtered, the comment column wide and
        # wrapped (survey/workbook.py).
        data = workbook.table_workbook(table, str(_("Ý kiến")), COLUMN_WIDTHS,
                                       wrap=(list(COLUMNS).index("text") + 1,))
    else:
        data = workbook.csv_bytes(table)
    name = "-".join(["y-kien", query.questionnaire_id, code or "tat-ca",
                     query.period or "tat-ca-ky"])
    return send_file(io.BytesIO(data), mimetype=DOWNLOADS[fmt][0], as_attachment=True,
                     download_name=name + DOWNLOADS[fmt][1], max_age=0)
