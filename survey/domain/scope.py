"""Agency scope: which agencies lie below an agency, which ones a staff user may see."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Agency, StaffUser


def children_map(db: Session) -> dict[int | None, list[int]]:
    """Agency id -> ids of its direct children (None -> the top agencies)."""
    children: dict[int | None, list[int]] = {}
    for agency_id, parent_id in db.execute(select(Agency.id, Agency.parent_id)):
        children.setdefault(parent_id, []).append(agency_id)
    return children


def subtree_ids(db: Session, root_id: int) -> set[int]:
    """An agency and every agency below it (walked with a stack: any depth is safe)."""
    children = children_map(db)
    found, stack = set(), [root_id]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(children.get(current, ()))
    return found


def visible_agency_ids(db: Session, user: StaffUser) -> set[int] | None:
    """The agencies a user may see: None means all; else the user's agency and those below.

    An analyst without an agency reads every agency (e.g. the Department of Home Affairs);
    an analyst attached to an agency reads that agency's subtree, like an agency user.
    """
    if user.role == "admin" or user.role == "analyst" and user.agency_id is None:
        return None
    if user.agency_id is None:
        return set()
    return subtree_ids(db, user.agency_id)
