"""No per-process state: two gunicorn servers (two workers each) on one PostgreSQL."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from .conftest import ROOT
from .staff import PASSWORD, make_user

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)

GUNICORN = Path(sys.executable).parent / "gunicorn"
MAX_FAILURES = 3
SECRET = "one-secret-for-every-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`gunicorn -c gunicorn.conf.py` as deployed, on a loopback port, logging to a file."""

    def __init__(self, database_url: str, log: Path):
        self.port = free_port()
        self.log = log
        env = {**os.environ,
               "PYTHONPATH": str(ROOT),
               "SURVEY_DATABASE_URL": database_url,
               # The same secret on every server: sessions and throttle keys are shared.
               "SURVEY_SECRET_KEY": SECRET,
               "SURVEY_PUBLIC_URL": "http://127.0.0.1",
               "SURVEY_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
               "GUNICORN_BIND": f"127.0.0.1:{self.port}",
               "WEB_CONCURRENCY": "2"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py")], cwd=log.parent, env=env,
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                if self.request("GET", "/healthz", {})[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"gunicorn did not become healthy:\n{log.read_text()}")

    def request(self, method: str, path: str, cookies: dict, form: dict | None = None):
        """(status, body, location); cookies the server sets are stored into `cookies`."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        for header in response.msg.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                cookies[name] = morsel.value
        conn.close()
        return response.status, text, response.getheader("Location")

    def login(self, cookies: dict, login: str, password: str) -> int:
        status, page, _ = self.request("GET", "/admin/login", cookies)
        assert status == 200
        token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)
        return self.request("POST", "/admin/login", cookies,
                            {"csrf_token": token, "login": login, "password": password})[0]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def servers(app, session, database_url, tmp_path):
    make_user(session, "canbo-mot", "admin")
    make_user(session, "canbo-hai", "admin")
    started = []
    try:
        for name in ("a", "b"):
            started.append(Server(database_url, tmp_path / f"gunicorn-{name}.log"))
        yield started
    finally:
        for server in started:
            server.stop()


def refused(status: int) -> bool:
    """A wrong password: the form again with an error, neither signed in nor throttled."""
    return status in (200, 401, 422)


def test_two_servers_share_sessions_and_the_login_throttle(servers, make_counter):
    a, b = servers
    # A session signed in on A is valid on B (signed cookie, same secret, user in the db).
    cookies: dict = {}
    assert a.login(cookies, "canbo-mot", PASSWORD) == 303
    status, page, _ = b.request("GET", "/admin/", cookies)
    assert status == 200
    status, _, location = b.request("GET", "/admin/", {})
    assert status == 302 and "/admin/login" in location  # it is the session that counts

    # MAX_FAILURES - 1 failures on A, one more on B: neither server has seen the limit alone.
    cookies = {}
    for _ in range(MAX_FAILURES - 1):
        assert refused(a.login(cookies, "canbo-hai", "sai-mat-khau"))
    assert refused(b.login(cookies, "canbo-hai", "sai-mat-khau"))
    # Both now refuse even the right password, from this client, for the next quarter hour.
    assert b.login(cookies, "canbo-hai", PASSWORD) == 429
    assert a.login({}, "canbo-hai", PASSWORD) == 429

    # The access log (gunicorn.conf.py): one JSON object per request, no client address,
    # the counter's token masked.
    counter = make_counter()
    assert a.request("GET", f"/r/{counter.token}", {})[0] == 200
    a.stop()
    log = a.log.read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert {"method", "path", "status", "ms"} <= set(records[0])
    assert {k: records[-1][k] for k in ("method", "path", "status")} == {
        "method": "GET", "path": "/r/*", "status": 200}
    assert [r["status"] for r in records if r["path"] == "/admin/login"][-1] == 429
    assert "127.0.0.1" not in log.replace(f"127.0.0.1:{a.port}", "")
    assert counter.token not in log


def hidden_fields(page: str) -> dict:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def test_two_servers_share_receipt_codes_served_pages_and_the_report_cache(
        servers, session, database_url, make_counter):
    from sqlalchemy import func, select

    from survey import create_app, receipts
    from survey.db import get_db
    from survey.models import ReportCache, Response

    from .factories import make_response

    a, b = servers
    # A receipt code is one response, whichever server each page came from and went to.
    counter = make_counter(questionnaire_id="counter-quick")
    counter.requires_receipt = True
    session.commit()
    # Issued as the one-stop system's API would, under the servers' secret (codes are
    # stored as keyed hashes).
    issuer = create_app({"SECRET_KEY": SECRET, "DATABASE_URL": database_url})
    with issuer.app_context():
        db = get_db()
        (code,), _expires = receipts.issue_codes(db, counter.id, 1, "slip", 30)
        db.commit()
    issuer.extensions["survey_db"].engine.dispose()
    path = f"/r/{counter.token}?ma={code}"
    first = hidden_fields(a.request("GET", path, {})[1])
    second = hidden_fields(b.request("GET", path, {})[1])
    status, _, location = b.request("POST", path, {}, {**first, "overall": "3"})
    assert status == 303 and location.endswith("/cam-on")  # A's page, sent to B
    status, page, _ = a.request("POST", path, {}, {**second, "overall": "2"})
    assert status == 409 and "Mã này đã được dùng" in page
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Response)) == 1

    # The report cache: computed through A, served by B as it is; refreshed through B after
    # new data, served by A as B left it.
    for _ in range(4):
        make_response(session, counter, {"overall": 3}, commit=False)
    session.commit()
    cookies: dict = {}
    assert a.login(cookies, "canbo-mot", PASSWORD) == 303

    def cache_rows() -> dict:
        session.expire_all()
        return {row.key: (row.version, row.created_at)
                for row in session.scalars(select(ReportCache))}

    report = "/reports/?questionnaire=counter-quick"
    status, through_a, _ = a.request("GET", report, cookies)
    # These four (the code's response, sent at once, is flagged "fast": not counted).
    assert status == 200 and "Số lượt đánh giá: 4." in through_a
    computed = cache_rows()
    assert computed
    status, through_b, _ = b.request("GET", report, cookies)
    assert status == 200 and cache_rows() == computed  # B read A's rows, wrote nothing
    assert strip_tokens(through_b) == strip_tokens(through_a)

    make_response(session, counter, {"overall": 1, "reasons": [1]})
    status, refreshed_b, _ = b.request("GET", report, cookies)
    refreshed = cache_rows()
    assert status == 200 and refreshed != computed  # new data: B recomputed and stored
    status, refreshed_a, _ = a.request("GET", report, cookies)
    assert status == 200 and cache_rows() == refreshed  # A served B's refreshed rows
    assert strip_tokens(refreshed_a) == strip_tokens(refreshed_b)
    assert "Số lượt đánh giá: 5." in refreshed_a


def strip_tokens(page: str) -> str:
    """A page without what differs per request (CSRF tokens, nonces)."""
    return re.sub(r'(value|nonce)="[^"]*"', "", page)
