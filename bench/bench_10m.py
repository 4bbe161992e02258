"""Ten million responses in PostgreSQL: the province overview and one agency's page from
the database (survey/stats_sql.py), their time and peak memory, and their equality with the
in-memory path.

Usage (from the repository root):

    .venv/bin/python bench/bench_10m.py --responses 1000000      # a first run
    .venv/bin/python bench/bench_10m.py --responses 10000000     # issue 14's figure

Starts a throwaway PostgreSQL (tests/pg.py), migrates it, and loads with COPY: 1,000
agencies, one counter each, served volumes per agency x service field for the year, and
the responses of one year (2026) with their vectors filled as the write path stores them
(``service_field``, ``criteria_codes``; survey/domain/vectors.py). Answer rows are not
loaded (250 million rows at 10M; the reports read the vectors) unless ``--answers``.
Answers are correlated as real ones are: a respondent's level (agency, field and person),
half of them giving one answer to every criterion, the others varying around it; some
blanks, some "not applicable", some responses flagged, some without a service field.

Then, each in a fresh process (so its peak RSS is its own): the province overview (every
agency, post-stratified by the year's served volumes with the default pooling; and
unweighted) and one agency's page, cold (computed: one GROUP BY, finished in analysis/)
and warm (the report cache of the pages, survey/report_cache.py); and the equality of the
SQL path with the in-memory path (responses_frame + compute_indices) on about
``--sample`` responses (the first agencies). The figures are printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

YEAR = "2026"
FIELDS = 10
CHUNK = 1_000_000


def generate(rng: np.random.Generator, first_id: int, n: int, agencies: int, sizes: np.ndarray,
             bias: np.ndarray, field_mix: np.ndarray, n_crit: int) -> pd.DataFrame:
    """n synthetic responses (ids from first_id), as the response table's columns."""
    agency = rng.choice(agencies, size=n, p=sizes) + 1
    u = rng.random(n)
    field = (u[:, None] > np.cumsum(field_mix[agency - 1], axis=1)).sum(axis=1) + 1
    field = np.minimum(field, FIELDS)
    level = 3.9 + bias[agency - 1] + 0.1 * (field - 5.5) / 4.5 + rng.normal(0, 0.7, n)
    uniform = rng.random(n) < 0.5
    noise = np.where(uniform[:, None], 0.0, rng.normal(0, 0.6, (n, n_crit)))
    codes = np.clip(np.rint(level[:, None] + noise), 1, 5).astype(np.uint8) + ord("0")
    roll = rng.random((n, n_crit))
    codes[roll < 0.02] = ord(".")
    codes[(roll >= 0.02) & (roll < 0.035)] = ord("0")
    text = np.ascontiguousarray(codes).view(f"S{n_crit}").ravel().astype(f"U{n_crit}")
    seconds = rng.integers(0, 365 * 86400, n)
    moment = (np.datetime64("2025-12-31T17:00:00") + seconds.astype("timedelta64[s]"))
    flags = np.where(rng.random(n) < 0.03, "fast", "")
    field_text = np.where(rng.random(n) < 0.01, "", field.astype(str))
    return pd.DataFrame({
        "id": np.arange(first_id, first_id + n), "counter_id": agency, "agency_id": agency,
        "questionnaire_id": "sipas-service", "questionnaire_version": 2,
        "submitted_at": np.char.add(moment.astype(str), "+00"), "locale": "vi", "flags": flags,
        "channel": "web",
        "service_field": field_text, "criteria_codes": text,
    })


