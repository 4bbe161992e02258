"""The report's downloads made for Excel: the indices workbook (one wide sheet per level,
the filters, notes and method) and the CSV with Vietnamese decimal commas."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime

import pandas as pd
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from analysis import DEFAULT_MIN_CELL_N, write_table
from analysis.io import safe_cell

from .config import LOCAL_TIME

# Number formats: indices and intervals in percent points with two decimals (as the page
# shows them), p-values with three, counts whole.
PERCENT = "0.00"
SCORE = "0.00"
P_VALUE = "0.000"
COUNT = "0"
HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")
BOLD = Font(bold=True)

# Wide sheets, one per level of the library's table: (level, sheet name, value header,
# value format, whether the difference from the scope is reported).
LEVELS = (
    ("overall", _l("Chỉ số chung"), _l("Chỉ số (%)"), PERCENT, True),
    ("element", _l("Yếu tố"), _l("Chỉ số (%)"), PERCENT, False),
    ("criterion", _l("Tiêu chí"), _l("Chỉ số (%)"), PERCENT, False),
    ("mean_score", _l("Điểm trung bình"), _l("Điểm trung bình (1–5)"), SCORE, False),
)
MARKS = {"higher": _l("Cao hơn có ý nghĩa thống kê"),
         "lower": _l("Thấp hơn có ý nghĩa thống kê")}
# The decimal separators a CSV download offers: the library's (point, comma-separated) and
# what Vietnamese Excel reads (comma decimals, semicolon-separated).
CSV_DECIMALS = ("point", "comma")


def _value(value):
    """A cell value as written: text through safe_cell, NaN blank, infinities as text."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _value(value.item())
    if isinstance(value, str):
        return safe_cell(value)
    return value


def _put(sheet, row: int, column: int, value, number_format: str | None = None):
    """One cell; text is always a string cell, never a formula."""
    cell = sheet.cell(row=row, column=column)
    value = _value(value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    elif number_format and value is not None:
        cell.number_format = number_format
    return cell


def _header(sheet, row: int, values, wrap: bool = False) -> None:
    for column, value in enumerate(values, start=1):
        cell = _put(sheet, row, column, None if value is None else str(value))
        cell.font, cell.fill = BOLD, HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top") if wrap else Alignment(
            vertical="top")


def _finish(sheet, header_row: int, widths: list[float], freeze_column: int = 1) -> None:
    """Frozen header (and first columns), a filter on the header row, column widths."""
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=freeze_column + 1)
    if sheet.max_column >= 1:
        sheet.auto_filter.ref = (f"A{header_row}:{get_column_letter(len(widths))}"
                                 f"{max(sheet.max_row, header_row)}")


def key_texts(questionnaire, locale: str) -> dict[str, str]:
    """The words for each key of the table: the overall index, elements, criteria."""
    texts = {"SIPAS": _("Chỉ số hài lòng chung")}
    texts.update({e.id: e.title.get(locale) for e in questionnaire.elements})
    texts.update({q.id: q.text.get(locale) for q in questionnaire.criteria})
    return texts


def wide_level(table: pd.DataFrame, level: str) -> tuple[list[str], dict]:
    """The keys of one level in table order, and {(agency or "ALL", key): row}."""
    rows = table[(table["level"] == level) & (table["by"].isin(["ALL", "agency"]))]
    keys = list(dict.fromkeys(rows["key"]))
    cells = {("ALL" if r.by == "ALL" else r.agency, r.key): r
             for r in rows.itertuples(index=False)}
    return keys, cells


def _agency_rows(report) -> list[tuple[str, str]]:
    """The scope first, then the agencies by code: (code, name)."""
    return [("ALL", _("Chỉ số chung"))] + sorted(report.agency_names.items())


