"""The downloads made for Excel: the indices workbook and the CSV with decimal commas."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.workbook import csv_bytes

from . import test_reports
from .factories import make_response, make_volume
from .test_downloads import HOSTILE, assert_csv_safe, assert_xlsx_safe
from .test_reports import SIPAS, login_as

two_agencies = test_reports.two_agencies  # the reports tests' fixture

LEVEL_SHEETS = ["Chỉ số chung", "Yếu tố", "Tiêu chí", "Điểm trung bình"]


def workbook(client, **args):
    response = client.get("/reports/indices.xlsx", query_string=args)
    assert response.status_code == 200
    return response, assert_xlsx_safe(response.data)


def agency_row(sheet, code):
    for row in range(4, sheet.max_row + 1):
        if sheet.cell(row, 1).value == code:
            return row
    raise AssertionError(code)


def key_column(sheet, key):
    for column in range(1, sheet.max_column + 1):
        if sheet.cell(1, column).value == key:
            return column
    raise AssertionError(key)


def test_workbook_has_a_wide_sheet_per_level_in_vietnamese(client, session, two_agencies):
    login_as(client, session, "analyst")
    response, book = workbook(client)
    assert book.sheetnames[:4] == LEVEL_SHEETS
    assert {"Bộ lọc", "Ghi chú", "Phương pháp", "Bảng dài (tidy)"} <= set(book.sheetnames)
    criteria = book["Tiêu chí"]
    assert [criteria.cell(3, c).value for c in range(1, 5)] == [
        "Mã cơ quan", "Cơ quan", "Số phiếu", "Ít phiếu"]
    column = key_column(criteria, "a1")
    # The question's text beside its code, and the column headers under it.
    assert criteria.cell(2, column).value == SIPAS.questions["a1"].text.vi
    assert [criteria.cell(3, column + k).value for k in range(4)] == [
        "Chỉ số (%)", "Cận dưới KTC 95%", "Cận trên KTC 95%", "Số người trả lời"]
    for sheet in (book[name] for name in LEVEL_SHEETS):
        assert sheet.freeze_panes == "C4"
        assert sheet.auto_filter.ref.startswith("A3:")
        assert sheet.column_dimensions["B"].width >= 30
    # The page's numbers: a1 of Sở Tư pháp 66,67 %, its element A 83,33 %.
    stp = agency_row(criteria, "STP")
    cell = criteria.cell(stp, column)
    assert cell.value == pytest.approx(200 / 3, rel=1e-12) and cell.number_format == "0.00"
    assert criteria.cell(stp, column + 3).value == 3
    assert criteria.cell(stp, 2).value == "Sở Tư pháp"
    elements = book["Yếu tố"]
    assert elements.cell(agency_row(elements, "STP"), key_column(elements, "A")).value == \
        pytest.approx(250 / 3, rel=1e-12)
    page = client.get("/reports/agency/STP").get_data(as_text=True)
    assert "66,67" in page and "83,33" in page
    assert agency_row(criteria, "ALL") == 4  # the whole scope first
    means = book["Điểm trung bình"]
    assert means.cell(3, key_column(means, "a1")).value == "Điểm trung bình (1–5)"
    # Filters, notes and the method are there, in words.
    filters = {row[0]: row[1] for row in book["Bộ lọc"].iter_rows(min_row=2, values_only=True)}
    assert filters["Gia quyền"].startswith("Không gia quyền")
    assert filters["Số phiếu đã dùng"] == 4 and filters["Phạm vi"] == "Tất cả cơ quan"
    notes = book["Ghi chú"]
    assert "“ít phiếu”" in notes.cell(notes.max_row, 1).value
    assert any("Taylor" in (c.value or "") for c in book["Phương pháp"]["A"])
    tidy = pd.DataFrame(book["Bảng dài (tidy)"].values)
    assert list(tidy.iloc[0, :3]) == ["by", "agency", "agency_name"]
    assert {"level", "key", "estimate", "ci_low"} <= set(tidy.iloc[0])
    disposition = response.headers["Content-Disposition"]
    assert "khong-gia-quyen" in disposition and "tat-ca" in disposition


def test_workbook_states_the_weighting_and_its_notes(client, session, two_agencies):

    justice, health = two_agencies
    make_volume(session, justice.agency_id, "1", "2026", 100)
    login_as(client, session, "analyst")
    period = client.get("/reports/?period_kind=year").get_data(as_text=True)
    year = next(p for p in ("2025", "2026", "2027") if f'value="{p}"' in period)
    response, book = workbook(client, weighting="poststrat", period_kind="year", period=year)
    filters = {row[0]: row[1] for row in book["Bộ lọc"].iter_rows(min_row=2, values_only=True)}
    assert filters["Gia quyền"].startswith("Gia quyền theo số hồ sơ")
    assert filters["Kỳ"] == f"Năm {year}"
    notes = [row[0] for row in book["Ghi chú"].iter_rows(min_row=2, values_only=True)]
    assert any("Sở Y tế" in line for line in notes)  # no volume: counted once each
    assert "notes" in book.sheetnames
    assert f"-{year}-gia-quyen" in response.headers["Content-Disposition"]


def test_quick_form_workbook(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    for overall in (3, 1, 2, 2):
        make_response(session, counter, {"overall": overall})
    login_as(client, session, "admin")
    _response, book = workbook(client, questionnaire="counter-quick")
    sheet = book["Tỷ lệ hài lòng"]
    assert sheet["C1"].value == "Hài lòng (%)" and sheet.freeze_panes == "C2"
    assert sheet["C2"].value == pytest.approx(75.0) and sheet["C2"].number_format == "0.00"


def read_comma_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def test_csv_with_decimal_commas_reads_back_to_the_same_numbers(client, session, two_agencies):
    login_as(client, session, "analyst")
    plain = client.get("/reports/indices.csv")
    comma = client.get("/reports/indices.csv?decimal=comma")
    assert comma.status_code == 200 and "dau-phay" in comma.headers["Content-Disposition"]
    expected = pd.read_csv(io.BytesIO(plain.data), encoding="utf-8-sig")
    rows = read_comma_csv(comma.data)
    assert rows[0] == list(expected.columns)
    column = rows[0].index("estimate")
    back = pd.Series([float(row[column].replace(",", ".") or "nan") for row in rows[1:]])
    pd.testing.assert_series_equal(back, expected["estimate"], check_names=False, rtol=1e-15)
    assert any("," in row[column] for row in rows[1:])
    assert client.get("/reports/indices.csv?decimal=dot").status_code == 400


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20)),
                      min_size=1, max_size=5),
       numbers=st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64),
                        min_size=1, max_size=5))
def test_comma_csv_is_safe_and_keeps_numbers(names, numbers):
    size = min(len(names), len(numbers))
    table = pd.DataFrame({"agency": names[:size], "code": ["1.5"] * size,
                          "estimate": pd.Series(numbers[:size], dtype="float64")})
    data = csv_bytes(table, "comma")
    assert_csv_safe(data.replace(b";", b","))  # the cells' own check, not their split
    rows = read_comma_csv(data)
    assert len(rows) == size + 1
    for row, number in zip(rows[1:], numbers[:size], strict=True):
        assert row[1] == "1.5"  # text keeps its point
        if number != number:
            assert row[2] == ""
        else:
            assert float(row[2].replace(",", ".")) == number


def test_table_workbook_is_one_named_frozen_sheet_without_formulas():
    """workbook.table_workbook: the sheet named as asked (at most 31 characters), header
    bold, frozen and filtered, widths set, prose wrapped, formula-like text kept as text."""
    from survey.workbook import table_workbook

    table = pd.DataFrame({"Thời điểm": ["01/12/2026 08:00", "02/12/2026 09:00"],
                          "Ý kiến": ["=1+1", "Rất tốt"]})
    book = openpyxl.load_workbook(io.BytesIO(table_workbook(table, "Ý kiến", [17, 60],
                                                            wrap=(2,))))
    sheet = book["Ý kiến"]
    assert book.sheetnames == ["Ý kiến"] and sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:B3" and sheet["A1"].font.bold
    assert sheet.column_dimensions["B"].width == 60 and sheet["B2"].alignment.wrap_text
    assert sheet["B2"].data_type == "s" and not str(sheet["B2"].value).startswith("=")
