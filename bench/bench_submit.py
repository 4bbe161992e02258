"""Public-side throughput against a bare Flask "hello", in one run, under one gunicorn setup.

Starts gunicorn with gunicorn.conf.py (same workers and settings) once with
bench/hello_app.py and once with the survey app on a fresh, seeded database, and drives each
with wrk (compiled, event-driven; `./dev bench` installs it):

1. the hello route at --connections, then at 4 × --connections with twice the wrk threads:
   if the second rate is not clearly higher, the load generator is not what limits the
   figures (wrk's own CPU time is printed too);
2. the questionnaire page, GET /r/<token> (a fresh page with a new signed key);
3. valid submissions, POST /r/<token>, each with its own signed submission key as a served
   page carries it (minted by this script with the server's secret) and random answers;
4. the same page and submissions against bench/floor_app.py, the least any implementation
   must do per request (read the counter; parse and store the response and its answers):
   its ratios are the ceiling for the app's in this setup.

Halfway through the submissions one worker is killed (SIGKILL). Then it counts acknowledged
submissions (303 to the thank-you page) against the responses stored: none may be lost.
Prints figures and ratios; asserts nothing about speed. The server's CPU time per request
is printed beside the rates: on a machine shared with other work it is the steadier figure.

    ./dev bench [--seconds 8] [--connections 64] [--workers N] [--postgres | --database-url URL]

`--in-process` measures the same three requests as direct WSGI calls instead (CPU per
request, warm, no HTTP): what the app itself costs, for profiling and before/after.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret"
# Seconds of unmeasured load before each measured phase: every worker has loaded the app,
# its questionnaires, templates and compiled statements (gunicorn starts them lazily).
WARM_UP = 2

# Counts the acknowledgements (303 to the thank-you page) per wrk thread; `done` prints them.
WRK_SCRIPT = r"""
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  acked, other, exhausted = 0, 0, 0
  bodies = {}
  local path, count = args[1], tonumber(args[2])
  if path then
    local i = 0
    for line in io.lines(path) do
      if i % count == id then table.insert(bodies, line) end
      i = i + 1
    end
  end
  nxt = 1
end
function request()
  if #bodies == 0 then return wrk.format() end
  local body = bodies[nxt]
  if body == nil then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  nxt = nxt + 1
  return wrk.format("POST", nil, nil, body)