def _level_sheet(book, report, level, title, value_header, value_format, with_diff,
                 texts) -> None:
    keys, cells = wide_level(report.table, level)
    if not keys:
        return
    sheet = book.create_sheet(str(title))
    per_key = [str(value_header), _("Cận dưới KTC 95%"), _("Cận trên KTC 95%"),
               _("Số người trả lời")]
    formats = [value_format, value_format, value_format, COUNT]
    if with_diff:
        per_key += [_("Chênh lệch so với toàn phạm vi (điểm %)"), _("p (hiệu chỉnh Holm)"),
                    _("So với chỉ số chung")]
        formats += [PERCENT, P_VALUE, None]
    lead = [_("Mã cơ quan"), _("Cơ quan"), _("Số phiếu"), _("Ít phiếu")]
    # Row 1: each key's code over its columns; row 2: its text; row 3: the column headers.
    codes, words, headers = [None] * len(lead), [None] * len(lead), list(lead)
    for key in keys:
        codes += [key] + [None] * (len(per_key) - 1)
        words += [texts.get(key, key)] + [None] * (len(per_key) - 1)
        headers += per_key
    _header(sheet, 1, codes)
    _header(sheet, 2, words, wrap=True)
    _header(sheet, 3, headers, wrap=True)
    for k in range(len(keys)):
        first = len(lead) + 1 + k * len(per_key)
        for row in (1, 2):
            sheet.merge_cells(start_row=row, start_column=first, end_row=row,
                              end_column=first + len(per_key) - 1)
    sheet.row_dimensions[2].height = 75
    sheet.row_dimensions[3].height = 45
    overall = {("ALL" if r.by == "ALL" else r.agency): r for r in report.table[
        (report.table["level"] == "overall") & report.table["by"].isin(["ALL", "agency"])
    ].itertuples(index=False)}
    line = 4
    for code, name in _agency_rows(report):
        head = overall.get(code)
        if head is None:
            continue
        _put(sheet, line, 1, code)
        _put(sheet, line, 2, name)
        _put(sheet, line, 3, int(head.n), COUNT)
        _put(sheet, line, 4, _("ít phiếu") if head.flag == "small_n" else "")
        column = len(lead) + 1
        for key in keys:
            row = cells.get((code, key))
            answered = None
            if row is not None:
                answered = row.n if level == "overall" or level == "element" else row.n_answered
            values = [None] * len(per_key) if row is None else [
                row.estimate, row.ci_low, row.ci_high,
                None if pd.isna(answered) else int(answered)]
            if with_diff:
                values += [None] * 3 if row is None or code == "ALL" else [
                    row.diff, row.diff_p_adj, str(MARKS.get(row.mark, ""))]
            for offset, (value, fmt) in enumerate(zip(values, formats, strict=True)):
                _put(sheet, line, column + offset, value, fmt)
            column += len(per_key)
        line += 1
    _finish(sheet, 3, [12, 36, 9, 9] + [13] * (len(keys) * len(per_key)), freeze_column=2)


def _text_sheet(book, title: str, header: list[str], rows: list[list], widths: list[float],
                wrap_last: bool = True) -> None:
    sheet = book.create_sheet(title)
    _header(sheet, 1, header, wrap=True)
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            cell = _put(sheet, r, c, value)
            if wrap_last and c == len(values):
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    _finish(sheet, 1, widths, freeze_column=0)


def _frame_sheet(book, title: str, frame: pd.DataFrame) -> None:
    """A table as it is (the tidy long form for analysts), with the library's column names."""
    sheet = book.create_sheet(title)
    _header(sheet, 1, [str(c) for c in frame.columns])
    values = frame.astype(object).where(frame.notna(), None)
    for r, row in enumerate(values.itertuples(index=False, name=None), start=2):
        for c, value in enumerate(row, start=1):
            _put(sheet, r, c, value)
    _finish(sheet, 1, [14] * len(frame.columns), freeze_column=0)


