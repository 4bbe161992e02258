"""CSV import of agencies and counters: read, check every row, then apply all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .domain import agencies as agency_rules
from .domain import counters as counter_rules
from .domain.audit import audit
from .domain.scope import visible_agency_ids
from .domain.text import clean
from .models import AGENCY_LEVELS, Agency, Counter, StaffUser, issue_tokens
from .questionnaires import registry

MAX_ROWS = 5000
TRUE_WORDS = {"1", "true", "yes", "x", "có", "co", "đúng"}
FALSE_WORDS = {"0", "false", "no", "không", "khong", "sai"}

# Cell values accepted for a level besides the codes above (compared in lower case).
LEVEL_WORDS = {
    "cấp tỉnh": "province", "tỉnh": "province",
    "sở, ban, ngành": "department", "sở": "department", "ban": "department",
    "cấp huyện": "district", "huyện": "district",
    "cấp xã": "commune", "xã": "commune",
    "cơ quan ngành dọc": "vertical", "ngành dọc": "vertical",
}

# Canonical column -> accepted header spellings (lower case, NFC). The pages say "cơ quan";
# "đơn vị" headers written before that are still read.
AGENCY_COLUMNS = {
    "code": ("code", "mã", "mã cơ quan", "mã đơn vị"),
    "name": ("name", "tên", "tên cơ quan", "tên đơn vị"),
    "parent": ("parent", "parent_code", "mã cấp trên", "cơ quan cấp trên", "đơn vị cấp trên",
               "cấp trên"),
    "level": ("level", "cấp", "loại"),
    "active": ("active", "hoạt động"),
    "feedback_contact": ("feedback_contact", "feedback", "đường dây nóng", "liên hệ góp ý",
                         "góp ý"),
}
AGENCY_REQUIRED = ("code", "name")
COUNTER_COLUMNS = {
    "agency": ("agency", "agency_code", "mã cơ quan", "cơ quan", "mã đơn vị", "đơn vị"),
    "label": ("label", "counter", "tên quầy", "quầy"),
    "questionnaire": ("questionnaire", "phiếu", "mẫu phiếu"),
    "active": ("active", "hoạt động"),
}
COUNTER_REQUIRED = ("agency", "label")

AGENCY_EXAMPLE = (
    "code,name,parent,level,feedback_contact\n"
    "TTPVHCC,Trung tâm Phục vụ hành chính công tỉnh,QT,province,0233 3822 123\n"
    "XDONGHOI,UBND phường Đồng Hới,QT,commune,\n"
)
COUNTER_EXAMPLE = (
    "agency,label,questionnaire\n"
    "TTPVHCC,Quầy 1 – Tiếp nhận hồ sơ,sipas-service\n"
    "XDONGHOI,Quầy Một cửa,counter-quick\n"
)


@dataclass(frozen=True)
class RowError:
    """One problem: the spreadsheet row (the header is row 1), the column, the reason."""

    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.column:
            return _("Dòng %(row)d, cột “%(column)s”: %(message)s",
                     row=self.row, column=self.column, message=self.message)
        return _("Dòng %(row)d: %(message)s", row=self.row, message=self.message)


class ImportFailed(Exception):
    """The file was not imported; `errors` says why, row by row."""

    def __init__(self, errors: list[RowError]):
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


@dataclass
class Row:
    number: int
    cells: dict[str, str]
    headers: dict[str, str]  # canonical column -> the header as written in the file

    def error(self, column: str | None, message: str) -> RowError:
        return RowError(self.number, self.headers.get(column, column) if column else None,
                        message)


def read_rows(data: bytes, columns: dict, required: tuple) -> list[Row]:
    """Decode UTF-8 (with or without BOM), detect `,` / `;` / tab, map headers to columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise ImportFailed([RowError(row, None, _(
            "tệp không phải UTF-8. Trong Excel, hãy lưu với kiểu “CSV UTF-8 (Comma "
            "delimited)”."))]) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ImportFailed([RowError(1, None, _("tệp trống hoặc thiếu dòng tiêu đề."))])
    # Excel writes ';' where the list separator is ';' (e.g. Vietnamese regional settings).
    delimiter = max((",", ";", "\t"), key=lines[0].count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    aliases = {spelling: name for name, spellings in columns.items() for spelling in spellings}
    errors, position, headers = [], {}, {}
    for index, title in enumerate(header):
        key = clean(title).lower()
        if not key:
            continue
        name = aliases.get(key)
        if name is None:
            errors.append(RowError(1, title, _("cột không được hỗ trợ. Các cột hợp lệ: "
                                               "%(columns)s.", columns=", ".join(columns))))
        elif name in position:
            errors.append(RowError(1, title, _("cột bị lặp lại.")))
        else:
            position[name], headers[name] = index, clean(title)
    for name in required:
        if name not in position:
            errors.append(RowError(1, name, _("thiếu cột bắt buộc.")))
    if errors:
        raise ImportFailed(errors)

    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # Excel leaves empty rows (",,,") at the end
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            errors.append(RowError(number, None, _("dòng có nhiều ô hơn dòng tiêu đề.")))
            continue
        values = {name: clean(cells[i]) if i < len(cells) else ""
                  for name, i in position.items()}
        rows.append(Row(number, values, headers))
        if len(rows) > MAX_ROWS:
            raise ImportFailed([RowError(number, None, _(
                "tệp có quá %(n)d dòng; hãy chia thành nhiều tệp.", n=MAX_ROWS))])
    if errors:
        raise ImportFailed(errors)
    if not rows:
        raise ImportFailed([RowError(2, None, _("tệp không có dòng dữ liệu nào."))])
    return rows


def parse_active(row: Row, errors: list) -> bool | None:
    value = row.cells.get("active", "").lower()
    if not value:
        return None
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    errors.append(row.error("active", _("“%(value)s” không hợp lệ; dùng 1 (có) hoặc 0 "
                                        "(không).", value=row.cells["active"])))
    return None


def parse_level(row: Row, errors: list) -> str | None:
    value = row.cells.get("level", "")
    if not value:
        return None
    lowered = value.lower()
    if lowered in AGENCY_LEVELS:
        return lowered
    if lowered in LEVEL_WORDS:
        return LEVEL_WORDS[lowered]
    errors.append(row.error("level", _("“%(value)s” không phải là cấp hợp lệ; dùng một "
                                       "trong: %(levels)s.", value=value,
                                       levels=", ".join(AGENCY_LEVELS))))
    return None


# --- agencies ---------------------------------------------------------------------------


@dataclass
class AgencyChange:
    row: Row
    code: str
    name: str
    parent: str | None  # code; None = keep (existing) or no parent (new)
    level: str | None
    active: bool | None
    existing: Agency | None
    feedback_contact: str | None = None  # None = keep (existing) or none (new)


def check_agencies(db: Session, data: bytes, user: StaffUser) -> list[AgencyChange]:
    """Every row checked against the database and the user's scope; raises ImportFailed.

    The same rules as the forms: an agency user manages its agency's subtree, may edit its
    own agency but neither move it nor switch it on or off; the tree stays acyclic and at
    most agency_rules.MAX_DEPTH levels deep.
    """
    rows = read_rows(data, AGENCY_COLUMNS, AGENCY_REQUIRED)
    agency_rules.lock_tree(db)  # checked and written as one step (lock_tree)
    visible = visible_agency_ids(db, user)
    root_id = user.agency_id if visible is not None else None
    by_code = {a.code: a for a in db.scalars(select(Agency))}
    errors: list[RowError] = []
    changes: dict[str, AgencyChange] = {}
    for row in rows:
        code = row.cells["code"].upper()
        name = row.cells["name"]
        parent = row.cells.get("parent", "").upper() or None
        level, active = parse_level(row, errors), parse_active(row, errors)
        contact = row.cells.get("feedback_contact") or None
        problem = agency_rules.contact_error(contact or "")
        if problem:
            errors.append(row.error("feedback_contact", problem))
        problem = agency_rules.code_error(row.cells["code"])
        if problem:
            errors.append(row.error("code", problem))
            continue
        if code in changes:
            errors.append(row.error("code", _("mã “%(code)s” đã xuất hiện ở dòng %(row)d.",
                                              code=code, row=changes[code].row.number)))
            continue
        problem = agency_rules.name_error(name)
        if problem:
            errors.append(row.error("name", problem))
        existing = by_code.get(code)
        if existing is not None and visible is not None and existing.id not in visible:
            errors.append(row.error("code", _("mã “%(code)s” đã được dùng cho một cơ quan "
                                              "khác.", code=code)))
            continue
        if (existing is not None and active is not None and active != existing.active
                and not agency_rules.may_switch_active(user, existing.id)):
            errors.append(row.error("active", _(
                "bạn không thể bật hoặc tắt cơ quan của mình.")))
        if parent == code:
            errors.append(row.error("parent", _("một cơ quan không thể là cấp trên của chính "
                                                "nó.")))
            parent = None
        changes[code] = AgencyChange(row, code, name, parent, level, active, existing,
                                     contact)

    # Parents may be defined further down the file: check them once every row is known.
    for change in changes.values():
        row, parent = change.row, change.parent
        if parent is None:
            if change.existing is None and visible is not None:
                errors.append(row.error("parent", _(
                    "cần mã cơ quan cấp trên thuộc phạm vi bạn quản lý.")))
            continue
        if change.existing is not None and change.existing.id == root_id:
            # The user's own agency: its parent (outside the scope) may only be repeated.
            current = change.existing.parent.code if change.existing.parent else None
            if parent != current:
                errors.append(row.error("parent", _(
                    "bạn không thể chuyển cơ quan của mình sang cấp trên khác.")))
            continue
        known = by_code.get(parent)
        if known is None and parent not in changes or (
                known is not None and visible is not None and known.id not in visible):
            errors.append(row.error("parent", _("không có cơ quan mã “%(code)s”.",
                                                code=parent)))
    if errors:
        raise ImportFailed(errors)

    # The tree the file would produce: no cycles, not too deep. Only rows that place an
    # agency (new ones, moved ones) are checked, so an old over-deep branch can still be
    # renamed.
    code_of = {a.id: code for code, a in by_code.items()}
    final_parent = {code: code_of.get(a.parent_id) for code, a in by_code.items()}
    placed = []
    for code, change in changes.items():
        if change.existing is None or (change.parent is not None
                                       and change.parent != final_parent[code]):
            final_parent[code] = change.parent
            placed.append(code)
    for code, message in agency_rules.tree_problems(final_parent, placed).items():
        errors.append(changes[code].row.error("parent", message))
    if errors:
        raise ImportFailed(errors)
    return list(changes.values())


def apply_agencies(db: Session, changes: list[AgencyChange],
                   user: StaffUser) -> tuple[int, int]:
    """Create and update the agencies (the caller commits). Returns (created, updated)."""
    by_code = {a.code: a for a in db.scalars(select(Agency))}
    before = {c.code: c.existing.snapshot() for c in changes if c.existing is not None}
    for change in changes:
        agency = change.existing
        if agency is None:
            agency = Agency(code=change.code, name=change.name,
                            level=change.level or "department",
                            active=True if change.active is None else change.active,
                            feedback_contact=change.feedback_contact or "")
            db.add(agency)
            by_code[change.code] = agency
        else:
            agency.name = change.name
            if change.level is not None:
                agency.level = change.level
            if change.active is not None:
                agency.active = change.active
            if change.feedback_contact is not None:
                agency.feedback_contact = change.feedback_contact
    for change in changes:
        if change.parent is not None:
            by_code[change.code].parent = by_code[change.parent]
    db.flush()
    created = updated = 0
    for change in changes:
        agency = by_code[change.code]
        after = agency.snapshot()
        if change.existing is None:
            created += 1
            audit(db, user, "import", "agency", agency.id, None, after)
        elif after != before[change.code]:
            updated += 1
            audit(db, user, "import", "agency", agency.id, before[change.code], after)
    return created, updated


# --- counters ---------------------------------------------------------------------------


@dataclass
class CounterChange:
    row: Row
    agency: Agency
    label: str
    questionnaire: str | None
    active: bool | None
    existing: Counter | None


def check_counters(db: Session, data: bytes, user: StaffUser) -> list[CounterChange]:
    """Every row checked; counters are matched by agency code and label (re-import updates),
    labels compared as counter_rules.label_key does for the forms."""
    visible = visible_agency_ids(db, user)
    rows = read_rows(data, COUNTER_COLUMNS, COUNTER_REQUIRED)
    agencies = {a.code: a for a in db.scalars(select(Agency))}
    existing: dict[tuple[int, str], list[Counter]] = {}
    # Tokens loaded with the counters: an update's audit snapshot names the live token.
    for counter in db.scalars(select(Counter).options(selectinload(Counter.tokens))):
        existing.setdefault((counter.agency_id, counter_rules.label_key(counter.label)),
                            []).append(counter)
    questionnaires = set(registry().ids())
    errors: list[RowError] = []
    seen: dict[tuple[int, str], int] = {}
    changes = []
    for row in rows:
        code = row.cells["agency"].upper()
        label = row.cells["label"]
        questionnaire = row.cells.get("questionnaire", "") or None
        active = parse_active(row, errors)
        agency = agencies.get(code)
        if agency is None or visible is not None and agency.id not in visible:
            # Same answer for unknown and out-of-scope codes: existence does not leak.
            errors.append(row.error("agency", _("không có cơ quan mã “%(code)s”.",
                                                code=row.cells["agency"])))
            continue
        problem = counter_rules.label_error(label)
        if problem:
            errors.append(row.error("label", problem))
            continue
        if questionnaire is not None and questionnaire not in questionnaires:
            errors.append(row.error("questionnaire", _(
                "không có mẫu phiếu “%(id)s”; dùng một trong: %(ids)s.", id=questionnaire,
                ids=", ".join(sorted(questionnaires)))))
            continue
        key = (agency.id, counter_rules.label_key(label))
        if key in seen:
            errors.append(row.error("label", _("quầy này đã xuất hiện ở dòng %(row)d.",
                                               row=seen[key])))
            continue
        seen[key] = row.number
        matches = existing.get(key, [])
        if len(matches) > 1:
            errors.append(row.error("label", _(
                "cơ quan có %(n)d quầy cùng tên này; hãy đổi tên cho khác nhau trước khi nhập.",
                n=len(matches))))
            continue
        changes.append(CounterChange(row, agency, label, questionnaire, active,
                                     matches[0] if matches else None))
    if errors:
        raise ImportFailed(errors)
    return changes


def apply_counters(db: Session, changes: list[CounterChange],
                   user: StaffUser) -> tuple[list[Counter], int]:
    """Create (each with a token) and update the counters (the caller commits). Returns the
    new counters (their posters are printed next) and how many were updated."""
    default = current_app.config["DEFAULT_QUESTIONNAIRE"]
    new, updated = [], 0
    for change in changes:
        counter = change.existing
        if counter is None:
            counter = Counter(agency=change.agency, label=change.label,
                              questionnaire_id=change.questionnaire or default,
                              active=True if change.active is None else change.active)
            db.add(counter)
            new.append(counter)
            continue
        before = counter.snapshot()
        if change.questionnaire is not None:
            counter.questionnaire_id = change.questionnaire
        if change.active is not None:
            counter.active = change.active
        after = counter.snapshot()
        if after != before:
            updated += 1
            audit(db, user, "import", "counter", counter.id, before, after)
    if new:
        issue_tokens(db, new)
        db.flush()
        for counter in new:
            audit(db, user, "import", "counter", counter.id, None, counter.snapshot())
    return new, updated