end
function response(status, headers, body)
  local location = headers["Location"] or headers["location"] or ""
  if (#bodies == 0 and status == 200) or (status == 303 and location:find("/cam%-on$")) then
    acked = acked + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local a, o, e = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked"); o = o + t:get("other"); e = e + t:get("exhausted")
  end
  io.write(string.format("RESULT %d %d %d %d %d\n", a, o, e, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(target: str, port: int, env: dict, log: Path) -> subprocess.Popen:
    command = [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
               "-b", f"127.0.0.1:{port}", target]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                pass
            return process
        except urllib.error.HTTPError:
            return process  # serving (the app's / may answer otherwise)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn {target} did not start; see {log}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def server_cpu(master: int) -> float:
    """CPU seconds used by a gunicorn master and its workers, exited ones included (their
    time is added to the master's children's time when it reaps them)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def stat(pid: int, fields: slice) -> float:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return 0.0
        return sum(int(value) for value in text.rsplit(")", 1)[1].split()[fields]) / ticks

    try:
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        workers = []
    # After the command's ")": state is field 0, utime 11, stime 12, cutime 13, cstime 14.
    return stat(master, slice(11, 15)) + sum(stat(int(pid), slice(11, 13)) for pid in workers)


def kill_a_worker(master: int, figures: dict) -> None:
    """SIGKILL one worker mid-phase: what it acknowledged must be stored all the same."""
    try:
        worker = int(Path(f"/proc/{master}/task/{master}/children").read_text().split()[0])
        os.kill(worker, signal.SIGKILL)
        figures["killed"] = worker
    except (OSError, IndexError, ValueError):
        figures["killed"] = None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(server: subprocess.Popen, url: str, seconds: float, connections: int, threads: int,
        script: Path, *script_args: str) -> dict:
    """Run wrk; its counts (acknowledged/200, other, exhausted bodies), rate, its own CPU
    share and the server's CPU milliseconds per counted request."""
    cpu, served = children_cpu(), server_cpu(server.pid)
    output = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{round(seconds)}s",
         "--timeout", "30s", "-s", str(script), url, "--", *script_args],
        check=True, capture_output=True, text=True).stdout
    cpu, served = children_cpu() - cpu, server_cpu(server.pid) - served
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    ok, other, exhausted, micros, socket_errors = map(int, match.groups())
    elapsed = micros / 1e6
    return {"ok": ok, "other": other, "exhausted": exhausted, "socket_errors": socket_errors,
            "rate": ok / elapsed, "cpu_share": cpu / elapsed,
            "server_ms": 1000 * served / max(ok + other, 1)}


def prepare_database(url: str) -> tuple[str, int]:
    """A fresh schema with one agency and one SIPAS counter; its token and the counter's id."""
    from survey import create_app
    from survey.db import get_db, upgrade
    from survey.models import Agency, Counter

    upgrade(url)
    app = create_app({"SECRET_KEY": SECRET, "DATABASE_URL": url})
    with app.app_context():
        db = get_db()
        agency = Agency(code="BENCH", name="Sở Tư pháp", level="department")
        counter = Counter(agency=agency, label="Quầy 1", questionnaire_id="sipas-service")
        counter.issue_token()
        db.add_all([agency, counter])
        db.commit()
        token, counter_id = counter.tokens[0].token, counter.id
    app.extensions["survey_db"].engine.dispose()
    return token, counter_id


def random_answers(questionnaire, rng: random.Random) -> dict:
    """A complete, valid response: every question the skip logic shows, coded at random."""
    answers: dict = {}
    for qid, question in questionnaire.questions.items():
        if not questionnaire.is_shown(qid, answers) or question.type == "text":
            continue
        codes = sorted(question.codes)
        if question.type == "multiple":
            answers[qid] = rng.sample(codes, rng.randint(1, min(2, len(codes))))
        else:
            answers[qid] = rng.choice(codes)
    return answers


def submission_bodies(url: str, port: int, token: str, counter_id: int, count: int,
                      path: Path, cookie: str | None = None) -> str:
    """`count` POST bodies, one per line: the page's hidden fields, a key of its own, answers.

    The hidden fields come from one real page view (with its cookie, if it sets one, sent
    with every POST); the signed submission keys are minted as the page mints them.
    """
    from survey import create_app, integrity
    from survey.questionnaires import registry

    request = urllib.request.Request(f"http://127.0.0.1:{port}/r/{token}",
                                     headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request) as response:
        html = response.read().decode()
        cookie = cookie or (response.headers["Set-Cookie"] or "").split(";", 1)[0]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    app = create_app({"SECRET_KEY": SECRET, "DATABASE_URL": url})
    rng = random.Random(14)
    with app.test_request_context(), path.open("w") as out:
        questionnaire = registry().latest("sipas-service")
        for _ in range(count):
            fields = {**hidden, "submission_key": integrity.issue_key(counter_id)}
            body = urllib.parse.urlencode({**fields, **random_answers(questionnaire, rng)},
                                          doseq=True)
            out.write(body + "\n")
    app.extensions["survey_db"].engine.dispose()
    return cookie


def stored_count(url: str, counter_id: int) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM response WHERE counter_id = :c"),
                             {"c": counter_id}).scalar()
    engine.dispose()
    return count


def post_script(folder: Path, cookie: str) -> Path:
    """The counting script with the POST's headers set once for every request."""
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        + (f'wrk.headers["Cookie"] = "{cookie}"\n' if cookie else "") + WRK_SCRIPT)
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=0,
                        help="gunicorn workers (default: gunicorn.conf.py's, 2 x cores + 1)")
    parser.add_argument("--postgres", action="store_true",
                        help="a temporary PostgreSQL server (tests/pg.py)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep-log", default="", help="copy gunicorn's log (and the app's) here")
    parser.add_argument("--max-rate", type=int, default=4000,
                        help="submissions/s the bodies prepared must cover")
    parser.add_argument("--in-process", action="store_true",
                        help="no gunicorn or wrk: CPU per request of direct WSGI calls")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.in_process:
        sys.exit("wrk not found: run `./dev bench`, which installs it (Debian package wrk)")

    server_pg = None
    with tempfile.TemporaryDirectory(prefix="sipas-bench-") as tmp:
        folder = Path(tmp)
        url = args.database_url
        if args.postgres:
            from tests.pg import TemporaryPostgres

            server_pg = TemporaryPostgres()
            admin = server_pg.start()
            from sqlalchemy import create_engine, text

            engine = create_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text("CREATE DATABASE bench"))
            engine.dispose()
            url = server_pg.url("bench")
        url = url or f"sqlite:///{folder}/bench.sqlite"
        try:
            if args.in_process:
                in_process(url)
                return
            figures = run(args, url, folder)
        finally:
            if server_pg is not None:
                server_pg.stop()
    report(args, url, figures)