def filter_rows(report, scope_name: str, user_login: str) -> list[list]:
    """What the numbers are: questionnaire, period, weighting, flags, scope, responses."""
    from .reports import PERIOD_NAMES, WEIGHTINGS, period_name

    query, questionnaire = report.query, report.questionnaire
    locale = str(get_locale())
    yes, no = _("Có"), _("Không")
    rows = [
        [_("Mẫu phiếu"), f"{questionnaire.title.get(locale)} ({questionnaire.id})"],
        [_("Kỳ báo cáo theo"), str(PERIOD_NAMES[query.period_kind])],
        [_("Kỳ"), period_name(query.period) if query.period else _("Tất cả")],
        [_("Gia quyền"), str(WEIGHTINGS[query.weighting])],
        [_("Thiếu số hồ sơ của kỳ: dùng số liệu năm (hoặc quý) chia theo số ngày"),
         yes if query.scale_volumes else no],
        [_("Tính cả các phiếu bất thường (trả lời quá nhanh, gửi dồn dập…)"),
         yes if query.include_flagged else no],
        [_("Phạm vi"), scope_name],
        [_("Số phiếu đã dùng"), 0 if report.frame is None else len(report.frame)],
        [_("Số cơ quan có phiếu"), len(report.agency_names)],
        [_("Người tải"), user_login],
        [_("Thời điểm tải"), datetime.now(LOCAL_TIME).strftime("%d/%m/%Y %H:%M")],
    ]
    rows += [[_("Lưu ý"), notice] for notice in report.notices]
    return rows


# The method in brief: the sentences of the page "Cách tính" (one translation each).
METHOD = (
    _l("Một người được tính là hài lòng với một tiêu chí khi chọn 4 (Hài lòng) hoặc 5 (Rất "
       "hài lòng). Câu bỏ trống hoặc “Không áp dụng” không được tính cho tiêu chí đó."),
    _l("Chỉ số tiêu chí = tỷ lệ (có gia quyền) người hài lòng trong số người trả lời tiêu chí "
       "đó. Chỉ số yếu tố = trung bình cộng các chỉ số tiêu chí của yếu tố. Chỉ số hài lòng "
       "chung = trung bình cộng các chỉ số yếu tố."),
    _l("Gia quyền theo số hồ sơ: mỗi phiếu được nhân với số hồ sơ cơ quan đã giải quyết trong "
       "lĩnh vực đó chia cho số phiếu thu được của lĩnh vực đó, để kết quả đại diện cho người "
       "dân thực sự được phục vụ."),
    _l("Sai số chuẩn (cột se) tính theo phương pháp tuyến tính hóa Taylor, trùng với gói "
       "survey của R. Khoảng tin cậy 95%% tính trên thang logit với phân phối Student (số bậc tự "
       "do ở cột df) nên không đối xứng quanh chỉ số, và có thêm các hiệu chỉnh cho nhóm nhỏ nêu "
       "dưới đây, nên thường rộng hơn khoảng mặc định của R."),
    _l("Khi gia quyền, các ô (cơ quan × lĩnh vực) có dưới %(min_cell_n)s phiếu được gộp lại "
       "trong từng cơ quan; mọi lần gộp ô, loại bỏ phiếu hay cơ quan không có phiếu được ghi "
       "rõ trong phần “Ghi chú về gia quyền” và trong tệp tải về."),
    _l("Gộp ô có thể làm lệch ước lượng khi các ô gộp với nhau khác nhau cả về trọng số lẫn mức "
       "hài lòng. Vì vậy khoảng tin cậy 95%% (và kiểm định chênh lệch) được nới rộng để tính cả "
       "độ lệch ước tính này, là hiệu giữa ước lượng theo trọng số khi chưa gộp ô và ước lượng "
       "đã gộp; khoảng tin cậy còn tính cả sai số của chính độ lệch ước tính đó, vì nó dựa trên "
       "ít phiếu. Cột pooling_bias trong tệp tải về cho biết độ lệch ở từng chỉ số (điểm phần "
       "trăm; với điểm trung bình là điểm trên thang 1–5)."),
    _l("Khi một lĩnh vực của một cơ quan có hồ sơ nhưng không có phiếu nào, số hồ sơ của nó "
       "được tính vào một ô gộp của cơ quan, như thể người dân ở đó hài lòng như những người đã "
       "trả lời ở các lĩnh vực khác; mẫu không cho biết điều đó."),
    _l("Vì vậy khoảng tin cậy 95%% (và kiểm định chênh lệch) được nới rộng theo tỷ trọng hồ "
       "sơ không có phiếu và theo mức chênh lệch thường thấy giữa các lĩnh vực trong một cơ "
       "quan, ước lượng từ các cơ quan có phiếu ở nhiều lĩnh vực. Khi ít cơ quan cho biết mức "
       "chênh lệch này, khoảng tin cậy rộng thêm (ít bậc tự do hơn). Điều này giả định các lĩnh "
       "vực không có phiếu khác các lĩnh vực có phiếu như các lĩnh vực thường khác nhau, chứ "
       "không phải vì cơ quan chọn thu phiếu ở nơi người dân hài lòng hơn: khi đó không khoảng "
       "tin cậy nào chứa được độ lệch, và cách đúng là thu phiếu ở mọi lĩnh vực."),
    _l("Khi chỉ số yếu tố hoặc chỉ số chung có tiêu chí được ít người trả lời (dưới một nửa "
       "nhóm), khoảng tin cậy của nó được nới rộng để tính cả độ bất định của chính các tiêu "
       "chí đó, vì vài câu trả lời giống nhau không cho thấy hết sai số."),
    _l("Nhóm có dưới 2 người trả lời không có khoảng tin cậy. Khi mọi người đánh giá như nhau, "
       "khoảng tin cậy là khoảng chính xác (Clopper–Pearson), không bao giờ có độ rộng bằng 0."),
    _l("“Cao hơn/thấp hơn có ý nghĩa thống kê” chỉ khi kiểm định chênh lệch giữa cơ quan và "
       "toàn bộ phạm vi (có tính hiệp phương sai, vì cơ quan là một phần của phạm vi) cho giá "
       "trị p sau hiệu chỉnh Holm dưới 0,05 và cơ quan không ít phiếu."),
)



