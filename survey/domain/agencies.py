"""Agency rules: codes, names, levels, the shape of the tree, who may switch one on or off."""

from __future__ import annotations

import re
from collections.abc import Hashable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..models import Agency, StaffUser
from .text import clean

CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,39}$")
MAX_NAME_LENGTH = 200
# A province has 3-4 levels (province, department or district, commune, team); 6 leaves
# room without letting a tree grow deep enough to slow or break the pages that draw it.
MAX_DEPTH = 6

LEVEL_LABELS = {
    "province": _l("Cấp tỉnh"),
    "department": _l("Sở, ban, ngành"),
    "district": _l("Cấp huyện"),
    "commune": _l("Cấp xã"),
    "vertical": _l("Cơ quan ngành dọc"),
}


def normalize_code(raw: str | None) -> str:
    return clean(raw).upper()


def code_error(written: str) -> str | None:
    """Why an agency code, as written, is not acceptable, or None."""
    if not CODE_PATTERN.match(normalize_code(written)):
        return _("mã “%(code)s” không hợp lệ: tối đa 40 ký tự gồm chữ cái không dấu, chữ số, "
                 "dấu chấm, gạch ngang, gạch dưới.", code=clean(written))
    return None


def name_error(name: str) -> str | None:
    """Why a cleaned agency name is not acceptable, or None."""
    if not name:
        return _("thiếu tên cơ quan.")
    if len(name) > MAX_NAME_LENGTH:
        return _("tên dài quá 200 ký tự.")
    return None


def may_switch_active(user: StaffUser, agency_id: int | None) -> bool:
    """An agency user may not switch off (or on) the agency it is attached to."""
    return user.agency_id is None or user.agency_id != agency_id


# --- the shape of the tree --------------------------------------------------------------


def tree_levels(parent_of: dict[Hashable, Hashable | None]):
    """Depth (1 = top) and height (1 = no children) of every node, and the nodes in or
    under a cycle; walked without recursion, in time linear in the number of nodes.

    `parent_of` maps every node to its parent (None, or a node missing from the map, for
    a top agency). Works on ids or codes alike.
    """
    depth: dict = {}
    cyclic: set = set()
    for start in parent_of:
        path, on_path, node = [], set(), start
        while node in parent_of and node not in depth and node not in cyclic:
            if node in on_path:  # the walk came back to itself: everything on it is cyclic
                cyclic.update(path)
                path = []
                break
            path.append(node)
            on_path.add(node)
            node = parent_of[node]
        if not path:
            continue
        if node in cyclic:
            cyclic.update(path)
            continue
        level = depth[node] if node in depth else 0
        for item in reversed(path):
            level += 1
            depth[item] = level
    height = dict.fromkeys(depth, 1)
    for node in sorted(depth, key=depth.__getitem__, reverse=True):
        parent = parent_of[node]
        if parent in height:
            height[parent] = max(height[parent], height[node] + 1)
    return depth, height, cyclic


def depth_error(deepest: int) -> str:
    return _("cây cơ quan có tối đa %(max)d cấp; thay đổi này đưa một cơ quan xuống cấp thứ "
             "%(depth)d.", max=MAX_DEPTH, depth=deepest)


def tree_problems(parent_of: dict, changed, code_of=str) -> dict:
    """{node: message} for each changed node that is in a cycle or whose subtree would go
    deeper than MAX_DEPTH once `parent_of` (the tree after the change) is applied.

    `code_of(node)` names a node's parent in the message (nodes may be ids or codes).
    """
    depth, height, cyclic = tree_levels(parent_of)
    problems = {}
    for node in changed:
        if node in cyclic:
            problems[node] = _("cấp trên “%(code)s” tạo thành vòng lặp (cơ quan nằm dưới "
                               "chính nó).", code=code_of(parent_of[node]))
        elif depth[node] + height[node] - 1 > MAX_DEPTH:
            problems[node] = depth_error(depth[node] + height[node] - 1)
    return problems


