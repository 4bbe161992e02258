"""Reports blueprint: satisfaction indices per agency, element and criterion, with downloads."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field, replace
from datetime import date

import pandas as pd
from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select

from analysis import AnalysisInputError, compute_indices, write_table
from analysis.indices import parse_criteria_used
from analysis.questionnaire import COUNTER_QUICK, SERVICE_FIELD
from analysis.quick import QuickIndices, quick_indices
from analysis.weighting import NOTE_COLUMNS

from . import integrity, report_cache, workbook
from .auth import current_user, require_role, visible_to
from .db import get_db
from .domain import coverage
from .i18n import in_english, local_number
from .models import Agency
from .questionnaires import registry
from .report_trends import (
    counter_rows,
    ranking_by_level,
    trend_chart,
    trend_p,
    trend_points,
    trend_versus,
)
from .reports_data import (
    PERIODS,
    encode_responses_command,
    report_questions,
    resolve_volumes,
    responses_frame,
    volume_rows,
)

bp = Blueprint("reports", __name__, url_prefix="/reports")
# `flask reports encode-responses`: the response vectors the reports read, all at once.
bp.cli.add_command(encode_responses_command)

WEIGHTINGS = {
    "none": _l("Không gia quyền (mỗi phiếu như nhau)"),
    "poststrat": _l("Gia quyền theo số hồ sơ đã giải quyết (cơ quan × lĩnh vực)"),
}
PERIOD_NAMES = {"month": _l("Tháng"), "quarter": _l("Quý"), "year": _l("Năm")}


@dataclass
class ReportQuery:
    """What the analyst asked for, read from the query string and checked."""

    questionnaire_id: str
    period_kind: str = "quarter"
    period: str = ""
    weighting: str = "none"
    # Flagged responses (survey/integrity.py) are left out unless the analyst includes them.
    include_flagged: bool = False
    # Where a quarter's (or month's) own volumes are missing, the year's (or quarter's)
    # scaled by the share of days: only when the analyst asks for it.
    scale_volumes: bool = False
    # Responses submitted from/to these local days (ISO dates, both included), as well as
    # the period; "" for no bound.
    date_from: str = ""
    date_to: str = ""

    # What was wrong with the request's filters, in Vietnamese: the page is shown with its
    # form and these messages, status 400, and no figures (not part of args()).
    problems: list[str] = field(default_factory=list, compare=False, repr=False)
    # Filters ignored because they do not fit (a quarter with "month" chosen): said on the
    # page, which is shown (200) without them.
    ignored: list[str] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def from_args(cls, args) -> ReportQuery:
        """The filters of a query string; never aborts. A value that cannot be used is
        replaced by its default and explained in ``problems`` (or ``ignored``)."""
        ids = registry().ids()
        query = cls(
            questionnaire_id=args.get("questionnaire", current_app.config[
                "DEFAULT_QUESTIONNAIRE"]),
            period_kind=args.get("period_kind", "quarter"),
            period=args.get("period", "").strip(),
            weighting=args.get("weighting", "none"),
            include_flagged=args.get("include_flagged") in ("1", "on", "true"),
            scale_volumes=args.get("scale_volumes") in ("1", "on", "true"),
            date_from=args.get("date_from", "").strip(),
            date_to=args.get("date_to", "").strip(),
        )
        problems = query.problems
        if query.questionnaire_id not in ids:
            problems.append(_("Không có mẫu phiếu “%(value)s”: chọn một mẫu phiếu trong danh "
                              "sách.", value=_shown(query.questionnaire_id)))
            default = current_app.config["DEFAULT_QUESTIONNAIRE"]
            query.questionnaire_id = default if default in ids else ids[0]
        if query.period_kind not in PERIODS:
            problems.append(_("Cách chia kỳ “%(value)s” không hợp lệ: chọn Tháng, Quý hoặc "
                              "Năm.", value=_shown(query.period_kind)))
            query.period_kind = "quarter"
        if query.weighting not in WEIGHTINGS:
            problems.append(_("Cách gia quyền “%(value)s” không hợp lệ: chọn một cách trong "
                              "danh sách.", value=_shown(query.weighting)))
            query.weighting = "none"
        query.period = check_period(query.period, query.period_kind, problems, query.ignored)
        days = {}
        for name, label in (("date_from", _("Từ ngày")), ("date_to", _("Đến ngày"))):
            text = getattr(query, name)
            days[name] = _parse_day(text)
            if days[name] is None and text:
                problems.append(_("“%(label)s” không phải là một ngày hợp lệ (%(value)s): "
                                  "chọn ngày trong lịch, hoặc nhập theo dạng năm-tháng-ngày, "
                                  "ví dụ 2026-11-30.", label=label, value=_shown(text)))
                setattr(query, name, "")
        if None not in days.values() and days["date_from"] > days["date_to"]:
            problems.append(_("Ngày bắt đầu (%(start)s) phải trước ngày kết thúc (%(end)s): "
                              "chọn lại “Từ ngày” hoặc “Đến ngày”.",
                              start=days["date_from"].strftime("%d/%m/%Y"),
                              end=days["date_to"].strftime("%d/%m/%Y")))
        return query

    @staticmethod
    def day(text: str) -> date | None:
        """An ISO date of the date filter (None for no bound or one that is not a date:
        from_args has reported it)."""
        return _parse_day(text)

    def comment_args(self) -> dict:
        """The filters the comments page shares with the report pages (its links carry
        them)."""
        keep = ("questionnaire", "period_kind", "period", "include_flagged")
        return {k: v for k, v in self.args().items() if k in keep}

    def frame_filters(self) -> dict:
        """The date bounds as responses_frame takes them."""
        return {"date_from": self.day(self.date_from), "date_to": self.day(self.date_to)}

    def args(self, **changes) -> dict:
        values = {"questionnaire": self.questionnaire_id, "period_kind": self.period_kind,
                  "period": self.period, "weighting": self.weighting,
                  "date_from": self.date_from, "date_to": self.date_to}
        if self.include_flagged:
            values["include_flagged"] = "1"
        if self.scale_volumes:
            values["scale_volumes"] = "1"
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None)}


# Periods as the reports name them: '2026', '2026-Q4', '2026-12'.
PERIOD_PATTERNS = {"month": re.compile(r"\d{4}-(0[1-9]|1[0-2])"),
                   "quarter": re.compile(r"\d{4}-Q[1-4]"), "year": re.compile(r"\d{4}")}
PERIOD_KIND_WORDS = {"month": _l("tháng"), "quarter": _l("quý"), "year": _l("năm")}


def _shown(text: str) -> str:
    """A user's value quoted in a message: at most 30 characters."""
    return text if len(text) <= 30 else text[:29] + "…"