def method_lines() -> list[str]:
    """The sentences of METHOD in the current language, with the library's defaults."""
    return [str(line) % {"min_cell_n": DEFAULT_MIN_CELL_N} for line in METHOD]

def indices_workbook(report, tidy: pd.DataFrame, notes: pd.DataFrame | None,
                     note_sentences: list[str], scope_name: str, user_login: str,
                     min_n: int) -> bytes:
    """The indices as an XLSX made for Excel: a wide sheet per level (rows the scope and
    its agencies, columns each key's index, interval and counts), the filters and
    weighting used, the notes in Vietnamese, the method in brief, the notes' table and the
    tidy long table. Every cell goes through safe_cell; no cell is a formula."""
    book = Workbook()
    book.remove(book.active)
    locale = str(get_locale())
    if report.quick is None:
        texts = key_texts(report.questionnaire, locale)
        for level, title, value_header, value_format, with_diff in LEVELS:
            _level_sheet(book, report, level, title, value_header, value_format, with_diff,
                         texts)
    else:
        _quick_sheets(book, report)
    _text_sheet(book, _("Bộ lọc"), [_("Mục"), _("Giá trị")],
                filter_rows(report, scope_name, user_login), [48, 60])
    sentences = note_sentences or [_("Không có ghi chú.")]
    sentences = sentences + [_("Nhóm có số phiếu dưới %(n)s được đánh dấu “ít phiếu”: kết quả "
                               "kém chắc chắn và không được xếp cao hơn hay thấp hơn.", n=min_n)]
    _text_sheet(book, _("Ghi chú"), [_("Ghi chú về gia quyền và phiếu bất thường")],
                [[line] for line in sentences], [120])
    _text_sheet(book, _("Phương pháp"), [_("Cách tính chỉ số")],
                [[line] for line in method_lines()], [120])
    if notes is not None and not notes.empty:
        _frame_sheet(book, "notes", notes)
    _frame_sheet(book, _("Bảng dài (tidy)"), tidy)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _quick_sheets(book, report) -> None:
    """The quick form: share satisfied per agency (wide) and the reasons (long)."""
    satisfaction = report.quick.satisfaction
    sheet = book.create_sheet(_("Tỷ lệ hài lòng"))
    headers = [_("Mã cơ quan"), _("Cơ quan"), _("Hài lòng (%)"), _("Cận dưới KTC 95%"),
               _("Cận trên KTC 95%"), _("Số lượt đánh giá"), _("Rất hài lòng"), _("Hài lòng"),
               _("Không hài lòng"), _("Ít phiếu")]
    _header(sheet, 1, headers, wrap=True)
    rows = {("ALL" if r.by == "ALL" else r.agency): r for r in satisfaction[
        satisfaction["by"].isin(["ALL", "agency"])].itertuples(index=False)}
    line = 2
    for code, name in _agency_rows(report):
        row = rows.get(code)
        if row is None:
            continue
        values = [(code, None), (name, None), (row.estimate, PERCENT), (row.ci_low, PERCENT),
                  (row.ci_high, PERCENT), (int(row.n_answered), COUNT),
                  (int(row.very_satisfied), COUNT), (int(row.satisfied), COUNT),
                  (int(row.not_satisfied), COUNT),
                  (_("ít phiếu") if row.flag == "small_n" else "", None)]
        for column, (value, fmt) in enumerate(values, start=1):
            _put(sheet, line, column, value, fmt)
        line += 1
    _finish(sheet, 1, [12, 36] + [12] * 8, freeze_column=2)
    reasons = report.quick.reasons
    sheet = book.create_sheet(_("Lý do"))
    _header(sheet, 1, [_("Mã cơ quan"), _("Cơ quan"), _("Lý do"), _("Số lượt"),
                       _("Tỷ lệ (%)")], wrap=True)
    names = dict(_agency_rows(report))
    chosen = reasons[reasons["by"].isin(["ALL", "agency"])]
    for line, row in enumerate(chosen.itertuples(index=False), start=2):
        code = "ALL" if row.by == "ALL" else row.agency
        for column, (value, fmt) in enumerate(
                [(code, None), (names.get(code, code), None), (row.label, None),
                 (int(row.count), COUNT), (row.share, "0.0")], start=1):
            _put(sheet, line, column, value, fmt)
    _finish(sheet, 1, [12, 36, 48, 10, 10], freeze_column=0)