def run(args, url: str, folder: Path) -> dict:
    token, counter_id = prepare_database(url)
    env = {**os.environ, "SURVEY_SECRET_KEY": SECRET, "SURVEY_DATABASE_URL": url,
           "PYTHONPATH": str(ROOT),
           "GUNICORN_LOG_LEVEL": "warning", "GUNICORN_ACCESS_LOG": str(folder / "access.log")}
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    log = folder / "gunicorn.log"
    counting = folder / "count.lua"
    counting.write_text(WRK_SCRIPT)
    seconds, connections, threads = args.seconds, args.connections, args.threads
    load = os.getloadavg()[0]
    figures = {}

    port = free_port()
    server = start_gunicorn("bench.hello_app:app", port, env, log)
    try:
        base = f"http://127.0.0.1:{port}/"
        wrk(server, base, WARM_UP, connections, threads, counting)
        figures["hello"] = wrk(server, base, seconds, connections, threads, counting)
        figures["hello_more"] = wrk(server, base, seconds, connections * 4, threads * 2,
                                    counting)
    finally:
        stop(server)

    port = free_port()
    server = start_gunicorn("wsgi:app", port, env, log)
    try:
        page = f"http://127.0.0.1:{port}/r/{token}"
        with urllib.request.urlopen(page) as response:
            page_bytes = len(response.read())
        wrk(server, page, WARM_UP, connections, threads, counting)
        figures["page"] = wrk(server, page, seconds, connections, threads, counting)
        warm, bodies = folder / "warm.txt", folder / "bodies.txt"
        cookie = submission_bodies(url, port, token, counter_id,
                                   int(args.max_rate * WARM_UP), warm)
        submission_bodies(url, port, token, counter_id, int(args.max_rate * seconds), bodies,
                          cookie)
        script = post_script(folder, cookie)
        killer = threading.Timer(seconds / 2, kill_a_worker, (server.pid, figures))
        killer.start()
        figures["warm_submit"] = wrk(server, page, WARM_UP, connections, threads, script,
                                     str(warm), str(threads))
        figures["submit"] = wrk(server, page, seconds, connections, threads, script,
                                str(bodies), str(threads))
        killer.join()
    finally:
        stop(server)
    if args.keep_log:
        shutil.copy(log, args.keep_log)
    figures["stored"] = stored_count(url, counter_id)

    # The floor, on the same database, page size and bodies (its rows are not counted).
    port = free_port()
    server = start_gunicorn("bench.floor_app:app", port,
                            {**env, "FLOOR_PAGE_BYTES": str(page_bytes)}, log)
    try:
        page = f"http://127.0.0.1:{port}/r/{token}"
        wrk(server, page, WARM_UP, connections, threads, counting)
        figures["floor_page"] = wrk(server, page, seconds, connections, threads, counting)
        wrk(server, page, WARM_UP, connections, threads, script, str(warm), str(threads))
        figures["floor_submit"] = wrk(server, page, seconds, connections, threads, script,
                                      str(bodies), str(threads))
    finally:
        stop(server)
    figures["load"] = load
    return figures


