"""Served volumes: the CSV import (page, CLI, JSON records) and exact period matching."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from survey.imports import ImportFailed
from survey.models import Agency, AuditEvent, Response, ServiceVolume
from survey.reports_data import resolve_volumes
from survey.volumes import (
    import_volume_records,
    import_volumes_csv,
    parse_count,
    parse_period,
)

from .factories import make_agency, make_volume
from .staff import csrf_token, login, make_user
from .test_reports import add_response

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def rows(*records):
    return pd.DataFrame(records, columns=["agency", "service_field", "period", "count"])


# --- period matching (pure) -------------------------------------------------------------


def test_a_quarter_uses_its_own_row_before_its_months():
    totals, notes = resolve_volumes(rows(("A", "1", "2026-Q3", 90), ("A", "1", "2026-07", 10),
                                         ("A", "1", "2026-08", 10), ("A", "1", "2026-09", 10)),
                                    "2026-Q3")
    assert totals["count"].tolist() == [90] and notes == []


def test_a_quarter_is_the_sum_of_its_three_months_with_a_note():
    totals, notes = resolve_volumes(rows(("A", "1", "2026-07", 10), ("A", "1", "2026-08", 20),
                                         ("A", "1", "2026-09", 30), ("A", "1", "2026", 999)),
                                    "2026-Q3")
    assert totals["count"].tolist() == [60]
    assert [n["kind"] for n in notes] == ["fallback"]
    assert notes[0]["scope"] == "A" and "2026-07" in notes[0]["cells"]


def test_two_months_are_not_a_quarter_and_the_year_is_scaled_only_when_asked():
    data = rows(("A", "1", "2026-07", 10), ("A", "1", "2026-08", 20), ("A", "1", "2026", 365))
    totals, _notes = resolve_volumes(data, "2026-Q3")
    assert totals.empty
    totals, notes = resolve_volumes(data, "2026-Q3", scale=True)
    assert totals["count"].tolist() == [92]  # Q3: 92 of 365 days
    assert "2026 x 92/365" in notes[0]["cells"]


def test_a_year_never_adds_yearly_and_monthly_rows():
    # The case: 306 yearly + 300 monthly used to give 606.
    data = rows(("A", "1", "2026", 306), *[("A", "1", f"2026-{m:02d}", 25) for m in range(1, 13)])
    totals, notes = resolve_volumes(data, "2026")
    assert totals["count"].tolist() == [306] and notes == []
    totals, notes = resolve_volumes(data[data["period"] != "2026"], "2026")
    assert totals["count"].tolist() == [300] and len(notes) == 1


def test_a_month_uses_only_its_own_row():
    data = rows(("A", "1", "2026-Q3", 90), ("B", "1", "2026-07", 7))
    totals, _notes = resolve_volumes(data, "2026-07")
    assert totals.to_dict("records") == [{"agency": "B", "service_field": "1", "count": 7.0}]


@given(months=st.lists(st.integers(0, 10_000), min_size=12, max_size=12),
       year=st.one_of(st.none(), st.integers(0, 10_000)))
def test_any_period_is_one_source_never_a_mix(months, year):
    data = rows(*[("A", "2", f"2026-{m + 1:02d}", c) for m, c in enumerate(months)],
                *([("A", "2", "2026", year)] if year is not None else []))
    totals, _ = resolve_volumes(data, "2026")
    assert totals["count"].tolist() == [year if year is not None else sum(months)]
    for quarter in range(1, 5):
        totals, _ = resolve_volumes(data, f"2026-Q{quarter}")
        assert totals["count"].tolist() == [sum(months[3 * quarter - 3: 3 * quarter])]


def test_period_and_count_spellings():
    assert parse_period("2026") == "2026" and parse_period(" 2026-q3 ") == "2026-Q3"
    assert parse_period("Q4/2026") == "2026-Q4" and parse_period("2026-7") == "2026-07"
    assert parse_period("7/2026") == "2026-07"
    for bad in ("2026-Q5", "2026-13", "26", "2026-00", "=2026", "2026/2027", ""):
        assert parse_period(bad) is None, bad
    assert parse_count("1.250") == 1250 and parse_count("1,250") == 1250
    assert parse_count("1 250 000") == 1250000 and parse_count("0") == 0
    for bad in ("-5", "12,5", "1.5", "1,25", "=1+1", "", "1e3", "1.234,5", "١٢"):
        assert parse_count(bad) is None, bad


# --- the import -------------------------------------------------------------------------


@pytest.fixture
def agencies(session):
    top = make_agency(session, "QT", "UBND tỉnh", level="province")
    justice = make_agency(session, "STP", "Sở Tư pháp", parent=top)
    commune = make_agency(session, "XDH", "UBND phường Đồng Hới", level="commune", parent=top)
    return top, justice, commune


def stored(session):
    session.expire_all()
    return sorted(session.execute(select(Agency.code, ServiceVolume.service_field,
                                         ServiceVolume.period, ServiceVolume.transactions)
                                  .join(Agency)).all())


def upload(client, data: bytes, expect: int):
    token = csrf_token(client.get("/admin/volumes/"))
    response = client.post("/admin/volumes/", data={
        "csrf_token": token, "file": (io.BytesIO(data), "so-ho-so.csv")},
        content_type="multipart/form-data")
    assert response.status_code == expect, response.get_data(as_text=True)[:2000]
    return response


def test_admin_imports_a_file_and_reimport_replaces(client, session, agencies):
    make_user(session, "admin", "admin")
    login(client, "admin")
    data = "\ufeffmã cơ quan;lĩnh vực;kỳ;số hồ sơ\r\nSTP;1;2026-Q3;1.250\r\nstp;2;2026-07;310\r\n"
    upload(client, data.encode(), 303)
    assert stored(session) == [("STP", "1", "2026-Q3", 1250), ("STP", "2", "2026-07", 310)]
    upload(client, b"agency,service_field,period,count\nSTP,1,2026-Q3,1300\n", 303)
    assert stored(session)[0] == ("STP", "1", "2026-Q3", 1300)
    page = client.get("/admin/volumes/").get_data(as_text=True)
    assert "Quý III/2026" in page and "Tháng 7/2026" in page
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity == "service_volume")) == 2


def test_errors_name_row_and_column_and_nothing_is_stored(client, session, agencies):
    make_user(session, "admin", "admin")
    login(client, "admin")
    data = ("agency,service_field,period,count\nSTP,1,2026-Q3,10\nXXX,1,2026,5\n"
            "STP,99,2026,5\nSTP,1,2026-Q9,5\nSTP,2,2026,-3\nSTP,1,2026-Q3,12\n")
    html = upload(client, data.encode(), 422).get_data(as_text=True)
    assert "không có dòng nào được lưu" in html
    for expected in ("Dòng 3, cột “agency”", "Dòng 4, cột “service_field”",
                     "Dòng 5, cột “period”", "Dòng 6, cột “count”", "Dòng 7, cột “period”"):
        assert expected in html
    assert stored(session) == []


def test_agency_user_imports_only_its_subtree(client, session, agencies):
    _top, justice, _commune = agencies
    make_user(session, "stp", "agency", agency=justice)
    login(client, "stp")
    html = upload(client, b"agency,service_field,period,count\nSTP,1,2026,5\nXDH,1,2026,5\n",
                  422).get_data(as_text=True)
    assert "không có cơ quan mã “XDH”" in html and stored(session) == []
    upload(client, b"agency,service_field,period,count\nSTP,1,2026,5\n", 303)
    assert stored(session) == [("STP", "1", "2026", 5)]


def test_analyst_may_not_import(client, session, agencies):
    make_user(session, "analyst", "analyst")
    login(client, "analyst")
    assert client.get("/admin/volumes/").status_code == 403


def test_command_line_import(runner, session, agencies, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("agency,service_field,period,count\nXDH,3,2026,4800\n", encoding="utf-8")
    result = runner.invoke(args=["import-volumes", str(good)])
    assert result.exit_code == 0, result.output
    assert stored(session) == [("XDH", "3", "2026", 4800)]
    bad = tmp_path / "bad.csv"
    bad.write_text("agency,service_field,period,count\nXDH,3,2025,1\nXDH,3,2026,x\n",
                   encoding="utf-8")
    result = runner.invoke(args=["import-volumes", str(bad)])
    assert result.exit_code != 0 and "Dòng 3, cột “count”" in result.output
    assert stored(session) == [("XDH", "3", "2026", 4800)]


def test_json_records_share_the_checks(app, session, agencies):
    with app.test_request_context("/"):
        from survey.db import get_db

        db = get_db()
        with pytest.raises(ImportFailed) as failed:
            import_volume_records(db, [{"agency": "STP", "service_field": 1, "period": "2026",
                                        "count": 2.5}, {"agency": "STP", "oops": 1}], None)
        db.rollback()
        assert [e.row for e in failed.value.errors] == [2]
        with pytest.raises(ImportFailed) as failed:
            import_volume_records(db, [{"agency": "STP", "service_field": 1, "period": "2026",
                                        "count": 2.5}], None)
        db.rollback()
        assert failed.value.errors[0].column == "count"
        assert import_volume_records(db, [{"agency": "STP", "service_field": 1,
                                           "period": "2026", "count": 12.0}], None) == (1, 0)
        db.commit()
    assert stored(session) == [("STP", "1", "2026", 12)]


MESSY = ["", " ", "1.234", "1,234", "12,5", "-3", "1e3", "=1+1", "+5", "@A1", "\t=cmd",
         "2026", "2026-Q3", "2026-Q5", "2026-13", "Q3/2026", "STP", "stp", "XDH", "QT", "ZZZ",
         "1", "10", "99", "\u00a01\u00a0234", "\ufeff1", "1 234", "٣", "１２"]
cell = st.one_of(st.sampled_from(MESSY), st.text(max_size=12))


@pytest.fixture
def stp_user(session, agencies):
    return make_user(session, "stp", "agency", agency=agencies[1])


@FUZZ
@given(body=st.lists(st.tuples(cell, cell, cell, cell), min_size=1, max_size=6),
       delimiter=st.sampled_from([",", ";"]), bom=st.booleans())
def test_messy_spreadsheets_give_row_errors_and_store_nothing_or_all(app, session, stp_user,
                                                                     body, delimiter, bom):
    """Any file an agency user sends: either every row is valid and stored exactly, or a
    list of row/column errors in Vietnamese and nothing stored."""
    user = stp_user
    out = io.StringIO()
    import csv

    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["agency", "service_field", "period", "count"])
    writer.writerows(body)
    data = (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8", "surrogatepass")
    with app.test_request_context("/"):
        from survey.db import get_db

        db = get_db()
        before = stored(session)
        try:
            data.decode("utf-8")
            import_volumes_csv(db, data, db.get(type(user), user.id))
        except (ImportFailed, UnicodeDecodeError) as failed:
            db.rollback()
            if isinstance(failed, ImportFailed):
                assert failed.errors
                for error in failed.errors:
                    text = str(error)
                    assert re.match(r"Dòng \d+", text), text
            assert stored(session) == before
        else:
            db.commit()
            after = {(a, f, p): c for a, f, p, c in stored(session)}
            for agency, field, period, count in body:
                if not any(x.strip() for x in (agency, field, period, count)):
                    continue
                assert agency.strip().upper() == "STP"  # an agency user's own subtree only
                key = ("STP", str(int(field.strip())), parse_period(period))
                assert after[key] == parse_count(count.replace("\u00a0", " "))
        db.execute(ServiceVolume.__table__.delete())
        db.commit()


# --- the reports use them exactly -------------------------------------------------------


def at(session, response, when):
    response.submitted_at = when
    session.commit()


@pytest.fixture
def month_data(session, make_counter):
    justice = make_counter()
    health = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy Y tế")
    july = datetime(2026, 7, 15, 3, tzinfo=UTC)
    for counter, values in ((justice, (5, 4, 2, 2, 5, 5)), (health, (1, 2, 4, 5, 5, 3))):
        for k, value in enumerate(values):
            at(session, add_response(session, counter, field=1 + k % 2, a1=value, a2=4), july)
    return justice, health


def volumes(session, *items):
    for a, f, p, c in items:
        make_volume(session, a, f, p, c)


def login_analyst(client, session):
    make_user(session, "analyst", "analyst")
    login(client, "analyst")


def test_one_agencys_monthly_rows_do_not_break_the_month_for_others(client, session,
                                                                    month_data):
    justice, _health = month_data
    volumes(session, (justice.agency_id, "1", "2026-07", 100),
            (justice.agency_id, "2", "2026-07", 300))
    login_analyst(client, session)
    args = "weighting=poststrat&period_kind=month&period=2026-07"
    html = client.get(f"/reports/?{args}").get_data(as_text=True)
    assert "Sở Y tế" in html and "Không tính được" not in html
    assert "Sở Y tế: chưa có số hồ sơ đã giải quyết cho tháng 7/2026" in html
    notes = pd.read_csv(io.BytesIO(client.get(f"/reports/indices.csv?table=notes&{args}").data),
                        encoding="utf-8-sig")
    fallback = notes[notes["kind"] == "fallback"]
    assert fallback["scope"].tolist() == ["SYT"]
    assert "tháng 7/2026" in fallback["mo_ta"].iloc[0]


def test_a_quarter_from_its_months_weights_like_the_quarter_row(client, session, month_data):
    justice, health = month_data
    months = [(a, f, f"2026-{m:02d}", c) for a, f, c in (
        (justice.agency_id, "1", 10), (justice.agency_id, "2", 30),
        (health.agency_id, "1", 100), (health.agency_id, "2", 100)) for m in (7, 8, 9)]
    volumes(session, *months)
    login_analyst(client, session)
    args = "weighting=poststrat&period_kind=quarter&period=2026-Q3"
    from_months = client.get(f"/reports/indices.csv?{args}").data
    html = client.get(f"/reports/?{args}").get_data(as_text=True)
    assert "dùng tổng các kỳ từ tháng 7/2026 đến tháng 9/2026" in html
    session.execute(ServiceVolume.__table__.delete())
    session.commit()
    volumes(session, (justice.agency_id, "1", "2026-Q3", 30),
            (justice.agency_id, "2", "2026-Q3", 90), (health.agency_id, "1", "2026-Q3", 300),
            (health.agency_id, "2", "2026-Q3", 300))
    from_quarter = client.get(f"/reports/indices.csv?{args}").data
    a = pd.read_csv(io.BytesIO(from_months), encoding="utf-8-sig")
    b = pd.read_csv(io.BytesIO(from_quarter), encoding="utf-8-sig")
    pd.testing.assert_series_equal(a["estimate"], b["estimate"], rtol=1e-12)
    unweighted = pd.read_csv(io.BytesIO(client.get(
        "/reports/indices.csv?period_kind=quarter&period=2026-Q3").data), encoding="utf-8-sig")
    assert not a["estimate"].equals(unweighted["estimate"])


def test_year_rows_scale_into_a_quarter_only_when_asked(client, session, month_data):
    justice, health = month_data
    volumes(session, *[(a, f, "2026", 365) for a in (justice.agency_id, health.agency_id)
                       for f in ("1", "2")])
    login_analyst(client, session)
    args = "weighting=poststrat&period_kind=quarter&period=2026-Q3"
    html = client.get(f"/reports/?{args}").get_data(as_text=True)
    assert "Chưa có số liệu hồ sơ đã giải quyết cho kỳ này" in html
    html = client.get(f"/reports/?{args}&scale_volumes=1").get_data(as_text=True)
    assert "nhân với tỷ lệ số ngày 92/365" in html
    assert session.scalar(select(func.count()).select_from(Response)) == 12
