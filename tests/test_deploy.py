"""Deployment: /healthz for the load balancer, and the restore drill of docs/deploy.md."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from survey import config, create_app
from survey.db import alembic_config, upgrade

from .conftest import ROOT

# deploy/restore_drill.py is a script, not a module of the package: loaded from its file.
DRILL = ROOT / "deploy" / "restore_drill.py"
_spec = importlib.util.spec_from_file_location("restore_drill", DRILL)
drill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drill)

POSTGRES = [pytest.param("postgresql", marks=pytest.mark.postgres)]


def run_drill(*args, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """deploy/restore_drill.py as an operator runs it, on this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, DRILL, *args],
                          stdin=stdin, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=env)


def test_healthz_is_ok_on_a_migrated_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["migrations"] == "current"
    assert body["revision"]


def make_app(url, tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": url})
    app.instance_path = str(tmp_path / "instance")
    return app


def test_healthz_is_503_before_the_migrations_run(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'empty.sqlite'}", tmp_path)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["migrations"] == "pending"
    upgrade(app.config["DATABASE_URL"])
    assert app.test_client().get("/healthz").status_code == 200
    app.extensions["survey_db"].engine.dispose()


def set_revision(app, revision):
    with app.extensions["survey_db"].engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :revision"),
                      {"revision": revision})


def test_healthz_is_503_when_the_schema_is_behind_the_code(app, client):
    # A new release installed, `flask db upgrade` not run yet: the code's last migration
    # is missing, the server must not serve.
    script = ScriptDirectory.from_config(alembic_config(app.config["DATABASE_URL"]))
    (head,) = script.get_heads()
    previous = script.get_revision(head).down_revision
    set_revision(app, previous)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "ok",
                                    "migrations": "pending",
                                    "revision": [previous], "head": [head]}


def test_healthz_stays_200_when_a_newer_release_migrated_the_database(app, client):
    # Rolling upgrade: `flask db upgrade` of the next release ran, this server still runs
    # the previous code. The migrations keep the previous release working, so the load
    # balancer must not take every server not yet restarted out at once.
    (head,) = ScriptDirectory.from_config(alembic_config(app.config["DATABASE_URL"])).get_heads()
    set_revision(app, "9999_next_release")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "migrations": "ahead",
                                   "revision": ["9999_next_release"], "head": [head],
                                   "unknown": ["9999_next_release"]}


def test_healthz_is_503_when_the_database_is_unreachable(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite'}", tmp_path)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body == {"status": "error", "database": "unreachable"}
    # The reason stays in the log: no paths, hosts or users in the public answer.
    assert "no-such-folder" not in response.get_data(as_text=True)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.text(min_size=1, max_size=20),
                             st.sampled_from(["=cmd|' /C calc'!A0", "+1", "@SUM(1)", "\x00",
                                              "'; DROP TABLE response; --", "ỗ" * 50, ""]),
                             max_size=4))
