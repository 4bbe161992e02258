"""Large reports are served from the cache while one worker refreshes them in the background."""

import time

from survey import report_cache
from survey.models import ReportCache

from .test_reports import add_response, login_as


def _count(html: str) -> str:
    return html.split("Số phiếu: ")[1].split(".")[0]


def test_stale_result_is_served_while_the_refresh_runs(app, client, session, make_counter):
    """Above the inline limit a new response does not make the page recompute: it answers
    from the stored result and one background refresh brings the new figures."""
    app.config["REPORT_INLINE_REFRESH"] = 0
    counter = make_counter()
    for value in (5, 4, 2):
        add_response(session, counter, a1=value, a2=value)
    login_as(client, session, "analyst")
    assert _count(client.get("/reports/").get_data(as_text=True)) == "3"
    add_response(session, counter, a1=1, a2=1)
    stale = client.get("/reports/").get_data(as_text=True)
    assert _count(stale) == "3"
    assert "Số liệu tính lúc " in stale and "đang được tính lại" in stale  # said so
    report_cache.wait_for_refreshes(60)
    session.expire_all()
    row = session.query(ReportCache).one()
    assert report_cache.CLAIMED not in row.version
    fresh = client.get("/reports/").get_data(as_text=True)
    assert _count(fresh) == "4" and "đang được tính lại" not in fresh
    # The agency page reads the same (refreshed) row, adds none.
    assert client.get("/reports/agency/STP").status_code == 200
    assert session.query(ReportCache).count() == 1


def test_a_fresh_claim_is_left_to_its_worker_and_an_old_one_taken_over(
        app, client, session, make_counter):
    """Another worker refreshing the row: this one serves the stored result and starts
    nothing; a claim abandoned for longer than CLAIM_SECONDS is taken over."""
    app.config["REPORT_INLINE_REFRESH"] = 0
    counter = make_counter()
    for value in (5, 4):
        add_response(session, counter, a1=value)
    login_as(client, session, "analyst")
    client.get("/reports/")
    add_response(session, counter, a1=3)
    row = session.query(ReportCache).one()
    row.version = f"{row.version}{report_cache.CLAIMED}{time.time():.0f}"
    session.commit()
    claimed = row.version
    assert _count(client.get("/reports/").get_data(as_text=True)) == "2"
    report_cache.wait_for_refreshes(60)
    session.expire_all()
    assert session.query(ReportCache).one().version == claimed
    old = claimed.split(report_cache.CLAIMED)[0]
    row = session.query(ReportCache).one()
    row.version = f"{old}{report_cache.CLAIMED}{time.time() - report_cache.CLAIM_SECONDS - 5:.0f}"
    session.commit()
    assert _count(client.get("/reports/").get_data(as_text=True)) == "2"
    report_cache.wait_for_refreshes(60)
    assert _count(client.get("/reports/").get_data(as_text=True)) == "3"


def test_small_data_is_recomputed_at_once(app, client, session, make_counter):
    """Below the limit (the default for a small province) every page shows the latest data."""
    counter = make_counter()
    for value in (5, 4):
        add_response(session, counter, a1=value)
    login_as(client, session, "analyst")
    assert _count(client.get("/reports/").get_data(as_text=True)) == "2"
    add_response(session, counter, a1=3)
    assert _count(client.get("/reports/").get_data(as_text=True)) == "3"


def test_a_failed_refresh_keeps_serving_the_stored_result(app, client, session, make_counter,
                                                          monkeypatch, caplog):
    """A refresh that fails is logged; the page keeps the stored figures meanwhile."""
    from survey import reports

    app.config["REPORT_INLINE_REFRESH"] = 0
    counter = make_counter()
    for value in (5, 4):
        add_response(session, counter, a1=value)
    login_as(client, session, "analyst")
    client.get("/reports/")
    add_response(session, counter, a1=3)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports, "_build_report", broken)
    assert _count(client.get("/reports/").get_data(as_text=True)) == "2"
    report_cache.wait_for_refreshes(60)
    assert "report refresh" in caplog.text and "disk full" in caplog.text
    assert _count(client.get("/reports/").get_data(as_text=True)) == "2"
