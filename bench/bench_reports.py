"""Report page times with many agencies and responses: cold (computed) and warm (cached).

Usage (from the repository root):

    .venv/bin/python bench/bench_reports.py --responses 1000000 --agencies 1000
    .venv/bin/python bench/bench_reports.py --responses 200000   # a quicker run

Builds a fresh SQLite database (bulk executemany inserts: agencies, one counter each,
responses spread over 8 quarters, the SIPAS criteria and grouping answers), signs in as
an analyst and times GET /reports/ (the scope's page, with its trend) and one agency's
page, each cold (first request: computed and stored) and warm (from the cache), with
the process's peak memory. The target of issue 12: the warm scope page within 2 s.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert  # noqa: E402

from survey import create_app  # noqa: E402
from survey.models import Agency, Answer, Base, Counter, Response  # noqa: E402
from survey.questionnaires import Registry, default_folder  # noqa: E402

CHUNK = 20_000


def load(url: str, responses: int, agencies: int, seed: int = 1) -> None:
    """Agencies, counters, responses and answers, inserted in bulk."""
    sipas = Registry(default_folder()).latest("sipas-service")
    criteria = [q.id for q in sipas.criteria]
    rng = random.Random(seed)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        levels = ["department", "commune", "vertical", "district"]
        conn.execute(insert(Agency), [
            {"code": f"A{i:04d}", "name": f"Cơ quan {i}", "level": levels[i % len(levels)]}
            for i in range(1, agencies + 1)])
        conn.execute(insert(Counter), [
            {"agency_id": i, "label": f"Quầy {i}", "questionnaire_id": "sipas-service"}
            for i in range(1, agencies + 1)])
        # Agencies differ in their level of satisfaction, so the tests have work to do.
        bias = [rng.uniform(-0.8, 0.8) for _ in range(agencies + 1)]
        for first in range(1, responses + 1, CHUNK):
            ids = range(first, min(first + CHUNK, responses + 1))
            rows, answers = [], []
            for rid in ids:
                agency = rng.randint(1, agencies)
                rows.append({"id": rid, "counter_id": agency, "agency_id": agency,
                             "questionnaire_id": "sipas-service", "questionnaire_version": 1,
                             "submitted_at": start + timedelta(minutes=rid * 1051200 // responses),
                             "locale": "vi", "flags": "", "channel": "web"})
                answers.append({"response_id": rid, "question_id": "field",
                                "value": rng.randint(1, 5), "text": None})
                for qid in criteria:
                    value = min(5, max(1, round(rng.gauss(3.8 + bias[agency], 1.0))))
                    answers.append({"response_id": rid, "question_id": qid, "value": value,
                                    "text": None})
            conn.execute(insert(Response), rows)
            conn.execute(insert(Answer), answers)
    engine.dispose()


def timed(client, path: str) -> float:
    began = time.perf_counter()
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=1000)
    args = parser.parse_args()
    logging.getLogger("survey.requests").setLevel(logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    began = time.perf_counter()
    load(url, args.responses, args.agencies)
    print(f"loaded {args.responses:,} responses, {args.agencies:,} agencies in "
          f"{time.perf_counter() - began:.1f} s ({folder})")
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "TESTING": True})
    from tests.factories import make_user
    from tests.staff import login

    with app.app_context():
        from survey.db import get_db

        make_user(get_db(), "bench-analyst", "analyst")
    client = app.test_client()
    login(client, "bench-analyst")
    for name, path in (("scope page", "/reports/?period_kind=quarter&period=2026-Q4"),
                       ("agency page", "/reports/agency/A0001?period_kind=quarter"
                                       "&period=2026-Q4")):
        cold = timed(client, path)
        warm = min(timed(client, path) for _ in range(3))
        print(f"{name}: cold {cold:.2f} s, warm {warm:.3f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