def table_workbook(table: pd.DataFrame, title: str, widths: list[float],
                   wrap: tuple[int, ...] = ()) -> bytes:
    """One table as an XLSX of one sheet named `title`: bold header row, frozen, with a
    filter and the given column widths, the columns numbered in `wrap` (from 1) wrapped
    (prose); every cell through safe_cell, none a formula."""
    book = Workbook()
    book.remove(book.active)
    rows = table.astype(object).where(table.notna(), None).values.tolist()
    _text_sheet(book, title[:31], [str(c) for c in table.columns], rows, widths,
                wrap_last=False)
    sheet = book[title[:31]]
    for column in wrap:
        for row in range(2, sheet.max_row + 1):
            sheet.cell(row=row, column=column).alignment = Alignment(wrap_text=True,
                                                                     vertical="top")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_bytes(table: pd.DataFrame, decimal: str = "point") -> bytes:
    """A table as CSV, UTF-8 with BOM, through write_table (formula-safe cells); with
    ``decimal="comma"`` the numbers get decimal commas and the cells are separated by
    semicolons, as Excel set to Vietnamese reads them."""
    buffer = io.BytesIO()
    write_table(table, buffer, format="csv")
    if decimal == "point":
        return buffer.getvalue()
    text = buffer.getvalue().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    numeric = {k for k, column in enumerate(table.columns)
               if pd.api.types.is_float_dtype(table[column].dtype)}
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(rows[0])
    for row in rows[1:]:
        # Only the cells of number columns: a code or a name keeps its points.
        writer.writerow([cell.replace(".", ",") if k in numeric else cell
                         for k, cell in enumerate(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
