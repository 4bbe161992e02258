"""Submission throughput: the public POST /r/<token> under load vs a bare Flask "hello".

Starts gunicorn (same workers, same settings) once with bench/hello_app.py and once with
the survey app on a fresh database, drives both from local client threads for a fixed
time, then checks that every acknowledged submission (303) is in the database.
Prints figures; asserts nothing about speed.

    .venv/bin/python bench/bench_submit.py [--seconds 15] [--clients 16] [--workers 4]
        [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ANSWERS = {q: "4" for q in "a1 a2 a3 b1 b2 b3 b4 c1 c2 c3 d1 d2 d3".split()}
ANSWERS.update(field="1", gave_feedback="2", gender="1", age_band="2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(target: str, port: int, workers: int, env: dict) -> subprocess.Popen:
    command = [str(ROOT / ".venv/bin/gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "--log-level", "warning", target]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn {target} did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def drive(port: int, seconds: float, clients: int, make_request) -> tuple[int, int, float]:
    """Run `clients` threads for `seconds`; returns (acknowledged, failed, elapsed)."""
    ok = [0] * clients
    failed = [0] * clients
    stop_at = time.perf_counter() + seconds

    def worker(i):
        state = {}
        while time.perf_counter() < stop_at:
            try:
                if make_request(port, state):
                    ok[i] += 1
                else:
                    failed[i] += 1
            except OSError:
                failed[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(ok), sum(failed), time.perf_counter() - started


def hello_request(port, _state) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/")
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status == 200


def make_submit_request(token):
    def submit(port, state) -> bool:
        if "fields" not in state:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", f"/r/{token}")
            response = conn.getresponse()
            html = response.read().decode()
            conn.close()
            state["cookie"] = response.getheader("Set-Cookie").split(";", 1)[0]
            state["fields"] = dict(re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
        body = urllib.parse.urlencode(
            {**state["fields"], "submission_key": secrets.token_hex(16), **ANSWERS})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", f"/r/{token}", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": state["cookie"]})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status == 303

    return submit


def prepare_database(url: str) -> str:
    from survey import create_app
    from survey.db import get_db, upgrade
    from survey.models import Agency, Counter

    upgrade(url)
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url})
    with app.app_context():
        db = get_db()
        agency = Agency(code=f"B{secrets.token_hex(3)}", name="Sở Tư pháp", level="department")
        counter = Counter(agency=agency, label="Quầy 1", questionnaire_id="sipas-service")
        counter.issue_token()
        db.add_all([agency, counter])
        db.commit()
        return counter.token


def stored_count(url: str, token: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text(
            "SELECT count(*) FROM response r JOIN counter_token t ON t.counter_id = r.counter_id "
            "WHERE t.token = :token"), {"token": token}).scalar()
    engine.dispose()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite"
        token = prepare_database(url)
        env = {**os.environ, "SURVEY_SECRET_KEY": "bench", "SURVEY_DATABASE_URL": url,
               "PYTHONPATH": str(ROOT)}

        port = free_port()
        server = start_gunicorn("bench.hello_app:app", port, args.workers, env)
        try:
            hello_ok, hello_failed, hello_time = drive(port, args.seconds, args.clients,
                                                       hello_request)
        finally:
            stop(server)

        port = free_port()
        server = start_gunicorn("wsgi:app", port, args.workers, env)
        try:
            acked, failed, submit_time = drive(port, args.seconds, args.clients,
                                               make_submit_request(token))
        finally:
            stop(server)
        stored = stored_count(url, token)

    hello_rate = hello_ok / hello_time
    submit_rate = acked / submit_time
    engine = url.split(":", 1)[0]
    print(f"server: gunicorn -w {args.workers} (sync), {args.clients} client threads, "
          f"{args.seconds:.0f} s each, database {engine}, {os.cpu_count()} cores")
    print(f"hello route:  {hello_rate:8.1f} req/s  ({hello_ok} ok, {hello_failed} failed)")
    print(f"submissions:  {submit_rate:8.1f} req/s  ({acked} acknowledged, {failed} failed)")
    print(f"ratio submissions/hello: {submit_rate / hello_rate:.2f}  (budget >= 0.50)")
    print(f"acknowledged {acked}, stored {stored}, lost {acked - stored}")


if __name__ == "__main__":
    main()
