"""Posters and QR codes, checked for real: render the PDF, decode the QR, extract the text."""

from __future__ import annotations

import html
import io
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader

from survey.models import Counter
from survey.posters import (
    Poster,
    PosterPDF,
    page_texts,
    poster_for,
    poster_pdf,
    printable_counters,
    qr_matrix,
)

from .factories import make_agency, make_counter, make_user
from .staff import login

URL = "https://hailong.example.vn"
# Every Vietnamese letter, both cases, as precomposed (NFC) characters.
VIETNAMESE = unicodedata.normalize("NFC", "".join(
    base + tone
    for base in "aăâeêioôơuưyAĂÂEÊIOÔƠUƯY"
    for tone in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
) + "đĐ")


INVITATION = "Mời ông/bà quét mã QR để đánh giá mức độ hài lòng"
REASSURANCE = "Không cần ghi tên · khoảng 2 phút"
# The longest names a province prints: a branch of the provincial centre, a 120-letter label.
LONG_AGENCY = "Trung tâm Phục vụ hành chính công tỉnh Quảng Trị – Chi nhánh khu vực Đông Hà"
LONG_LABEL = ("Quầy 12 – Tiếp nhận và trả kết quả hồ sơ đất đai, nhà ở, xây dựng, "
              "đăng ký kinh doanh và chứng thực bản sao từ bản chính")
