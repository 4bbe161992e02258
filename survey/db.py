"""Engine and per-request database session for each app; Alembic migrations and the db CLI."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """What one app needs to talk to its database."""

    def __init__(self, url: str):
        self.url = url
        kwargs = {}
        if url.startswith("sqlite"):
            # Each request gets its own connection; wait for a writer instead of failing.
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No ping before each checkout: it was a round trip on every request (a quarter
            # of the questionnaire page's CPU). A connection the server dropped (a restart,
            # a failover) fails its next statement instead; SQLAlchemy then discards the
            # whole pool, so each worker answers one request with the 500 page (nothing
            # acknowledged, nothing half-stored: one transaction) and reconnects.
            kwargs["pool_pre_ping"] = False
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # The same pool without a transaction: one read needs no BEGIN and ROLLBACK (two
        # round trips on PostgreSQL), e.g. the token lookup of the questionnaire page.
        self.reader: Engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets the public page read while a response is being written; foreign keys are
    # off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def current_database() -> Database:
    return current_app.extensions["survey_db"]


def single_read():
    """A connection outside any transaction, for one self-contained read (`with ... as`)."""
    return current_database().reader.connect()


def get_db() -> Session:
    """The request's SQLAlchemy session (named `db` everywhere), closed on teardown."""
    if "db_session" not in g:
        g.db_session = current_database().sessionmaker()
    return g.db_session


def close_session(_exc=None):
    db = g.pop("db_session", None)
    if db is not None:
        db.close()


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@click.group("db")
def db_cli():
    """Database schema commands."""


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def upgrade_command(revision):
    """Bring the database schema up to date (creates the tables on an empty database)."""
    database = current_database()
    upgrade(database.url, revision)
    click.echo(f"Database at revision {revision}: {database.engine.url.render_as_string()}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision_command(message):
    """Create a migration from the difference between the models and the database."""
    command.revision(alembic_config(current_database().url), message=message, autogenerate=True)


def init_app(app: Flask) -> None:
    app.extensions["survey_db"] = Database(app.config["DATABASE_URL"])
    app.teardown_appcontext(close_session)
    app.cli.add_command(db_cli)
