"""The counter's own view: responses received per window, the last one, quiet posters,
the share of dossiers served that answered; on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from survey.domain import activity
from survey.models import Counter, utcnow

from .factories import make_agency, make_response, make_user, make_volume
from .staff import login


def test_windows_start_at_local_midnight_monday_month_quarter_year():
    # 18:00 UTC on 31 March is 01:00 on Wednesday 1 April in Vietnam (UTC+7).
    now = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)
    starts = activity.window_starts(now)
    assert starts["today"] == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert starts["week"] == datetime(2026, 3, 29, 17, 0, tzinfo=UTC)  # Monday 30 March
    assert starts["month"] == starts["quarter"] == starts["today"]  # 1 April opens Q2
    assert starts["year"] == datetime(2025, 12, 31, 17, 0, tzinfo=UTC)
    assert activity.period_labels(now) == {"month": "2026-04", "quarter": "2026-Q2",
                                           "year": "2026"}


def test_counts_per_window_last_response_and_moved_counters(app, session, make_counter):
    now = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # Wednesday 10:00 local
    busy = make_counter(label="Quầy 1")
    quiet = make_counter(label="Quầy 2")
    make_agency(session, "SYT", commit=False)
    for at in (now, now - timedelta(hours=2),  # today
               now - timedelta(days=2),  # Monday 30 March: this week, not this month
               now - timedelta(days=5),  # March: this year, not this month or quarter
               now - timedelta(days=400)):  # last year
        make_response(session, busy, at=at, commit=False)
    # Keyed in from paper after the last scan: counted, but it does not show the poster works.
    make_response(session, busy, at=now + timedelta(minutes=5), channel="paper", commit=False)
    make_response(session, quiet, at=now - timedelta(days=9), commit=False)
    # A response stored while a counter of another agency belonged to this one.
    moved = make_counter(agency_code="SYT", label="Quầy chuyển đi")
    make_response(session, moved, at=now - timedelta(hours=1), agency_id=busy.agency_id,
                  commit=False)
    session.commit()

    with app.app_context():
        from survey.db import get_db

        per_counter, total = activity.activity(get_db(), agency_id=busy.agency_id, now=now)
    assert per_counter[busy.id].counts == {"today": 3, "week": 4, "month": 3, "quarter": 3,
                                           "year": 5}
    assert per_counter[busy.id].total == 6 and per_counter[busy.id].paper == 1
    assert per_counter[busy.id].last == now
    assert per_counter[busy.id].quiet_days(now) is None
    assert per_counter[quiet.id].quiet_days(now) == 9
    assert per_counter[quiet.id].counts["week"] == 0
    # The agency keeps the moved counter's response (stored under it), counters their own.
    assert total.counts["today"] == 4 and total.total == 8
    assert per_counter[moved.id].total == 1


def test_agency_and_counter_pages_show_what_was_received(app, client, session, make_counter):
    counter = make_counter(label="Quầy 1")
    silent = make_counter(label="Quầy im lặng")
    make_counter(label="Quầy chưa có phiếu")
    now = utcnow()
    for _ in range(3):
        make_response(session, counter, at=now, commit=False)
    make_response(session, silent, at=now - timedelta(days=12), commit=False)
    make_volume(session, counter.agency_id, "1", activity.period_labels()["year"], 40)
    make_user(session, "quantri", "admin")
    login(client, "quantri")

    statements = []
    engine = app.extensions["survey_db"].engine

    def count(conn, cursor, statement, *args):
        if "FROM response" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = client.get(f"/admin/agencies/{counter.agency_id}").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1  # one grouped query for every counter of the page
    assert "Phiếu đã nhận" in page
    assert "3 ngày" not in page and "12 ngày không có phiếu" in page
    # 3 responses today (+1 twelve days ago unless that was last year) of 40 dossiers.
    this_year = 3 + (now - timedelta(days=12) >= activity.window_starts(now)["year"])
    assert f"{100 * this_year / 40:.1f}%".replace(".", ",") in page and "40 hồ sơ" in page
    assert "Khảo sát mức độ hài lòng về dịch vụ hành chính công" in page  # titles, not ids
    assert "sipas-service" not in page

    page = client.get(f"/admin/counters/{silent.id}").get_data(as_text=True)
    assert "Đã 12 ngày không nhận được phiếu nào" in page
    page = client.get(f"/admin/counters/{counter.id}").get_data(as_text=True)
    assert "không nhận được phiếu" not in page
    assert f"/r/{counter.token}/phieu" in page and f"/admin/counters/{counter.id}/paper" in page
    fresh = client.get(f"/admin/counters/{counter.id + 2}").get_data(as_text=True)
    assert "Chưa nhận được phiếu nào qua mã QR." in fresh


def test_quiet_posters_show_on_the_staff_home_and_the_counter_list(client, session,
                                                                    make_counter):
    """A poster that stopped working is seen without opening every counter; paper sheets
    keyed in by staff do not hide it."""
    busy = make_counter(label="Quầy 1")
    silent = make_counter(label="Quầy im lặng")
    make_counter(label="Quầy chưa có phiếu")
    now = utcnow()
    make_response(session, busy, at=now, commit=False)
    make_response(session, silent, at=now - timedelta(days=12), commit=False)
    make_response(session, silent, at=now, channel="paper", commit=False)
    session.commit()
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    home = client.get("/admin/").get_data(as_text=True)
    assert "1 quầy đã từ 7 ngày trở lên không nhận được phiếu nào qua mã QR" in home
    assert f"/admin/counters/{silent.id}" in home and "12 ngày không có phiếu" in home
    assert f"/admin/counters/{busy.id}\"" not in home
    listed = client.get("/admin/counters").get_data(as_text=True)
    assert "Phiếu gần nhất qua mã QR" in listed
    assert listed.count("12 ngày không có phiếu") == 1


def test_quarter_and_year_shares_add_up_the_months_imported(app, session, make_counter):
    """Without a quarterly or yearly row, the months from the period's start to this one,
    when all are imported; a missing month leaves the window without a share."""
    now = datetime(2026, 5, 20, 3, 0, tzinfo=UTC)  # May: Q2 = April + May
    counter = make_counter()
    for at in (now, now - timedelta(days=30), now - timedelta(days=60)):  # May, April, March
        make_response(session, counter, at=at, commit=False)
    session.commit()
    for month, served in (("2026-04", 10), ("2026-05", 30), ("2026-02", 5), ("2026-03", 5)):
        make_volume(session, counter.agency_id, "1", month, served)
    with app.app_context():
        from survey.db import get_db

        db = get_db()
        _per_counter, total = activity.activity(db, agency_id=counter.agency_id, now=now)
        shares = activity.volume_shares(db, counter.agency_id, total, now=now)
        assert shares["month"] == (30, 100 * 1 / 30)
        assert shares["quarter"] == (40, 100 * 2 / 40)
        assert "year" not in shares  # January was not imported
        make_volume(session, counter.agency_id, "1", "2026-01", 50)
        db.rollback()  # a fresh snapshot
        shares = activity.volume_shares(db, counter.agency_id, total, now=now)
        assert shares["year"] == (100, 100 * 3 / 100)


def test_counters_moved_or_without_volumes_show_no_share(app, client, session, make_counter):
    counter = make_counter()
    make_response(session, counter, at=utcnow())
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    page = client.get(f"/admin/agencies/{counter.agency_id}").get_data(as_text=True)
    assert "Tỷ lệ hồ sơ có phiếu hiện ra khi đã nhập số hồ sơ" in page
    assert session.get(Counter, counter.id) is not None


def test_last_scanned_is_each_counters_newest_response_through_its_code(app, session,
                                                                        make_counter):
    """The newest non-paper response per counter, read from the end of the counter's index:
    a paper sheet keyed in later (and dated earlier, as written on it) does not count."""
    from survey.db import get_db

    first, second, paper_only = (make_counter(label=label)
                                 for label in ("Quầy 1", "Quầy 2", "Quầy giấy"))
    empty = make_counter(label="Quầy mới")
    now = utcnow().replace(microsecond=0)
    for days in (30, 9, 3):
        make_response(session, first, at=now - timedelta(days=days), commit=False)
    make_response(session, first, at=now - timedelta(days=40), channel="paper", commit=False)
    make_response(session, second, at=now - timedelta(hours=2), commit=False)
    make_response(session, paper_only, at=now, channel="paper", commit=False)
    session.commit()
    with app.app_context():
        seen = activity.last_scanned(get_db(), [first.id, second.id, paper_only.id,
                                                empty.id, 2_000_000])
        assert activity.last_scanned(get_db(), []) == {}
    assert seen == {first.id: now - timedelta(days=3), second.id: now - timedelta(hours=2)}
    assert all(moment.tzinfo is not None for moment in seen.values())


def test_migration_0008_swaps_the_counter_index_both_ways(database_url):
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from survey.db import alembic_config, upgrade

    engine = create_engine(database_url)

    def indexes() -> dict:
        return {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("response")}

    try:
        assert indexes()["ix_response_counter_latest"] == ["counter_id", "id"]
        assert "ix_response_counter_id" not in indexes()
        command.downgrade(alembic_config(database_url), "0007")
        assert indexes()["ix_response_counter_id"] == ["counter_id"]
        assert "ix_response_counter_latest" not in indexes()
        upgrade(database_url)
        assert indexes()["ix_response_counter_latest"] == ["counter_id", "id"]
    finally:
        engine.dispose()