def _parse_day(text: str) -> date | None:
    if not text or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def check_period(period: str, kind: str, problems: list[str], ignored: list[str]) -> str:
    """The period filter if it is a period of `kind`; "" otherwise: a period of another kind
    is ignored (said in `ignored`), anything else is a problem."""
    if not period or PERIOD_PATTERNS[kind].fullmatch(period):
        return period
    if any(pattern.fullmatch(period) for pattern in PERIOD_PATTERNS.values()):
        ignored.append(_("Kỳ %(period)s không phải là một %(kind)s nên đã được bỏ qua: dưới "
                         "đây là tất cả các kỳ; chọn lại kỳ nếu cần.",
                         period=period_words(period), kind=PERIOD_KIND_WORDS[kind]))
    else:
        problems.append(_("Kỳ “%(value)s” không hợp lệ: chọn một kỳ trong danh sách.",
                          value=_shown(period)))
    return ""


@dataclass
class Report:
    query: ReportQuery
    questionnaire: object
    table: pd.DataFrame | None = None
    periods: list[str] = field(default_factory=list)
    agency_names: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    # The counter quick form's own indices (share satisfied, reasons), when it applies.
    quick: QuickIndices | None = None
    # What the weighting pooled, dropped or fell back to (the library's table.attrs["notes"]),
    # with the period fallbacks of the served volumes (kind "fallback", cells "period=...").
    notes: pd.DataFrame | None = None
    volume_notes: list[dict] = field(default_factory=list)
    # Flagged responses in scope and period per agency code: {"n": total, reason: count},
    # left out of the indices unless query.include_flagged.
    flagged: dict[str, dict[str, int]] = field(default_factory=dict)
    flagged_names: dict[str, str] = field(default_factory=dict)
    # The post-stratification totals used (agency, the field question's id, count).
    volumes: pd.DataFrame | None = None
    # The responses the indices were computed from (scope, period and flag filters applied).
    frame: pd.DataFrame | None = None
    # The scope's overall index over the last periods (report_trends.trend_points), when
    # asked for.
    trend: list[dict] = field(default_factory=list)
    # No responses at all in the scope, period and filters (report.error says so).
    empty: bool = False


def build_report(query: ReportQuery, by=("agency",), trend: bool = False,
                 cached: bool = False) -> Report:
    """Responses in the user's scope -> the analysis library's tidy table of indices (and,
    with `trend`, the scope's overall index over the last periods of the chosen kind).
    With `cached`, the result without the responses (report.frame is None) comes from the
    database cache when the data have not changed since (survey/report_cache.py)."""
    if not cached:
        return _build_report(query, by, trend)
    scope = visible_to(current_user())
    parts = {"query": query.args(), "by": list(by), "trend": trend,
             "scope": None if scope is None else sorted(scope),
             "locale": str(get_locale()), "min_n": _min_n(),
             "questionnaire": [query.questionnaire_id,
                               registry().latest(query.questionnaire_id).version]}

    def compute() -> Report:
        # The page needs the criteria and the questions with a role (field, overall rating,
        # reasons) only: the other questions' Answer rows are not read.
        report = _build_report(query, by, trend, questions=report_questions(
            registry().latest(query.questionnaire_id)))
        report.frame = None  # the page does not need the responses; keep the row small
        return report

    return report_cache.cached(get_db(), parts, compute)


def _build_report(query: ReportQuery, by, trend: bool, questions=None) -> Report:
    """build_report without the cache (``questions``: as responses_frame takes them)."""
    questionnaire = registry().latest(query.questionnaire_id)
    report = Report(query, questionnaire)
    is_quick = questionnaire.kind == COUNTER_QUICK
    if not is_quick and not questionnaire.criteria:
        report.error = _("Phiếu này không có tiêu chí đánh giá theo thang 5 mức.")
        return report
    db = get_db()
    scope = visible_to(current_user())
    frame = responses_frame(db, questionnaire, agency_ids=scope,
                            period=query.period_kind, include_flagged=True,
                            questions=questions, **query.frame_filters())
    report.periods = sorted(frame["period"].dropna().unique().tolist(), reverse=True)
    if trend and not is_quick:
        shown = frame if query.include_flagged else frame[frame["flags"] == ""]
        report.trend = trend_points(shown, questionnaire, _min_n())
    if query.period:
        frame = frame[frame["period"] == query.period]
    report.flagged = flagged_counts(frame)
    report.flagged_names = dict(zip(frame["agency"], frame["agency_name"], strict=True))
    if not query.include_flagged:
        frame = frame[frame["flags"] == ""]
    report.agency_names = dict(zip(frame["agency"], frame["agency_name"], strict=True))
    if frame.empty:
        report.empty = True
        report.error = _("Chưa có phiếu trả lời nào trong phạm vi và kỳ đã chọn.")
        return report

    elements = [(q.id, q.element) for q in questionnaire.criteria]
    options = {"weighting": "none"}
    if query.weighting == "poststrat":
        # Post-strata: agency x the service field the respondent named, or the agency alone
        # when the form does not ask the field (the quick form).
        field_question = questionnaire.roles.get(SERVICE_FIELD)
        period = query.period or (report.periods[0] if len(report.periods) == 1 else "")
        totals = None
        if not period:
            report.notices.append(_(
                "Hãy chọn một kỳ để gia quyền theo số hồ sơ đã giải quyết của kỳ đó; kết quả "
                "dưới đây không gia quyền."))
        else:
            totals, report.volume_notes = served_totals(db, period, query.scale_volumes, scope,
                                                      field_question, frame)
        if period and totals is None:
            report.notices.append(_(
                "Chưa có số liệu hồ sơ đã giải quyết cho kỳ này nên kết quả không gia quyền."))
        elif totals is not None:
            report.volumes = totals
            # The library's defaults: small and empty cells pooled within their agency,
            # responses without a field left out; each reported in table.attrs["notes"].
            options = {"weighting": "poststrat", "totals": totals}
            if field_question is None:
                report.notices.append(_(
                    "Phiếu này không hỏi lĩnh vực thủ tục nên chỉ gia quyền theo tổng số hồ sơ "
                    "đã giải quyết của từng cơ quan."))
    report.frame = frame
    if len(frame) < 2:
        report.error = _("Cần ít nhất 2 phiếu trả lời trong phạm vi và kỳ đã chọn để tính "
                         "chỉ số.")
        return report
    try:
        if is_quick:
            report.quick = quick_indices(frame, questionnaire, locale=str(get_locale()),
                                         by=list(by), min_n=_min_n(), **options)
            report.table = report.quick.criteria
        else:
            report.table = compute_indices(frame, elements, by=list(by), **options,
                                           min_n=_min_n())
        report.notes = _with_volume_notes(report.table.attrs.get("notes"), report.volume_notes)
    except AnalysisInputError as exc:
        # The library's message is for analysts at the command line (English, file terms);
        # the page says what to do in Vietnamese, the log keeps the detail.
        current_app.logger.warning("report %s not computed: %s", query.args(), exc)
        report.error = _("Không tính được chỉ số với số liệu và cách gia quyền đã chọn. "
                         "Hãy chọn “Không gia quyền” hoặc kiểm tra số liệu hồ sơ đã giải "
                         "quyết của các cơ quan.")
    return report


