"""Reports: the indices pages and downloads agree with the analysis library, in scope."""

import io
import re

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import compute_indices
from survey.questionnaires import Registry, default_folder
from survey.reports_data import responses_frame

from .factories import make_response, make_volume
from .staff import login, make_user

SIPAS = Registry(default_folder()).latest("sipas-service")


def add_response(session, counter, field=1, **answers):
    return make_response(session, counter, {"field": field, **answers},
                         questionnaire_id="sipas-service")


def login_as(client, session, role, agency=None):
    """A user of that role (scoped to `agency` if given), signed in through the login form."""
    user = make_user(session, f"{role}-user", role, agency=agency)
    login(client, user.login)
    return user


@pytest.fixture
def two_agencies(session, make_counter):
    justice = make_counter()  # Sở Tư pháp
    health = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy Y tế")
    for value in (5, 4, 2):
        add_response(session, justice, a1=value, a2=4, b1=0)
    add_response(session, health, field=2, a1=1, a2=2)
    return justice, health


def test_anonymous_is_sent_to_login(client):
    response = client.get("/reports/")
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]


def test_page_shows_the_indices_the_library_computes(client, session, two_agencies):
    login_as(client, session, "analyst")
    html = client.get("/reports/").get_data(as_text=True)
    assert "Sở Tư pháp" in html and "Sở Y tế" in html
    # a1 in Sở Tư pháp: 2 of 3 answered 4 or 5 -> 66,67%; the agency's element A is the
    # mean of a1 (66.67) and a2 (100) = 83,33.
    detail = client.get("/reports/agency/STP").get_data(as_text=True)
    assert "66,67" in detail and "83,33" in detail
    # b1 was "not applicable" for everyone: undefined (a dash, 0 answered), not 0%.
    fees = re.search(r"Phí, lệ phí[^<]*</th>(.*?)</tr>", detail).group(1)
    assert fees == "<td>–</td><td>–</td><td>–</td><td>0</td>"


def test_csv_download_is_the_library_table(client, session, two_agencies, app):
    login_as(client, session, "admin")
    response = client.get("/reports/indices.csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    downloaded = pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig")
    with app.app_context():
        from survey.db import get_db

        frame = responses_frame(get_db(), SIPAS)
    expected = compute_indices(frame, [(q.id, q.element) for q in SIPAS.criteria],
                               by=["agency", "agency,period", "period"])
    assert len(downloaded) == len(expected)
    pd.testing.assert_series_equal(downloaded["estimate"], expected["estimate"],
                                   check_names=False, rtol=1e-12)
    names = set(downloaded["agency_name"].dropna())
    assert names == {"Sở Tư pháp", "Sở Y tế"}


def test_xlsx_download_opens_with_vietnamese_names(client, session, two_agencies):
    login_as(client, session, "admin")
    response = client.get("/reports/indices.xlsx")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    values = {cell.value for row in sheet.iter_rows() for cell in row}
    assert "Sở Tư pháp" in values and "SIPAS" in values


def test_poststratification_weights_by_served_transactions(client, session, two_agencies):
    justice, health = two_agencies
    # Sở Tư pháp: 5 respondents in field 1 (a1: 5, 4, 2, 2, 2) and 5 in field 2 (a1 = 5),
    # enough for each field to be its own weighting cell (the library pools cells under 5).
    for value in (2, 2):
        add_response(session, justice, a1=value)
    for _i in range(5):
        add_response(session, justice, field=2, a1=5)
    make_volume(session, justice.agency_id, "1", "2026", 100)
    make_volume(session, justice.agency_id, "2", "2026", 300)
    make_volume(session, health.agency_id, "2", "2026", 50)
    login_as(client, session, "analyst")
    detail = client.get("/reports/agency/STP?weighting=poststrat&period_kind=year").get_data(
        as_text=True)
    # a1 satisfied: field 1 2/5, field 2 5/5, weighted by 100 and 300 transactions:
    # (0.4 * 100 + 300) / 400 = 85,00% (unweighted it would be 7/10 = 70%).
    assert "85,00" in detail
    plain = client.get("/reports/agency/STP").get_data(as_text=True)
    assert "70,00" in plain


def test_agency_user_sees_only_its_own_subtree(client, session, two_agencies):
    justice, health = two_agencies
    login_as(client, session, "agency", agency=justice.agency)
    html = client.get("/reports/").get_data(as_text=True)
    assert "Sở Tư pháp" in html and "Sở Y tế" not in html
    assert client.get("/reports/agency/SYT").status_code == 404
    assert client.get("/reports/agency/STP").status_code == 200
    downloaded = pd.read_csv(io.BytesIO(client.get("/reports/indices.csv").data),
                             encoding="utf-8-sig")
    assert set(downloaded["agency"].dropna()) == {"STP"}


def test_bad_parameters_are_400(client, session, two_agencies):
    login_as(client, session, "admin")
    assert client.get("/reports/?weighting=magic").status_code == 400
    assert client.get("/reports/?questionnaire=nope").status_code == 400
    assert client.get("/reports/indices.pdf").status_code == 404


