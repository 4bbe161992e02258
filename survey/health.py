"""/healthz for load balancers: the database answers and its schema suits this code.

Three states of the schema (the Alembic revision stored in the database):

- current: the database is at this code's head.
- pending (503): a migration of this code is not applied yet (the schema is behind the
  code, e.g. a new release installed before `flask db upgrade`). The code may need tables
  or columns that are not there: the load balancer takes the server out.
- ahead (200): the database is at a revision this code does not know, i.e. a newer release
  has migrated it while this server still runs the previous one (a rolling upgrade:
  migrate once, then restart each server in turn). Migrations are written to keep the
  previous release working (docs/deploy.md, Upgrading), so the server stays in.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from .db import alembic_config, current_database


@dataclass(frozen=True)
class CodeRevisions:
    heads: frozenset[str]  # what `flask db upgrade` brings the database to
    known: frozenset[str]  # every revision this code ships


def code_revisions() -> CodeRevisions:
    """The Alembic revisions this code ships (read once per process: code is fixed)."""
    revisions = current_app.extensions.get("survey_migration_revisions")
    if revisions is None:
        script = ScriptDirectory.from_config(alembic_config(current_database().url))
        revisions = CodeRevisions(
            heads=frozenset(script.get_heads()),
            known=frozenset(rev.revision for rev in script.walk_revisions()),
        )
        current_app.extensions["survey_migration_revisions"] = revisions
    return revisions


def healthz():
    """200 when the database is reachable and its schema is at (or ahead of) the code's
    head, else 503 saying which."""
    code = code_revisions()
    try:
        with current_database().engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError:
        # The reason goes to the log only: the error text may name hosts and users.
        current_app.logger.exception("healthz: database unreachable")
        return {"status": "error", "database": "unreachable"}, 503
    if current == code.heads:
        return {"status": "ok", "database": "ok", "migrations": "current",
                "revision": sorted(current)}
    unknown = current - code.known
    if unknown:
        # Migrated by a newer release: this (previous) release keeps serving meanwhile.
        return {"status": "ok", "database": "ok", "migrations": "ahead",
                "revision": sorted(current), "head": sorted(code.heads),
                "unknown": sorted(unknown)}
    return {"status": "error", "database": "ok", "migrations": "pending",
            "revision": sorted(current), "head": sorted(code.heads)}, 503


def init_app(app: Flask) -> None:
    """Serve /healthz (endpoint `healthz`): public, no session, no CSRF (GET only)."""
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
