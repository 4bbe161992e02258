"""Restore drill: dump the database, restore it into a new one, compare, serve from it.

Run it on the database server (or anywhere with pg_dump/pg_restore of the server's major
version and a role allowed to CREATE DATABASE), with the app's virtual environment
(docs/deploy.md installs this file as /opt/sipas/restore_drill.py, readable by postgres):

    SURVEY_DATABASE_URL='postgresql+psycopg://postgres@/sipas?host=/run/postgresql' \\
        /opt/sipas/venv/bin/python /opt/sipas/restore_drill.py [--target NAME] [--keep]
    ... restore_drill.py --dump-file /var/backups/sipas/sipas-2026-01-31T0230.dump
    ... restore_drill.py --dump-file - < /var/backups/sipas/sipas-2026-01-31T0230.dump

`--dump-file -` reads the backup from standard input: the role that may create databases
(postgres) need not be able to read the backup folder, which belongs to the service user;
the shell that runs the command opens the file.

Without --dump-file it takes a fresh dump (same flags as the nightly backup in
docs/deploy.md) inside a snapshot whose row counts it records, so the counts compare exactly
even while citizens keep answering. With --dump-file it restores that backup and reports
its counts. Either way it then checks what an operator needs after a real restore: /healthz
answers (database reachable, migrations current) and a live counter's page answers 200.
The restored database is dropped at the end unless --keep. Exit status 0 = drill passed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

# Same format as the nightly backup: custom format, compressed, restorable table by table.
DUMP_FLAGS = ["--format=custom", "--compress=6"]


def libpq_args(url: URL) -> tuple[list[str], dict]:
    """pg_dump/pg_restore connection options and environment for a SQLAlchemy URL."""
    args = []
    host = url.host or url.query.get("host")
    if host:
        args += ["--host", host]
    port = url.port or url.query.get("port")
    if port:
        args += ["--port", str(port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    return args, env


def table_counts(conn) -> dict[str, int]:
    """Rows per table of the public schema (partitions included, on both sides alike)."""
    names = conn.execute(text(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
    )).scalars().all()
    return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in names}


def dump_with_counts(url: URL, path: Path) -> dict[str, int]:
    """pg_dump inside an exported snapshot; the row counts of that same snapshot."""
    args, env = libpq_args(url)
    engine = create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                counts = table_counts(conn)
                subprocess.run(["pg_dump", *DUMP_FLAGS, f"--snapshot={snapshot}",
                                "--file", str(path), *args, url.database],
                               check=True, env=env)
    finally:
        engine.dispose()
    return counts


def database_exists(url: URL, name: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                     {"name": name}).scalar())
    finally:
        engine.dispose()


# `--dump-file -`: the dump comes on standard input.
STDIN = Path("-")


def restore(url: URL, target: str, path: Path) -> URL:
    """CREATE DATABASE target, pg_restore the dump into it (STDIN: from standard input,
    which pg_restore inherits); the target's URL."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{target}"'))
    finally:
        engine.dispose()
    args, env = libpq_args(url)
    source = [] if path == STDIN else [str(path)]
    subprocess.run(["pg_restore", "--exit-on-error", "--no-owner", "--no-privileges",
                    *args, "--dbname", target, *source], check=True, env=env)
    return url.set(database=target)


def drop(url: URL, target: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
    finally:
        engine.dispose()


def serve_check(url: URL) -> list[str]:
    """Problems found when the app runs on the restored database (empty list = none)."""
    from survey import create_app

    url_text = url.render_as_string(hide_password=False)
    app = create_app({"DATABASE_URL": url_text, "SECRET_KEY": secrets.token_hex(32)})
    problems = []
    try:
        client = app.test_client()
        health = client.get("/healthz")
        print(f"  /healthz: {health.status_code} {health.get_json()}")
        if health.status_code != 200:
            problems.append("/healthz did not answer 200 (see above)")
        with app.extensions["survey_db"].engine.connect() as conn:
            token = conn.execute(text(
                "SELECT t.token FROM counter_token t JOIN counter c ON c.id = t.counter_id "
                "JOIN agency a ON a.id = c.agency_id "
                "WHERE t.revoked_at IS NULL AND c.active AND a.active ORDER BY t.id LIMIT 1"
            )).scalar()
        if token is None:
            print("  no live counter in this database: counter page not checked")
        else:
            page = client.get(f"/r/{token}")
            print(f"  a counter's page /r/…: {page.status_code}")
            if page.status_code != 200:
                problems.append(f"the counter page answered {page.status_code}")
    finally:
        app.extensions["survey_db"].engine.dispose()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("SURVEY_DATABASE_URL"),
                        help="the live database (default: SURVEY_DATABASE_URL)")
    parser.add_argument("--dump-file", type=Path,
                        help="restore this backup instead of taking a fresh dump "
                             "('-': read it from standard input)")
    parser.add_argument("--target", default=f"restore_drill_{secrets.token_hex(4)}",
                        help="name of the database to restore into (must not exist)")
    parser.add_argument("--keep", action="store_true", help="keep the restored database")
    options = parser.parse_args(argv)
    if not options.database_url or not options.database_url.startswith("postgresql"):
        parser.error("a PostgreSQL --database-url (or SURVEY_DATABASE_URL) is required")
    url = make_url(options.database_url)
    if options.dump_file == STDIN and sys.stdin.isatty():
        parser.error("--dump-file - reads the backup from standard input: redirect it from "
                     "the file (... --dump-file - < /var/backups/sipas/sipas-....dump)")

    if database_exists(url, options.target):
        parser.error(f"database {options.target} exists; choose another --target")
    problems = []
    try:
        with tempfile.TemporaryDirectory(prefix="restore-drill-") as folder:
            if options.dump_file:
                path, expected = options.dump_file, None
            else:
                path = Path(folder) / "drill.dump"
                expected = dump_with_counts(url, path)
                print(f"dumped {url.database} ({path.stat().st_size:,} bytes)")
            restored = restore(url, options.target, path)
        print(f"restored into {options.target}")
        engine = create_engine(restored)
        with engine.connect() as conn:
            counts = table_counts(conn)
        engine.dispose()
        for name in sorted(set(counts) | set(expected or {})):
            got = counts.get(name)
            want = expected.get(name) if expected is not None else got
            print(f"  {name:24} {got if got is not None else '-':>12}"
                  + ("" if got == want else f"   expected {want}"))
            if got != want:
                problems.append(f"table {name}: {got} rows restored, {want} dumped")
        problems += serve_check(restored)
    except subprocess.CalledProcessError as exc:
        problems.append(f"{Path(exc.cmd[0]).name} failed (exit status {exc.returncode})")
    finally:
        if not options.keep:
            drop(url, options.target)
    if problems:
        print("RESTORE DRILL FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("restore drill passed" + (f"; restored database kept: {options.target}"
                                     if options.keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
