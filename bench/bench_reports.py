"""Report page times with many agencies and responses: cold (computed) and warm (cached).

Usage (from the repository root):

    .venv/bin/python bench/bench_reports.py --responses 1000000 --agencies 1000
    .venv/bin/python bench/bench_reports.py --responses 200000 --no-answers   # quicker
    .venv/bin/python bench/bench_reports.py --postgres --profile 40

Builds a fresh database (SQLite, or a temporary PostgreSQL server with --postgres):
agencies, one counter each, responses spread over 8 quarters with their vectors (as the
write paths store them, survey/domain/vectors.py) and their Answer rows (field and 16
criteria; --no-answers leaves them out), inserted in bulk (executemany, COPY on
PostgreSQL). Signs in as an analyst and times GET /reports/ (the scope's page, with its
trend) cold (computed and stored) and warm (from the cache), one agency's page (which
reads the scope's cached table and computes its own responses only), then the pages
right after a new response arrives (served from the stored result while the background
refresh runs, survey/report_cache.py) and after the refresh; prints the process's peak
memory. The target of issue 12: the warm scope page within 2 s at 1,000 agencies and
1,000,000 responses.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, insert  # noqa: E402

from survey import create_app  # noqa: E402
from survey.models import Agency, Base, Counter  # noqa: E402
from survey.questionnaires import Registry, default_folder  # noqa: E402

CHUNK = 50_000
# Responses spread over 2025-2026 (8 quarters), in submission order.
START = datetime(2025, 1, 1, tzinfo=UTC)
MINUTES = 1051200  # two years


def synthetic(responses: int, agencies: int, criteria: int, seed: int = 1):
    """Per response: agency (1-based), service field 1..5 and the criteria codes 1..5
    (agencies differ in their level of satisfaction, so the tests have work to do)."""
    rng = np.random.default_rng(seed)
    agency = rng.integers(1, agencies + 1, responses)
    bias = rng.uniform(-0.8, 0.8, agencies + 1)
    field = rng.integers(1, 6, responses)
    codes = np.clip(np.rint(rng.normal(3.8 + bias[agency][:, None], 1.0,
                                       (responses, criteria))), 1, 5).astype(np.uint8)
    return agency, field, codes


def load(url: str, responses: int, agencies: int, answers: bool = True, seed: int = 1) -> None:
    """Agencies, counters, responses with their vectors (as the write paths store them)
    and, with ``answers``, their Answer rows (field + 16 criteria each), in bulk: Core
    executemany on SQLite, COPY on PostgreSQL."""
    sipas = Registry(default_folder()).latest("sipas-service")
    criteria = [q.id for q in sipas.criteria]
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    agency, field, codes = synthetic(responses, agencies, len(criteria), seed)
    text = (codes + ord("0")).view(f"S{len(criteria)}").ravel()
    with engine.begin() as conn:
        levels = ["department", "commune", "vertical", "district"]
        conn.execute(insert(Agency), [
            {"code": f"A{i:04d}", "name": f"Cơ quan {i}", "level": levels[i % len(levels)]}
            for i in range(1, agencies + 1)])
        conn.execute(insert(Counter), [
            {"agency_id": i, "label": f"Quầy {i}", "questionnaire_id": "sipas-service"}
            for i in range(1, agencies + 1)])
    postgres = engine.dialect.name == "postgresql"
    for first in range(0, responses, CHUNK):
        last = min(first + CHUNK, responses)
        at = [START + timedelta(minutes=(rid + 1) * MINUTES // responses)
              for rid in range(first, last)]
        rows = [(rid + 1, int(agency[rid]), int(agency[rid]), "sipas-service", 1, at[i],
                 "vi", "", "web", int(field[rid]), text[rid].decode())
                for i, rid in enumerate(range(first, last))]
        answer_rows = []
        if answers:
            for rid in range(first, last):
                answer_rows.append((rid + 1, "field", int(field[rid])))
                answer_rows.extend(zip([rid + 1] * len(criteria), criteria,
                                       codes[rid].tolist(), strict=True))
        with engine.begin() as conn:
            if postgres:
                _copy(conn, rows, answer_rows)
            else:
                conn.exec_driver_sql(
                    "INSERT INTO response (id, counter_id, agency_id, questionnaire_id,"
                    " questionnaire_version, submitted_at, locale, flags, channel,"
                    " service_field, criteria_codes) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(*r[:5], r[5].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[6:]) for r in rows])
                if answer_rows:
                    conn.exec_driver_sql(
                        "INSERT INTO answer (response_id, question_id, value) VALUES (?,?,?)",
                        answer_rows)
    if postgres:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT setval('response_id_seq', {int(responses)})")
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _copy(conn, rows, answer_rows) -> None:
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy("COPY response (id, counter_id, agency_id, questionnaire_id,"
                     " questionnaire_version, submitted_at, locale, flags, channel,"
                     " service_field, criteria_codes) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    if answer_rows:
        with cursor.copy("COPY answer (response_id, question_id, value) FROM STDIN") as copy:
            for row in answer_rows:
                copy.write_row(row)


def timed(client, path: str) -> float:
    began = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true",
                        help="a temporary PostgreSQL server (tests/pg.py) instead of SQLite")
    parser.add_argument("--no-answers", action="store_true",
                        help="responses with vectors only (a quicker load)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N costliest functions of the cold scope page")
    args = parser.parse_args()
    logging.getLogger("survey.requests").setLevel(logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    server = None
    if args.postgres:
        from tests.pg import TemporaryPostgres

        server = TemporaryPostgres()
        server.start()
        url = server.url("postgres")
    else:
        url = f"sqlite:///{folder / 'bench.sqlite'}"
    try:
        run(args, url, folder)
    finally:
        if server is not None:
            server.stop()


def run(args, url: str, folder: Path) -> None:
    began = time.perf_counter()
    load(url, args.responses, args.agencies, answers=not args.no_answers)
    print(f"loaded {args.responses:,} responses, {args.agencies:,} agencies "
          f"({'no answer rows' if args.no_answers else 'with answer rows'}) on "
          f"{url.split(':')[0]} in {time.perf_counter() - began:.1f} s ({folder})")
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "TESTING": True})
    from tests.factories import make_response, make_user
    from tests.staff import login

    with app.app_context():
        from survey.db import get_db

        make_user(get_db(), "bench-analyst", "analyst")
    client = app.test_client()
    login(client, "bench-analyst")
    scope = "/reports/?period_kind=quarter&period=2026-Q4"
    agency = "/reports/agency/A0001?period_kind=quarter&period=2026-Q4"
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        cold = timed(client, scope)
        profiler.disable()
        print(f"scope page: cold {cold:.2f} s (profiled)")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    else:
        print(f"scope page: cold {timed(client, scope):.2f} s")
    print(f"scope page: warm {min(timed(client, scope) for _ in range(3)):.3f} s")
    print(f"agency page (scope cached): first {timed(client, agency):.2f} s, "
          f"warm {min(timed(client, agency) for _ in range(3)):.3f} s")
    # A new response arrives: the pages keep answering from the cache while it refreshes.
    with app.app_context():
        from survey.db import get_db
        from survey.models import Counter

        db = get_db()
        make_response(db, db.get(Counter, 1), {"field": 1, "a1": 5})
    print(f"after a new response: scope page {timed(client, scope):.3f} s, "
          f"agency page {timed(client, agency):.3f} s")
    waited = wait_for_refresh(app)
    print(f"refreshed in the background within {waited:.1f} s; scope page then "
          f"{min(timed(client, scope) for _ in range(3)):.3f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) {peak:.0f} MB")


def wait_for_refresh(app, limit: float = 600) -> float:
    """Seconds until no report refresh runs any more (survey/report_cache.py)."""
    from survey import report_cache

    began = time.perf_counter()
    report_cache.wait_for_refreshes(limit)
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