def copy_frame(cursor, table: str, frame: pd.DataFrame) -> None:
    """COPY a frame into a table (CSV; an empty string is NULL)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False)
    columns = ", ".join(frame.columns)
    keep = [c for c in ("flags", "locale", "channel") if c in frame.columns]
    options = f", FORCE_NOT_NULL ({', '.join(keep)})" if keep else ""
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv{options})") as copy:
        copy.write(buffer.getvalue().encode())


def load(url: str, responses: int, agencies: int, answers: bool, seed: int = 1) -> dict:
    """Migrate and load; returns the load's figures."""
    import psycopg
    from sqlalchemy import create_engine, insert

    from survey.db import upgrade
    from survey.models import Agency, Counter
    from survey.questionnaires import Registry, default_folder

    sipas = Registry(default_folder()).latest("sipas-service")
    criteria = [q.id for q in sipas.criteria]
    upgrade(url)
    rng = np.random.default_rng(seed)
    sizes = rng.pareto(1.5, agencies) + 1
    sizes /= sizes.sum()
    bias = rng.uniform(-0.6, 0.5, agencies)
    field_mix = rng.dirichlet(np.ones(FIELDS) * 0.7, agencies)
    began = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(Agency), [
            {"id": i, "code": f"A{i:04d}", "name": f"Cơ quan {i}", "level": "department"}
            for i in range(1, agencies + 1)])
        conn.execute(insert(Counter), [
            {"id": i, "agency_id": i, "label": f"Quầy {i}", "questionnaire_id": "sipas-service"}
            for i in range(1, agencies + 1)])
    engine.dispose()
    with psycopg.connect(_libpq(url)) as conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        # Served volumes of the year: about 3 transactions per response, by the field mix.
        volume = np.rint(sizes[:, None] * field_mix * responses * 3).astype(int) + 1
        rows = [(a + 1, str(f + 1), YEAR, int(volume[a, f]))
                for a in range(agencies) for f in range(FIELDS)]
        copy_frame(cur, "service_volume", pd.DataFrame(
            rows, columns=["agency_id", "service_field", "period", "transactions"]))
        loaded = 0
        for first in range(1, responses + 1, CHUNK):
            n = min(CHUNK, responses + 1 - first)
            frame = generate(rng, first, n, agencies, sizes, bias, field_mix, len(criteria))
            copy_frame(cur, "response", frame)
            if answers:
                copy_frame(cur, "answer", _answer_rows(frame, criteria))
            loaded += n
            conn.commit()
            print(f"  loaded {loaded:,} responses ({time.perf_counter() - began:.0f} s)",
                  flush=True)
        cur.execute("SELECT setval(pg_get_serial_sequence('response', 'id'), %s)", (responses,))
        conn.commit()
    seconds = time.perf_counter() - began
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        vacuum = time.perf_counter() - began
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('response'))").fetchone()
    return {"load_s": seconds, "vacuum_analyze_s": vacuum, "response_table": size[0]}


def _answer_rows(frame: pd.DataFrame, criteria: list[str]) -> pd.DataFrame:
    """The Answer rows the vectors stand for (only with --answers)."""
    codes = np.frombuffer("".join(frame["criteria_codes"]).encode(), dtype=np.uint8)
    codes = codes.reshape(len(frame), len(criteria)).astype(int) - ord("0")
    rid = np.repeat(frame["id"].to_numpy(), len(criteria))
    qid = np.tile(np.array(criteria, dtype=object), len(frame))
    value = codes.ravel()
    keep = value >= 0
    out = pd.DataFrame({"response_id": rid[keep], "question_id": qid[keep],
                        "value": value[keep]})
    field = frame[frame["service_field"] != ""]
    out = pd.concat([out, pd.DataFrame({"response_id": field["id"], "question_id": "field",
                                        "value": field["service_field"].astype(int)})])
    return out


