"""Served volumes (dossiers per agency × service field × period): CSV import, page and CLI."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.cli import with_appcontext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analysis.questionnaire import SERVICE_FIELD

from .auth import current_user, require_role, visible_to
from .db import get_db
from .domain.agencies import normalize_code
from .domain.audit import audit
from .domain.scope import visible_agency_ids
from .imports import MAX_ROWS, ImportFailed, Row, RowError, read_rows
from .models import Agency, ServiceVolume, StaffUser
from .questionnaires import registry
from .security import csrf

bp = Blueprint("volumes", __name__, url_prefix="/admin/volumes")

# Canonical column -> accepted header spellings (lower case, NFC).
VOLUME_COLUMNS = {
    "agency": ("agency", "agency_code", "mã cơ quan", "cơ quan", "mã đơn vị", "đơn vị"),
    "service_field": ("service_field", "field", "lĩnh vực", "mã lĩnh vực"),
    "period": ("period", "kỳ", "kỳ báo cáo"),
    "count": ("count", "transactions", "số hồ sơ", "số hồ sơ đã giải quyết"),
}
VOLUME_REQUIRED = ("agency", "service_field", "period", "count")
VOLUME_EXAMPLE = (
    "agency,service_field,period,count\n"
    "STP,1,2026-Q3,1250\n"
    "STP,2,2026-07,310\n"
    "XDONGHOI,1,2026,4800\n"
)
# A count above this is a typing error, not a province's dossiers (and fits the column).
MAX_COUNT = 100_000_000

_YEAR = r"(?P<year>(19|20|21)\d\d)"
_PERIOD_PATTERNS = (
    (re.compile(rf"{_YEAR}", re.ASCII), "year"),
    (re.compile(rf"{_YEAR}[-/ ]?[qQ](?P<quarter>[1-4])", re.ASCII), "quarter"),
    (re.compile(rf"[qQ](?P<quarter>[1-4])[-/ ]{_YEAR}", re.ASCII), "quarter"),
    (re.compile(rf"{_YEAR}-(?P<month>0?[1-9]|1[0-2])", re.ASCII), "month"),
    (re.compile(rf"(?P<month>0?[1-9]|1[0-2])/{_YEAR}", re.ASCII), "month"),
)
# Whole numbers as spreadsheets write them: 1234, 1.234, 1,234, 1 234 (groups of three).
_COUNT = re.compile(r"\d+|\d{1,3}(?:([.,\u00a0 ])\d{3})(?:\1\d{3})*", re.ASCII)


def parse_period(text: str) -> str | None:
    """'2026', '2026-Q3' or '2026-07' (also 'Q3/2026', '2026-q3', '7/2026'); None if not one."""
    value = text.strip()
    for pattern, kind in _PERIOD_PATTERNS:
        found = pattern.fullmatch(value)
        if found is None:
            continue
        year = found["year"]
        if kind == "year":
            return year
        if kind == "quarter":
            return f"{year}-Q{found['quarter']}"
        return f"{year}-{int(found['month']):02d}"
    return None


def parse_count(text: str) -> int | None:
    """A non-negative whole number of dossiers, thousands separators allowed; else None."""
    value = text.strip()
    if _COUNT.fullmatch(value) is None:
        return None
    number = int(re.sub(r"\D", "", value))
    return number if number <= MAX_COUNT else None


def service_field_codes() -> set[str]:
    """The service field codes the questionnaires offer (the options of their field question)."""
    codes = set()
    for qid in registry().ids():
        question = registry().latest(qid).roles.get(SERVICE_FIELD)
        if question is not None:
            codes.update(str(option.code) for option in question.options)
    return codes


@dataclass
class VolumeChange:
    row: Row
    agency: Agency
    service_field: str
    period: str
    count: int


def check_volume_rows(db: Session, rows: list[Row], user: StaffUser | None) -> list[VolumeChange]:
    """Check served-volume rows (from a CSV file or the JSON API); raises ImportFailed with
    every row/column error, in Vietnamese. `user` None is the command line (every agency);
    an agency user may only give volumes of its own agency's subtree."""
    visible = visible_agency_ids(db, user) if user is not None else None
    agencies = {a.code: a for a in db.scalars(select(Agency))}
    fields = service_field_codes()
    errors: list[RowError] = []
    seen: dict[tuple[str, str, str], int] = {}
    changes = []
    for row in rows:
        problems = len(errors)
        raw_agency = row.cells.get("agency", "")
        agency = agencies.get(normalize_code(raw_agency))
        if agency is None or visible is not None and agency.id not in visible:
            # Same answer for unknown and out-of-scope codes: existence does not leak.
            errors.append(row.error("agency", _("không có cơ quan mã “%(code)s”.",
                                                code=raw_agency)))
        field = row.cells.get("service_field", "")
        if field.isascii() and field.isdigit():
            field = str(int(field))
        if field not in fields:
            errors.append(row.error("service_field", _(
                "“%(value)s” không phải là mã lĩnh vực; dùng một trong: %(codes)s.",
                value=row.cells.get("service_field", ""),
                codes=", ".join(sorted(fields, key=lambda c: (len(c), c))))))
        period = parse_period(row.cells.get("period", ""))
        if period is None:
            errors.append(row.error("period", _(
                "“%(value)s” không phải là kỳ hợp lệ; ghi năm (2026), quý (2026-Q3) hoặc "
                "tháng (2026-07).", value=row.cells.get("period", ""))))
        count = parse_count(row.cells.get("count", ""))
        if count is None:
            errors.append(row.error("count", _(
                "“%(value)s” không phải là số hồ sơ; ghi một số nguyên không âm, ví dụ 1250 "
                "hoặc 1.250.", value=row.cells.get("count", ""))))
        if len(errors) > problems:
            continue
        key = (agency.code, field, period)
        if key in seen:
            errors.append(row.error("period", _(
                "cơ quan, lĩnh vực và kỳ này đã có ở dòng %(row)d.", row=seen[key])))
            continue
        seen[key] = row.number
        changes.append(VolumeChange(row, agency, field, period, count))
    if errors:
        raise ImportFailed(errors)
    return changes


