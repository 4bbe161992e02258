"""Trends per period with the period-to-period test, the ranking per agency level, the
agency page's scope figure and counters, and the date range filter."""

import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from analysis import compare_periods, compute_indices
from survey.report_trends import trend_points
from survey.reports import format_p
from survey.reports_data import responses_frame

from .factories import make_response
from .test_reports import SIPAS, login_as

ELEMENTS = [(q.id, q.element) for q in SIPAS.criteria]


def add_at(session, counter, when, value):
    make_response(session, counter, {"field": 1, "a1": value, "a2": value},
                  questionnaire_id="sipas-service", at=when, commit=False)


def seed(session, make_counter):
    """Sở Tư pháp (department) falls from Q3 to Q4 2026; Xã An Bình (commune) is small."""
    justice = make_counter()
    second = make_counter(label="Quầy 4 – Tư pháp")
    commune = make_counter(agency_code="XAB", agency_name="Xã An Bình", label="Quầy xã",
                           level="commune")
    for i in range(20):
        add_at(session, justice if i % 2 else second, datetime(2026, 8, 1 + i, 3, tzinfo=UTC),
               5 if i < 18 else 2)
        add_at(session, justice if i % 2 else second, datetime(2026, 11, 1 + i, 3, tzinfo=UTC),
               2 if i < 16 else 5)
    for value in (4, 2, 5):
        add_at(session, commune, datetime(2026, 11, 20, 3, tzinfo=UTC), value)
    session.commit()
    return justice, commune


def _frame(app, **kwargs):
    with app.app_context():
        from survey.db import get_db

        return responses_frame(get_db(), SIPAS, **kwargs)


def test_scope_trend_shows_the_library_test_and_period_names(app, client, session,
                                                           make_counter):
    """The scope's trend: quarters named 'Quý IV/2026', the mark exactly compare_periods'."""
    app.config["MIN_GROUP_N"] = 10
    seed(session, make_counter)
    login_as(client, session, "analyst")
    html = client.get("/reports/").get_data(as_text=True)
    frame = _frame(app)
    tests = compare_periods(frame, ELEMENTS, by=None, min_n=10)
    row = tests[(tests["level"] == "overall") & (tests["period"] == "2026-Q4")].iloc[0]
    assert row["mark"] == "lower"
    trend = html.split('id="h-trend-scope"')[1].split("</section>")[0]
    assert "<title" in trend and "<desc" in trend and "Quý III/2026" in trend
    assert "Quý IV/2026" in trend and "2026-Q4" not in trend
    assert "Thấp hơn có ý nghĩa thống kê so với kỳ trước" in trend
    assert f"<td>{escape(format_p(row['diff_p_adj']))}</td>" in trend
    assert "Cao hơn có ý nghĩa thống kê so với kỳ trước" not in trend
    # Every period's figure in the table is the library's per-period index.
    table = compute_indices(frame, ELEMENTS, by=["period"], min_n=10)
    for _i, r in table[(table["by"] == "period") & (table["level"] == "overall")].iterrows():
        assert f"{r['estimate']:.2f}".replace(".", ",") in trend
    # Month names too.
    months = client.get("/reports/?period_kind=month").get_data(as_text=True)
    assert "Tháng 11/2026" in months and "Tháng 8/2026" in months


def test_ranking_split_by_level_and_agency_page(app, client, session, make_counter):
    """Levels in their own tables; the agency page has the scope's figure, its counters
    (with the small-group flag) and its own trend."""
    app.config["MIN_GROUP_N"] = 10
    seed(session, make_counter)
    login_as(client, session, "analyst")
    html = client.get("/reports/?period_kind=year").get_data(as_text=True)
    levels = html.split('id="h-levels"')[1]
    assert levels.index("Sở, ban, ngành") < levels.index("Sở Tư pháp") \
        < levels.index("Cấp xã") < levels.index("Xã An Bình")
    detail = client.get("/reports/agency/STP").get_data(as_text=True)
    frame = _frame(app)
    whole = compute_indices(frame, ELEMENTS, min_n=10)
    overall = whole[(whole["by"] == "ALL") & (whole["level"] == "overall")].iloc[0]
    assert "Chỉ số chung: " + f"{overall['estimate']:.2f}".replace(".", ",") in detail
    counters = detail.split("Theo quầy")[1].split("</table>")[0]
    assert "Quầy 3 – Tư pháp" in counters and "Quầy 4 – Tư pháp" in counters
    assert re.search(r"Quầy 3 – Tư pháp</th><td>20</td>", counters)
    assert 'id="h-trend-agency"' in detail and "Quý IV/2026" in detail
    # The commune's page: 3 responses, a small group.
    small = client.get("/reports/agency/XAB").get_data(as_text=True)
    assert re.search(r"Quầy xã</th><td>3 <span class=\"warn\">\(ít phiếu\)", small)