def _min_n() -> int:
    return int(current_app.config["MIN_GROUP_N"])


def served_totals(db, period: str, scale: bool, scope, field_question, frame: pd.DataFrame
               ) -> tuple[pd.DataFrame | None, list[dict]]:
    """Served transactions of exactly `period` for every agency in scope (see
    reports_data.resolve_volumes), per service field (the column named as the field
    question) or per agency when there is none; agencies in scope without respondents stay
    (the library reports them unrepresented). An agency with respondents but no volume for
    the period is weighted as sampled (each response once) and a sampled field without a
    volume makes its agency one cell, so one agency's gaps never stop the others' report;
    each such fallback is a note. None when no agency has a volume for the period."""
    rows = volume_rows(db, period, agency_ids=scope)
    totals, notes = resolve_volumes(rows, period, scale=scale)
    if totals.empty:
        return None, []
    column = field_question.id if field_question is not None else SERVICE_FIELD
    if field_question is None:
        totals = totals.groupby("agency", as_index=False)["count"].sum()
        sampled = frame.groupby("agency").size().rename("n").reset_index()
        keys = ["agency"]
    else:
        totals = totals.rename(columns={"service_field": column})
        answered = frame[frame[column].notna() & (frame[column].astype("string") != "")]
        sampled = answered.groupby(["agency", column]).size().rename("n").reset_index()
        sampled[column] = sampled[column].astype(str)
        keys = ["agency", column]
    merged = sampled.merge(totals, on=keys, how="left")
    filled = []
    for agency, cells in merged.groupby("agency", sort=True):
        if cells["count"].notna().all():
            continue
        known = totals[totals["agency"] == agency]
        fields = ",".join(cells.loc[cells["count"].isna(), column]) if column in cells else ""
        if known.empty:
            # No volume at all: each response counts once (N_h = n_h).
            fill = cells[keys + ["n"]].rename(columns={"n": "count"})
            how = "none"
        else:
            # Some sampled field has no volume: the agency's total spread over its sampled
            # cells in proportion to respondents, i.e. the agency is one weighting cell.
            fill = cells[keys + ["n"]].copy()
            fill["count"] = known["count"].sum() * fill["n"] / fill["n"].sum()
            fill = fill.drop(columns="n")
            how = "agency"
        totals = pd.concat([totals[totals["agency"] != agency], fill], ignore_index=True)
        filled.append((agency, how, fields, float(fill["count"].sum()), int(cells["n"].sum())))
    grand = totals["count"].sum()
    for agency, how, fields, transactions, responses in filled:
        detail = (f"{period}: no served volume, its responses count once each."
                  if how == "none" else
                  f"{period}: no served volume for field(s) {fields}; the agency is one "
                  "weighting cell.")
        notes.append({"kind": "fallback", "scope": agency,
                      "cells": f"period={period} <- {how}; service_field={fields}",
                      "responses": responses,
                      "transactions": transactions if how == "agency" else float("nan"),
                      "share": transactions / grand if how == "agency" else float("nan"),
                      "detail": detail})
    totals["count"] = totals["count"].astype("float64")
    return totals, notes


def _with_volume_notes(notes: pd.DataFrame | None, extra: list[dict]) -> pd.DataFrame | None:
    """The library's notes with the served volumes' period fallbacks appended (same
    columns), so the page and every download state them."""
    if not extra:
        return notes
    earlier = [] if notes is None else notes.to_dict("records")
    return pd.DataFrame(earlier + extra, columns=list(NOTE_COLUMNS))


def _rows(table: pd.DataFrame, by: str, level: str, key: str | None = None) -> pd.DataFrame:
    rows = table[(table["by"] == by) & (table["level"] == level)]
    if key is not None:
        rows = rows[rows["key"] == key]
    return rows


COMPARISONS = {"higher": "above", "lower": "below"}