def test_no_responses_says_so(client, session, make_counter):
    make_counter()
    login_as(client, session, "admin")
    response = client.get("/reports/")
    assert response.status_code == 200
    assert "Chưa có phiếu trả lời nào" in response.get_data(as_text=True)


def test_responses_frame_blanks_not_applicable_and_keeps_codes(app, session, two_agencies):
    with app.app_context():
        from survey.db import get_db

        frame = responses_frame(get_db(), SIPAS)
    assert len(frame) == 4
    assert frame["b1"].isna().all()
    assert sorted(frame["a1"].dropna().astype(int)) == [1, 2, 4, 5]
    assert set(frame["field"]) == {"1", "2"}
    assert set(frame["agency"]) == {"STP", "SYT"}


def test_counter_quick_form_reports_share_satisfied_and_reasons(client, session, make_counter):
    counter = make_counter(label="Quầy nhanh", questionnaire_id="counter-quick")
    ratings = [(3, []), (2, []), (2, []), (1, [1, 3]), (1, [1])]
    for overall, reasons in ratings:
        make_response(session, counter, {"overall": overall, "q2": 4, "reasons": reasons})
    login_as(client, session, "analyst")
    html = client.get("/reports/?questionnaire=counter-quick").get_data(as_text=True)
    # 3 of 5 rated Rất hài lòng or Hài lòng.
    assert "Tỷ lệ hài lòng chung</h2>" not in html  # the heading carries the figure
    assert "Tỷ lệ hài lòng chung: 60,00%" in html
    first_reason = re.search(r"<caption>Lý do không hài lòng.*?<tbody>\s*<tr><th scope=\"row\">"
                             r"([^<]+)</th><td>(\d+)</td><td>([^<]+)</td>", html, re.S)
    assert first_reason.group(2) == "2" and first_reason.group(3) == "100,0"
    reasons = pd.read_csv(io.BytesIO(client.get(
        "/reports/indices.csv?questionnaire=counter-quick&table=reasons").data),
        encoding="utf-8-sig")
    whole = reasons[reasons["by"] == "ALL"].set_index("reason")
    assert whole.loc[1, "count"] == 2 and whole.loc[3, "count"] == 1


def add_quick_response(session, counter, overall, reasons=(), **criteria):
    make_response(session, counter, {"overall": overall, "reasons": list(reasons), **criteria},
                  questionnaire_id="counter-quick")


@pytest.fixture
def quick_agencies(session, make_counter):
    """Quick-form answers: Sở Tư pháp 3 of 6 satisfied, Sở Y tế 4 of 5; served volumes."""
    justice = make_counter(label="Quầy nhanh", questionnaire_id="counter-quick")
    health = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy nhanh Y tế",
                          questionnaire_id="counter-quick")
    for overall, reasons in [(3, []), (2, []), (2, []), (1, [1, 3]), (1, [1]), (1, [])]:
        add_quick_response(session, justice, overall, reasons, q2=4)
    for overall, reasons in [(3, []), (3, []), (3, []), (3, []), (1, [2])]:
        add_quick_response(session, health, overall, reasons, q2=2)
    # The quick form asks no service field: the volumes count per agency (fields summed).
    make_volume(session, justice.agency_id, "1", "2026", 100)
    make_volume(session, justice.agency_id, "2", "2026", 300)
    make_volume(session, health.agency_id, "1", "2026", 100)
    return justice, health