def parent_map(db: Session) -> dict[int, int | None]:
    return dict(db.execute(select(Agency.id, Agency.parent_id)).all())


# pg_advisory_xact_lock's key for changes to the agency tree (any constant of our own).
TREE_LOCK = 0x51_7A5_7EE


def lock_tree(db: Session) -> None:
    """Hold the agency tree until this transaction ends: whoever places agencies checks the
    tree and writes it as one step, so two concurrent moves cannot build a loop or a branch
    deeper than MAX_DEPTH that neither saw alone. PostgreSQL: an advisory lock; SQLite: its
    write lock, taken by an update that changes nothing."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TREE_LOCK})
    else:
        db.execute(text("UPDATE agency SET id = id WHERE 0"))


def parent_error(db: Session, agency_id: int | None, parent_id: int | None) -> str | None:
    """Why `parent_id` cannot be the parent of agency `agency_id` (None: a new agency).
    Takes the tree's lock (lock_tree) first: the caller writes and commits what it checked."""
    lock_tree(db)
    parent_of = parent_map(db)
    if parent_id is not None and parent_id not in parent_of:
        return _("không có cơ quan cấp trên này.")
    node = agency_id if agency_id is not None else object()
    parent_of[node] = parent_id

    def code_of(node_id):
        return db.scalar(select(Agency.code).where(Agency.id == node_id))

    return tree_problems(parent_of, [node], code_of).get(node)


# --- the feedback contact (the hotline or channel citizens are told about) -------------

MAX_CONTACT_LENGTH = 200
# A phone number as agencies print it: 0232 3822 123, +84 232 3822123, 1900.1234, (0232) 38…
PHONE_PATTERN = re.compile(r"^\+?[0-9(][0-9 .()-]{2,22}[0-9]$")
EMAIL_PATTERN = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
URL_PATTERN = re.compile(r"^https?://[^\s<>\"']+\.[^\s<>\"']+$", re.IGNORECASE)
# Something that starts like a link of another kind ("javascript:…", "data:…", "ftp://…");
# "Tel: 0232…" or "Email: …" (a space after the colon) is text.
SCHEME_PATTERN = re.compile(r"^[a-z][a-z0-9+.-]*:[^\s\d]", re.IGNORECASE)


def contact_kind(contact: str) -> str | None:
    """"phone", "email", "url" or "text" for a cleaned, valid contact; None when empty.

    A contact is one of: a phone number (digits with spaces, dots, dashes, parentheses, an
    optional leading +, at least 3 digits); an e-mail address; a web address starting with
    http:// or https://; or free text (e.g. "Hộp thư góp ý tại tầng 1"). The thank-you page
    links the first three (tel:, mailto:, the address) and shows text as it is.
    """
    if not contact:
        return None
    if PHONE_PATTERN.match(contact) and sum(c.isdigit() for c in contact) >= 3:
        return "phone"
    if URL_PATTERN.match(contact):
        return "url"
    if EMAIL_PATTERN.match(contact):
        return "email"
    return "text"


def contact_error(contact: str) -> str | None:
    """Why a cleaned feedback contact is not acceptable, or None (empty is acceptable)."""
    if len(contact) > MAX_CONTACT_LENGTH:
        return _("thông tin liên hệ dài quá %(max)d ký tự.", max=MAX_CONTACT_LENGTH)
    if SCHEME_PATTERN.match(contact) and not URL_PATTERN.match(contact):
        return _("ghi số điện thoại, địa chỉ e-mail, địa chỉ web bắt đầu bằng http:// hoặc "
                 "https://, hoặc một dòng chữ.")
    return None


def contact_link(contact: str | None) -> str | None:
    """The href for a valid contact (tel:, mailto: or the web address), None for text."""
    kind = contact_kind(contact or "")
    if kind == "phone":
        return "tel:" + "".join(c for c in contact if c.isdigit() or c == "+")
    if kind == "email":
        return "mailto:" + contact
    if kind == "url":
        return contact
    return None