def agency_ranking(report: Report) -> list[dict]:
    """One line per agency: overall index, interval, elements, and how it compares with
    the whole scope: "above"/"below" only where the library's test of the difference marks
    it (Holm-adjusted p below 0.05, group not small), "small" where it is not tested."""
    table = report.table
    lines = []
    # One agency x element grid, instead of filtering the element rows once per agency.
    elements = _rows(table, "agency", "element").pivot(index="agency", columns="key",
                                                        values="estimate")
    by_agency = {agency: {k: v for k, v in values.items() if not pd.isna(v)}
                 for agency, values in elements.to_dict("index").items()}
    # Plain dicts: a thousand agencies' rows without a pandas lookup per cell.
    for row in _rows(table, "agency", "overall").to_dict("records"):
        small = row["flag"] == "small_n"
        comparison = COMPARISONS.get(row["mark"], "small" if small else "same")
        lines.append({
            "agency": row["agency"],
            "name": report.agency_names.get(row["agency"], row["agency"]),
            "estimate": row["estimate"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
            "ci_method": row["ci_method"], "note": row["note"],
            "criteria_used": row["criteria_used"], "diff": row["diff"],
            "diff_p_adj": row["diff_p_adj"],
            "n": int(row["n"]), "small": small, "comparison": comparison,
            "elements": by_agency.get(row["agency"], {}),
        })
    lines.sort(key=lambda line: (math.isnan(line["estimate"]), -(line["estimate"] or 0)))
    return lines


def _query_or_400() -> ReportQuery:
    """The request's filters; for a download or a PDF, filters that cannot be used end the
    request with the reports' error page (400) saying what is wrong."""
    query = ReportQuery.from_args(request.args)
    if query.problems:
        abort(report_error(400, " ".join(query.problems)))
    return query


def report_error(status: int, message: str, back: str | None = None):
    """A staff-side error in the reports' layout (menu, a link back to the report with the
    same filters, or to `back`) with its status, for downloads and PDFs that cannot be
    made."""
    if back is None:
        back = url_for("reports.index", **ReportQuery.from_args(request.args).args())
    return make_response(render_template("reports/error.html", message=message, back=back,
                                         status=status), status)


def check_format(fmt: str) -> None:
    """A download's format: CSV or XLSX, otherwise the reports' 404 page saying so."""
    if fmt not in DOWNLOADS:
        abort(report_error(404, _("Không có kiểu tệp “%(value)s”: chọn CSV hoặc Excel (xlsx).",
                                  value=_shown(fmt))))


def unavailable(report: Report):
    """Why a download has nothing to hold, as the reports' error page: 404 when the scope
    and period have no responses, 422 when there are responses but no indices can be
    computed from them (the page's own message either way). The printable report (PDF)
    is still made: it is a document that states the same message, with the method."""
    message = report.error or _("Chưa có phiếu trả lời nào trong phạm vi và kỳ đã chọn.")
    return report_error(404 if report.empty else 422, message)


def filters_refused(template: str, query: ReportQuery, **context):
    """A report page whose filters cannot be used: the page with its menu and filter form,
    the problems said above the form, no figures, status 400."""
    fixed = replace(query, date_from="", date_to="")
    base = build_report(fixed, cached=True)
    report = Report(query, base.questionnaire, periods=base.periods,
                    error=_("Chưa hiện số liệu: hãy sửa các lựa chọn ở trên rồi bấm “Xem”."))
    context.setdefault("chart", trend_chart([]))
    return render_report(template, report, notes=[], flagged=[], trend=[], **context), 400


@bp.get("/")
@require_role("admin", "agency", "analyst")
def index():
    """The scope's indices: whole scope, elements, and the agencies ranked with their tests."""
    query = ReportQuery.from_args(request.args)
    if query.problems:
        return filters_refused("reports/index.html", query)
    report, context = scope_context(query)
    return render_report("reports/index.html", report, **context)


@bp.get("/report.pdf")
@require_role("admin", "agency", "analyst")
def scope_pdf():
    """The scope's page as a printable A4 PDF (same figures, charts, marks and notes)."""
    from . import report_pdf  # imported here: it formats with this module's helpers

    report, context = scope_context(_query_or_400())
    return report_pdf.send(report_pdf.scope_document(report, context, _scope_name()))


def scope_context(query: ReportQuery) -> tuple[Report, dict]:
    """What the scope's page shows (and its PDF prints): one cached computation."""
    report = build_report(query, trend=True, cached=True)
    context = {"trend": report.trend, "chart": trend_chart(report.trend)}
    if report.quick is not None:
        context["quick"] = quick_summary(report)
    elif report.table is not None:
        context["whole"] = _rows(report.table, "ALL", "overall").iloc[0]
        context["whole_elements"] = _rows(report.table, "ALL", "element")
        context["ranking"] = agency_ranking(report)
        levels = dict(get_db().execute(select(Agency.code, Agency.level).where(
            Agency.code.in_([line["agency"] for line in context["ranking"]]))).all())
        context["levels"] = ranking_by_level(context["ranking"], levels)
    return report, context


def quick_summary(report: Report) -> dict:
    """The quick form's share satisfied per agency (best first) and the reasons overall."""
    satisfaction = report.quick.satisfaction
    reasons = report.quick.reasons
    agencies = satisfaction[satisfaction["by"] == "agency"].copy()
    agencies["name"] = agencies["agency"].map(report.agency_names)
    agencies = agencies.sort_values("estimate", ascending=False, na_position="last")
    return {
        "whole": satisfaction[satisfaction["by"] == "ALL"].iloc[0],
        "agencies": list(agencies.itertuples(index=False)),
        "reasons": list(reasons[reasons["by"] == "ALL"].sort_values(
            "count", ascending=False).itertuples(index=False)),
    }


def render_report(template: str, report: Report, **context):
    """Render a report page with what the shared filter form needs and the weighting notes
    (all of them unless the page passes its own)."""
    context.setdefault("notes", note_lines(report))
    context.setdefault("flagged", flagged_lines(report))
    return render_template(template, report=report, query=report.query,
                           weightings=WEIGHTINGS, period_names=PERIOD_NAMES,
                           questionnaires=registry(), **context)


def agency_detail(report: Report, code: str) -> dict | None:
    """One agency's overall index (or, for the quick form, its share satisfied and reasons),
    and per element its criteria with index, interval, mean score and number who answered;
    None when it has no responses in the report."""
    if report.table is None or code not in report.agency_names:
        return None
    table = report.table
    rows = table[(table["by"] == "agency") & (table["agency"] == code)]
    by_key = {(row.level, row.key): row for row in rows.itertuples(index=False)}
    elements = []
    for element in report.questionnaire.elements:
        criteria = []
        for question in report.questionnaire.criteria:
            index = by_key.get(("criterion", question.id))
            if question.element == element.id and index is not None:
                criteria.append({"question": question, "index": index,
                                 "mean": by_key.get(("mean_score", question.id))})
        elements.append({"element": element, "index": by_key.get(("element", element.id)),
                         "criteria": criteria})
    if report.quick is None:
        return {"overall": by_key[("overall", "SIPAS")], "elements": elements, "quick": None}
    satisfaction, reasons = report.quick.satisfaction, report.quick.reasons
    mine = satisfaction[(satisfaction["by"] == "agency") & (satisfaction["agency"] == code)]
    given = reasons[(reasons["by"] == "agency") & (reasons["agency"] == code)]
    return {"overall": None, "elements": elements, "quick": {
        "row": mine.iloc[0],
        "reasons": list(given.sort_values("count", ascending=False).itertuples(index=False)),
    }}


@bp.get("/agency/<code>")
@require_role("admin", "agency", "analyst")
def agency(code):
    """One agency's indices per element and criterion, with the notes that concern it."""
    query = ReportQuery.from_args(request.args)
    if query.problems:
        found = _visible_agency(code)
        if found is None:
            abort(404)
        return filters_refused("reports/agency.html", query, name=found[1], detail=None,
                               counters=[], whole=None, coverage=[])
    report, context = agency_context(code, query)
    return render_report("reports/agency.html", report, **context)


@bp.get("/agency/<code>/report.pdf")
@require_role("admin", "agency", "analyst")
def agency_pdf(code):
    """One agency's page as a printable A4 PDF (same figures, chart, marks and notes)."""
    from . import report_pdf  # imported here: it formats with this module's helpers

    report, context = agency_context(code, _query_or_400())
    return report_pdf.send(report_pdf.agency_document(report, context, code))


# The agency page's response-rate lines without a chosen period: this many latest periods.
COVERAGE_PERIODS = 4

def agency_context(code: str, query: ReportQuery) -> tuple[Report, dict]:
    """What an agency's page shows (and its PDF prints); 404 outside the user's scope."""
    found = _visible_agency(code)
    if found is None:
        abort(404)  # outside the user's scope looks the same as not existing
    agency_id, name = found
    # The scope's table (shared with the overview, cached) gives the agency's figures and
    # the scope's beside them; only the agency's own responses are read for its trend and
    # counters.
    report = build_report(query, trend=True, cached=True)
    context = {"trend": [], "counters": [], "whole": None}
    periods = [query.period] if query.period else []
    if report.quick is None and report.table is not None:
        whole = _rows(report.table, "ALL", "overall")
        context["whole"] = whole.iloc[0] if len(whole) else None
        own = responses_frame(get_db(), report.questionnaire, agency_ids={agency_id},
                              period=query.period_kind, include_flagged=query.include_flagged,
                              with_counter=True, **query.frame_filters(),
                              questions=report_questions(report.questionnaire))
        context["trend"] = trend_points(own, report.questionnaire, _min_n())
        if not query.period:  # the latest periods of the chosen kind with responses
            periods = sorted(set(own["period"]))[-COVERAGE_PERIODS:]
        if query.period:
            own = own[own["period"] == query.period]
        context["counters"] = counter_rows(own, report.questionnaire, _min_n())
        ids = {line["counter"]: int(line["counter"]) for line in context["counters"]
               if str(line["counter"]).isdigit()}  # the frame holds ids as text
        known = coverage.counter_coverage(get_db(), agency_id, sorted(set(ids.values())),
                                          query.period or None)
        for line in context["counters"]:
            line["coverage"] = known.get(ids.get(line["counter"]))
    context["chart"] = trend_chart(context["trend"])
    # Responses against the dossiers the agency served in the period (issue 10): 3 answers
    # for 2,000 dossiers and 400 for 400 are not equally credible; above 100% is a flag.
    # Without a period: the latest periods of the chosen kind that have responses (the quick
    # form: those with volumes); a quarter or a year without its own volume adds up its
    # months when all were imported.
    if periods:
        context["coverage"] = [row for label in periods
                               for row in coverage.report_coverage(get_db(), agency_id, label)]
    else:
        context["coverage"] = [row for row in coverage.report_coverage(get_db(), agency_id,
                                                                       None) if row.responses]
    context.update(name=name, detail=agency_detail(report, code),
                   notes=note_lines(report, code), flagged=flagged_lines(report, code))
    return report, context


def _visible_agency(code: str) -> tuple[int, str] | None:
    query = select(Agency.id, Agency.name).where(Agency.code == code)
    scope = visible_to(current_user())
    if scope is not None:
        query = query.where(Agency.id.in_(scope or {-1}))
    row = get_db().execute(query).first()
    return None if row is None else (row[0], row[1])


DOWNLOADS = {
    "csv": ("text/csv", ".csv"),  # werkzeug adds "; charset=utf-8" to text types itself
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
}


@bp.get("/indices.<fmt>")
@require_role("admin", "agency", "analyst")
def download(fmt):
    """The report's table as CSV or XLSX (the XLSX with a notes sheet); ?table=notes gives
    the weighting notes alone, the quick form's ?table= one of its three tables."""
    check_format(fmt)
    query = _query_or_400()
    report = build_report(query, by=("agency", "agency,period", "period"))
    if report.table is None:
        abort(unavailable(report))
    choices = ("indices", "notes") if report.quick is None else (
        "satisfaction", "reasons", "criteria", "notes")
    choice = request.args.get("table", choices[0])
    if choice not in choices:
        abort(report_error(400, _("Không có bảng “%(value)s” để tải: dùng các liên kết tải "
                                  "trên trang báo cáo.", value=_shown(choice))))
    notes = with_flagged_notes(notes_table(report), report)
    if choice == "notes":
        table = notes if notes is not None else pd.DataFrame(columns=[*NOTE_COLUMNS, "mo_ta"])
        stem = "ghi-chu-gia-quyen"
    else:
        table = report.table if choice == "indices" else getattr(report.quick, choice)
        table = table.copy()
        table.insert(table.columns.get_loc("agency") + 1, "agency_name",
                     table["agency"].map(report.agency_names))
        table.attrs["notes"] = notes  # write_table adds it to XLSX as a sheet
        stem = "chi-so-hai-long"
    decimal = request.args.get("decimal", "point")
    if decimal not in workbook.CSV_DECIMALS:
        abort(report_error(400, _("Kiểu số thập phân “%(value)s” không hợp lệ: dùng các liên "
                                  "kết tải trên trang báo cáo.", value=_shown(decimal))))
    stem = download_stem(stem, query)
    if fmt == "xlsx" and choice != "notes":
        # Made for Excel (survey/workbook.py): a wide sheet per level, filters, notes,
        # method, and the tidy table for analysts.
        data = workbook.indices_workbook(
            report, table, notes, note_lines(report) + flagged_lines(report),
            _scope_name(), current_user().login, _min_n())
    elif fmt == "xlsx":
        buffer = io.BytesIO()
        write_table(table, buffer, format=fmt)
        data = buffer.getvalue()
    else:
        # write_table is the CLI's writer: the web download and the command line never
        # differ; decimal=comma gives the same cells as Vietnamese Excel reads them.
        data = workbook.csv_bytes(table, decimal)
        stem += "-dau-phay" if decimal == "comma" else ""
    return send_file(io.BytesIO(data), mimetype=DOWNLOADS[fmt][0], as_attachment=True,
                     download_name=stem + DOWNLOADS[fmt][1], max_age=0)


def _scope_name() -> str:
    """The user's scope in words: every agency, or the user's agency and those below."""
    user = current_user()
    if visible_to(user) is None:
        return _("Tất cả cơ quan")
    name = get_db().scalar(select(Agency.name).where(Agency.id == user.agency_id))
    return _("%(agency)s và các cơ quan trực thuộc", agency=name or "–")


def microdata(report: Report) -> pd.DataFrame:
    """The responses of a report as `python -m analysis indices` reads them: one row a
    response, codes only (criteria 1-5, blank for no answer or not applicable), the flag
    reasons and nothing else of the integrity checks; multiple choices as codes joined by
    ';'."""
    frame = report.frame.drop(columns=["agency_name"])
    for question in report.questionnaire.questions.values():
        if question.type == "multiple" and question.id in frame.columns:
            frame[question.id] = frame[question.id].map(
                lambda codes: ";".join(map(str, codes)) if isinstance(codes, list) else "")
    return frame


def microdata_labels(report: Report) -> pd.DataFrame:
    """Column, code and label of every coded column of the microdata (the second sheet)."""
    rows = [("response_id", "", _("Số thứ tự phiếu")), ("agency", "", _("Mã cơ quan")),
            ("period", "", _("Kỳ")), ("flags", "", _("Lý do gắn cờ (trống: bình thường)"))]
    rows += [("agency", code, name) for code, name in sorted(report.agency_names.items())]
    for question in report.questionnaire.questions.values():
        if question.id not in report.frame.columns:
            continue
        rows.append((question.id, "", question.text.vi))
        rows += [(question.id, str(option.code), option.text.vi)
                 for option in question.options]
    return pd.DataFrame(rows, columns=["column", "code", "label"])


def _send_table(table: pd.DataFrame, fmt: str, name: str, sheets: dict | None = None):
    """A table as a CSV or XLSX download through write_table (formula-safe cells); `sheets`
    adds named sheets to an XLSX."""
    buffer = io.BytesIO()
    write_table(table, buffer, format=fmt, sheet_name=name.split("-")[0], sheets=sheets)
    buffer.seek(0)
    return send_file(buffer, mimetype=DOWNLOADS[fmt][0], as_attachment=True,
                     download_name=name + DOWNLOADS[fmt][1], max_age=0)


def download_stem(kind: str, query: ReportQuery) -> str:
    weighting = "gia-quyen" if query.weighting == "poststrat" else "khong-gia-quyen"
    return f"{kind}-{query.questionnaire_id}-{query.period or 'tat-ca'}-{weighting}"


@bp.get("/responses.<fmt>")
@require_role("admin", "agency", "analyst")
def responses_download(fmt):
    """The responses behind the page (its scope and filters) in the format the command line
    reads; the XLSX has a second sheet of labels."""
    check_format(fmt)
    query = _query_or_400()
    report = build_report(query)
    if report.frame is None:
        abort(unavailable(report))
    return _send_table(microdata(report), fmt, download_stem("phieu", query),
                       {"labels": microdata_labels(report)})


@bp.get("/volumes.csv")
@require_role("admin", "agency", "analyst")
def volumes_download():
    """The served volumes the page's weighting used: the command line's --totals file (its
    period fallbacks are in the notes download, ?table=notes of indices.csv)."""
    query = _query_or_400()
    report = build_report(query)
    if report.volumes is None:
        abort(report_error(404, _(
            "Không có số hồ sơ đã giải quyết nào được dùng với các lựa chọn này: chọn “Gia "
            "quyền theo số hồ sơ đã giải quyết” và một kỳ đã có số liệu hồ sơ.")))
    return _send_table(report.volumes, "csv", download_stem("so-ho-so", query))


@bp.app_template_filter("pct")
def format_percent(value, digits=2) -> str:
    """Vietnamese number style (comma decimals), a dash for an undefined value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return local_number(f"{value:.{digits}f}")


@bp.app_template_filter("pvalue")
def format_p(value) -> str:
    """A p-value with three decimals, "< 0,001" below that (never "0,000"; "< 0.001" in
    English), a dash when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value < 0.001:
        return "< " + local_number("0.001")
    return format_percent(value, 3)


bp.add_app_template_filter(trend_versus, "trend_versus")
bp.add_app_template_filter(trend_p, "trend_p")

ROMAN_QUARTERS = {"1": "I", "2": "II", "3": "III", "4": "IV"}


@bp.app_template_filter("period_name")
def period_name(period: str) -> str:
    """'2026-Q4' -> 'Quý IV/2026', '2026-12' -> 'Tháng 12/2026', '2026' -> 'Năm 2026'."""
    period = str(period or "")
    if re.fullmatch(r"\d{4}-Q[1-4]", period):
        # Vietnamese writes the quarter in Roman numerals (Quý IV/2026), English does not.
        quarter = period[6] if in_english() else ROMAN_QUARTERS[period[6]]
        return _("Quý %(quarter)s/%(year)s", quarter=quarter, year=period[:4])
    if re.fullmatch(r"\d{4}-\d{2}", period):
        return _("Tháng %(month)d/%(year)s", month=int(period[5:]), year=period[:4])
    if re.fullmatch(r"\d{4}", period):
        return _("Năm %(year)s", year=period)
    return period


@bp.app_template_filter("period_words")
def period_words(period: str) -> str:
    """The period's name inside a sentence: 'quý IV/2026', 'tháng 12/2026', 'năm 2026'
    (English names, 'Q4 2026', stay as they are)."""
    name = period_name(period)
    if in_english():
        return name
    return name[:1].lower() + name[1:]


@bp.app_template_filter("thousands")
def format_count(value) -> str:
    """A count with its thousands grouped as the language writes them: 4753 -> '4.753'
    (Vietnamese), '4,753' (English)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return local_number(f"{int(value):,}")


@bp.app_template_filter("interval")
def format_interval(row) -> str:
    """'low – high' of a result row; where the library published no interval, a dash and
    the reason (no interval is made up here); an exact bound says so."""
    def get(name):
        value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
        return None if isinstance(value, float) and math.isnan(value) else value

    low, high, method = get("ci_low"), get("ci_high"), get("ci_method")
    if low is None or high is None:
        note = str(get("note") or "")
        if note == "fewer than 2 answered":
            return "– " + _("(dưới 2 người trả lời: không tính khoảng tin cậy)")
        if note.startswith("fewer than 2 effective respondents"):
            return "– " + _("(trọng số dồn vào dưới 2 người: không tính khoảng tin cậy)")
        return "–"
    shown = f"{format_percent(low)} – {format_percent(high)}"
    if method == "exact-zero-se":
        shown += " " + _("(mọi người đánh giá như nhau: khoảng chính xác)")
    elif method == "exact-small-se":
        shown += " " + _("(trọng số dồn vào rất ít người: khoảng chính xác)")
    return shown


def criteria_note(used) -> str:
    """'(tính trên 4/5 tiêu chí)' when a composite averages fewer criteria than it has
    (`criteria_used`), else ''."""
    parsed = parse_criteria_used(used)
    if parsed is None or parsed[0] == parsed[1]:
        return ""
    return _("(tính trên %(used)s tiêu chí)", used=f"{parsed[0]}/{parsed[1]}")


@bp.app_template_filter("criteria_note")
def format_criteria_note(used) -> Markup | str:
    """criteria_note on a page, marked as a warning."""
    note = criteria_note(used)
    return Markup(' <span class="warn">%s</span>') % note if note else ""


def note_lines(report: Report, code: str | None = None) -> list[str]:
    """The weighting notes in Vietnamese, one sentence each (only those about the agency
    `code` and the whole scope, when given)."""
    notes = report.notes
    if notes is None or notes.empty:
        return []
    names = _note_scope_names(report, notes)
    labels = _field_labels(report)
    lines = []
    for note in notes.itertuples(index=False):
        if code is not None and note.scope not in (code, "ALL"):
            continue
        if note.kind == "pooling_bias":
            text = _bias_text(report, code)
            if text:
                lines.append(text)
            continue
        lines.append(_note_text(note, names.get(note.scope, note.scope), labels))
    return lines


def _bias_text(report: Report, code: str | None) -> str | None:
    """The pooling allowance of the intervals, for the scope or for agency ``code``: its
    overall index's and the largest of its indices, with where that is."""
    table = report.table
    if table is None or "pooling_bias" not in table.columns:
        return None
    rows = table[table["level"].isin(list(BIAS_LEVEL_WORDS))]
    if code is not None:
        rows = rows[(rows["by"] == "agency") & (rows["agency"] == code)]
    bias = rows["pooling_bias"].abs()
    if rows.empty or not (bias > 0).any():
        return None
    top = rows.loc[bias.idxmax()]
    own = rows[(rows["level"] == "overall") & (rows["by"] == ("agency" if code else "ALL"))]
    overall = abs(float(own["pooling_bias"].iloc[0])) if len(own) else float("nan")
    place = [str(BIAS_LEVEL_WORDS[top["level"]]) % {"key": top["key"]}]
    if top["by"] == "agency":
        place.append(report.agency_names.get(top["agency"], top["agency"]))
    elif top["by"] == "ALL":
        place.append(_("toàn phạm vi"))
    answered = top["n_answered"] if pd.notna(top["n_answered"]) else top["n"]
    place.append(_("%(n)s người trả lời", n=int(answered)))
    unit = (report.agency_names.get(code, code) if code is not None
            else _("toàn phạm vi"))
    return NOTE_TEXTS["pooling_bias"] % {
        "overall": format_percent(overall, 2), "largest": format_percent(float(bias.max()), 2),
        "unit": unit, "where": ", ".join(place)}


def _field_labels(report: Report) -> dict[str, str]:
    """The service fields' names by code, in the page's language ({} without them)."""
    questionnaire = getattr(report, "questionnaire", None)
    field = questionnaire.roles.get(SERVICE_FIELD) if questionnaire is not None else None
    if field is None:
        return {}
    locale = str(get_locale() or "vi")
    # the name without its examples: "Tư pháp – hộ tịch (khai sinh, …)" as "Tư pháp – hộ tịch"
    return {str(option.code): option.text.get(locale).split(" (")[0].strip()
            for option in field.options}


def _note_scope_names(report: Report, notes: pd.DataFrame) -> dict[str, str]:
    """Agency names for the notes' scopes, also of agencies without respondents."""
    names = dict(report.agency_names)
    missing = set(notes["scope"]) - set(names) - {"ALL"}
    if missing:
        names.update(get_db().execute(
            select(Agency.code, Agency.name).where(Agency.code.in_(missing))).all())
    return names


NOTE_TEXTS = {
    "pooled_cells": _l(
        "%(agency)s: các ô gia quyền có dưới %(min_n)s phiếu (%(cells)s; %(responses)s phiếu) "
        "được gộp thành %(pools)s ô gia quyền, ô có trọng số gần nhau gộp chung (các ô này "
        "chiếm %(share)s%% số hồ sơ đã giải quyết của toàn phạm vi)."),
    "empty_cells_pooled": _l(
        "%(agency)s: không có phiếu nào ở %(cells)s; %(transactions)s hồ sơ của các ô này "
        "(%(own_share)s số hồ sơ của cơ quan, %(share)s%% của toàn phạm vi) được tính vào một ô "
        "gộp của cơ quan, như thể người dân ở đó hài lòng như những người đã trả lời; khoảng "
        "tin cậy đã được nới rộng theo mức chênh lệch giữa các lĩnh vực trong một cơ quan."),
    "fallback": _l(
        "%(agency)s: ô gộp vẫn quá ít phiếu nên cả cơ quan được gia quyền như một ô "
        "(%(cells)s)."),
    "unrepresented": _l(
        "%(agency)s: có %(transactions)s hồ sơ đã giải quyết (%(share)s%% số hồ sơ của toàn "
        "phạm vi) nhưng không có phiếu trả lời nào, nên không được đại diện trong các chỉ số "
        "có gia quyền."),
    "dropped_responses": _l(
        "%(responses)s phiếu không ghi lĩnh vực thủ tục nên không được tính trong kết quả "
        "có gia quyền."),
    "zero_cells_pooled": _l(
        "%(agency)s: %(responses)s phiếu ở %(cells)s, nơi số hồ sơ đã giải quyết là 0 hoặc "
        "chưa có, được gộp với các ô khác của cơ quan và đại diện cho số hồ sơ của ô gộp."),
    "zero_total_dropped": _l(
        "%(agency)s: có %(responses)s phiếu nhưng tổng số hồ sơ đã giải quyết là 0, nên các "
        "phiếu này không được tính trong các chỉ số có gia quyền."),
    "empty_cells_dropped": _l(
        "%(agency)s: không có phiếu nào ở %(cells)s; %(transactions)s hồ sơ (%(share)s%% số hồ "
        "sơ của toàn phạm vi) không được đại diện."),
    "pooling_bias": _l(
        "Khoảng tin cậy 95%% đã được nới rộng để tính đến độ lệch có thể có do gộp ô (ước "
        "tính bằng cách so với kết quả tính theo trọng số khi chưa gộp ô): %(overall)s điểm "
        "phần trăm ở chỉ số hài lòng chung của %(unit)s; lớn nhất %(largest)s điểm phần trăm "
        "(%(where)s). Độ lệch của từng chỉ số có trong cột pooling_bias của tệp tải về."),
}
BIAS_LEVEL_WORDS = {"overall": _l("chỉ số hài lòng chung"), "element": _l("yếu tố %(key)s"),
                    "criterion": _l("tiêu chí %(key)s")}


PERIOD_FALLBACK_TEXTS = {
    "sum": _l("%(agency)s: chưa có số hồ sơ riêng của %(period)s nên dùng tổng các kỳ từ "
              "%(first)s đến %(last)s (lĩnh vực %(fields)s)."),
    "scaled": _l("%(agency)s: chưa có số hồ sơ của %(period)s nên dùng số liệu %(larger)s "
                 "nhân với tỷ lệ số ngày %(days)s, theo lựa chọn của người xem (lĩnh vực "
                 "%(fields)s)."),
    "none": _l("%(agency)s: chưa có số hồ sơ đã giải quyết cho %(period)s nên %(responses)s "
               "phiếu của cơ quan được tính như nhau (không gia quyền); chỉ số của cơ quan "
               "vẫn đúng nhưng tỷ trọng của cơ quan trong chỉ số toàn phạm vi không theo số "
               "hồ sơ."),
    "agency": _l("%(agency)s: có phiếu ở lĩnh vực chưa có số hồ sơ (%(fields)s) nên cả cơ "
                 "quan được gia quyền như một ô theo tổng số hồ sơ của cơ quan."),
}
_PERIOD_CELLS = re.compile(
    r"period=(?P<period>\S+) <- (?:(?P<how>none|agency)|(?P<first>\S+)\.\.(?P<last>\S+)"
    r"|(?P<larger>\S+) x (?P<days>\d+/\d+)); service_field=(?P<fields>.*)")


def _field_list(fields: str | None) -> str:
    """'1,10,2' as '1, 2, 10': service fields in their order, spaced; a dash for none."""
    values = [v.strip() for v in str(fields or "").split(",") if v.strip()]
    if not values:
        return "–"
    return ", ".join(sorted(dict.fromkeys(values), key=_field_key))


def _field_key(value: str) -> tuple:
    """Service-field codes in their order: numbers by value (2 before 10), then text."""
    return (not value.isdigit(), int(value) if value.isdigit() else 0, value)


def _period_fallback_text(note, name: str) -> str | None:
    """The Vietnamese sentence of a served-volume period fallback (cells 'period=...')."""
    found = _PERIOD_CELLS.fullmatch(str(note.cells or ""))
    if found is None:
        return None
    how = found["how"] or ("sum" if found["first"] else "scaled")
    return PERIOD_FALLBACK_TEXTS[how] % {
        "agency": name, "period": period_words(found["period"]),
        "first": period_words(found["first"] or ""), "last": period_words(found["last"] or ""),
        "larger": period_words(found["larger"] or ""), "days": found["days"] or "",
        "fields": _field_list(found["fields"]),
        "responses": 0 if pd.isna(note.responses) else int(note.responses)}


_POOLS = re.compile(r"pooled into (\d+) weighting cell")
_MIN_N = re.compile(r"fewer than (\d+) respondents")
_OWN_SHARE = re.compile(r"\((\d+)% of ")
_SERVICE_FIELD_WORDS = _l("lĩnh vực")


def _cells_words(cells: str, labels: dict[str, str] | None = None) -> str:
    """The library's cells ('field=10; field=2') in words: 'lĩnh vực 2, 10', or with the
    service fields' ``labels`` (code -> name): 'lĩnh vực 2 (Đất đai), 10 (…)'. The pages
    weight by agency x service field only, so the one variable after the agency is the
    service field, whatever its question id."""
    by_variable: dict[str, list[str]] = {}
    for cell in filter(None, (part.strip() for part in cells.split(";"))):
        for pair in cell.split(", "):
            variable, _sep, value = pair.partition("=")
            by_variable.setdefault(variable if _sep else "", []).append(value if _sep else pair)
    words = []
    for variable, values in by_variable.items():
        values = sorted(dict.fromkeys(values), key=_field_key)
        label = str(_SERVICE_FIELD_WORDS) if variable else ""
        if variable and labels:
            values = [f"{v} ({labels[v]})" if v in labels else v for v in values]
        words.append(f"{label} {', '.join(values)}".strip())
    return "; ".join(words)


def _note_text(note, name: str, labels: dict[str, str] | None = None) -> str:
    """One weighting note as a Vietnamese sentence (the library's own is English);
    ``labels``: the service fields' names by code."""
    if note.kind == "fallback":
        text = _period_fallback_text(note, name)
        if text is not None:
            return text
    detail = str(note.detail or "")
    pools, min_n, own = _POOLS.search(detail), _MIN_N.search(detail), _OWN_SHARE.search(detail)
    values = {
        "agency": name, "cells": _cells_words(str(note.cells or ""), labels),
        "pools": pools.group(1) if pools else "–",
        "min_n": min_n.group(1) if min_n else "–",
        "own_share": f"{own.group(1)}%" if own else "–",
        "responses": 0 if pd.isna(note.responses) else int(note.responses),
        "transactions": "–" if pd.isna(note.transactions)
        else format_count(note.transactions),
        "share": format_percent(note.share * 100 if not pd.isna(note.share) else None, 1),
    }
    text = NOTE_TEXTS.get(note.kind)
    if text is None:  # a kind this page does not know yet: the library's own sentence
        return f"{name}: {note.detail}"
    return text % values


def notes_table(report: Report) -> pd.DataFrame | None:
    """The weighting notes as downloaded: the library's columns and the Vietnamese text."""
    notes = report.notes
    if notes is None or notes.empty:
        return None
    out = notes.copy()
    out.insert(len(out.columns), "mo_ta", note_lines(report))
    return out


def flagged_counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per agency code, its flagged responses: {"n": how many, reason code: how many}."""
    counts: dict[str, dict[str, int]] = {}
    for agency, flags in frame.loc[frame["flags"] != "", ["agency", "flags"]].itertuples(
            index=False):
        tally = counts.setdefault(agency, {"n": 0})
        tally["n"] += 1
        for code in flags.split():
            tally[code] = tally.get(code, 0) + 1
    return counts


def _reasons_text(tally: dict[str, int]) -> str:
    return "; ".join(f"{integrity.REASONS.get(code, code)}: {count}"
                     for code, count in tally.items() if code != "n")


def flagged_lines(report: Report, code: str | None = None) -> list[str]:
    """Per agency (only `code` when given), how many flagged responses were left out of the
    indices, or counted because the analyst chose so, and why (a response may have
    several reasons)."""
    lines = []
    for agency, tally in sorted(report.flagged.items()):
        if code is not None and agency != code:
            continue
        values = {"agency": report.flagged_names.get(agency, agency), "n": tally["n"],
                  "reasons": _reasons_text(tally)}
        if report.query.include_flagged:
            lines.append(_("%(agency)s: đã tính cả %(n)s phiếu bất thường theo lựa chọn của "
                           "người xem (%(reasons)s).") % values)
        else:
            lines.append(_("%(agency)s: không tính %(n)s phiếu bất thường (%(reasons)s).")
                         % values)
    return lines


def with_flagged_notes(notes: pd.DataFrame | None, report: Report) -> pd.DataFrame | None:
    """The downloaded notes with one row per agency that had flagged responses (kind
    ``flagged_excluded`` or ``flagged_included``, the reasons' counts in ``detail``)."""
    if not report.flagged:
        return notes
    kind = "flagged_included" if report.query.include_flagged else "flagged_excluded"
    rows = pd.DataFrame([
        {"kind": kind, "scope": agency, "responses": tally["n"],
         "detail": " ".join(f"{c}={n}" for c, n in tally.items() if c != "n")}
        for agency, tally in sorted(report.flagged.items())])
    rows["mo_ta"] = flagged_lines(report)
    if notes is None:
        return rows.reindex(columns=[*NOTE_COLUMNS, "mo_ta"])
    return pd.concat([notes, rows], ignore_index=True)


@bp.get("/cach-tinh")
@require_role("admin", "agency", "analyst")
def methods():
    """How the indices, intervals, weighting and comparisons are computed, in words."""
    return render_template("reports/methods.html",
                           method=workbook.method_lines())
