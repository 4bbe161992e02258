"""Engine and per-request database session for each app; Alembic migrations and the db CLI."""

from __future__ import annotations

from contextlib import contextmanager
from operator import itemgetter
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
        # Statements of the public hot path as SQL text for the DBAPI connection (raw_execute).
        self.raw_statements: dict = {}


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


class RawStatement:
    """A Core statement compiled once for the engine's dialect, run on a DBAPI cursor.

    The public pages' few statements skip SQLAlchemy's per-execution machinery (its cache
    lookup, parameter and result processing cost more CPU than SQLite's execution); the
    parameters still go through the column types' bind processors (e.g. SQLite's text
    form of a datetime), so what is written and compared is what the ORM writes. Results
    come back as the driver gives them (SQLite: booleans as 0/1, datetimes as text).
    """

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        # Literal values built into the statement (the parameters are None until given).
        self.defaults = {name: value for name, value in compiled.params.items()
                         if value is not None}
        self.positions = compiled.positiontup  # the order of "?" (SQLite), or None
        self.processors = {
            name: processor for bind, name in compiled.bind_names.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))}
        columns = getattr(statement, "selected_columns", None) or ()
        readers = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                   for column in columns]
        self.readers = readers if any(readers) else None

    def reader(self, index: int):
        """How the column at `index` is read from the driver's value (identity if as is)."""
        read = self.readers[index] if self.readers else None
        return (lambda value: value) if read is None else (
            lambda value: None if value is None else read(value))

    def many(self, rows: list[dict]) -> list:
        """Parameters for an executemany, one set per row (every row has every name)."""
        if self.processors or self.positions is None or len(self.positions) < 2:
            return [self.parameters(row) for row in rows]
        order = itemgetter(*self.positions)
        return [order({**self.defaults, **row}) if self.defaults else order(row)
                for row in rows]

    def parameters(self, values: dict):
        values = {**self.defaults, **values}
        for name, processor in self.processors.items():
            if values.get(name) is not None:
                values[name] = processor(values[name])
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


def raw_statement(statement) -> RawStatement:
    """The statement compiled once for the current app's database (see RawStatement)."""
    database = current_database()
    compiled = database.raw_statements.get(statement)
    if compiled is None:
        compiled = database.raw_statements[statement] = RawStatement(
            statement, database.engine.dialect)
    return compiled


@contextmanager
def raw_connection():
    """The request's DBAPI connection, for statements built once (`with ... as`).

    Checked out of the pool on first use and returned at teardown (close_session), so a
    request's statements share one. On PostgreSQL it is in autocommit mode: a statement
    is its own transaction, and a caller needing more opens one (`driver_connection
    .transaction()`), so reads send no BEGIN and ROLLBACK. SQLite's driver begins a
    transaction only before a write; the caller commits it. An error leaving the block
    rolls back what is open; a connection the server dropped is discarded (not returned to
    the pool), as SQLAlchemy does for its own, so the next request reconnects.
    """
    engine = current_database().engine
    connection = g.get("raw_connection")
    if connection is None:
        connection = engine.raw_connection()
        if engine.dialect.name == "postgresql":
            connection.driver_connection.autocommit = True
        g.raw_connection = connection
    try:
        yield connection
    except BaseException as error:
        if isinstance(error, engine.dialect.loaded_dbapi.Error) and engine.dialect.is_disconnect(
                error, connection.driver_connection, None):
            g.pop("raw_connection")
            # What SQLAlchemy does on a disconnect: this connection and every other one
            # the pool holds from before (a restart dropped them all) are replaced.
            engine.pool._invalidate(connection, error)
        else:
            try:
                connection.rollback()
            except engine.dialect.loaded_dbapi.Error:  # broken: never back to the pool
                g.pop("raw_connection", None)
                connection.invalidate()
        raise


def release_raw_connection() -> None:
    """Return the request's DBAPI connection (raw_connection) to the pool, if it took one."""
    connection = g.pop("raw_connection", None)
    if connection is None:
        return
    engine = current_database().engine
    if engine.dialect.name == "postgresql":
        try:
            connection.driver_connection.autocommit = False
        except engine.dialect.loaded_dbapi.Error:  # broken: never back to the pool
            connection.invalidate()
            return
    connection.close()


def raw_execute(cursor, statement, values: dict):
    """Run a statement built once (raw_statement) on a DBAPI cursor; the cursor."""
    compiled = raw_statement(statement)
    cursor.execute(compiled.sql, compiled.parameters(values))
    return cursor


def get_db() -> Session:
    """The request's SQLAlchemy session (named `db` everywhere), closed on teardown."""
    if "db_session" not in g:
        g.db_session = current_database().sessionmaker()
    return g.db_session


def close_session(_exc=None):
    db = g.pop("db_session", None)
    if db is not None:
        db.close()
    release_raw_connection()


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