@pytest.mark.parametrize(("weighting", "whole"), [("none", "63,64"), ("poststrat", "56,00")])
def test_quick_form_reports_work_with_and_without_weighting(client, session, quick_agencies,
                                                            weighting, whole):
    login_as(client, session, "analyst")
    # The volumes are yearly: a yearly report uses them as they are.
    args = f"questionnaire=counter-quick&weighting={weighting}&period_kind=year"
    response = client.get(f"/reports/?{args}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Unweighted 7 of 11; weighted, Sở Tư pháp's 6 answers stand for 400 dossiers and
    # Sở Y tế's 5 for 100: (3/6 * 400 + 4/5 * 100) / 500 = 56%.
    assert f"Tỷ lệ hài lòng chung: {whole}%" in html
    assert ("chỉ gia quyền theo tổng số hồ sơ" in html) == (weighting == "poststrat")
    assert "Sở Tư pháp" in html and "Sở Y tế" in html
    for code, share in (("STP", "50,00"), ("SYT", "80,00")):
        response = client.get(f"/reports/agency/{code}?{args}")
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert f"Tỷ lệ hài lòng chung: {share}%" in page
        assert "Thái độ của công chức" in page  # the quick criterion q2 and its index
    stp = client.get(f"/reports/agency/STP?{args}").get_data(as_text=True)
    # Two of the three not satisfied gave a reason; both named the wait.
    first = re.search(r"<caption>Lý do không hài lòng.*?<tbody>\s*<tr><th scope=\"row\">"
                      r"([^<]+)</th><td>(\d+)</td><td>([^<]+)</td>", stp, re.S)
    assert first.groups() == ("Phải chờ quá lâu", "2", "100,0")
    satisfaction = pd.read_csv(io.BytesIO(client.get(f"/reports/indices.csv?{args}").data),
                               encoding="utf-8-sig")
    assert satisfaction.loc[satisfaction["by"] == "ALL", "estimate"].iloc[0] == pytest.approx(
        float(whole.replace(",", ".")), abs=0.005)


def test_too_few_responses_is_said_in_vietnamese(client, session, make_counter):
    counter = make_counter(label="Quầy nhanh", questionnaire_id="counter-quick")
    add_quick_response(session, counter, 3)
    login_as(client, session, "analyst")
    for path in ("/reports/", "/reports/agency/STP"):
        for weighting in ("none", "poststrat"):
            response = client.get(f"{path}?questionnaire=counter-quick&weighting={weighting}")
            assert response.status_code == 200
            html = response.get_data(as_text=True)
            assert "Cần ít nhất 2 phiếu trả lời" in html
            assert "responses:" not in html and "at least 2" not in html


def _agency_with_answers(session, make_counter, code, name, values, field=1):
    counter = make_counter(agency_code=code, agency_name=name, label=f"Quầy {code}")
    for value in values:
        add_response(session, counter, field=field, a1=value, a2=value)
    return counter


def test_ranking_marks_follow_the_adjusted_test_not_interval_overlap(app, client, session,
                                                                      make_counter):
    """Every agency's mark on the page is the library's `mark` (Holm-adjusted diff_p)."""
    app.config["MIN_GROUP_N"] = 10
    _agency_with_answers(session, make_counter, "CAO", "Sở Cao", [5] * 17 + [2] * 3)
    _agency_with_answers(session, make_counter, "THAP", "Sở Thấp", [1] * 15 + [4] * 5)
    _agency_with_answers(session, make_counter, "GIUA", "Sở Giữa", [4] * 12 + [2] * 8)
    _agency_with_answers(session, make_counter, "NHO", "Sở Nhỏ", [1, 1, 1])  # small: no mark
    login_as(client, session, "analyst")
    html = client.get("/reports/").get_data(as_text=True)
    with app.app_context():
        from survey.db import get_db

        frame = responses_frame(get_db(), SIPAS)
    table = compute_indices(frame, [(q.id, q.element) for q in SIPAS.criteria], by=["agency"],
                            min_n=10)
    overall = table[(table["by"] == "agency") & (table["level"] == "overall")].set_index("agency")
    shown = dict(re.findall(r'agency/(\w+)[^"]*">[^<]*</a></th>.*?<td class="mark-(\w+)">',
                            html, re.S))
    assert set(shown) == {"CAO", "THAP", "GIUA", "NHO"}
    expected = {"higher": "above", "lower": "below"}
    for code, row in overall.iterrows():
        want = expected.get(row["mark"], "small" if row["flag"] == "small_n" else "same")
        assert shown[code] == want, (code, row["mark"], row["diff_p_adj"])
        if row["mark"] == "":
            assert row["flag"] == "small_n" or row["diff_p_adj"] >= 0.05
    assert shown["CAO"] == "above" and shown["THAP"] == "below" and shown["NHO"] == "small"
    # Once in the overall ranking, once more in the ranking of the agencies' level (all
    # four are departments), the same mark.
    overall_part, level_part = html.split('id="h-levels"')
    assert overall_part.count("Cao hơn có ý nghĩa thống kê") == 1
    assert overall_part.count("Thấp hơn có ý nghĩa thống kê") == 1
    assert dict(re.findall(r'agency/(\w+)[^"]*">[^<]*</a></th>.*?<td class="mark-(\w+)">',
                           level_part, re.S)) == shown
    # The adjusted p-value is printed next to the mark.
    assert f"<td>{overall.loc['CAO', 'diff_p_adj']:.3f}".replace(".", ",") in html
    # The chart: coloured bars only for the marks, the small agency hatched and starred,
    # and a legend saying so.
    chart = html[html.index('<svg class="chart" viewBox="0 0 640'):]
    chart = chart[:chart.index("</svg>")]
    assert chart.count('fill="#0b5394"/>') == 2 and chart.count('fill="#b00020"/>') == 2
    assert chart.count('fill="url(#few)"') == 2  # Sở Nhỏ's bar and the legend's key
    assert "Sở Nhỏ *</text>" in chart and "Sở Cao *" not in chart and "* Ít phiếu" in chart


def test_weighting_notes_on_the_pages_and_in_every_download(client, session, make_counter):
    """Pooled cells and an agency without respondents are said in Vietnamese, everywhere."""
    justice = _agency_with_answers(session, make_counter, "STP", "Sở Tư pháp", [5, 4, 2])
    add_response(session, justice, field=2, a1=1)
    silent = make_counter(agency_code="SXD", agency_name="Sở Xây dựng", label="Quầy XD")
    make_volume(session, justice.agency_id, "1", "2026", 300)
    make_volume(session, justice.agency_id, "2", "2026", 100)
    make_volume(session, silent.agency_id, "1", "2026", 600)
    login_as(client, session, "analyst")
    html = client.get("/reports/?weighting=poststrat&period_kind=year").get_data(as_text=True)
    assert "Ghi chú về gia quyền" in html
    assert ("Sở Xây dựng: có 600 hồ sơ đã giải quyết (60,0% số hồ sơ của toàn phạm vi) nhưng "
            "không có phiếu") in html
    assert "Sở Tư pháp: các ô gia quyền có dưới 5 phiếu" in html
    detail = client.get("/reports/agency/STP?weighting=poststrat&period_kind=year").get_data(
        as_text=True)
    assert "Sở Tư pháp: các ô gia quyền có dưới 5 phiếu" in detail
    assert "Sở Xây dựng" not in detail  # only the notes about this agency and the scope
    notes = pd.read_csv(io.BytesIO(client.get(
        "/reports/indices.csv?weighting=poststrat&period_kind=year&table=notes").data),
        encoding="utf-8-sig")
    assert set(notes["kind"]) >= {"unrepresented", "pooled_cells"}
    assert notes["mo_ta"].str.contains("Sở Xây dựng").any()
    book = openpyxl.load_workbook(io.BytesIO(
        client.get("/reports/indices.xlsx?weighting=poststrat&period_kind=year").data))
    # The workbook made for Excel (survey/workbook.py) carries the library's notes table
    # as is, beside its Vietnamese sheets.
    assert "notes" in book.sheetnames and "Ghi chú" in book.sheetnames
    texts = [c.value for c in book["notes"][1]]
    assert "mo_ta" in texts and book["notes"].max_row == len(notes) + 1
    # Unweighted: nothing to note, and the notes CSV is an empty table with its header.
    assert "Ghi chú về gia quyền" not in client.get("/reports/").get_data(as_text=True)
    empty = client.get("/reports/indices.csv?table=notes")
    assert empty.status_code == 200 and b"kind,scope,cells" in empty.data
    assert client.get("/reports/indices.csv?table=bogus").status_code == 400


def test_the_pooling_bias_in_the_intervals_is_said_and_downloaded(client, session,
                                                                    make_counter):
    """Cells of unlike weight and satisfaction pooled: the intervals carry the estimated
    bias, the page says so in Vietnamese and the downloads have the column."""
    justice = _agency_with_answers(session, make_counter, "STP", "Sở Tư pháp", [5, 5, 4])
    add_response(session, justice, field=2, a1=1)
    make_volume(session, justice.agency_id, "1", "2026", 100)
    make_volume(session, justice.agency_id, "2", "2026", 900)
    login_as(client, session, "analyst")
    query = "weighting=poststrat&period_kind=year"
    html = client.get(f"/reports/?{query}").get_data(as_text=True)
    notes = html[html.index('id="h-notes"'):]
    # the allowance is said first (it concerns every interval), with where its largest is
    first = re.search(r"<li>(.*?)</li>", notes, re.S).group(1)
    assert first.startswith("Khoảng tin cậy 95% đã được nới rộng để tính đến độ lệch")
    assert "ở chỉ số hài lòng chung của toàn phạm vi" in first
    assert "lớn nhất 65,00 điểm phần trăm (tiêu chí a1, toàn phạm vi, 4 người trả lời)" in first
    table = pd.read_csv(io.BytesIO(client.get(f"/reports/indices.csv?{query}").data),
                        encoding="utf-8-sig")
    assert "pooling_bias" in table.columns
    a1 = table[(table["by"] == "ALL") & (table["key"] == "a1")].iloc[0]
    # field 1: 3 satisfied of 3, weight 100/3 each; field 2: 1 dissatisfied, weight 900:
    # unpooled 10% satisfied, pooled 75%
    assert a1["estimate"] == pytest.approx(75.0)
    assert a1["pooling_bias"] == pytest.approx(10.0 - 75.0)
    assert a1["ci_low"] < 10.0  # the interval reaches what the unpooled weights say
    notes = pd.read_csv(io.BytesIO(client.get(f"/reports/indices.csv?{query}&table=notes")
                                   .data), encoding="utf-8-sig")
    assert "pooling_bias" in set(notes["kind"])
    assert "Sở Tư pháp" in client.get(f"/reports/agency/STP?{query}").get_data(as_text=True)
    assert "chỉ số hài lòng chung của Sở Tư pháp; lớn nhất 65,00 điểm phần trăm" in client.get(
        f"/reports/agency/STP?{query}").get_data(as_text=True)
    methods = client.get("/reports/cach-tinh").get_data(as_text=True)
    assert "Gộp ô có thể làm lệch ước lượng" in methods and "95%%" not in methods


def test_numbers_are_written_as_the_language_writes_them(client, session, make_counter):
    """Vietnamese 66,67 and 1.000; English 66.67 and 1,000 (the same figures)."""
    justice = _agency_with_answers(session, make_counter, "STP", "Sở Tư pháp", [5, 4, 2])
    make_volume(session, justice.agency_id, "1", "2026", 1000)
    login_as(client, session, "analyst")
    query = "/reports/agency/STP?weighting=poststrat&period_kind=year"
    vietnamese = client.get(query).get_data(as_text=True)
    assert "66,67" in vietnamese and "66.67" not in vietnamese
    english = client.get(query + "&lang=en").get_data(as_text=True)
    assert "66.67" in english and "66,67" not in english
    client.get("/reports/?lang=vi")


def test_no_interval_where_fewer_than_two_answered_and_the_reason_is_shown(client, session,
                                                                          make_counter):
    _agency_with_answers(session, make_counter, "STP", "Sở Tư pháp", [5, 4, 2])
    _agency_with_answers(session, make_counter, "SYT", "Sở Y tế", [4])
    login_as(client, session, "analyst")
    detail = client.get("/reports/agency/SYT").get_data(as_text=True)
    assert "dưới 2 người trả lời: không tính khoảng tin cậy" in detail
    assert re.search(r"100,00 – 100,00", detail) is None  # never a zero-width interval


def test_agency_page_shows_responses_against_dossiers_served(client, session, two_agencies):
    """3 answers for 2 dossiers is itself a warning; 1 for 400 is shown as the thin share it is."""
    from datetime import UTC, datetime


    justice, health = two_agencies
    year = str(datetime.now(UTC).year)
    make_volume(session, justice.agency_id, "1", year, 2)
    make_volume(session, health.agency_id, "2", year, 400)
    login_as(client, session, "analyst")
    page = client.get(f"/reports/agency/STP?period_kind=year&period={year}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "3 phiếu trên 2 hồ sơ đã giải quyết (150,00%)" in text
    assert "Số phiếu vượt số hồ sơ" in text
    text = client.get(f"/reports/agency/SYT?period_kind=year&period={year}").get_data(
        as_text=True)
    assert "1 phiếu trên 400 hồ sơ đã giải quyết (0,25%)" in text
    assert "Số phiếu vượt số hồ sơ" not in text
    # Without a chosen period: the latest periods of the chosen kind with responses.
    assert f"Tỷ lệ phản hồi kỳ năm {year}: 1 phiếu trên 400 hồ sơ" in client.get(
        "/reports/agency/SYT?period_kind=year").get_data(as_text=True)


def test_coverage_of_a_quarter_adds_up_its_months_and_shows_per_counter(
        app, client, session, make_counter):
    """Monthly volumes only: the quarter's coverage is the sum of its months when all were
    imported; the agency's only counter shows its responses against those dossiers, and a
    counter handing out receipt codes against the codes issued."""
    from survey.domain.coverage import months_in
    from survey.models import utcnow
    from survey.receipts import issue_codes

    counter = make_counter(agency_code="STN", agency_name="Sở Tài nguyên",
                           label="Quầy TN")
    now = utcnow()
    local = now.astimezone(pd.Timestamp.now(tz="Asia/Ho_Chi_Minh").tzinfo)
    quarter = f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    for _ in range(3):
        make_response(session, counter, {"field": 1, "a1": 4}, at=now, commit=False)
    session.commit()
    months = months_in(quarter, now)
    for month in months:
        make_volume(session, counter.agency_id, "1", month, 10)
    login_as(client, session, "analyst")
    text = client.get(f"/reports/agency/STN?period_kind=quarter&period={quarter}").get_data(
        as_text=True)
    served = 10 * len(months)
    assert f"3 phiếu trên {served} hồ sơ đã giải quyết" in text
    assert f"3 / {served} hồ sơ" in text  # the only counter: the agency's dossiers
    # A second counter handing out codes: its responses since its first code against its
    # codes (a response from before it handed out codes has no code to count against).
    coded = make_counter(agency_code="STN", agency_name="Sở Tài nguyên", label="Quầy mã")
    make_response(session, coded, {"field": 1, "a1": 2}, at=now - pd.Timedelta(minutes=5))
    with app.app_context():
        issue_codes(session, coded.id, 4, "slip", 30)
        session.commit()
    make_response(session, coded, {"field": 1, "a1": 5}, at=utcnow())
    text = client.get(f"/reports/agency/STN?period_kind=quarter&period={quarter}").get_data(
        as_text=True)
    assert "1 / 4 hồ sơ (25,00%)" in text


@pytest.mark.parametrize("args", ["date_to=9999-12-31", "date_from=0001-01-01",
                                  "date_from=0001-01-01&date_to=9999-12-31"])
def test_dates_at_the_calendars_ends_bound_nothing(client, session, two_agencies, args):
    """0001-01-01 and 9999-12-31 cannot become UTC moments a day away: they bound nothing
    (every response is counted), on the pages, the PDF and the downloads; never a 500."""
    login_as(client, session, "analyst")
    whole = client.get("/reports/").get_data(as_text=True)
    for path in ("/reports/", "/reports/agency/STP", "/reports/report.pdf",
                 "/reports/indices.csv", "/reports/responses.csv"):
        response = client.get(f"{path}?{args}")
        assert response.status_code == 200, (path, response.status_code)
    html = client.get(f"/reports/?{args}").get_data(as_text=True)
    assert html.split("Số phiếu: ")[1].split(".")[0] == whole.split("Số phiếu: ")[1].split(".")[0]


def test_a_zero_in_the_served_volumes_is_pooled_and_said_not_an_error(client, session,
                                                                       make_counter):
    """A sampled field served 0 dossiers: its respondents are pooled within the agency."""
    justice = _agency_with_answers(session, make_counter, "STP", "Sở Tư pháp", [5, 4, 2])
    add_response(session, justice, field=2, a1=1, a2=1)
    make_volume(session, justice.agency_id, "1", "2026", 300)
    make_volume(session, justice.agency_id, "2", "2026", 0)
    login_as(client, session, "analyst")
    for url in ("/reports/?weighting=poststrat&period_kind=year",
                "/reports/agency/STP?weighting=poststrat&period_kind=year"):
        html = client.get(url).get_data(as_text=True)
        assert "Không tính được chỉ số" not in html
        assert "Ghi chú về gia quyền" in html and "Sở Tư pháp:" in html
        assert ("Sở Tư pháp: 1 phiếu ở lĩnh vực 2 (Đất đai), nơi số hồ sơ đã giải quyết là 0 "
                "hoặc chưa "
                "có, được gộp với các ô khác của cơ quan") in html  # in Vietnamese
    notes = pd.read_csv(io.BytesIO(client.get(
        "/reports/indices.csv?weighting=poststrat&period_kind=year&table=notes").data),
        encoding="utf-8-sig")
    zero = notes[notes["kind"] == "zero_cells_pooled"]
    assert list(zero["responses"]) == [1] and zero["mo_ta"].str.contains("Sở Tư pháp").all()
    table = pd.read_csv(io.BytesIO(client.get(
        "/reports/indices.csv?weighting=poststrat&period_kind=year").data), encoding="utf-8-sig")
    assert len(table) > 0


# --- Filters that cannot be used: the page itself, its form and a specific message ---

def _form_and_menu(html: str) -> bool:
    return ('<form method="get" class="filters"' in html and 'class="reports-nav"' in html
            and 'name="period"' in html)


def test_reversed_dates_show_the_report_page_with_a_specific_message(client, session,
                                                                    two_agencies):
    """Từ ngày after Đến ngày: the report page (menu, form, the dates kept) with 400 and
    what to fix, no figures; the agency page likewise; a download is a reports-layout 400."""
    login_as(client, session, "analyst")
    for url in ("/reports/", "/reports/agency/STP"):
        response = client.get(url, query_string={"date_from": "2026-12-01",
                                                 "date_to": "2026-11-01"})
        html = response.get_data(as_text=True)
        assert response.status_code == 400 and _form_and_menu(html)
        assert "Ngày bắt đầu (01/12/2026) phải trước ngày kết thúc (01/11/2026)" in html
        assert 'name="date_from" value="2026-12-01"' in html
        assert "Yêu cầu không hợp lệ" not in html and "Chỉ số theo yếu tố" not in html
    download = client.get("/reports/indices.csv?date_from=2026-12-01&date_to=2026-11-01")
    text = download.get_data(as_text=True)
    assert download.status_code == 400 and 'class="reports-nav"' in text
    assert "Ngày bắt đầu" in text and "quét lại mã QR" not in text


def test_a_period_of_another_kind_is_ignored_and_said(client, session, two_agencies):
    """"Tháng" chosen while the period is a quarter: the quarter is left out, the page says
    so and shows every month (200)."""
    login_as(client, session, "analyst")
    for url in ("/reports/", "/reports/comments/", "/reports/agency/STP"):
        response = client.get(url, query_string={"period_kind": "month",
                                                 "period": "2026-Q4"})
        html = response.get_data(as_text=True)
        assert response.status_code == 200, url
        assert "Kỳ quý IV/2026 không phải là một tháng nên đã được bỏ qua" in html
        assert '<option value="2026-Q4"' not in html


def test_comments_period_is_the_report_filter_select(client, session, two_agencies):
    """The comments page's Kỳ is the report's select of periods (named as on the report),
    and a typed "Quý IV/2026" is a 400 page with its form, not a dead end."""
    login_as(client, session, "analyst")
    html = client.get("/reports/comments/").get_data(as_text=True)
    report = client.get("/reports/").get_data(as_text=True)

    def period_select(page):
        return re.search(r'<select name="period">.*?</select>', page, re.S).group(0)

    assert period_select(html) == period_select(report)
    assert 'maxlength="7"' not in html
    typed = client.get("/reports/comments/", query_string={"period": "Quý IV/2026"})
    body = typed.get_data(as_text=True)
    assert typed.status_code == 400 and _form_and_menu(body)
    assert "Kỳ “Quý IV/2026” không hợp lệ: chọn một kỳ trong danh sách." in body


def test_links_to_comments_carry_the_filters(client, session, two_agencies):
    """"Ý kiến của người dân" from the overview and an agency keeps period and filters."""
    login_as(client, session, "analyst")
    html = client.get("/reports/").get_data(as_text=True)
    period = re.search(r'<option value="(\d{4}-Q\d)"', html).group(1)
    args = f"period_kind=quarter&period={period}&include_flagged=1&weighting=poststrat"
    for url, target in (("/reports/", "/reports/comments/?"),
                        ("/reports/agency/STP", "/reports/comments/agency/STP?")):
        page = client.get(f"{url}?{args}").get_data(as_text=True)
        link = re.search(r'href="([^"]*)">Ý kiến của người dân', page).group(1)
        link = link.replace("&amp;", "&")
        assert link.startswith(target)
        assert f"period={period}" in link and "include_flagged=1" in link
        assert "period_kind=quarter" in link and "weighting" not in link


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(
    st.sampled_from(["date_from", "date_to", "period", "period_kind", "weighting",
                     "questionnaire", "counter", "rating", "page"]),
    st.one_of(st.text(max_size=40), st.sampled_from(
        ["2026-02-30", "=1+1", "2026-13", "2026-Q5", "2026-Q4", "2026-12", "2026",
         "Quý IV/2026", "9999-12-31", "0000-01-01", "<script>x</script>", "-1", "1e9",
         "2026-11-01'--", "\x00", "＝SUM(A1)", "month", "year"]))),
    st.sampled_from(["/reports/", "/reports/agency/STP", "/reports/comments/",
                     "/reports/comments/agency/STP"]))
def test_hostile_filters_never_5xx_and_always_keep_the_form(client, session, two_agencies,
                                                            args, path):
    """Whatever the filters hold: 200 or 400, the page with its menu and form, and a 400
    always says what is wrong."""
    if not getattr(client, "_logged", False):
        login_as(client, session, "analyst")
        client._logged = True
    response = client.get(path, query_string=args)
    html = response.get_data(as_text=True)
    assert response.status_code in (200, 400), (args, response.status_code)
    assert _form_and_menu(html), args
    if response.status_code == 400:
        assert 'class="problems" role="alert"' in html
    assert "<script>x" not in html


# --- Downloads that cannot be made: the reports' error page, never the citizens' 404 ---

def _staff_error(response, status: int, words: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, html[:200])
    assert response.mimetype == "text/html"
    assert 'class="reports-nav"' in html and words in html
    assert "quét lại mã QR" not in html


def test_downloads_of_an_empty_period_are_a_staff_404(client, session, two_agencies,
                                                      make_counter):
    """No responses in the period (2020-Q1), or none at all of the quick form: 404 in the
    reports' layout with the page's sentence; the PDF is still a document saying it."""
    make_counter(agency_code="SNV", agency_name="Sở Nội vụ", label="Quầy nhanh",
                 questionnaire_id="counter-quick")
    login_as(client, session, "analyst")
    empty = "Chưa có phiếu trả lời nào trong phạm vi và kỳ đã chọn."
    for args in ("period_kind=quarter&period=2020-Q1", "questionnaire=counter-quick"):
        for path in ("indices.xlsx", "indices.csv", "responses.csv", "responses.xlsx"):
            _staff_error(client.get(f"/reports/{path}?{args}"), 404, empty)
        pdf = client.get(f"/reports/report.pdf?{args}")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    _staff_error(client.get("/reports/volumes.csv"), 404, "Không có số hồ sơ đã giải quyết")
    _staff_error(client.get("/reports/indices.ods"), 404, "Không có kiểu tệp “ods”")
    _staff_error(client.get("/reports/comments/comments.ods"), 404, "Không có kiểu tệp")
    _staff_error(client.get("/reports/indices.csv?table=bogus"), 400, "Không có bảng “bogus”")
    _staff_error(client.get("/reports/indices.csv?decimal=x"), 400, "Kiểu số thập phân")


def test_a_download_without_computable_indices_is_a_422(client, session, make_counter):
    """One response: the page cannot compute indices; its downloads say the same, 422."""
    add_response(session, make_counter(), a1=5, a2=4)
    login_as(client, session, "analyst")
    _staff_error(client.get("/reports/indices.csv"), 422, "Cần ít nhất 2 phiếu trả lời")


# --- Wording and format: thousands, periods inside sentences, the 403 page ---

def test_counts_have_thousands_dots_and_periods_are_lower_case_mid_sentence(
        app, client, session, two_agencies):
    """"1 phiếu trên 4.753 hồ sơ" (not 4753); "kỳ năm 2026", never "của Năm 2026"."""
    from survey.reports import format_count, period_words

    _justice, health = two_agencies
    year = str(pd.Timestamp.now(tz="Asia/Ho_Chi_Minh").year)
    make_volume(session, health.agency_id, "2", year, 4753)
    login_as(client, session, "analyst")
    text = re.sub(r"<[^>]+>", "", client.get(
        f"/reports/agency/SYT?period_kind=year&period={year}").get_data(as_text=True))
    assert f"Tỷ lệ phản hồi kỳ năm {year}: 1 phiếu trên 4.753 hồ sơ" in text
    assert format_count(1234567) == "1.234.567" and format_count(12) == "12"
    with app.test_request_context():
        assert period_words("2026") == "năm 2026"
        assert period_words("2026-Q4") == "quý IV/2026"
        assert period_words("2026-12") == "tháng 12/2026"
    with app.test_request_context("/reports/?lang=en"):
        assert [period_words(p) for p in ("2026", "2026-Q4", "2026-12")] == [
            "2026", "Q4 2026", "12/2026"]


def test_period_fallback_notes_name_periods_in_lower_case(client, session, make_counter):
    """The volume fallback note: "chưa có số hồ sơ riêng của năm 2026 nên dùng tổng các kỳ
    từ tháng 1/2026 đến tháng 12/2026"."""
    justice = _agency_with_answers(session, make_counter, "STP", "Sở Tư pháp", [5, 4, 2])
    year = str(pd.Timestamp.now(tz="Asia/Ho_Chi_Minh").year)
    for month in range(1, 13):
        make_volume(session, justice.agency_id, "1", f"{year}-{month:02d}", 10)
    login_as(client, session, "analyst")
    html = client.get(f"/reports/?weighting=poststrat&period_kind=year&period={year}"
                      ).get_data(as_text=True)
    assert f"chưa có số hồ sơ riêng của năm {year} nên dùng tổng các kỳ từ tháng 1/{year} " \
           f"đến tháng 12/{year}" in html
    assert f"của Năm {year}" not in html and f"từ Tháng 1/{year}" not in html


def test_forbidden_page_keeps_the_staff_menu(client, session):
    """An analyst at /admin/volumes/: 403 with the staff menu, account and a way back."""
    login_as(client, session, "analyst")
    response = client.get("/admin/volumes/")
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert 'class="reports-nav"' in html and "Đăng xuất" in html
    assert 'href="/admin/"' in html and 'href="/reports/"' in html


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(
    st.sampled_from(["date_from", "date_to", "period", "period_kind", "weighting",
                     "questionnaire", "table", "decimal"]),
    st.one_of(st.text(max_size=30), st.sampled_from(
        ["2026-13", "2026-Q4", "2020-Q1", "=1+1", "notes", "comma", "counter-quick",
         "poststrat", "2026-12-01", "<b>x</b>"]))),
    st.sampled_from(["indices.csv", "indices.xlsx", "responses.csv", "volumes.csv",
                     "comments/comments.xlsx"]))
