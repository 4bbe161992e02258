"""The report cache: shared through the database, invalidated when the data change."""

from survey import create_app
from survey.models import ReportCache
from survey.report_cache import data_version

from .factories import make_volume
from .staff import login
from .test_reports import add_response, login_as


def _version(app):
    with app.app_context():
        from survey.db import get_db

        return data_version(get_db())


def test_new_response_changes_version_and_page(app, client, session, make_counter):
    """A cached page is reused while nothing changes and recomputed after a new response."""
    counter = make_counter()
    for value in (5, 4, 2):
        add_response(session, counter, a1=value, a2=value)
    login_as(client, session, "analyst")
    before = _version(app)
    first = client.get("/reports/").get_data(as_text=True)
    assert "Số phiếu: 3." in first
    assert session.query(ReportCache).count() == 1
    stored = session.query(ReportCache).one()
    assert stored.version == before
    # Nothing changed: the same row answers (the page is the same).
    again = client.get("/reports/").get_data(as_text=True)
    assert again.split("<h1>")[1] == first.split("<h1>")[1]
    session.expire_all()
    assert session.query(ReportCache).one().created_at == stored.created_at
    add_response(session, counter, a1=1, a2=1)
    after = _version(app)
    assert after != before
    second = client.get("/reports/").get_data(as_text=True)
    assert "Số phiếu: 4." in second and second != first
    session.expire_all()
    assert session.query(ReportCache).one().version == after
    # The agency page reuses the scope's cached row (same key), adds none.
    client.get("/reports/agency/STP")
    assert session.query(ReportCache).count() == 1


def test_flagging_and_volumes_change_the_version(app, session, make_counter):
    """A response flagged later, or a served volume imported, makes a new version."""

    counter = make_counter()
    response = add_response(session, counter, a1=5)
    before = _version(app)
    response.flags = "fast"
    session.commit()
    flagged = _version(app)
    assert flagged != before
    make_volume(session, counter.agency_id, "1", "2026", 10)
    assert _version(app) != flagged


def test_two_app_instances_share_the_cache(app, client, session, make_counter, database_url,
                                           tmp_path):
    """A second app (another worker process) on the same database uses the first one's row
    and sees the same page."""
    counter = make_counter()
    for value in (5, 4, 2):
        add_response(session, counter, a1=value, a2=value)
    login_as(client, session, "analyst")
    first = client.get("/reports/").get_data(as_text=True)
    row = session.query(ReportCache).one()
    other = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                        "DATABASE_URL": database_url,
                        "PUBLIC_URL": "https://hailong.example.vn"})
    other.instance_path = str(tmp_path / "other")
    other_client = other.test_client()
    login(other_client, "analyst-user")
    assert other_client.get("/reports/").get_data(as_text=True).split("<h1>")[1] == \
        first.split("<h1>")[1]
    session.expire_all()
    assert session.query(ReportCache).one().created_at == row.created_at
    other.extensions["survey_db"].engine.dispose()
