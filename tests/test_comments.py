"""Comments page: masking, paging, filters, scope, escaping and the downloads."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.comments import PAGE_SIZE, mask_personal

from .factories import make_response
from .test_downloads import HOSTILE, assert_csv_safe, assert_xlsx_safe
from .test_reports import login_as

PHONES = ["0912345678", "0912 345 678", "0912.345.678", "091-234-5678", "+84 912 345 678",
          "+84912345678", "028 3822 1234"]
IDS = ["123456789", "001099012345"]


def add_comment(session, counter, text, overall=None, flags="", quick=False):
    qid = "counter-quick" if quick else "sipas-service"
    answers = {"reason_text" if quick else "comment": text}
    if overall is not None:
        answers["overall"] = overall
    return make_response(session, counter, answers, questionnaire_id=qid, flags=flags)


def digit_runs(text: str) -> set[str]:
    return set(re.findall(r"\d{9,}", re.sub(r"(?<=\d)[ .\-](?=\d)", "", text)))


def test_masking_hides_phones_and_ids_but_keeps_ordinary_numbers():
    for number in PHONES + IDS:
        masked = mask_personal(f"Gọi {number} giúp tôi")
        assert not digit_runs(masked), masked
        assert masked.startswith("Gọi ") and masked.endswith(" giúp tôi")
    text = "Tôi phải đi lại 3 lần trong năm 2026, chờ 45 phút"
    assert mask_personal(text) == text


phone = st.builds(
    lambda prefix, body, sep: prefix + sep.join(body[i:i + 3] for i in range(0, 9, 3)),
    st.sampled_from(["0", "+84", "+84 ", "84"]),
    st.text("0123456789", min_size=9, max_size=9), st.sampled_from(["", " ", ".", "-"]))
identity = st.text("0123456789", min_size=9, max_size=12).filter(lambda s: len(s) in (9, 12))
words = st.text(st.characters(exclude_categories=("Cs", "Nd")), max_size=15)


def test_masking_reads_area_codes_in_brackets_and_leaves_sums_of_money():
    assert mask_personal("Gọi (028) 3829 1234 nhé") == "Gọi (***) **** **34 nhé"
    assert not digit_runs(mask_personal("ĐT (+84) 912 345 678"))
    for text in ("Lệ phí 1.500.000.000 đồng", "nộp 250.000.000 đ", "hết 12.000.000.000"):
        assert mask_personal(text) == text


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(100_000_000, 10**13), before=words)
def test_sums_of_money_grouped_in_thousands_stay(amount, before):
    text = f"{before} {amount:,} đồng".replace(",", ".")
    assert mask_personal(text) == text


@settings(max_examples=300, deadline=None)
@given(before=words, secret=st.one_of(phone, identity), after=words,
       small=st.integers(0, 99999))
def test_masked_text_never_holds_the_number(before, secret, after, small):
    text = f"{before} {secret} {after} {small} lần"
    masked = mask_personal(text)
    digits = re.sub(r"\D", "", secret)
    assert digits not in re.sub(r"[ .\-+]", "", masked)
    assert not digit_runs(masked)
    assert f" {small} lần" in masked  # ordinary numbers stay


def test_page_pages_newest_first_and_escapes(client, session, make_counter):
    counter = make_counter()
    add_comment(session, counter, "<script>alert(1)</script> gọi 0912345678")
    for k in range(PAGE_SIZE + 3):
        add_comment(session, counter, f"Ý kiến số {k}")
    login_as(client, session, "analyst")
    html = client.get("/reports/comments/").get_data(as_text=True)
    assert f"Số ý kiến: {PAGE_SIZE + 4}." in html
    assert f"Ý kiến số {PAGE_SIZE + 2}<" in html and "Ý kiến số 2<" not in html
    second = client.get("/reports/comments/?page=2").get_data(as_text=True)
    assert "Ý kiến số 2<" in second and "Ý kiến số 0<" in second
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in second and "<script>alert" not in second
    assert "0912345678" not in second and "********78" in second
    assert client.get("/reports/comments/?page=abc").status_code == 400
    assert client.get("/reports/comments/?period=2026-13&period_kind=month").status_code == 400


def test_flagged_excluded_by_default_and_rating_filter(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    add_comment(session, counter, "Chậm quá", overall=1, quick=True)
    add_comment(session, counter, "Rất tốt", overall=3, quick=True)
    add_comment(session, counter, "Phiếu lạ", overall=1, flags="fast", quick=True)
    login_as(client, session, "analyst")
    base = "/reports/comments/?questionnaire=counter-quick"
    html = client.get(base).get_data(as_text=True)
    assert "Chậm quá" in html and "Rất tốt" in html and "Phiếu lạ" not in html
    assert "Phiếu lạ" in client.get(base + "&include_flagged=1").get_data(as_text=True)
    rated = client.get(base + "&rating=1").get_data(as_text=True)
    assert "Chậm quá" in rated and "Rất tốt" not in rated
    counters = client.get(base + f"&counter={counter.id + 1000}").get_data(as_text=True)
    assert "Chậm quá" not in counters
    # SIPAS has no overall rating question: the page says so instead of a filter.
    assert "không lọc theo mức đánh giá" in client.get("/reports/comments/").get_data(
        as_text=True)


def test_agency_user_sees_only_its_subtree(app, client, session, make_counter):
    justice = make_counter()
    child = make_counter(agency_code="PTP", agency_name="Phòng Tư pháp", label="Quầy P",
                         parent=justice.agency)
    health = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy Y tế")
    add_comment(session, justice, "Ý kiến Sở Tư pháp")
    add_comment(session, child, "Ý kiến Phòng Tư pháp")
    add_comment(session, health, "Ý kiến Sở Y tế")
    login_as(client, session, "agency", agency=justice.agency)
    html = client.get("/reports/comments/").get_data(as_text=True)
    assert "Ý kiến Sở Tư pháp" in html and "Ý kiến Phòng Tư pháp" in html
    assert "Ý kiến Sở Y tế" not in html
    assert client.get("/reports/comments/agency/SYT").status_code == 404
    own = client.get("/reports/comments/agency/PTP").get_data(as_text=True)
    assert "Ý kiến Phòng Tư pháp" in own and "Ý kiến Sở Tư pháp" not in own
    data = client.get("/reports/comments/comments.csv").data.decode("utf-8-sig")
    assert "Ý kiến Sở Y tế" not in data and "Ý kiến Phòng Tư pháp" in data
    assert client.get("/reports/comments/comments.csv?agency=SYT").status_code == 404


def test_downloads_hold_what_is_shown(client, session, make_counter):
    counter = make_counter()
    for text in HOSTILE[:5] + ["CCCD 001099012345"]:
        add_comment(session, counter, text)
    login_as(client, session, "admin")
    rows = assert_csv_safe(client.get("/reports/comments/comments.csv").data)
    assert rows[0][:3] == ["Thời điểm", "Mã cơ quan", "Cơ quan"]
    assert len(rows) == 7 and "CCCD **********45" in {r[6] for r in rows}
    book = assert_xlsx_safe(client.get("/reports/comments/comments.xlsx").data)
    assert book.active.max_row == 7
    openpyxl.load_workbook(io.BytesIO(client.get("/reports/comments/comments.xlsx").data))


def test_any_comment_text_is_safe_on_page_and_downloads(app, session, make_counter):
    counter = make_counter()
    client = app.test_client()
    login_as(client, session, "analyst")
    texts = st.one_of(
        st.sampled_from(HOSTILE + ["<script>alert(1)</script>"]),
        st.builds(lambda a, n, b: f"{a}{n}{b}", st.text(max_size=10),
                  st.one_of(phone, identity), st.text(max_size=10)),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",),
                              exclude_characters="\x00"), min_size=1, max_size=40))

    @settings(max_examples=25, deadline=None)
    @given(text=texts)
    def check(text):
        response = add_comment(session, counter, text)
        try:
            page = client.get("/reports/comments/")
            assert page.status_code == 200
            assert "<script>alert" not in page.get_data(as_text=True)
            rows = assert_csv_safe(client.get("/reports/comments/comments.csv").data)
            assert_xlsx_safe(client.get("/reports/comments/comments.xlsx").data)
            for row in rows[1:]:
                assert not digit_runs(row[6])
        finally:
            session.delete(response)
            session.commit()

    check()


def test_comments_xlsx_sheet_is_named_and_its_header_frozen(client, session, make_counter):
    """The comments workbook: one sheet "Ý kiến", Vietnamese headers, header frozen and
    filtered; the page's table is left-aligned (its CSS rule)."""
    counter = make_counter()
    add_comment(session, counter, "Cán bộ nhiệt tình, gọi 0912345678", overall=1)
    login_as(client, session, "analyst")
    book = openpyxl.load_workbook(io.BytesIO(
        client.get("/reports/comments/comments.xlsx").data))
    assert book.sheetnames == ["Ý kiến"]
    sheet = book["Ý kiến"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    assert [c.value for c in sheet[1]][:3] == ["Thời điểm", "Mã cơ quan", "Cơ quan"]
    assert "0912345678" not in str([c.value for c in sheet[2]])
    css = (client.application.static_folder + "/reports.css")
    with open(css, encoding="utf-8") as handle:
        assert "table.comments th,table.comments td{text-align:left}" in handle.read()
    html = client.get("/reports/comments/").get_data(as_text=True)
    assert '<table class="comments">' in html


@pytest.mark.parametrize("period", ["year&period=9999", "year&period=0000",
                                    "quarter&period=9999-Q4", "month&period=0000-01",
                                    "month&period=9999-12"])
def test_periods_at_the_calendars_ends_list_nothing(client, session, make_counter, period):
    """Year 0000 or 9999 cannot be turned into a range of moments: no comment, no 500."""
    counter = make_counter()
    add_comment(session, counter, "Ý kiến năm nay")
    login_as(client, session, "analyst")
    for path in ("/reports/comments/", "/reports/comments/comments.csv",
                 f"/reports/comments/agency/{counter.agency.code}"):
        response = client.get(f"{path}?period_kind={period}")
        assert response.status_code == 200, (path, response.status_code)
        assert "Ý kiến năm nay" not in response.get_data(as_text=True)
