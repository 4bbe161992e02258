"""Counter rules: labels, and when two counters of one agency are the same counter."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Counter
from .text import clean

MAX_LABEL_LENGTH = 200


def label_error(label: str) -> str | None:
    """Why a cleaned counter label is not acceptable, or None."""
    if not label:
        return _("thiếu tên quầy.")
    if len(label) > MAX_LABEL_LENGTH:
        return _("tên quầy dài quá 200 ký tự.")
    return None


def label_key(label: str) -> str:
    """Two labels name the same counter of an agency when they are equal once cleaned."""
    return clean(label)


def same_label(db: Session, agency_id: int, label: str,
               exclude_id: int | None = None) -> list[Counter]:
    """The agency's counters whose label is the same as `label` (see label_key)."""
    key = label_key(label)
    query = select(Counter).where(Counter.agency_id == agency_id)
    if exclude_id is not None:
        query = query.where(Counter.id != exclude_id)
    return [c for c in db.scalars(query) if label_key(c.label) == key]