def test_date_range_filter_keeps_those_days(app, client, session, make_counter):
    """From/to local days: only the responses submitted then are counted."""
    seed(session, make_counter)
    login_as(client, session, "analyst")
    html = client.get("/reports/?period_kind=year&date_from=2026-11-01&date_to=2026-11-30"
                      ).get_data(as_text=True)
    frame = _frame(app)
    kept = frame[frame["period"].isin(["2026-Q4"])]
    assert len(_frame(app, date_from=datetime(2026, 11, 1).date(),
                      date_to=datetime(2026, 11, 30).date())) == len(kept) == 23
    assert f"Số phiếu: {len(kept)}." in html
    assert 'name="date_from" value="2026-11-01"' in html


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=30), st.sampled_from(
    ["2026-02-30", "=1+1", "2026-13-01", "20261101", "2026-11-01'--", "９９９９-01-01"])),
       st.sampled_from(["date_from", "date_to"]))
def test_hostile_dates_are_a_400(client, session, value, name):
    """A malformed date is refused with 400 and nothing else happens."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) and _valid(value):
        return
    if not getattr(client, "_logged", False):
        login_as(client, session, "analyst")
        client._logged = True
    response = client.get("/reports/", query_string={name: value})
    expected = 200 if value.strip() == "" else 400
    assert response.status_code == expected


def _valid(text):
    try:
        datetime.strptime(text, "%Y-%m-%d")
        return True
    except ValueError:
        return False


def test_reversed_range_is_a_400(client, session):
    login_as(client, session, "analyst")
    assert client.get("/reports/?date_from=2026-12-01&date_to=2026-11-01").status_code == 400


def test_small_quarters_are_not_compared_on_page_and_pdf(app, client, session, make_counter):
    """Both quarters below the small-group size: the trend row says "not compared (few
    responses)" as the ranking does, never "no difference", even though the library's p is
    below 0.05; the PDF's trend table uses the same rule."""
    from .test_report_pdf import pdf_text

    app.config["MIN_GROUP_N"] = 30
    seed(session, make_counter)
    frame = _frame(app)
    tests = compare_periods(frame, ELEMENTS, by=None, min_n=30)
    row = tests[(tests["level"] == "overall") & (tests["period"] == "2026-Q4")].iloc[0]
    assert row["diff_p_adj"] < 0.05 and row["mark"] == ""
    login_as(client, session, "analyst")
    html = client.get("/reports/").get_data(as_text=True)
    trend = html.split('id="h-trend-scope"')[1].split("</section>")[0]
    table = trend.split("<table>")[1]
    assert "Không so sánh (ít phiếu)" in table
    assert "Không khác biệt" not in table
    assert 'class="mark-small"' in table
    with app.test_request_context():
        points = trend_points(frame, SIPAS, 30)
    assert [p["comparison"] for p in points] == ["none", "small"]
    pdf = client.get("/reports/report.pdf")
    assert pdf.status_code == 200
    text = " ".join(pdf_text(pdf.data).split())
    assert "Không so sánh (ít phiếu)" in text
    assert "Không khác biệt có ý nghĩa thống kê so với kỳ trước" not in text


def test_p_values_below_a_thousandth_are_written_so(app):
    """p-values: three decimals, "< 0,001" instead of "0,000", a dash for none; in the
    page's language's number style."""
    assert format_p(0.0004) == "< 0,001" and format_p(0.0) == "< 0,001"
    assert format_p(0.0172) == "0,017" and format_p(None) == "–"
    assert format_p(float("nan")) == "–"
    with app.test_request_context("/reports/?lang=en"):
        assert format_p(0.0004) == "< 0.001" and format_p(0.0172) == "0.017"