def test_healthz_ignores_whatever_is_sent_with_it(client, query):
    response = client.get("/healthz", query_string=query,
                          headers={"X-Forwarded-For": "1.2.3.4", "Cookie": "session=garbage"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert client.post("/healthz", data=query).status_code in (400, 405)


@pytest.mark.parametrize("database_url", POSTGRES, indirect=True)
def test_restore_drill_restores_counts_and_serves_a_counter(app, runner, database_url):
    result = runner.invoke(args=["demo", "--responses", "40"])
    assert result.exit_code == 0, result.output
    engine = create_engine(database_url)
    with engine.connect() as conn:
        before = {row[0] for row in conn.execute(text("SELECT datname FROM pg_database"))}
        responses = conn.execute(text("SELECT count(*) FROM response")).scalar_one()
    assert responses == 40

    drill = run_drill("--database-url", database_url)

    assert drill.returncode == 0, drill.stdout + drill.stderr
    lines = drill.stdout.splitlines()
    assert any(line.split() == ["response", "40"] for line in lines), drill.stdout
    assert not any("expected" in line for line in lines), drill.stdout
    assert "  /healthz: 200" in drill.stdout
    assert "  a counter's page /r/…: 200" in drill.stdout
    assert lines[-1] == "restore drill passed"
    with engine.connect() as conn:  # the restored copy was dropped again
        after = {row[0] for row in conn.execute(text("SELECT datname FROM pg_database"))}
    engine.dispose()
    assert after == before


@pytest.mark.parametrize("database_url", POSTGRES, indirect=True)
def test_restore_drill_reports_a_backup_file_that_is_not_a_dump(app, database_url, tmp_path):
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP but not really")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        before = {row[0] for row in conn.execute(text("SELECT datname FROM pg_database"))}
    drill = run_drill("--database-url", database_url, "--dump-file", broken)
    assert drill.returncode == 1, drill.stdout + drill.stderr
    assert "RESTORE DRILL FAILED" in drill.stdout and "pg_restore failed" in drill.stdout
    assert "restore drill passed" not in drill.stdout
    with engine.connect() as conn:  # the half-restored database is not left behind
        after = {row[0] for row in conn.execute(text("SELECT datname FROM pg_database"))}
    engine.dispose()
    assert after == before


@pytest.mark.parametrize("database_url", POSTGRES, indirect=True)
def test_restore_drill_reads_last_nights_backup_from_standard_input(app, runner, database_url,
                                                                   tmp_path):
    # deploy.md step 10: the backups belong to sipas (0750), the drill runs as postgres;
    # root's shell opens the file and hands it over as standard input.
    assert runner.invoke(args=["demo", "--responses", "25"]).exit_code == 0
    url = make_url(database_url)
    backup = tmp_path / "sipas-2026-01-31T0230.dump"
    args, env = drill.libpq_args(url)
    # The nightly backup's command (deploy/sipas-backup.service).
    subprocess.run(["pg_dump", "--format=custom", "--compress=6", "--file", str(backup), *args,
                    url.database], check=True, env=env)

    with backup.open("rb") as dump:
        result = run_drill("--database-url", database_url, "--dump-file", "-", stdin=dump)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split() == ["response", "25"] for line in lines), result.stdout
    assert "  /healthz: 200" in result.stdout
    assert lines[-1] == "restore drill passed"


SIPAS_ENV = ROOT / "deploy" / "sipas.env"


def sourced_by_sh(env_file) -> dict[str, str]:
    """SURVEY_* as `set -a; . sipas.env` exports them (deploy/sipas-flask does so)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_")}
    script = ('set -a; . "$1"; exec "$2" -c "import json, os; print(json.dumps('
              '{k: v for k, v in os.environ.items() if k.startswith(\'SURVEY_\')}))"')
    out = subprocess.run(["sh", "-c", script, "sh", str(env_file), sys.executable], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_sipas_env_reads_the_same_in_sh_and_in_systemd(tmp_path):
    # systemd's EnvironmentFile (like config.read_env_file) strips the quotes of a quoted
    # value; sh needs them: unquoted, `...?host=/x&port=5433` ended at `&` for sh.
    lines = [line for line in SIPAS_ENV.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"SURVEY_[A-Z_]+='[^']*'", line) for line in lines), lines
    assert sourced_by_sh(SIPAS_ENV) == config.read_env_file(SIPAS_ENV)

    url = "postgresql+psycopg://sipas@/sipas?host=/run/postgresql&port=5433"
    edited = tmp_path / "sipas.env"
    edited.write_text(SIPAS_ENV.read_text(encoding="utf-8").replace(
        "'postgresql+psycopg://sipas@/sipas?host=/run/postgresql'", f"'{url}'"),
        encoding="utf-8")
    assert sourced_by_sh(edited)["SURVEY_DATABASE_URL"] == url
    assert config.read_env_file(edited)["SURVEY_DATABASE_URL"] == url


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                    reason="runuser runs as root only")
def test_sipas_flask_runs_a_command_with_the_env_file_only(tmp_path):
    """deploy/sipas-flask db upgrade, as root runs it from a checkout (here as root itself)."""
    database = tmp_path / "sipas.sqlite"
    env_file = tmp_path / "sipas.env"
    env_file.write_text(f"SURVEY_SECRET_KEY='{'k' * 64}'\n"
                        f"SURVEY_DATABASE_URL='sqlite:///{database}'\n"
                        "SURVEY_PUBLIC_URL='https://hailong.example.gov.vn'\n", encoding="utf-8")
    # Nothing from the caller's shell reaches the command: not even a database URL.
    env = {**os.environ, "SIPAS_USER": "root", "SIPAS_ENV": str(env_file),
           "SIPAS_VENV": sys.prefix, "SURVEY_DATABASE_URL": f"sqlite:///{tmp_path}/other.sqlite"}
    result = subprocess.run([ROOT / "deploy" / "sipas-flask", "db", "upgrade"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert database.exists() and not (tmp_path / "other.sqlite").exists()
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


NGINX = os.environ.get("SIPAS_TEST_NGINX") or shutil.which("nginx")


@pytest.mark.skipif(not NGINX or not shutil.which("openssl"),
                    reason="nginx (or SIPAS_TEST_NGINX=path) and openssl needed")
def test_nginx_site_passes_nginx_t(tmp_path):
    # `http2 on;` exists only from nginx 1.25.1: Debian 12's 1.22 failed `nginx -t` on it.
    certs = tmp_path / "live"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hailong.example.gov.vn",
                    "-keyout", certs / "privkey.pem", "-out", certs / "fullchain.pem"],
                   check=True, capture_output=True)
    site = (ROOT / "deploy" / "nginx-sipas.conf").read_text(encoding="utf-8").replace(
        "/etc/letsencrypt/live/hailong.example.gov.vn", str(certs))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = " ".join(f"{name}_temp_path {tmp_path / name};"
                    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'}; error_log stderr; events {{}}\n"
        f"http {{ access_log off; {temp} include {tmp_path / 'site.conf'}; }}\n",
        encoding="utf-8")
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
