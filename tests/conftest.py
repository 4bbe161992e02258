"""Fixtures: the app on a fresh SQLite or PostgreSQL database per test, a client, helpers."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from survey import create_app
from survey.db import upgrade

from . import factories
from .pg import TemporaryPostgres

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server():
    """The server named by SURVEY_TEST_POSTGRES_URL, else a temporary one started here."""
    given = os.environ.get("SURVEY_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    try:
        server = TemporaryPostgres()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_server):
    """A database migrated once; each test clones it (CREATE DATABASE ... TEMPLATE)."""
    if isinstance(postgres_server, str):
        admin_url = postgres_server
    else:
        admin_url = postgres_server.url("postgres")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS sipas_template"))
        conn.execute(text("CREATE DATABASE sipas_template"))
    template_url = re.sub(r"/postgres(\?|$)", r"/sipas_template\1", admin_url)
    upgrade(template_url)
    yield engine, admin_url
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=ENGINES)
def database_url(request, tmp_path, sqlite_template):
    """A fresh, migrated database for one test, on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "survey.sqlite"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    engine, admin_url = request.getfixturevalue("postgres_template")
    name = "t_" + uuid.uuid4().hex[:12]
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE sipas_template"))
    yield re.sub(r"/postgres(\?|$)", rf"/{name}\1", admin_url)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "PUBLIC_URL": "https://hailong.example.vn",
    })
    app.instance_path = str(tmp_path / "instance")
    yield app
    app.extensions["survey_db"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """A database session of the test's own, for arranging and checking rows.

    Deliberately not the request's session and not inside an app context: a pushed app
    context would be reused by every request of the test client and hide teardown bugs.
    """
    session = app.extensions["survey_db"].sessionmaker()
    yield session
    session.close()


@pytest.fixture
def make_counter(app, session):
    """Create an agency (by code, reused) and a counter with a live token."""

    def make(agency_code="STP", agency_name="Sở Tư pháp", label="Quầy 3 – Tư pháp",
             questionnaire_id="sipas-service", parent=None, level="department"):
        agency = factories.agency_with_code(session, agency_code, agency_name, parent=parent,
                                            level=level, commit=False)
        return factories.make_counter(session, agency, label, questionnaire_id)

    return make


def form_fields(html: str) -> dict:
    """The hidden fields (CSRF token, timer, submission key) of a rendered questionnaire."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


@pytest.fixture
def open_form(client):
    """GET a counter's page and return the hidden fields a browser would send back."""

    def open_(token, **kwargs):
        response = client.get(f"/r/{token}", **kwargs)
        assert response.status_code == 200, response.status_code
        return form_fields(response.get_data(as_text=True))

    return open_


ROOT = Path(__file__).resolve().parent.parent