def apply_volumes(db: Session, changes: list[VolumeChange],
                  user: StaffUser | None) -> tuple[int, int]:
    """Store the checked rows (a row with the same agency, field and period is replaced);
    one audit event for the whole import. The caller commits. Returns (created, updated)."""
    existing = {(v.agency_id, v.service_field, v.period): v
                for v in db.scalars(select(ServiceVolume).where(
                    ServiceVolume.agency_id.in_({c.agency.id for c in changes} or {-1})))}
    created = updated = 0
    for change in changes:
        volume = existing.get((change.agency.id, change.service_field, change.period))
        if volume is None:
            db.add(ServiceVolume(agency_id=change.agency.id, service_field=change.service_field,
                                 period=change.period, transactions=change.count))
            created += 1
        elif volume.transactions != change.count:
            volume.transactions = change.count
            updated += 1
    db.flush()
    audit(db, user, "import", "service_volume", None, None,
          {"rows": len(changes), "created": created, "updated": updated,
           "periods": sorted({c.period for c in changes})})
    return created, updated


def import_volumes_csv(db: Session, data: bytes, user: StaffUser | None) -> tuple[int, int]:
    """A volumes CSV checked and stored, all or nothing (raises ImportFailed; caller commits)."""
    rows = read_rows(data, VOLUME_COLUMNS, VOLUME_REQUIRED)
    return apply_volumes(db, check_volume_rows(db, rows, user), user)