def test_hostile_download_filters_are_a_file_or_a_staff_page(client, session, two_agencies,
                                                              args, path):
    """A download with any filters: the file (200), or the reports' error page with a
    4xx status, never a 5xx or the citizens' page."""
    if not getattr(client, "_logged", False):
        login_as(client, session, "analyst")
        client._logged = True
    response = client.get(f"/reports/{path}", query_string=args)
    assert response.status_code in (200, 400, 404, 422), (args, response.status_code)
    if response.status_code != 200:
        html = response.get_data(as_text=True)
        assert 'class="reports-nav"' in html and "quét lại mã QR" not in html
        assert "<b>x</b>" not in html


def test_intervals_the_weights_cannot_carry_say_why():
    """The library's reasons for no interval, or an exact one, are said in Vietnamese."""
    from survey import create_app
    from survey.reports import format_interval

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
    with app.test_request_context():
        heavy = {"ci_low": float("nan"), "ci_high": float("nan"), "ci_method": "",
                 "note": "fewer than 2 effective respondents: one carries almost all the weight"}
        assert "trọng số dồn vào dưới 2 người" in format_interval(heavy)
        exact = {"ci_low": 9.4, "ci_high": 99.1, "ci_method": "exact-small-se", "note": ""}
        assert format_interval(exact) == ("9,40 – 99,10 (trọng số dồn vào rất ít người: "
                                          "khoảng chính xác)")


def test_many_weighting_notes_keep_the_first_three_in_view():
    """Dozens of notes must not push the headline screens down: three shown, the rest
    behind a summary saying how many (all of them still in the page and in print)."""
    from types import SimpleNamespace

    from flask import render_template_string

    from survey import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
    notes = [f"Cơ quan {k}: ghi chú {k}." for k in range(8)]
    query = SimpleNamespace(args=lambda: {})
    with app.test_request_context():
        html = render_template_string('{% include "reports/_notes.html" %}', notes=notes,
                                      query=query)
    shown, hidden = html.split("<details>")
    assert all(f"ghi chú {k}." in shown for k in range(3))
    assert "Xem thêm 5 ghi chú" in hidden and all(f"ghi chú {k}." in hidden for k in range(3, 8))
    with app.test_request_context():
        few = render_template_string('{% include "reports/_notes.html" %}', notes=notes[:3],
                                     query=query)
    assert "<details>" not in few and "ghi chú 2." in few
