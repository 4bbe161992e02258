"""Many counters, many responses in PostgreSQL: the reads that ask for a counter's newest.

Starts a throwaway PostgreSQL (tests/pg.py), migrates it, loads `--counters` counters (ten
per agency) and `--responses` responses with COPY (5% of them paper sheets), then times,
each the best of three:

- the staff home's and counter list's last QR response of every counter, as a national
  administrator sees them (survey/domain/activity.last_scanned), and of one agency's ten;
- the submit path's read of a counter's three latest web responses (integrity.RECENT).

    .venv/bin/python bench/bench_counters.py [--responses 3000000] [--counters 10000]

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHUNK = 1_000_000
COPY = ("COPY response (id, counter_id, agency_id, questionnaire_id, questionnaire_version, "
        "submitted_at, locale, flags, channel) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL "
        "(flags))")


def load(engine, responses: int, counters: int) -> None:
    """The agencies, counters and responses: one year, ids in time order as stored."""
    from sqlalchemy import text

    agencies = (counters + 9) // 10
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO agency (id, code, name, level, active, created_at, feedback_contact) "
            "SELECT g, 'A' || g, 'Cơ quan ' || g, 'department', true, now(), '' "
            "FROM generate_series(1, :n) g"), {"n": agencies})
        conn.execute(text(
            "INSERT INTO counter (id, agency_id, label, questionnaire_id, active, "
            "requires_receipt, created_at) SELECT g, (g - 1) / 10 + 1, 'Quầy ' || g, "
            "'sipas-service', true, false, now() FROM generate_series(1, :n) g"),
            {"n": counters})
    rng = np.random.default_rng(14)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    seconds = np.sort(rng.integers(0, 330 * 86400, responses))
    raw = engine.raw_connection()
    try:
        for first in range(0, responses, CHUNK):
            n = min(CHUNK, responses - first)
            counter = rng.integers(1, counters + 1, n)
            frame = pd.DataFrame({
                "id": np.arange(first + 1, first + n + 1), "counter_id": counter,
                "agency_id": (counter - 1) // 10 + 1, "questionnaire_id": "sipas-service",
                "questionnaire_version": 2,
                "submitted_at": start + pd.to_timedelta(seconds[first:first + n], unit="s"),
                "locale": "vi", "flags": "",
                "channel": np.where(rng.random(n) < 0.05, "paper", "web")})
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False, header=False)
            with raw.driver_connection.cursor() as cursor, cursor.copy(COPY) as copy:
                copy.write(buffer.getvalue())
            raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def best(call, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=3_000_000)
    parser.add_argument("--counters", type=int, default=10_000)
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    from survey import create_app
    from survey.db import get_db, raw_connection, raw_execute, upgrade
    from survey.domain import activity
    from survey.integrity import RECENT
    from tests.pg import TemporaryPostgres

    server = TemporaryPostgres()
    admin = server.start()
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE counters"))
        engine.dispose()
        url = server.url("counters")
        upgrade(url)
        engine = create_engine(url)
        started = time.perf_counter()
        load(engine, args.responses, args.counters)
        print(f"{args.responses:,} responses over {args.counters:,} counters loaded in "
              f"{time.perf_counter() - started:.0f} s (PostgreSQL, COPY)")
        engine.dispose()

        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url})
        every, one_agency = list(range(1, args.counters + 1)), list(range(1, 11))
        with app.app_context():
            db = get_db()
            took, seen = best(lambda: activity.last_scanned(db, every))
            print(f"last QR response of every counter ({len(seen):,} with one): "
                  f"{1000 * took:8.1f} ms")
            took, _ = best(lambda: activity.last_scanned(db, one_agency))
            print(f"last QR response of one agency's 10 counters:       {1000 * took:8.1f} ms")

            def recent():
                with raw_connection() as connection:
                    return raw_execute(connection.cursor(), RECENT,
                                       {"counter": 77, "recent": 3}).fetchall()

            took, rows = best(recent, repeat=20)
            print(f"a counter's 3 latest web responses (submit path):   {1000 * took:8.2f} ms "
                  f"({len(rows)} rows)")
        app.extensions["survey_db"].engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