def rows_from_records(records) -> list[Row]:
    """JSON records [{"agency", "service_field", "period", "count"}, ...] as rows numbered
    from 1 (the item's position), for :func:`check_volume_rows`."""
    if not isinstance(records, list) or not records:
        raise ImportFailed([RowError(1, None, _("cần một danh sách các dòng số liệu."))])
    if len(records) > MAX_ROWS:
        raise ImportFailed([RowError(MAX_ROWS + 1, None, _(
            "tệp có quá %(n)d dòng; hãy chia thành nhiều tệp.", n=MAX_ROWS))])
    headers = {name: name for name in VOLUME_COLUMNS}
    rows, errors = [], []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            errors.append(RowError(number, None, _("mỗi dòng phải là một đối tượng JSON.")))
            continue
        cells = {}
        for name in VOLUME_COLUMNS:
            value = record.get(name, "")
            if isinstance(value, bool) or value is None:
                value = ""  # true/false/null is no code, period or count
            elif isinstance(value, float) and value.is_integer():
                value = int(value)
            cells[name] = str(value).strip()
        unknown = set(record) - set(VOLUME_COLUMNS)
        if unknown:
            errors.append(RowError(number, sorted(unknown)[0][:40], _(
                "cột không được hỗ trợ. Các cột hợp lệ: %(columns)s.",
                columns=", ".join(VOLUME_COLUMNS))))
        rows.append(Row(number, cells, headers))
    if errors:
        raise ImportFailed(errors)
    return rows


def import_volume_records(db: Session, records, user: StaffUser | None) -> tuple[int, int]:
    """The JSON API's entry: the same checks as the CSV import, all or nothing (raises
    ImportFailed whose `errors` name the item and field; the caller commits)."""
    rows = rows_from_records(records)
    return apply_volumes(db, check_volume_rows(db, rows, user), user)


# --- the admin page ----------------------------------------------------------------------


def _summary(db: Session, scope: set[int] | None) -> list[dict]:
    """What is stored: per period, the agencies, rows and dossiers (newest period first)."""
    query = (select(ServiceVolume.period, func.count(func.distinct(ServiceVolume.agency_id)),
                    func.count(), func.sum(ServiceVolume.transactions))
             .group_by(ServiceVolume.period))
    if scope is not None:
        query = query.where(ServiceVolume.agency_id.in_(scope or {-1}))
    rows = [{"period": p, "agencies": a, "rows": n, "transactions": int(t or 0)}
            for p, a, n, t in db.execute(query)]
    return sorted(rows, key=lambda r: (r["period"][:4], r["period"]), reverse=True)


@bp.route("/", methods=["GET", "POST"])
@csrf.exempt
@require_role("admin", "agency")
def index():
    """Served volumes: what is stored per period, and the CSV import (all or nothing)."""
    from .admin import import_form  # the agency/counter imports' upload form and limit

    user = current_user()
    db = get_db()
    errors, status = [], 200
    form = import_form()
    if request.method == "POST":
        if form.validate():
            try:
                created, updated = import_volumes_csv(db, form.file.data.read(), user)
            except ImportFailed as failed:
                db.rollback()
                errors, status = failed.errors, 422
            else:
                db.commit()
                flash(_("Đã nhập xong số hồ sơ: %(created)d dòng mới, %(updated)d dòng được "
                        "cập nhật.", created=created, updated=updated), "info")
                return redirect(url_for(".index"), 303)
        else:
            status = 422
    example = list(csv.reader(io.StringIO(VOLUME_EXAMPLE)))
    return render_template("volumes/index.html", form=form, errors=errors, example=example,
                           summary=_summary(db, visible_to(user)),
                           fields=sorted(service_field_codes(), key=lambda c: (len(c), c))), \
        status


@click.command("import-volumes")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_volumes_command(path: Path):
    """Import served volumes (agency, service_field, period, count) from a CSV file."""
    # The messages are the page's, in the default language: that needs a request context.
    with current_app.test_request_context("/"):
        _import_file(path)


def _import_file(path: Path) -> None:
    db = get_db()
    try:
        created, updated = import_volumes_csv(db, path.read_bytes(), None)
    except ImportFailed as failed:
        db.rollback()
        for error in failed.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(_("Tệp chưa được nhập: không có dòng nào được lưu.")) \
            from None
    db.commit()
    click.echo(_("Đã nhập xong số hồ sơ: %(created)d dòng mới, %(updated)d dòng được cập "
                 "nhật.", created=created, updated=updated))


def init_app(app) -> None:
    app.cli.add_command(import_volumes_command)
