"""The printable report: A4 PDFs of the scope and of an agency, with the page's figures."""

import html
import io
import re
import unicodedata
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from analysis import compute_indices
from survey.reports_data import responses_frame

from .factories import make_response, make_volume
from .test_reports import SIPAS, add_quick_response, login_as, quick_agencies  # noqa: F401

ELEMENTS = [(q.id, q.element) for q in SIPAS.criteria]
A4_POINTS = (595.28, 841.89)


def add_at(session, counter, when, a1, a2=None, field=1, **fields):
    make_response(session, counter, {"field": field, "a1": a1, "a2": a1 if a2 is None else a2},
                  questionnaire_id="sipas-service", at=when, commit=False, **fields)


@pytest.fixture
def province(app, session, make_counter):
    """Four agencies over two quarters of 2026: Sở Tư pháp high, Sở Y tế low, Sở Giữa
    neither, Xã An Bình small with one flagged response; Sở Xây dựng served dossiers but
    got no response (a weighting note)."""
    app.config["MIN_GROUP_N"] = 10
    justice = make_counter()
    health = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy Y tế")
    middle = make_counter(agency_code="GIUA", agency_name="Sở Giữa", label="Quầy Giữa")
    commune = make_counter(agency_code="XAB", agency_name="Xã An Bình", label="Quầy xã",
                           level="commune")
    silent = make_counter(agency_code="SXD", agency_name="Sở Xây dựng", label="Quầy XD")
    for i in range(30):
        for month in (8, 11):  # 2026-Q3 and 2026-Q4
            when = datetime(2026, month, 1 + i, 3, tzinfo=UTC)
            add_at(session, justice, when, 5 if i < 27 else 2, field=1 + i % 2)
            add_at(session, health, when, 1 if i < 22 else 4, field=1 + i % 2)
            add_at(session, middle, when, 4 if i < 18 else 2, field=1 + i % 2)
    for value, flags in ((4, ""), (2, ""), (5, ""), (5, "fast")):
        add_at(session, commune, datetime(2026, 11, 20, 3, tzinfo=UTC), value, flags=flags)
    session.commit()
    for counter in (justice, health, middle, commune):
        for field in ("1", "2"):
            make_volume(session, counter.agency_id, field, "2026-Q4", 200)
    make_volume(session, silent.agency_id, "1", "2026-Q4", 500)
    return {"STP": justice, "SYT": health, "GIUA": middle, "XAB": commune}


def pdf_pages(data: bytes) -> list[str]:
    """Each page's text in content order (pypdf), whitespace collapsed."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages]


def pdf_text(data: bytes) -> str:
    return " ".join(pdf_pages(data))


def plain(fragment: str) -> str:
    """HTML as the reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def table_rows(page: str, caption: str) -> list[str]:
    """The body rows of the page's table with that caption, as plain text."""
    table = re.search(r"<caption>" + re.escape(caption) + r".*?<tbody>(.*?)</tbody>", page,
                      re.S)
    assert table is not None, caption
    return [plain(row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)]


