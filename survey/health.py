"""/healthz for load balancers: the database answers and its schema is at the code's head."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from .db import alembic_config, current_database


def code_heads() -> frozenset[str]:
    """The Alembic head revisions this code ships (read once per process: code is fixed)."""
    heads = current_app.extensions.get("survey_migration_heads")
    if heads is None:
        database = current_database()
        heads = frozenset(ScriptDirectory.from_config(alembic_config(database.url)).get_heads())
        current_app.extensions["survey_migration_heads"] = heads
    return heads


def healthz():
    """200 when the database is reachable and migrated to head, else 503 saying which."""
    expected = code_heads()
    try:
        with current_database().engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError:
        # The reason goes to the log only: the error text may name hosts and users.
        current_app.logger.exception("healthz: database unreachable")
        return {"status": "error", "database": "unreachable"}, 503
    if current != expected:
        return {"status": "error", "database": "ok", "migrations": "pending",
                "revision": sorted(current), "head": sorted(expected)}, 503
    return {"status": "ok", "database": "ok", "migrations": "current",
            "revision": sorted(current)}


def init_app(app: Flask) -> None:
    """Serve /healthz (endpoint `healthz`): public, no session, no CSRF (GET only)."""
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
