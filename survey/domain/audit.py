"""The audit log: who changed what, and what it keeps about a staff user."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import AuditEvent, StaffUser


def audit(db: Session, user: StaffUser | None, action: str, entity: str, entity_id,
          before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Record who changed what (added to the session; committed with the change itself).

    `user` is the staff user acting, or None for the command line.
    """
    event = AuditEvent(user_id=user.id if user else None, action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id),
                       before=before, after=after)
    db.add(event)
    return event


def user_snapshot(user: StaffUser) -> dict:
    """What the audit log keeps about a user (never the password hash)."""
    return {"login": user.login, "name": user.name, "role": user.role,
            "agency": user.agency.code if user.agency else None, "active": user.active}
