"""Agency rules: codes, names, levels, the shape of the tree, who may switch one on or off."""

from __future__ import annotations

import re
from collections.abc import Hashable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
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
        return _("thiếu tên đơn vị.")
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
    return _("cây đơn vị có tối đa %(max)d cấp; thay đổi này đưa một đơn vị xuống cấp thứ "
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
            problems[node] = _("cấp trên “%(code)s” tạo thành vòng lặp (đơn vị nằm dưới "
                               "chính nó).", code=code_of(parent_of[node]))
        elif depth[node] + height[node] - 1 > MAX_DEPTH:
            problems[node] = depth_error(depth[node] + height[node] - 1)
    return problems


def parent_map(db: Session) -> dict[int, int | None]:
    return dict(db.execute(select(Agency.id, Agency.parent_id)).all())


def parent_error(db: Session, agency_id: int | None, parent_id: int | None) -> str | None:
    """Why `parent_id` cannot be the parent of agency `agency_id` (None: a new agency)."""
    parent_of = parent_map(db)
    if parent_id is not None and parent_id not in parent_of:
        return _("không có đơn vị cấp trên này.")
    node = agency_id if agency_id is not None else object()
    parent_of[node] = parent_id

    def code_of(node_id):
        return db.scalar(select(Agency.code).where(Agency.id == node_id))

    return tree_problems(parent_of, [node], code_of).get(node)