MM = 72 / 25.4  # PDF points per millimetre


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: poppler-utils, zbar-tools; ./dev test)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def decode_pages(pdf: bytes, tmp_path: Path, dpi: int = 72) -> list[list[str]]:
    """Render every page with pdftoppm and decode its QR codes with zbarimg."""
    source = tmp_path / "posters.pdf"
    source.write_bytes(pdf)
    subprocess.run([tool("pdftoppm"), "-r", str(dpi), "-gray", "-png", str(source),
                    str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"), key=lambda p: int(p.stem.split("-")[-1]))
    return [decode_image(page) for page in pages]


def decode_image(path: Path) -> list[str]:
    result = subprocess.run([tool("zbarimg"), "--quiet", "--raw", "-Sdisable",
                             "-Sqrcode.enable", str(path)], capture_output=True, text=True)
    return result.stdout.splitlines()


def pdf_text(pdf: bytes, tmp_path: Path) -> list[str]:
    """The text of each page, as pdftotext extracts it (NFC, as a search would see it)."""
    source = tmp_path / "text.pdf"
    source.write_bytes(pdf)
    text = subprocess.run([tool("pdftotext"), "-enc", "UTF-8", str(source), "-"],
                          capture_output=True, text=True, check=True).stdout
    return [" ".join(page.split()) for page in text.split("\f")[:-1]]


def pdf_layout_lines(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    """Each page's lines as `pdftotext -layout` sees them: where the lines break."""
    source = tmp_path / "layout.pdf"
    source.write_bytes(pdf)
    text = subprocess.run([tool("pdftotext"), "-layout", "-enc", "UTF-8", str(source), "-"],
                          capture_output=True, text=True, check=True).stdout
    return [[line for line in page.splitlines() if line.strip()]
            for page in text.split("\f")[:-1]]


def pdf_word_boxes(pdf: bytes, tmp_path: Path) -> list[tuple[float, float, list[tuple]]]:
    """(width, height, [(word, x_min, y_min, x_max, y_max)]) per page, in points."""
    source = tmp_path / "boxes.pdf"
    source.write_bytes(pdf)
    out = subprocess.run([tool("pdftotext"), "-bbox", "-enc", "UTF-8", str(source), "-"],
                         capture_output=True, text=True, check=True).stdout
    pages = []
    for width, height, body in re.findall(
            r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', out, re.S):
        words = [(html.unescape(word), *map(float, box)) for *box, word in re.findall(
            r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">'
            r'(.*?)</word>', body)]
        pages.append((float(width), float(height), words))
    return pages


# --- the PDF itself: no database needed -------------------------------------------------


@pytest.mark.parametrize("size, width_mm", [("A4", 210), ("A5", 148)])
def test_poster_qr_decodes_to_the_counter_url_and_names_keep_their_diacritics(
        app, tmp_path, size, width_mm):
    url = f"{URL}/r/K7M2QX9PZA"
    with app.app_context():
        pdf = poster_pdf([Poster("Sở Tài nguyên và Môi trường tỉnh Quảng Trị",
                                 "Quầy 3 – Đất đai, nhà ở", url,
                                 province="UBND tỉnh Quảng Trị")], size)
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert round(float(page.mediabox.width) / 72 * 25.4) == width_mm
    assert decode_pages(pdf, tmp_path) == [[url]]
    [text] = pdf_text(pdf, tmp_path)
    assert "UBND TỈNH QUẢNG TRỊ" in text  # the province header
    assert "Sở Tài nguyên và Môi trường tỉnh Quảng Trị" in text
    assert "Quầy 3 – Đất đai, nhà ở" in text
    assert INVITATION in text and REASSURANCE in text
    assert "Không quét được? Mở trình duyệt và gõ địa chỉ:" in text
    assert url in text
    # English as the smaller second line, where the names leave room for it.
    assert "Please scan the QR code to rate your satisfaction" in text
    assert "No name needed · about 2 minutes" in text
    assert "bạn" not in text.split()  # one respectful voice: ông/bà
    assert text == unicodedata.normalize("NFC", text)


def test_every_vietnamese_letter_is_drawn_from_the_embedded_font(app, tmp_path):
    with app.app_context():
        pdf = poster_pdf([Poster(VIETNAMESE, "Quầy – " + VIETNAMESE[::-1], f"{URL}/r/X")])
    [text] = pdf_text(pdf, tmp_path)
    assert VIETNAMESE in text.replace(" ", "")
    fonts = [font.get_object() for font in
             PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        assert "/FontFile2" in descriptor, f"{font['/BaseFont']} is not embedded"
        assert "NotoSans" in font["/BaseFont"]


def test_long_names_are_wrapped_inside_the_page(app, tmp_path):
    long_name = "Trung tâm Phục vụ hành chính công " * 6
    with app.app_context():
        pdf = poster_pdf([Poster(long_name.strip(), "Quầy " + "Tiếp nhận hồ sơ " * 5,
                                 f"{URL}/r/ABCDEFGHJK")], "A5")
    # Still one page and the QR code still reads: the text shrank and wrapped around it.
    assert decode_pages(pdf, tmp_path) == [[f"{URL}/r/ABCDEFGHJK"]]


@pytest.mark.parametrize("size", ["A4", "A5"])
def test_the_longest_names_break_between_words_and_stay_inside_the_margins(
        app, tmp_path, size):
    assert len(LONG_LABEL) == 120
    url = f"{URL}/r/ABCDEFGHJK"
    poster = Poster(LONG_AGENCY, LONG_LABEL, url, province="Ủy ban nhân dân tỉnh Quảng Trị")
    with app.app_context():
        pdf = poster_pdf([poster], size)
        vocabulary = {word for text in (LONG_AGENCY, LONG_LABEL, url, *page_texts("vi").values(),
                                        *page_texts("en").values()) for word in text.split()}
    vocabulary |= {word.upper() for word in poster.province.split()}
    assert decode_pages(pdf, tmp_path) == [[url]]
    [text] = pdf_text(pdf, tmp_path)
    assert LONG_AGENCY in text and LONG_LABEL in text and INVITATION in text and url in text
    [lines] = pdf_layout_lines(pdf, tmp_path)
    assert len(lines) > 8
    for line in lines:
        for word in line.split():  # a word cut at a line end would be two fragments
            assert word in vocabulary, f"{word!r} in {line.strip()!r} is not a whole word"
    [(width, height, words)] = pdf_word_boxes(pdf, tmp_path)
    assert words
    margin = 8 * MM  # inside what an office printer can print, on A5 as on A4
    for word, x_min, y_min, x_max, y_max in words:
        assert margin <= x_min and x_max <= width - margin, word
        assert margin <= y_min and y_max <= height - margin, word


def test_fitted_lines_are_whole_words_that_fit(app):
    """The layout itself: lines rejoin to the text, each within the width, nothing dropped."""
    with app.app_context():
        pdf = PosterPDF("A5")
    words = st.text(alphabet=VIETNAMESE + "0123456789–,.()", min_size=1, max_size=14)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(words, min_size=1, max_size=12).map(" ".join).filter(lambda t: len(t) <= 120),
           st.sampled_from(["", "B"]))
    def check(text, style):
        size, lines = pdf.fit(text, style, 24, 10, 3, 120)
        assert 10 <= size <= 24 and 1 <= len(lines) <= 3
        assert " ".join(lines) == text
        assert all(pdf._width(style, line) * size <= 120 + 1e-6 for line in lines)

    try:
        check()
    finally:
        pdf.close_fonts()


HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1:A9)", "-2+3", "\x00\x07\x1b[31m",
           "'; DROP TABLE counter; --", "<script>alert(1)</script>", "😀🏛️👍🏽", "漢字 かな",
           "\u202eقسم\u202c", "e\u0301\u0323\u0309" * 20, "Đ" * 200, "W" * 120, " \t\n ", ""]
NAMES = st.one_of(st.text(max_size=200), st.text(alphabet=VIETNAMESE + " –,.", max_size=200),
                  st.sampled_from(HOSTILE))


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agency=NAMES, label=NAMES, province=NAMES, size=st.sampled_from(["A4", "A5"]))
def test_any_names_render_and_the_code_still_scans(app, tmp_path_factory, agency, label,
                                                   province, size):
    url = f"{URL}/r/K7M2QX9PZA"
    with app.app_context():
        pdf = poster_pdf([Poster(agency, label, url, province=province)], size)
    assert decode_pages(pdf, tmp_path_factory.mktemp("poster")) == [[url]]


def test_qr_code_keeps_error_correction_m_and_a_quiet_zone():
    matrix = qr_matrix(f"{URL}/r/K7M2QX9PZA")
    border = 4
    assert not any(matrix[y][x] for y in range(border) for x in range(len(matrix)))
    assert not any(row[x] for row in matrix for x in range(border))
    assert not any(row[-1 - x] for row in matrix for x in range(border))
    # Format information of a version-3 code sits in row 8; M is the 00 error-level bits
    # XOR-masked to 1,0 in the first two modules (ISO/IEC 18004, table C.1).
    row = matrix[border + 8][border:]
    assert (row[0], row[1]) == (True, False)


# --- through the staff pages and the CLI ------------------------------------------------


@pytest.fixture
def database_url(tmp_path, sqlite_template):
    """Rendering and decoding do not depend on the engine: SQLite only, to stay fast.
    (Scope and access rules are walked on both engines in test_routes_roles.py.)"""
    path = tmp_path / "survey.sqlite"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def province(session):
    """Two agencies with Vietnamese names and counters, one agency user."""
    qt = make_agency(session, "QT", level="province")
    stp = make_agency(session, "STP", parent=qt)
    dh = make_agency(session, "DONGHOI", parent=qt, level="commune")
    counters = [make_counter(session, agency, label, "counter-quick")
                for agency, label in ((stp, "Quầy 3 – Tư pháp"), (stp, "Quầy Lý lịch tư pháp"),
                                      (dh, "Quầy Một cửa – Hộ tịch, chứng thực"))]
    idle = make_counter(session, stp, "Quầy cũ", active=False)
    make_user(session, "quantri", "admin")
    make_user(session, "canbo-stp", "agency", agency=stp)
    return {"stp": stp, "dh": dh, "counters": counters, "idle": idle}


def test_agency_batch_has_a_page_per_active_counter_each_scanning_to_its_questionnaire(
        client, province, tmp_path):
    login(client, "quantri")
    stp = province["stp"]
    response = client.get(f"/admin/agencies/{stp.id}/posters-A4.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    urls = [f"{URL}/r/{c.token}" for c in province["counters"][:2]]
    pages = decode_pages(response.data, tmp_path)
    assert sorted(code for page in pages for code in page) == sorted(urls)
    assert all(len(page) == 1 for page in pages)  # the inactive counter has no page
    texts = pdf_text(response.data, tmp_path)
    for page, text in zip(pages, texts, strict=True):
        counter = next(c for c in province["counters"] if page[0].endswith(c.token))
        assert "Sở Tư pháp" in text and counter.label in text
        # The header names the province: the name of the agency's top ancestor.
        assert text.startswith("UBND TỈNH QUẢNG TRỊ Sở Tư pháp")
        assert INVITATION in text and REASSURANCE in text
    # Each decoded URL opens that counter's questionnaire (the counter-quick form).
    for url in urls:
        answer = client.get(url.removeprefix(URL))
        assert answer.status_code == 200
        assert "Sở Tư pháp" in answer.get_data(as_text=True)


def test_the_province_is_the_top_agency_unless_configured(app, province, session):
    stp_counter, dh_counter = province["counters"][0], province["counters"][2]
    top_counter = make_counter(session, stp_counter.agency.parent, "Quầy Văn phòng UBND",
                               "counter-quick")
    with app.app_context():
        assert poster_for(stp_counter).province == "UBND tỉnh Quảng Trị"
        assert poster_for(dh_counter).province == "UBND tỉnh Quảng Trị"
        # A counter of the province itself: its name once, as the agency.
        top = poster_for(top_counter)
        assert (top.province, top.agency) == ("", "UBND tỉnh Quảng Trị")
        app.config["POSTER_PROVINCE"] = "Tỉnh Quảng Trị"
        assert poster_for(stp_counter).province == "Tỉnh Quảng Trị"
        assert poster_for(top_counter).province == "Tỉnh Quảng Trị"


def test_chosen_counters_print_within_the_scope(app, province, session):
    """What printing just the counters a CSV import created relies on."""
    stp_counters, dh_counter = province["counters"][:2], province["counters"][2]
    chosen = [stp_counters[1].id, dh_counter.id, province["idle"].id]
    with app.app_context():
        assert printable_counters(session, counter_ids=chosen) == [dh_counter, stp_counters[1]]
        assert printable_counters(session, {stp_counters[0].agency_id}, chosen) == [
            stp_counters[1]]
        assert printable_counters(session, counter_ids=[]) == []


def test_single_poster_and_bare_qr_codes_from_the_counter_page(client, province, tmp_path):
    login(client, "canbo-stp")
    counter = province["counters"][0]
    url = f"{URL}/r/{counter.token}"
    for size in ("A4", "A5"):
        response = client.get(f"/admin/counters/{counter.id}/poster-{size}.pdf")
        assert response.status_code == 200
        (tmp_path / size).mkdir()
        assert decode_pages(response.data, tmp_path / size) == [[url]]
    png = client.get(f"/admin/counters/{counter.id}/qr.png")
    assert png.mimetype == "image/png"
    (tmp_path / "qr.png").write_bytes(png.data)
    assert decode_image(tmp_path / "qr.png") == [url]

    svg = client.get(f"/admin/counters/{counter.id}/qr.svg")
    assert svg.mimetype == "image/svg+xml"
    rasterize_svg(svg.get_data(as_text=True), tmp_path / "qr-svg.png")
    assert decode_image(tmp_path / "qr-svg.png") == [url]


def rasterize_svg(svg: str, target: Path, scale: int = 8) -> None:
    """Draw the SVG's module path (M x y h n v1 h-n z runs) to check its geometry decodes."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    image = Image.new("L", (size * scale, size * scale), 255)
    pixels = image.load()
    for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", svg):
        for px in range(int(x) * scale, (int(x) + int(n)) * scale):
            for py in range(int(y) * scale, (int(y) + 1) * scale):
                pixels[px, py] = 0
    image.save(target)


def test_agency_user_cannot_print_another_agencys_counters(client, province):
    login(client, "canbo-stp")
    other = province["dh"]
    assert client.get(f"/admin/agencies/{other.id}/posters-A4.pdf").status_code == 404
    counter = province["counters"][2]
    assert client.get(f"/admin/counters/{counter.id}/poster-A4.pdf").status_code == 404
    assert client.get(f"/admin/counters/{counter.id}/qr.svg").status_code == 404


def test_all_posters_follow_the_users_scope(client, province, tmp_path):
    login(client, "canbo-stp")
    pages = decode_pages(client.get("/admin/posters-A5.pdf").data, tmp_path)
    tokens = {code.rsplit("/", 1)[1] for page in pages for code in page}
    assert tokens == {c.token for c in province["counters"][:2]}


def test_revoked_token_answers_410_and_the_new_poster_scans_to_the_new_token(
        client, province, session, tmp_path):
    login(client, "canbo-stp")
    counter = province["counters"][0]
    old = counter.token
    page = client.get(f"/admin/counters/{counter.id}")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    response = client.post(f"/admin/counters/{counter.id}/token/revoke",
                           data={"csrf_token": token, "reason": "Áp phích bị rách",
                                 "reissue": "y"})
    assert response.status_code == 303
    assert client.get(f"/r/{old}").status_code == 410
    session.expire_all()
    new = session.get(Counter, counter.id).token
    assert new and new != old
    pages = decode_pages(client.get(f"/admin/counters/{counter.id}/poster-A5.pdf").data,
                         tmp_path)
    assert pages == [[f"{URL}/r/{new}"]]


def test_cli_prints_one_agency_or_all(app, runner, province, tmp_path):
    target = tmp_path / "posters.pdf"
    result = runner.invoke(args=["posters", "--agency", "STP", "--size", "A5", "-o",
                                 str(target)])
    assert result.exit_code == 0, result.output
    assert "2 poster(s)" in result.output
    reader = PdfReader(target)
    assert len(reader.pages) == 2
    assert round(float(reader.pages[0].mediabox.width) / 72 * 25.4) == 148

    result = runner.invoke(args=["posters", "--all", "-o", str(target)])
    assert result.exit_code == 0, result.output
    pages = decode_pages(target.read_bytes(), tmp_path)
    assert sorted(p[0] for p in pages) == sorted(f"{URL}/r/{c.token}"
                                                 for c in province["counters"])

    assert runner.invoke(args=["posters", "-o", str(target)]).exit_code != 0
    result = runner.invoke(args=["posters", "--agency", "NOPE", "-o", str(target)])
    assert result.exit_code != 0 and "NOPE" in result.output