def in_process(url: str, calls: int = 3000, rounds: int = 5) -> None:
    """Warm CPU time per request of direct WSGI calls (no HTTP, no gunicorn), with the app
    built as gunicorn builds it (preloaded, warmed, the app's request line off): the hello
    route, the page and valid submissions at one counter, as in the bench. Prints the
    lowest and the median of `rounds` rounds: on a shared machine the lowest is the
    steadier. Where the time goes inside: run it under cProfile."""
    import io
    import logging

    from werkzeug.test import EnvironBuilder

    token, counter_id = prepare_database(url)
    os.environ.update(SURVEY_SECRET_KEY=SECRET, SURVEY_DATABASE_URL=url)
    logging.getLogger("survey.requests").setLevel(logging.WARNING)  # as gunicorn.conf.py
    from bench.hello_app import app as hello
    from survey import create_app, integrity
    from survey.questionnaires import registry
    from survey.respond import warm_up

    app = create_app()
    warm_up(app)
    rng = random.Random(14)
    with app.test_request_context():
        questionnaire = registry().latest("sipas-service")
        bodies = iter([urllib.parse.urlencode(
            {"started": integrity.start_stamp(),
             "submission_key": integrity.issue_key(counter_id),
             **random_answers(questionnaire, rng)}, doseq=True).encode()
            for _ in range(calls + 100)])

    def environ(method: str, path: str, body: bytes = b"") -> dict:
        return EnvironBuilder(
            path=path, method=method, data=body or None,
            content_type="application/x-www-form-urlencoded" if body else None,
            headers={"Host": "127.0.0.1:8000", "User-Agent": "wrk"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()

    def call(application, env: dict, body: bytes, status: str) -> None:
        env = {**env, "wsgi.input": io.BytesIO(body)}
        seen = []
        result = application(env, lambda line, headers, exc_info=None: seen.append(line))
        for _chunk in result:
            pass
        result.close()
        if not seen[0].startswith(status):
            raise RuntimeError(f"{env['PATH_INFO']}: {seen[0]}")

    hello_env, page_env = environ("GET", "/"), environ("GET", f"/r/{token}")
    post_env = environ("POST", f"/r/{token}", b"x")

    def submit() -> None:
        body = next(bodies)
        call(app, {**post_env, "CONTENT_LENGTH": str(len(body))}, body, "303")

    cases = (("hello route", lambda: call(hello, hello_env, b"", "200")),
             ("questionnaire page", lambda: call(app, page_env, b"", "200")),
             ("valid submission", submit))
    engine = url.split(":", 1)[0].split("+", 1)[0]
    print(f"in process, database {engine}, load average before {os.getloadavg()[0]:.1f}; "
          f"CPU per request (lowest, median of {rounds} rounds of {calls // rounds})")
    for name, request in cases:
        for _ in range(20):
            request()
        figures = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(calls // rounds):
                request()
            figures.append(1000 * (time.process_time() - started) / (calls // rounds))
        figures.sort()
        print(f"{name:<20}{figures[0]:7.3f} ms  {figures[len(figures) // 2]:7.3f} ms")
    app.extensions["survey_db"].engine.dispose()


def report(args, url: str, figures: dict) -> None:
    hello, more, page, submit = (figures[k] for k in ("hello", "hello_more", "page", "submit"))
    engine = url.split(":", 1)[0].split("+", 1)[0]
    workers = args.workers or f"{2 * os.cpu_count() + 1} (default)"
    print(f"gunicorn -c gunicorn.conf.py, {workers} sync workers; wrk {args.threads} "
          f"thread(s), {args.connections} connections, {args.seconds:.0f} s a phase; "
          f"database {engine}; {os.cpu_count()} cores; load average before "
          f"{figures['load']:.1f}")
    print("                        rate     ratio (budget)   server CPU/request  CPU ratio")

    def line(name, figure, budget=None):
        ratio = figure["rate"] / hello["rate"]
        cpu_ratio = hello["server_ms"] / figure["server_ms"]
        wanted = f"({budget:.2f})" if budget else "      "
        print(f"{name:<20}{figure['rate']:8.1f}/s  {ratio:5.2f} {wanted}       "
              f"{figure['server_ms']:6.2f} ms        {cpu_ratio:5.2f}")

    line("hello route", hello)
    line("hello, 4x conns", more)
    line("questionnaire page", page, 0.70)
    line("valid submission", submit, 0.50)
    floor_page, floor_submit = figures["floor_page"], figures["floor_submit"]
    line("floor: page", floor_page)
    line("floor: submission", floor_submit)
    gain = more["rate"] / hello["rate"]
    verdict = "not the limit" if gain < 1.15 else "MAY BE THE LIMIT"
    print(f"load generator: wrk used {hello['cpu_share']:.0%} of a core for the hello route; "
          f"4x connections and 2x threads gave {gain:.2f}x the rate: {verdict}")
    print(f"the app against the floor (bench/floor_app.py: what any implementation must do): "
          f"page {page['rate'] / floor_page['rate']:.2f}, submission "
          f"{submit['rate'] / floor_submit['rate']:.2f} of its rate")
    print(f"not 200 on the page: {page['other']}; not acknowledged: {submit['other']}; "
          f"floor not 200/303: {floor_page['other'] + floor_submit['other']}; socket errors: "
          f"{sum(figures[k]['socket_errors'] for k in ('page', 'submit'))}")
    if submit["exhausted"] or figures["warm_submit"]["exhausted"]:
        print("WARNING: prepared bodies ran out: raise --max-rate")
    # The warm-up's submissions are stored too: counted on both sides.
    acked, stored = submit["ok"] + figures["warm_submit"]["ok"], figures["stored"]
    killed = figures.get("killed")
    print(f"worker {killed} killed (SIGKILL) halfway through the submissions" if killed
          else "no worker could be killed")
    print(f"acknowledged {acked}, stored {stored}, lost {max(acked - stored, 0)}, stored "
          f"unacknowledged {max(stored - acked, 0)} (in flight when wrk stopped or the worker "
          f"was killed)")


if __name__ == "__main__":
    main()
