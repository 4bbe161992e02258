"""The floor: the least a questionnaire page and a stored submission can cost in this setup.

A bare Flask app, like bench/hello_app.py, whose two routes do only what any implementation
of the public side must do per request, and nothing else:

- GET /r/<token>: one indexed read of the counter by its token, a fresh HMAC-signed key,
  and a body as long as the app's page (FLOOR_PAGE_BYTES, which bench_submit.py measures);
- POST /r/<token>: parse the form, check an HMAC (its cost), and store the response row
  (the app's columns) and its answer rows in one transaction, then 303 to the thank-you
  URL. SQLite: BEGIN IMMEDIATE, one INSERT, one executemany, COMMIT; PostgreSQL: one
  statement on an autocommit connection, as the app's own store.

No validation, no integrity checks, no security headers, no templates: it is a lower bound,
not an implementation. bench_submit.py runs it in the same gunicorn setup as the hello route
and the app and prints its ratios: what no code change to the app can beat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from datetime import UTC, datetime

from flask import Flask, abort, redirect, request
from sqlalchemy.engine import make_url

app = Flask(__name__)

URL = make_url(os.environ["SURVEY_DATABASE_URL"])
SQLITE = URL.get_backend_name() == "sqlite"
KEY = os.environ.get("SURVEY_SECRET_KEY", "floor").encode()
PAGE = b"x" * int(os.environ.get("FLOOR_PAGE_BYTES", "18000"))

COLUMNS = ("counter_id", "agency_id", "questionnaire_id", "questionnaire_version",
           "submitted_at", "locale", "seconds_taken", "submission_key", "answers_digest",
           "channel", "flags", "service_field", "criteria_codes")
HIDDEN = ("submission_key", "started")
# The counter is read in the insert itself: its token must be live, and nothing is cheaper.
LIVE = ("FROM counter_token JOIN counter ON counter.id = counter_token.counter_id "
        "WHERE counter_token.revoked_at IS NULL AND counter_token.token = ")
SQLITE_RESPONSE = (f"INSERT INTO response ({', '.join(COLUMNS)}) "
                   f"SELECT counter.id, counter.agency_id, {', '.join('?' * (len(COLUMNS) - 2))} "
                   f"{LIVE}? RETURNING id")
SQLITE_ANSWER = "INSERT INTO answer (response_id, question_id, value, text) VALUES (?, ?, ?, ?)"
POSTGRES_STORE = f"""
WITH stored AS (
  INSERT INTO response ({", ".join(COLUMNS)})
  SELECT counter.id, counter.agency_id, {", ".join(["%s"] * (len(COLUMNS) - 2))} {LIVE}%s
  RETURNING id
), answers AS (
  INSERT INTO answer (response_id, question_id, value, text)
  SELECT stored.id, given.q, given.v, given.t
  FROM stored, json_to_recordset(%s::json) AS given(q varchar, v integer, t text)
)
SELECT id FROM stored"""
COUNTER = ("SELECT counter.id, counter.agency_id, counter.questionnaire_id FROM counter_token "
           "JOIN counter ON counter.id = counter_token.counter_id WHERE counter_token.token = ")

_connection: dict = {}


def connection():
    """One connection per worker process, opened after the fork."""
    pid = os.getpid()
    if pid not in _connection:
        if SQLITE:
            conn = sqlite3.connect(URL.database, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        else:
            import psycopg

            conn = psycopg.connect(URL.set(drivername="postgresql")
                                   .render_as_string(hide_password=False), autocommit=True)
        _connection.clear()
        _connection[pid] = conn
    return _connection[pid]


def read_counter(token: str):
    conn = connection()
    if SQLITE:
        return conn.execute(COUNTER + "?", (token,)).fetchone()
    with conn.cursor() as cursor:
        cursor.execute(COUNTER + "%s", (token,))
        return cursor.fetchone()


def signed(nonce: bytes) -> str:
    return nonce.hex() + hmac.new(KEY, nonce, hashlib.sha256).hexdigest()[:16]


@app.get("/r/<token>")
def page(token):
    counter = read_counter(token)
    return PAGE + signed(secrets.token_bytes(16)).encode() + repr(counter).encode()


@app.post("/r/<token>")
def submit(token):
    form = request.form
    key = form.get("submission_key", "")
    hmac.compare_digest(signed(key[:32].encode()), key)  # the check's cost, not its verdict
    answers = [(name, value) for name, value in form.items(multi=True) if name not in HIDDEN]
    rows = [(name, int(value), None) if value.isdigit() else (name, None, value)
            for name, value in answers]
    response = ("sipas-service", 2, datetime.now(UTC), "vi", 60,
                secrets.token_hex(16), hashlib.sha256(repr(answers).encode()).hexdigest()[:32],
                "web", "", None, None, token)
    conn = connection()
    if SQLITE:
        conn.execute("BEGIN IMMEDIATE")
        stored = conn.execute(SQLITE_RESPONSE, response).fetchone()
        if stored is None:
            conn.execute("ROLLBACK")
            abort(404)
        conn.executemany(SQLITE_ANSWER, [(stored[0], *row) for row in rows])
        conn.execute("COMMIT")
    else:
        given = json.dumps([{"q": q, "v": v, "t": t} for q, v, t in rows])
        with conn.cursor() as cursor:
            cursor.execute(POSTGRES_STORE, (*response, given))
            stored = cursor.fetchone()
        if stored is None:  # nothing written: the statement stores for a live token only
            abort(404)
    return redirect(f"/r/{token}/cam-on", 303)