def get_pdf(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    return response


def test_scope_pdf_is_a4_vietnamese_and_prints_the_pages_figures(client, session, province):
    login_as(client, session, "analyst")
    page = client.get("/reports/?period=2026-Q4").get_data(as_text=True)
    response = get_pdf(client, "/reports/report.pdf?period=2026-Q4")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "bao-cao-pham-vi-sipas-service-2026-Q4-khong-gia-quyen.pdf" in disposition
    reader = PdfReader(io.BytesIO(response.data))
    for sheet in reader.pages:
        assert (float(sheet.mediabox.width), float(sheet.mediabox.height)) == pytest.approx(
            A4_POINTS, abs=0.1)
        assert not sheet.images  # charts are drawn as vectors, never pasted as pictures
    fonts = {font["/BaseFont"] for sheet in reader.pages
             for font in sheet["/Resources"]["/Font"].values()}
    assert all("NotoSans" in str(name) for name in fonts)
    pages = pdf_pages(response.data)
    text = " ".join(pages)
    assert unicodedata.is_normalized("NFC", text)
    assert "Báo cáo chỉ số hài lòng" in text and "Tất cả cơ quan" in text
    assert pages[0].startswith("Báo cáo chỉ số hài lòng Tất cả cơ quan Kỳ: Quý IV/2026 · "
                               "Không gia quyền (mỗi phiếu như nhau)")
    # Every page: its number of the total, when it was made and the file's name.
    for number, words in enumerate(pages, start=1):
        assert f"Trang {number}/{len(pages)}" in words
        assert "Tạo lúc" in words and "bao-cao-pham-vi-sipas-service-2026-Q4" in words
    # The scope's index and elements, and every agency's ranking row with its mark, are
    # the page's, cell for cell.
    whole = plain(re.search(r'<h2 id="h-whole">(.*?)</h2>', page).group(1))
    assert whole.startswith("Chỉ số chung: ") and whole in text
    sentence = plain(re.search(r'<h2 id="h-whole">.*?</h2>\s*<p>(.*?)<a ', page, re.S).group(1))
    assert sentence.startswith("Khoảng tin cậy 95%:") and sentence in text
    for row in table_rows(page, "Chỉ số theo yếu tố"):
        assert row in text
    ranking = table_rows(page, "Chỉ số hài lòng chung theo cơ quan")
    assert len(ranking) == 4
    for row in ranking:
        assert row in text, row
    marks = {row.split(" ")[1]: row for row in ranking}  # "Sở Tư pháp ..." -> "Tư"
    assert "Cao hơn có ý nghĩa thống kê" in marks["Tư"]
    assert "Thấp hơn có ý nghĩa thống kê" in marks["Y"]
    assert "Không khác biệt có ý nghĩa thống kê" in marks["Giữa"]
    assert "(ít phiếu) Không so sánh (ít phiếu)" in marks["An"]
    # The trend of the scope, in the page's table.
    for row in table_rows(page, "Chỉ số hài lòng chung qua các kỳ: Chỉ số chung"):
        assert row in text


def test_agency_pdf_equals_the_agency_page_and_the_library(app, client, session, province):
    login_as(client, session, "analyst")
    page = client.get("/reports/agency/STP?period=2026-Q4").get_data(as_text=True)
    response = get_pdf(client, "/reports/agency/STP/report.pdf?period=2026-Q4")
    assert "bao-cao-STP-sipas-service-2026-Q4-khong-gia-quyen.pdf" in response.headers[
        "Content-Disposition"]
    text = pdf_text(response.data)
    assert text.startswith("Báo cáo chỉ số hài lòng Sở Tư pháp (STP) Kỳ: Quý IV/2026 · Không "
                           "gia quyền")
    big = plain(re.search(r'<p class="big">(.*?)</p>', page, re.S).group(1))
    assert big.startswith("Chỉ số hài lòng chung: ") and big in text
    versus = plain(re.search(r'<p class="big">.*?</p>\s*<p>(.*?)</p>', page, re.S).group(1))
    assert versus.startswith("Cao hơn toàn bộ phạm vi có ý nghĩa thống kê") and versus in text
    scope = plain(re.search(r"<p>(Chỉ số chung: .*?)</p>", page, re.S).group(1))
    assert scope in text
    criteria = re.findall(r"<caption>([A-E]\. .*?)</caption>.*?<tbody>(.*?)</tbody>", page,
                          re.S)
    assert len(criteria) == 5
    for caption, body in criteria:
        assert plain(caption) in text
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            assert plain(row) in text, plain(row)
    for row in table_rows(page, "Theo quầy (chỉ số hài lòng chung, không gia quyền)"):
        assert row in text
    for row in table_rows(page, "Chỉ số hài lòng chung qua các kỳ: Sở Tư pháp"):
        assert row in text
    # The same numbers as the library computes from the responses.
    with app.app_context():
        from survey.db import get_db

        frame = responses_frame(get_db(), SIPAS)
    frame = frame[frame["period"] == "2026-Q4"]
    table = compute_indices(frame, ELEMENTS, by=["agency"], min_n=10)
    row = table[(table["by"] == "agency") & (table["agency"] == "STP")
                & (table["level"] == "overall")].iloc[0]
    assert row["mark"] == "higher"
    figure = f"{row['estimate']:.2f}".replace(".", ",")
    low, high = (f"{row[c]:.2f}".replace(".", ",") for c in ("ci_low", "ci_high"))
    assert (f"Chỉ số hài lòng chung: {figure}% (khoảng tin cậy 95%: {low} – {high}; số phiếu: "
            f"{int(row['n'])})") in text


@pytest.mark.parametrize(("code", "words", "absent"), [
    ("SYT", "Thấp hơn toàn bộ phạm vi có ý nghĩa thống kê", "Cao hơn toàn bộ phạm vi"),
    ("GIUA", "Không khác biệt có ý nghĩa thống kê so với toàn bộ phạm vi.", "toàn bộ phạm vi có"),
    ("XAB", "Ít phiếu: không so sánh với toàn bộ phạm vi.", "toàn bộ phạm vi có ý nghĩa"),
])
def test_agency_marks_only_where_the_test_says_so(client, session, province, code, words,
                                                  absent):
    login_as(client, session, "analyst")
    text = pdf_text(get_pdf(client, f"/reports/agency/{code}/report.pdf?period=2026-Q4").data)
    assert words in text
    assert absent not in text


def test_notes_flags_small_groups_and_method_are_printed(client, session, province):
    login_as(client, session, "analyst")
    args = "period=2026-Q4&weighting=poststrat"
    page = client.get(f"/reports/?{args}").get_data(as_text=True)
    response = get_pdf(client, f"/reports/report.pdf?{args}")
    assert "bao-cao-pham-vi-sipas-service-2026-Q4-gia-quyen.pdf" in response.headers[
        "Content-Disposition"]
    pages = pdf_pages(response.data)
    text = " ".join(pages)
    notes = re.search(r'<section class="notes" aria-labelledby="h-notes">(.*?)</section>', page,
                      re.S).group(1)
    lines = [plain(line) for line in re.findall(r"<li>(.*?)</li>", notes, re.S)]
    assert any("Sở Xây dựng" in line and "không được đại diện" in line for line in lines)
    assert "Ghi chú về gia quyền" in text
    for line in lines:
        assert line in text
    flagged = re.search(r'<section class="notes" aria-labelledby="h-flagged">(.*?)</section>',
                        page, re.S).group(1)
    assert "Không tính các phiếu bất thường" in text
    for line in re.findall(r"<li>(.*?)</li>", flagged, re.S):
        assert plain(line) in text and "Xã An Bình" in plain(line)
    assert "Nhóm có số phiếu dưới 10 được đánh dấu “ít phiếu”" in text
    # The method, on a page of its own at the end.
    method = pages[-1]
    assert method.startswith("Cách tính chỉ số")
    for words in ("Chỉ số tiêu chí = tỷ lệ", "Chỉ số yếu tố = trung bình cộng",
                  "Gia quyền theo số hồ sơ", "tuyến tính hóa Taylor", "Holm",
                  "Phiếu bất thường là phiếu trả lời quá nhanh", "so với kỳ gần nhất trước đó"):
        assert words in method, words
    # Counting the flagged responses is said as such, in the file name too.
    response = get_pdf(client, f"/reports/report.pdf?{args}&include_flagged=1")
    assert "ca-phieu-bat-thuong.pdf" in response.headers["Content-Disposition"]
    assert "Đã tính cả các phiếu bất thường" in pdf_text(response.data)


def test_quick_form_pdfs(client, session, quick_agencies):  # noqa: F811
    login_as(client, session, "analyst")
    args = "questionnaire=counter-quick&period_kind=year"
    page = client.get(f"/reports/?{args}").get_data(as_text=True)
    text = pdf_text(get_pdf(client, f"/reports/report.pdf?{args}").data)
    assert "Tỷ lệ hài lòng chung: 63,64%" in page and "Tỷ lệ hài lòng chung: 63,64%" in text
    for row in table_rows(page, "Tỷ lệ hài lòng theo cơ quan"):
        assert row in text
    agency = client.get(f"/reports/agency/STP?{args}").get_data(as_text=True)
    text = pdf_text(get_pdf(client, f"/reports/agency/STP/report.pdf?{args}").data)
    big = plain(re.search(r'<p class="big">(.*?)</p>', agency, re.S).group(1))
    assert big in text and "Thái độ của công chức" in text
    for row in table_rows(agency, "Lý do không hài lòng"):
        assert row in text


def test_pages_link_to_their_pdf_with_the_same_filters(client, session, province):
    login_as(client, session, "analyst")
    page = client.get("/reports/?period=2026-Q4&weighting=poststrat").get_data(as_text=True)
    link = html.unescape(re.search(r'class="report-pdf" href="([^"]+)"', page).group(1))
    assert link.startswith("/reports/report.pdf?") and "period=2026-Q4" in link
    assert "weighting=poststrat" in link
    get_pdf(client, link)
    page = client.get("/reports/agency/SYT?period=2026-Q4").get_data(as_text=True)
    link = html.unescape(re.search(r'class="report-pdf" href="([^"]+)"', page).group(1))
    assert link.startswith("/reports/agency/SYT/report.pdf?") and "period=2026-Q4" in link
    assert "Sở Y tế (SYT)" in pdf_text(get_pdf(client, link).data)


def test_agency_user_gets_only_its_own_agency(client, session, province):
    login_as(client, session, "agency", agency=province["STP"].agency)
    assert client.get("/reports/agency/SYT/report.pdf").status_code == 404
    assert client.get("/reports/agency/NOPE/report.pdf").status_code == 404
    text = pdf_text(get_pdf(client, "/reports/agency/STP/report.pdf").data)
    assert "Sở Tư pháp" in text
    text = pdf_text(get_pdf(client, "/reports/report.pdf").data)
    assert "Sở Tư pháp" in text
    assert not any(name in text for name in ("Sở Y tế", "Sở Giữa", "Xã An Bình"))


def test_anonymous_is_sent_to_login(client, province):
    for url in ("/reports/report.pdf", "/reports/agency/STP/report.pdf"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


@pytest.mark.parametrize("args", ["weighting=magic", "questionnaire=nope", "period_kind=week",
                                  "date_from=2026-13-01", "date_from=2026-12-01&date_to=2026-01-01",
                                  "period=" + "9" * 11])
def test_bad_parameters_are_a_clear_400(client, session, province, args):
    login_as(client, session, "analyst")
    for url in ("/reports/report.pdf", "/reports/agency/STP/report.pdf"):
        response = client.get(f"{url}?{args}")
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        assert "Yêu cầu không hợp lệ" in response.get_data(as_text=True)


HOSTILE = st.one_of(
    st.text(max_size=14),
    st.sampled_from(["", "2026", "2026-Q4", "2026-Q9", "2026-11", "=1+1", "@SUM(A1)",
                     "-2+3", "+cmd|' /C calc'!A0", "<script>", "\x00", "NaN", "1e309",
                     "sipas-service", "counter-quick", "poststrat", "none", "1", "on"]),
)
PARAMS = st.dictionaries(
    st.sampled_from(["questionnaire", "period_kind", "period", "weighting", "include_flagged",
                     "scale_volumes", "date_from", "date_to", "decimal", "table"]),
    HOSTILE, max_size=6)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=PARAMS, code=st.one_of(st.sampled_from(["STP", "XAB", "SXD"]),
                                     st.text(min_size=1, max_size=10)))
def test_filter_parameters_never_break_the_pdf(client, session, province, params, code):
    if client.get_cookie("session") is None:
        login_as(client, session, "analyst")
    for url in ("/reports/report.pdf", f"/reports/agency/{quote(code, safe='')}/report.pdf"):
        response = client.get(url, query_string=params)
        assert response.status_code < 500, (url, params)
        if response.status_code == 200:
            assert response.data.startswith(b"%PDF-")
            assert response.headers["Content-Disposition"].startswith("attachment")
        else:
            assert response.status_code in (400, 404, 308), (url, params)


def test_without_responses_the_pdf_says_so(client, session, province):
    login_as(client, session, "analyst")
    # Sở Xây dựng served dossiers but got no response; 2025 has no responses at all.
    text = pdf_text(get_pdf(client, "/reports/agency/SXD/report.pdf").data)
    assert "Chưa có phiếu trả lời nào trong phạm vi và kỳ đã chọn." in text
    assert "Cách tính chỉ số" in text
    page = client.get("/reports/?period_kind=year&period=2025").get_data(as_text=True)
    text = pdf_text(get_pdf(client, "/reports/report.pdf?period_kind=year&period=2025").data)
    notice = "Chưa có phiếu trả lời nào trong phạm vi và kỳ đã chọn."
    assert notice in page and notice in text


def test_trend_marks_and_date_range_as_on_the_page(app, client, session, make_counter):
    """Sở Tư pháp falls from Q3 to Q4 (tests/test_trends.py's data): the trend's mark."""
    from .test_trends import seed

    app.config["MIN_GROUP_N"] = 10
    seed(session, make_counter)
    login_as(client, session, "analyst")
    page = client.get("/reports/agency/STP").get_data(as_text=True)
    text = pdf_text(get_pdf(client, "/reports/agency/STP/report.pdf").data)
    rows = table_rows(page, "Chỉ số hài lòng chung qua các kỳ: Sở Tư pháp")
    assert any("Thấp hơn có ý nghĩa thống kê so với kỳ trước" in row for row in rows)
    for row in rows:
        assert row in text
    args = "date_from=2026-11-01&date_to=2026-11-30"
    page = client.get(f"/reports/?{args}").get_data(as_text=True)
    text = pdf_text(get_pdf(client, f"/reports/report.pdf?{args}").data)
    assert "Từ ngày 01/11/2026 Đến ngày 30/11/2026" in text
    whole = plain(re.search(r'<h2 id="h-whole">(.*?)</h2>', page).group(1))
    assert whole in text