def _libpq(url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL of tests/pg.py."""
    host = re.search(r"host=([^&]+)", url).group(1)
    port = re.search(r"port=(\d+)", url).group(1)
    database = re.search(r"@/([^?]+)", url).group(1)
    return f"host={host} port={port} user=postgres dbname={database}"


# -- the measuring child -------------------------------------------------------------------


def measure(url: str, what: str, agency_code: str, weighting: str) -> dict:
    """In a fresh process: compute (cold), then the page's cache twice (store, then warm)."""
    from survey import create_app, report_cache
    from survey.db import get_db
    from survey.models import Agency
    from survey.questionnaires import registry
    from survey.stats_sql import read_vectors, scope_indices

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": False})
    out: dict = {"what": what, "weighting": weighting}
    with app.app_context():
        db = get_db()
        sipas = registry().latest("sipas-service")
        scope = None
        if what == "agency":
            scope = {db.query(Agency.id).filter(Agency.code == agency_code).scalar()}
        options = {"agency_ids": scope, "period": YEAR, "weighting": weighting,
                   "by": ("agency",), "min_n": 30}

        def compute():
            table, notes, how = scope_indices(db, sipas, registry(), **options)
            return {"table": table, "notes": notes, "how": how}

        began = time.perf_counter()
        result = compute()
        out["cold_s"] = time.perf_counter() - began
        out["how"] = result["how"]
        out["rows"] = len(result["table"])
        out["agencies"] = int((result["table"]["by"] == "agency").sum()
                              // max(1, (result["table"]["by"] == "ALL").sum()))
        out["marked"] = int((result["table"]["mark"] != "").sum())
        began = time.perf_counter()
        vectors = read_vectors(db, sipas, registry(), with_field=weighting == "poststrat",
                               agency_ids=scope, date_from=pd.Timestamp(f"{YEAR}-01-01").date(),
                               date_to=pd.Timestamp(f"{YEAR}-12-31").date())
        out["sql_read_s"] = time.perf_counter() - began
        out["vectors"] = len(vectors.frame)
        out["responses"] = vectors.responses
        db.rollback()
        parts = {"bench": what, "weighting": weighting, "scope": sorted(scope or [])}
        began = time.perf_counter()
        # what report_cache.cached does after computing: store the result under the key
        report_cache.store(db, report_cache.cache_key(parts), report_cache.data_version(db),
                           result)
        db.commit()
        out["cache_store_s"] = time.perf_counter() - began
        began = time.perf_counter()
        warm = report_cache.cached(db, parts, lambda: None)
        out["warm_s"] = time.perf_counter() - began
        began = time.perf_counter()
        report_cache.data_version(db)
        out["data_version_s"] = time.perf_counter() - began
        assert warm is not None and len(warm["table"]) == out["rows"]
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss it is not
    carried over from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(url: str, sample: int) -> dict:
    """The SQL path against the in-memory path on the first agencies (~sample responses)."""
    from sqlalchemy import func

    from analysis import compute_indices
    from analysis.questionnaire import SERVICE_FIELD
    from survey import create_app
    from survey.db import get_db
    from survey.models import Response
    from survey.questionnaires import registry
    from survey.reports import served_totals
    from survey.reports_data import responses_frame
    from survey.stats_sql import period_bounds, scope_indices

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": False})
    out = {}
    with app.app_context():
        db = get_db()
        sipas = registry().latest("sipas-service")
        elements = [(q.id, q.element) for q in sipas.criteria]
        counts = db.query(Response.agency_id, func.count()).group_by(Response.agency_id).order_by(
            Response.agency_id).all()
        scope, total = set(), 0
        for agency_id, n in counts:
            if total >= sample:
                break
            scope.add(agency_id)
            total += n
        out["sample_responses"] = total
        out["sample_agencies"] = len(scope)
        first, last = period_bounds(YEAR)
        worst = 0.0
        for weighting, min_cell_n in (("none", None), ("poststrat", None), ("poststrat", 1)):
            drop = True if min_cell_n == 1 else None  # R's postStratify(partial = TRUE)
            got, _, how = scope_indices(db, sipas, registry(), agency_ids=scope, period=YEAR,
                                        weighting=weighting, min_cell_n=min_cell_n,
                                        drop_empty_cells=drop)
            frame = responses_frame(db, sipas, agency_ids=scope, date_from=first,
                                    date_to=last, registry=registry())
            options: dict = {}
            if weighting == "poststrat":
                totals, _ = served_totals(db, YEAR, False, scope,
                                        sipas.roles.get(SERVICE_FIELD), frame)
                options = {"weighting": "poststrat", "totals": totals}
            want = compute_indices(frame, elements, by=["agency"], min_cell_n=min_cell_n,
                                   drop_empty_cells=drop, **options)
            difference = _difference(got, want)
            worst = max(worst, difference)
            out[f"{weighting}/{min_cell_n}"] = {"how": how, "max_difference": difference}
        out["max_difference"] = worst
    return out


def _difference(got: pd.DataFrame, want: pd.DataFrame) -> float:
    """Largest absolute difference over every numeric cell (inf where NaN or text differs)."""
    if list(got.columns) != list(want.columns) or len(got) != len(want):
        return float("inf")
    worst = 0.0
    for column in want.columns:
        a, b = want[column], got[column]
        if a.dtype.kind == "f":
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                return float("inf")
            ok = ~np.isnan(x)
            scale = np.maximum(1.0, np.abs(x[ok]))
            worst = max(worst, float(np.max(np.abs(x[ok] - y[ok]) / scale, initial=0.0)))
        elif a.astype(str).tolist() != b.astype(str).tolist():
            return float("inf")
    if not got.attrs["notes"].equals(want.attrs["notes"]):
        return float("inf")
    return worst


def child(args: list[str]) -> dict:
    """Run this script's measuring part in a fresh process; its JSON line back."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env)
    if done.returncode:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Load, measure in child processes, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=200_000)
    parser.add_argument("--answers", action="store_true", help="also load the Answer rows")
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="leave the temporary server running")
    parser.add_argument("--no-load", action="store_true", help="--url holds the data already")
    parser.add_argument("--measure", nargs=4, metavar=("URL", "WHAT", "AGENCY", "WEIGHTING"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=2, metavar=("URL", "SAMPLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    if args.check:
        print(json.dumps(check(args.check[0], int(args.check[1]))))
        return

    server = None
    url = args.url
    if url is None:
        from tests.pg import TemporaryPostgres

        server = TemporaryPostgres()
        url = server.start()
        print(f"PostgreSQL: {url}")
    try:
        print(f"Loading {args.responses:,} responses, {args.agencies:,} agencies (COPY) ...",
              flush=True)
        if args.no_load:
            figures = {"load_s": 0.0, "vacuum_analyze_s": 0.0, "response_table": "(loaded before)"}
        else:
            figures = load(url, args.responses, args.agencies, args.answers)
        print(f"  load {figures['load_s']:.0f} s, VACUUM ANALYZE "
              f"{figures['vacuum_analyze_s']:.0f} s, response table {figures['response_table']}",
              flush=True)
        biggest = "A0001"
        runs = [("overview", "poststrat"), ("overview", "none"), ("agency", "poststrat")]
        for what, weighting in runs:
            result = child(["--measure", url, what, biggest, weighting])
            print(f"{what:8s} {weighting:9s} cold {result['cold_s']:6.1f} s "
                  f"(SQL read {result['sql_read_s']:5.1f} s: {result['vectors']:,} vectors for "
                  f"{result['responses']:,} responses) warm {result['warm_s']:5.2f} s "
                  f"(of which data version {result['data_version_s']:4.2f} s) "
                  f"peak RSS {result['peak_rss_mb']:,.0f} MB; {result['agencies']} agencies, "
                  f"{result['marked']} marks, path {result['how']}", flush=True)
        result = child(["--check", url, str(args.sample)])
        print(f"equality with the in-memory path on {result['sample_responses']:,} responses "
              f"({result['sample_agencies']} agencies): max relative difference "
              f"{result['max_difference']:.2e}; " + ", ".join(
                  f"{k} {v['max_difference']:.1e} ({v['how']})" for k, v in result.items()
                  if isinstance(v, dict)), flush=True)
    finally:
        if server is not None and not args.keep:
            server.stop()


if __name__ == "__main__":
    main()
