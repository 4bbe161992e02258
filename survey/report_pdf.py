"""The printable report: the scope's or one agency's report page as an A4 PDF in Noto Sans."""

from __future__ import annotations

import io
import math
from datetime import datetime

from flask import current_app, send_file
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from . import reports, workbook
from .config import LOCAL_TIME
from .posters import FONT, PT, printable, register_fonts
from .report_trends import trend_p, trend_versus

A4 = (210.0, 297.0)
MARGIN = 15.0
CELL_PAD = (1.0, 0.7)  # a table cell's padding, left/right and top/bottom (mm)
INK, GREY, RULE = (0, 0, 0), (90, 90, 90), (200, 200, 200)
# The page's colours (reports.css, the SVGs). Each also differs in grey level and every mark
# has its words or a triangle beside it, so a black-and-white print keeps the meaning.
ABOVE, BELOW, SAME = (11, 83, 148), (176, 0, 32), (122, 140, 163)
SCOPE_LINE, CI_FILL, LIGHT = (179, 92, 0), (159, 197, 232), (221, 229, 240)

# What a flagged response is: the sentence of the pages' section on them (_flagged.html).
FLAGGED = _l("Phiếu bất thường là phiếu trả lời quá nhanh, gửi dồn dập từ cùng một địa chỉ mạng, "
             "giống nhau liên tiếp, vượt số hồ sơ đã giải quyết hoặc mở ngoài giờ làm việc. Mặc "
             "định các phiếu này không được tính vào chỉ số, xếp hạng và tệp tải về.")
# What the method page says beyond the sentences of the page "Cách tính" (workbook.METHOD),
# taken from analysis/METHODS.md sections 1, 3, 4 and 5.
METHOD_EXTRA = {
    "indices": (
        _l("Điểm trung bình của một tiêu chí là trung bình (có gia quyền) các câu trả lời từ 1 "
           "đến 5 của những người đã trả lời tiêu chí đó. Tiêu chí không có ai trả lời trong "
           "nhóm được để trống và không được tính vào chỉ số yếu tố; khi đó bảng ghi số tiêu "
           "chí đã dùng, ví dụ “tính trên 4/5 tiêu chí”."),
    ),
    "intervals": (
        _l("Sai số chuẩn tính trên toàn bộ mẫu (ước lượng theo miền, như hàm svyby của R); chỉ "
           "số yếu tố và chỉ số chung giữ nguyên tương quan giữa các tiêu chí, không giả định "
           "các tiêu chí độc lập. Khoảng tin cậy tính trên thang logit với phân phối Student, "
           "có hiệu chỉnh cho nhóm nhỏ, nên luôn nằm trong khoảng 0–100."),
    ),
    "comparisons": (
        _l("Diễn biến qua các kỳ: chỉ số của mỗi kỳ được so với kỳ gần nhất trước đó có phiếu, "
           "bằng cùng cách kiểm định chênh lệch (có tính hiệp phương sai) và hiệu chỉnh Holm; "
           "chỉ đánh dấu cao hơn hoặc thấp hơn khi p sau hiệu chỉnh dưới 0,05 và cả hai kỳ "
           "không ít phiếu."),
    ),
}


def _text(value) -> str:
    return "" if value is None else str(value)


def _number(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _get(row, name):
    value = row.get(name) if isinstance(row, dict) else getattr(row, name, None)
    return None if isinstance(value, float) and math.isnan(value) else value


def _criteria_note(used) -> str:
    """The page's note as plain text, after a space ('' when all criteria count)."""
    note = reports.criteria_note(used)
    return " " + note if note else ""


def _small(small: bool) -> str:
    return " " + _("(ít phiếu)") if small else ""


def _answered(row) -> str:
    value = _number(_get(row, "n_answered"))
    return str(int(value)) if value is not None else "0"


class ReportPDF(FPDF):
    """A4 pages with the report's title block, tables and vector charts; every page has a
    footer with the generation time, the file name and 'Trang x/y'."""

    def __init__(self, file_name: str, title: str):
        super().__init__(unit="mm", format=A4)
        self.covered = register_fonts(self)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=16)
        self.file_name = file_name
        self.generated = datetime.now(LOCAL_TIME).strftime("%d/%m/%Y %H:%M")
        self.set_title(self.clean(title))
        self.set_author("sipas-survey")
        self.add_page()

    def clean(self, text) -> str:
        return printable(_text(text), self.covered)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*GREY)
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)
        self.line(MARGIN, self.get_y() - 1, self.w - MARGIN, self.get_y() - 1)
        self.cell(0, 4, self.clean(_("Tạo lúc %(when)s · %(file)s", when=self.generated,
                                     file=self.file_name)), align="L")
        self.set_x(MARGIN)
        self.cell(0, 4, self.clean(_("Trang %(page)s/%(pages)s", page=self.page_no(),
                                     pages="{nb}")), align="R")

    @property
    def room(self) -> float:
        """Height left on this page above the bottom margin."""
        return self.page_break_trigger - self.get_y()

    def keep(self, height: float) -> None:
        """Start a new page unless `height` fits on this one (a chart is never split)."""
        if height > self.room:
            self.add_page()

    def heading(self, text: str, size: float = 12.5) -> None:
        self.keep(size * PT * 1.4 + 16)  # a heading never ends a page alone
        self.ln(2.5)
        self.set_font(FONT, "B", size)
        self.set_text_color(*INK)
        self.multi_cell(0, size * PT * 1.3, self.clean(text), align="L", new_x=XPos.LMARGIN,
                        new_y=YPos.NEXT)
        self.ln(1)

    def para(self, text: str, size: float = 9.5, style: str = "",
             color: tuple[int, int, int] = INK) -> None:
        self.set_font(FONT, style, size)
        self.set_text_color(*color)
        self.multi_cell(0, size * PT * 1.35, self.clean(text), align="L",
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(0.8)

    def bullets(self, lines: list[str], size: float = 9.0) -> None:
        self.set_font(FONT, "", size)
        self.set_text_color(*INK)
        for line in lines:
            self.set_x(MARGIN)
            self.cell(4, size * PT * 1.35, "•" if ord("•") in self.covered else "-")
            self.multi_cell(0, size * PT * 1.35, self.clean(line), align="L",
                            new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(0.6)

    def pairs(self, rows: list[tuple[str, str]], size: float = 9.0) -> None:
        """Label: value lines (the filters block)."""
        height, label_w = size * PT * 1.35, 70.0
        for label, value in rows:
            self.keep(2 * height)
            top = self.get_y()
            self.set_font(FONT, "B", size)
            self.set_text_color(*GREY)
            self.multi_cell(label_w - 2, height, self.clean(label), align="L",
                            new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            below = self.get_y()
            self.set_xy(MARGIN + label_w, top)
            self.set_font(FONT, "", size)
            self.set_text_color(*INK)
            self.multi_cell(0, height, self.clean(value), align="L", new_x=XPos.LMARGIN,
                            new_y=YPos.NEXT)
            self.set_y(max(below, self.get_y()) + 0.4)

    def grid(self, caption: str, headers: list[str], rows: list[list[str]],
             widths: list[float], size: float = 8.0, first_left: int = 1,
             words: tuple[int, ...] = ()) -> None:
        """A table with a bold caption, its header row repeated on every page, horizontal
        rules only (readable in black and white); the first `first_left` columns and those
        in `words` are text, the others numbers (right-aligned). `widths` are relative.
        Drawn here rather than with fpdf2's table(), which takes ~10 s for a thousand
        agencies' ranking."""
        self.heading(caption, size=10)
        scale = self.epw / sum(widths)
        widths = [w * scale for w in widths]
        right = [i >= first_left and i not in words for i in range(len(headers))]
        header = self._cells(headers, widths, "B", size)
        self._row(header, widths, right, "B", size, header=True)
        for values in rows:
            cells = self._cells(values, widths, "", size)
            if max(map(len, cells)) * size * PT * 1.3 + 2 * CELL_PAD[1] > self.room:
                self.add_page()
                self._row(header, widths, right, "B", size, header=True)
            self._row(cells, widths, right, "", size)
        self.ln(1.5)

    def _cells(self, values: list[str], widths: list[float], style: str,
               size: float) -> list[list[str]]:
        """Each value cleaned and broken into the lines that fit its column."""
        self.set_font(FONT, style, size)
        return [self._lines(self.clean(value), width - 2 * CELL_PAD[0])
                for value, width in zip(values, widths, strict=True)]

    def _lines(self, text: str, width: float) -> list[str]:
        """Greedy line breaking on spaces (in the current font); a word wider than the
        column is cut between characters."""
        lines, current = [], ""
        for word in text.split(" "):
            trial = f"{current} {word}" if current else word
            if self.get_string_width(trial) <= width:
                current = trial
                continue
            if current:
                lines.append(current)
            current = ""
            for char in word:
                if current and self.get_string_width(current + char) > width:
                    lines.append(current)
                    current = ""
                current += char
        return [*lines, current]

    def _row(self, cells: list[list[str]], widths: list[float], right: list[bool],
             style: str, size: float, header: bool = False) -> None:
        """One table row from the current y: text lines, then a rule below it."""
        line_h = size * PT * 1.3
        top = self.get_y()
        height = max(map(len, cells)) * line_h + 2 * CELL_PAD[1]
        if header:
            self.set_fill_color(*LIGHT)
            self.rect(MARGIN, top, self.epw, height, style="F")
        self.set_font(FONT, style, size)
        self.set_text_color(*INK)
        x = MARGIN
        for lines, width, to_right in zip(cells, widths, right, strict=True):
            for k, line in enumerate(lines):
                left = (x + width - CELL_PAD[0] - self.get_string_width(line) if to_right
                        else x + CELL_PAD[0])
                self.text(left, top + CELL_PAD[1] + k * line_h + line_h / 2 + size * PT * 0.33,
                          line)
            x += width
        self.set_draw_color(*(INK if header else GREY))
        self.set_line_width(0.35 if header else 0.15)
        self.line(MARGIN, top + height, self.w - MARGIN, top + height)
        self.set_y(top + height)

    def triangle(self, x: float, y: float, up: bool, size: float = 2.4) -> None:
        """A filled ▲ (up) or ▼ centred on (x, y): Noto Sans has no such glyph."""
        self.set_fill_color(*(ABOVE if up else BELOW))
        half = size / 2
        points = ([(x - half, y + half), (x + half, y + half), (x, y - half)] if up else
                  [(x - half, y - half), (x + half, y - half), (x, y + half)])
        self.polygon(points, style="F")

    def legend(self, items: list[tuple[str, object]], y: float, size: float = 7.5) -> None:
        """One line of (label, draw(x, y)) keys from the left margin."""
        self.set_font(FONT, "", size)
        self.set_text_color(*INK)
        x = MARGIN
        for label, draw in items:
            draw(x + 2, y)
            text = self.clean(label)
            self.text(x + 5.5, y + size * PT * 0.35, text)
            x += 9 + self.get_string_width(text)

    def ranking_chart(self, lines: list[dict], whole: float | None) -> None:
        """The page's ranking as vector bars: index, 95% interval, the scope's index as a
        dashed line; bars coloured and marked ▲/▼ only where the test says so. Drawn in
        pieces that each fit a page."""
        row_h, label_w, right = 5.0, 62.0, 10.0
        x0 = MARGIN + label_w
        width = self.w - MARGIN - right - x0
        start = 0
        while start < len(lines):
            room = self.room - 14
            if room < row_h * min(6, len(lines) - start):
                self.add_page()
                room = self.room - 14
            count = max(1, min(len(lines) - start, int(room // row_h)))
            self._ranking_piece(lines[start:start + count], whole, x0, width, row_h)
            start += count

    def _ranking_piece(self, lines, whole, x0, width, row_h) -> None:
        top = self.get_y() + 1
        bottom = top + row_h * len(lines)
        self.set_line_width(0.15)
        self.set_draw_color(*RULE)
        self.set_font(FONT, "", 7)
        self.set_text_color(*GREY)
        for tick in (0, 25, 50, 75, 100):
            x = x0 + width * tick / 100
            self.line(x, top, x, bottom)
            self.text(x - self.get_string_width(str(tick)) / 2, bottom + 3, str(tick))
        for i, line in enumerate(lines):
            y = top + i * row_h
            self.set_font(FONT, "", 7.5)
            self.set_text_color(*INK)
            name = self.clean(line["name"])
            star = " *" if line.get("small") else ""
            while name and self.get_string_width(name + star) > x0 - MARGIN - 2:
                name = name[:-2] + "…"
            name += star
            self.text(x0 - 2 - self.get_string_width(name), y + row_h * 0.68, name)
            estimate = _number(line["estimate"])
            if estimate is None:
                continue
            comparison = line["comparison"]
            if line.get("small"):  # few responses: an outline only, never a coloured claim
                self.set_draw_color(*SAME)
                self.set_line_width(0.3)
                self.rect(x0, y + 1, width * estimate / 100, row_h - 2, style="D")
            else:
                self.set_fill_color(*(ABOVE if comparison == "above" else
                                      BELOW if comparison == "below" else SAME))
                self.rect(x0, y + 1, width * estimate / 100, row_h - 2, style="F")
            low, high = _number(line["ci_low"]), _number(line["ci_high"])
            end = x0 + width * estimate / 100
            if low is not None and high is not None:
                self.set_draw_color(*INK)
                self.set_line_width(0.5)
                self.line(x0 + width * low / 100, y + row_h / 2, x0 + width * high / 100,
                          y + row_h / 2)
                end = max(end, x0 + width * high / 100)
            if comparison in ("above", "below"):
                self.triangle(end + 2.5, y + row_h / 2, comparison == "above")
        if whole is not None:
            x = x0 + width * whole / 100
            self.set_draw_color(*SCOPE_LINE)
            self.set_line_width(0.5)
            self.set_dash_pattern(dash=1.4, gap=1)
            self.line(x, top, x, bottom)
            self.set_dash_pattern()
        self.legend([
            (_("Cao hơn có ý nghĩa thống kê"), lambda x, y: self.triangle(x, y, True)),
            (_("Thấp hơn có ý nghĩa thống kê"), lambda x, y: self.triangle(x, y, False)),
            (_("Khoảng tin cậy 95%%") % {}, self._key_interval),
            (_("Chỉ số chung"), self._key_scope),
            (_("* Ít phiếu"), self._key_small),
        ], bottom + 7.5)
        self.set_y(bottom + 11)

    def _key_interval(self, x: float, y: float) -> None:
        self.set_draw_color(*INK)
        self.set_line_width(0.5)
        self.line(x - 2, y, x + 2, y)

    def _key_small(self, x: float, y: float) -> None:
        self.set_draw_color(*SAME)
        self.set_line_width(0.3)
        self.rect(x - 2, y - 1.5, 4, 3, style="D")

    def _key_scope(self, x: float, y: float) -> None:
        self.set_draw_color(*SCOPE_LINE)
        self.set_line_width(0.5)
        self.set_dash_pattern(dash=1.4, gap=1)
        self.line(x, y - 2, x, y + 2)
        self.set_dash_pattern()

    def trend_chart(self, points: list[dict]) -> None:
        """The page's trend as vector graphics: a dot per period (hollow when the group is
        small), its 95% interval as a bar, ▲/▼ where the test against the previous period
        says higher/lower; the whole chart on one page."""
        plot_h, axis_h, legend_h = 48.0, 14.0, 9.0
        self.keep(plot_h + axis_h + legend_h + 4)
        left, right = MARGIN + 10, self.w - MARGIN - 4
        top = self.get_y() + 3
        bottom = top + plot_h
        step = (right - left) / max(len(points), 1)

        def y_of(value: float) -> float:
            return top + plot_h * (1 - value / 100)

        self.set_line_width(0.15)
        self.set_draw_color(*RULE)
        self.set_font(FONT, "", 7)
        self.set_text_color(*GREY)
        for tick in (0, 25, 50, 75, 100):
            self.line(left, y_of(tick), right, y_of(tick))
            self.text(left - 2 - self.get_string_width(str(tick)), y_of(tick) + 1, str(tick))
        line, dots = [], []
        for i, point in enumerate(points):
            x = left + step * (i + 0.5)
            low, high = _number(point["ci_low"]), _number(point["ci_high"])
            if low is not None and high is not None:
                self.set_fill_color(*CI_FILL)
                self.set_draw_color(*ABOVE)
                self.set_line_width(0.15)
                self.rect(x - 1.6, y_of(high), 3.2, max(y_of(low) - y_of(high), 0.3),
                          style="DF")
            estimate = _number(point["estimate"])
            if estimate is not None:
                line.append((x, y_of(estimate)))
                dots.append((x, y_of(estimate), point))
            label = self.clean(reports.period_name(point["period"]))
            self.set_font(FONT, "", 7)
            self.set_text_color(*INK)
            if len(points) > 4:
                with self.rotation(35, x, bottom + 3):
                    self.text(x - self.get_string_width(label), bottom + 3, label)
            else:
                self.text(x - self.get_string_width(label) / 2, bottom + 4.5, label)
        if len(line) > 1:
            self.set_draw_color(*ABOVE)
            self.set_line_width(0.45)
            self.polyline(line)
        for x, y, point in dots:
            self.set_draw_color(*ABOVE)
            self.set_line_width(0.5)
            self.set_fill_color(*((255, 255, 255) if point["small"] else ABOVE))
            self.ellipse(x - 1.3, y - 1.3, 2.6, 2.6, style="DF")
            if point["mark"] in ("higher", "lower"):
                up = point["mark"] == "higher"
                self.triangle(x + 3.2, y - 2.4 if up else y + 2.4, up)
        self.legend([
            (_("Chỉ số"), self._key_dot(False)),
            (_("Khoảng tin cậy 95%%") % {}, self._key_bar),
            (_("Ít phiếu"), self._key_dot(True)),
            (_("Cao hơn kỳ trước"), lambda x, y: self.triangle(x, y, True)),
            (_("Thấp hơn kỳ trước"), lambda x, y: self.triangle(x, y, False)),
        ], bottom + axis_h + 2)
        self.set_y(bottom + axis_h + legend_h)

    def _key_dot(self, hollow: bool):
        def draw(x: float, y: float) -> None:
            self.set_draw_color(*ABOVE)
            self.set_line_width(0.5)
            self.set_fill_color(*((255, 255, 255) if hollow else ABOVE))
            self.ellipse(x - 1.3, y - 1.3, 2.6, 2.6, style="DF")
        return draw

    def _key_bar(self, x: float, y: float) -> None:
        self.set_fill_color(*CI_FILL)
        self.set_draw_color(*ABOVE)
        self.set_line_width(0.15)
        self.rect(x - 1.6, y - 2, 3.2, 4, style="DF")


# --- the parts both documents share -------------------------------------------------------

def _filters(pdf: ReportPDF, report, scope_name: str, n: int | None) -> None:
    """What the numbers are: the page's filters and the scope, in words."""
    query, questionnaire = report.query, report.questionnaire
    yes, no = _("Có"), _("Không")
    rows = [
        (_("Mẫu phiếu"), f"{questionnaire.title.get(str(get_locale()))} ({questionnaire.id})"),
        (_("Kỳ báo cáo theo"), str(reports.PERIOD_NAMES[query.period_kind])),
        (_("Kỳ"), reports.period_name(query.period) if query.period else _("Tất cả")),
    ]
    if query.date_from:
        rows.append((_("Từ ngày"), query.day(query.date_from).strftime("%d/%m/%Y")))
    if query.date_to:
        rows.append((_("Đến ngày"), query.day(query.date_to).strftime("%d/%m/%Y")))
    rows += [
        (_("Gia quyền"), str(reports.WEIGHTINGS[query.weighting])),
        (_("Thiếu số hồ sơ của kỳ: dùng số liệu năm (hoặc quý) chia theo số ngày"),
         yes if query.scale_volumes else no),
        (_("Tính cả các phiếu bất thường (trả lời quá nhanh, gửi dồn dập…)"),
         yes if query.include_flagged else no),
        (_("Phạm vi"), scope_name),
    ]
    if n is not None:
        rows.append((_("Số phiếu đã dùng"), str(n)))
    pdf.pairs(rows)
    pdf.ln(2)
    for notice in report.notices:
        pdf.para(notice, style="B")


def _title(pdf: ReportPDF, heading: str, subject: str, query) -> None:
    """The report's name, whose figures (the scope or the agency) and, under them, the
    period and weighting."""
    pdf.set_font(FONT, "B", 16)
    pdf.set_text_color(*ABOVE)
    pdf.multi_cell(0, 16 * PT * 1.3, pdf.clean(heading), align="L", new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    pdf.set_font(FONT, "B", 13)
    pdf.set_text_color(*INK)
    pdf.multi_cell(0, 13 * PT * 1.3, pdf.clean(subject), align="L", new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    period = reports.period_name(query.period) if query.period else _("Tất cả")
    pdf.para(f"{_('Kỳ')}: {period} · {reports.WEIGHTINGS[query.weighting]}", size=10.5)
    pdf.set_draw_color(*ABOVE)
    pdf.set_line_width(0.5)
    pdf.line(MARGIN, pdf.get_y() + 1.5, pdf.w - MARGIN, pdf.get_y() + 1.5)
    pdf.ln(4)


def _criteria_tables(pdf: ReportPDF, elements: list[dict]) -> None:
    """Per element, its criteria: index, interval, mean score, number who answered."""
    headers = [_("Tiêu chí"), _("Hài lòng (%%)") % {}, _("Khoảng tin cậy 95%%") % {},
               _("Điểm trung bình (1–5)"), _("Số người trả lời")]
    for block in elements:
        index = block["index"]
        caption = f"{block['element'].id}. {block['element'].title.get(str(get_locale()))}: "
        caption += (f"{reports.format_percent(index.estimate)}% ({reports.format_interval(index)})"
                    f"{_criteria_note(index.criteria_used)}" if index is not None else "–%")
        rows = [[item["question"].text.get(str(get_locale())),
                 reports.format_percent(item["index"].estimate),
                 reports.format_interval(item["index"]),
                 reports.format_percent(item["mean"].estimate) if item["mean"] else "–",
                 _answered(item["index"])] for item in block["criteria"]]
        pdf.grid(caption, headers, rows, [80, 18, 42, 22, 18])


def _scope_elements(report) -> list[dict]:
    """As reports.agency_detail's elements, for the whole scope (the rows by "ALL")."""
    rows = report.table[report.table["by"] == "ALL"]
    by_key = {(row.level, row.key): row for row in rows.itertuples(index=False)}
    return [{"element": element, "index": by_key.get(("element", element.id)),
             "criteria": [{"question": q, "index": by_key[("criterion", q.id)],
                           "mean": by_key.get(("mean_score", q.id))}
                          for q in report.questionnaire.criteria
                          if q.element == element.id and ("criterion", q.id) in by_key]}
            for element in report.questionnaire.elements]


def _trend(pdf: ReportPDF, points: list[dict], name: str) -> None:
    """The page's trend section: the chart and the same figures in a table."""
    pdf.heading(f"{_('Diễn biến qua các kỳ')}: {name}")
    if len(points) < 2:
        pdf.para(_("Cần số liệu của ít nhất 2 kỳ để xem diễn biến."))
        return
    # The page's sentence names ▲ and ▼, which Noto Sans cannot draw: the PDF names the
    # triangles it draws instead.
    pdf.para(_("Chỉ số hài lòng chung (không gia quyền) của %(n)s kỳ gần nhất. Chấm là chỉ số, "
               "thanh dọc là khoảng tin cậy 95%%, chấm rỗng là kỳ ít phiếu; tam giác hướng lên "
               "hoặc hướng xuống chỉ khi kiểm định chênh lệch so với kỳ trước cho kết quả cao "
               "hơn hoặc thấp hơn có ý nghĩa thống kê.", n=len(points)), size=8.5, color=GREY)
    pdf.trend_chart(points)
    rows = []
    for point in points:
        versus = trend_versus(point)
        rows.append([reports.period_name(point["period"]),
                     reports.format_percent(point["estimate"]), reports.format_interval(point),
                     f"{point['n']}{_small(point['small'])}", versus,
                     reports.format_p(trend_p(point))])
    pdf.grid(f"{_('Chỉ số hài lòng chung qua các kỳ')}: {name}",
             [_("Kỳ"), _("Chỉ số (%%)") % {}, _("Khoảng tin cậy 95%%") % {}, _("Số phiếu"),
              _("So với kỳ trước"), _("p (hiệu chỉnh Holm)")],
             rows, [24, 16, 36, 18, 66, 20], words=(4,))


def _notes(pdf: ReportPDF, report, notes: list[str], flagged: list[str]) -> None:
    """The weighting notes, the flagged responses left out (or counted) and the small-group
    rule, as the page says them."""
    if notes:
        pdf.heading(_("Ghi chú về gia quyền"))
        pdf.bullets(notes)
    if flagged:
        pdf.heading(_("Đã tính cả các phiếu bất thường") if report.query.include_flagged
                    else _("Không tính các phiếu bất thường"))
        pdf.para(str(FLAGGED), size=9)
        pdf.bullets(flagged)
    pdf.para(_small_groups(), size=9, color=GREY)


def _small_groups() -> str:
    """The page's small-group rule, with the configured minimum."""
    return _("Nhóm có số phiếu dưới %(n)s được đánh dấu “ít phiếu”: kết quả kém chắc chắn và "
             "không được xếp cao hơn hay thấp hơn.", n=current_app.config["MIN_GROUP_N"])


def _method(pdf: ReportPDF) -> None:
    """The method page: the sentences of the page "Cách tính" under headings, with what
    METHODS.md adds on mean scores, intervals and flags."""
    pdf.add_page()
    pdf.heading(_("Cách tính chỉ số"), size=14)
    method = workbook.method_lines()
    sections = [
        (_("Tiêu chí, yếu tố và chỉ số hài lòng chung"),
         method[:2] + [str(line) for line in METHOD_EXTRA["indices"]]),
        (_("Gia quyền"), [str(reports.WEIGHTINGS["none"]) + ".", method[2], method[4]]),
        (_("Khoảng tin cậy 95%%") % {},
         [method[3]] + [str(line) for line in METHOD_EXTRA["intervals"]] + [method[5]]),
        (_("So sánh"), [method[6]] + [str(line) for line in METHOD_EXTRA["comparisons"]]),
        (_("Phiếu bất thường và nhóm ít phiếu"), [str(FLAGGED), _small_groups()]),
    ]
    for title, lines in sections:
        pdf.heading(title, size=11)
        pdf.bullets(lines, size=9.5)
    pdf.para(_("Chi tiết: analysis/METHODS.md trong mã nguồn."), size=9, color=GREY)


def _output(pdf: ReportPDF) -> bytes:
    try:
        return bytes(pdf.output())
    finally:
        for font in pdf.fonts.values():
            font.close()


def _file_name(kind: str, query) -> str:
    name = reports.download_stem(kind, query)
    if query.include_flagged:
        name += "-ca-phieu-bat-thuong"
    return name + ".pdf"


def send(document: tuple[bytes, str]):
    """The PDF as a download (Content-Disposition: attachment) named for what is inside."""
    data, name = document
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=name, max_age=0)


# --- the two documents ------------------------------------------------------------------

def scope_document(report, context: dict, scope_name: str) -> tuple[bytes, str]:
    """The scope's report (reports.scope_context): filters, the whole scope's overall,
    element and criterion indices, its trend, the agencies' ranking (chart and table, by
    level too), the notes and the method. Returns (PDF bytes, file name)."""
    name = _file_name("bao-cao-pham-vi", report.query)
    title = _("Báo cáo chỉ số hài lòng")
    pdf = ReportPDF(name, f"{title}: {scope_name}")
    _title(pdf, title, scope_name, report.query)
    whole = context.get("whole")
    _filters(pdf, report, scope_name, None if whole is None else int(whole.n))
    if report.error:
        pdf.para(report.error, style="B")
    elif context.get("quick"):
        _quick_scope(pdf, report, context["quick"])
    else:
        _scope_indices(pdf, report, context)
    _notes(pdf, report, context.get("notes", reports.note_lines(report)),
           context.get("flagged", reports.flagged_lines(report)))
    _method(pdf)
    return _output(pdf), name


def _scope_indices(pdf: ReportPDF, report, context: dict) -> None:
    whole = context["whole"]
    pdf.heading(f"{_('Chỉ số chung')}: {reports.format_percent(whole.estimate)}%", size=13)
    pdf.para(_("Khoảng tin cậy 95%%: %(interval)s. Số phiếu: %(n)s.",
               interval=reports.format_interval(whole), n=whole.n))
    locale = str(get_locale())
    titles = {e.id: e.title.get(locale) for e in report.questionnaire.elements}
    rows = [[f"{row.key}. {titles.get(row.key, row.key)}{_criteria_note(row.criteria_used)}",
             reports.format_percent(row.estimate), reports.format_interval(row)]
            for row in context["whole_elements"].itertuples(index=False)]
    pdf.grid(_("Chỉ số theo yếu tố"), [_("Yếu tố"), _("Chỉ số (%%)") % {},
                                      _("Khoảng tin cậy 95%%") % {}], rows, [110, 25, 45])
    pdf.heading(_("Chỉ số theo tiêu chí (toàn bộ phạm vi)"))
    _criteria_tables(pdf, _scope_elements(report))
    _trend(pdf, context["trend"], _("Chỉ số chung"))
    ranking = context["ranking"]
    pdf.heading(_("Xếp hạng các cơ quan"))
    pdf.para(_("Thanh là chỉ số hài lòng chung, vạch ngang là khoảng tin cậy 95%%, đường dọc là "
               "chỉ số của toàn bộ phạm vi. Thanh màu xanh đậm hoặc đỏ chỉ khi kiểm định chênh "
               "lệch so với toàn bộ phạm vi cho kết quả cao hơn hoặc thấp hơn có ý nghĩa thống "
               "kê (p đã hiệu chỉnh Holm dưới 0,05, cơ quan không ít phiếu).") % {},
             size=8.5, color=GREY)
    pdf.ranking_chart(ranking, _number(whole.estimate))
    elements = report.questionnaire.elements
    rows = [[line["name"], reports.format_percent(line["estimate"])
             + _criteria_note(line["criteria_used"]),
             reports.format_interval(line), f"{line['n']}{_small(line['small'])}",
             _comparison(line["comparison"]), reports.format_percent(line["diff"]),
             reports.format_p(line["diff_p_adj"])]
            + [reports.format_percent(line["elements"].get(e.id), 1) for e in elements]
            for line in ranking]
    element_w = min(9.0, 40.0 / max(len(elements), 1))
    pdf.grid(_("Chỉ số hài lòng chung theo cơ quan"),
             [_("Cơ quan"), _("Chỉ số (%%)") % {}, _("Khoảng tin cậy 95%%") % {},
              _("Số phiếu"), _("So với chỉ số chung"), _("Chênh lệch (điểm %%)") % {},
              _("p (hiệu chỉnh Holm)")] + [e.id for e in elements],
             rows, [34, 15, 26, 13, 28, 13, 12] + [element_w] * len(elements), size=6.5,
             words=(4,))
    for group in context.get("levels", []):
        rows = [[str(i), line["name"], reports.format_percent(line["estimate"]),
                 reports.format_interval(line), f"{line['n']}{_small(line['small'])}",
                 _comparison(line["comparison"])]
                for i, line in enumerate(group["lines"], start=1)]
        pdf.grid(f"{_('Xếp hạng theo cấp cơ quan')}: {group['label']} ({len(group['lines'])})",
                 [_("Hạng"), _("Cơ quan"), _("Chỉ số (%%)") % {},
                  _("Khoảng tin cậy 95%%") % {}, _("Số phiếu"), _("So với chỉ số chung")],
                 rows, [10, 58, 16, 36, 20, 40], size=7.5, first_left=2, words=(5,))


def _comparison(comparison: str) -> str:
    """The ranking's words for a comparison, as on the page."""
    return {"above": _("Cao hơn có ý nghĩa thống kê"),
            "below": _("Thấp hơn có ý nghĩa thống kê"),
            "small": _("Không so sánh (ít phiếu)")}.get(
        comparison, _("Không khác biệt có ý nghĩa thống kê"))


def _quick_scope(pdf: ReportPDF, report, quick: dict) -> None:
    """The quick form's scope page: share satisfied overall and per agency, the reasons."""
    whole = quick["whole"]
    pdf.heading(f"{_('Tỷ lệ hài lòng chung')}: {reports.format_percent(whole.estimate)}%")
    pdf.para(_("Tỷ lệ người chọn “Rất hài lòng” hoặc “Hài lòng” trong số người đã đánh giá."))
    pdf.para(_("Khoảng tin cậy 95%%: %(interval)s. Số lượt đánh giá: %(n)s.",
               interval=reports.format_interval(whole), n=whole.n_answered))
    rows = [[f"{row.name}{_small(row.flag == 'small_n')}", reports.format_percent(row.estimate),
             reports.format_interval(row), str(row.very_satisfied), str(row.satisfied),
             str(row.not_satisfied)] for row in quick["agencies"]]
    pdf.grid(_("Tỷ lệ hài lòng theo cơ quan"),
             [_("Cơ quan"), _("Hài lòng (%%)") % {}, _("Khoảng tin cậy 95%%") % {},
              _("Rất hài lòng"), _("Hài lòng"), _("Không hài lòng")],
             rows, [60, 18, 42, 20, 20, 20])
    _reasons(pdf, quick["reasons"], _("Lý do không hài lòng (toàn bộ phạm vi)"))


def _reasons(pdf: ReportPDF, reasons, caption: str) -> None:
    rows = [[row.label, str(row.count), reports.format_percent(row.share, 1)]
            for row in reasons]
    pdf.grid(caption, [_("Lý do"), _("Số lượt"), _("Tỷ lệ (%%)") % {}], rows, [120, 30, 30])
    pdf.para(_("Tỷ lệ lý do tính trên số người không hài lòng có nêu lý do; một người có thể "
               "chọn nhiều lý do."), size=8.5, color=GREY)


def agency_document(report, context: dict, code: str) -> tuple[bytes, str]:
    """One agency's report (reports.agency_context): filters, its overall index with the
    comparison with the scope and the scope's figure, per element its criteria, counters,
    response rate, trend, the notes that concern it and the method. Returns (PDF bytes,
    file name)."""
    name = _file_name(f"bao-cao-{code}", report.query)
    title = _("Báo cáo chỉ số hài lòng")
    agency = f"{context['name']} ({code})"
    pdf = ReportPDF(name, f"{title}: {agency}")
    _title(pdf, title, agency, report.query)
    detail = context["detail"]
    overall = None if detail is None else detail["overall"]
    _filters(pdf, report, agency, None if overall is None else int(overall.n))
    if detail is None:
        pdf.para(report.error or _("Chưa có phiếu trả lời nào trong phạm vi và kỳ đã chọn."),
                 style="B")
    elif detail["quick"]:
        row = detail["quick"]["row"]
        pdf.para(_("Tỷ lệ hài lòng chung: %(estimate)s%% (khoảng tin cậy 95%%: %(interval)s; "
                   "số lượt đánh giá: %(n)s).", estimate=reports.format_percent(row.estimate),
                   interval=reports.format_interval(row), n=row.n_answered)
                 + _small(row.flag == "small_n"), size=11, style="B")
        pdf.grid(_("Số lượt đánh giá theo mức"),
                 [_("Rất hài lòng"), _("Hài lòng"), _("Không hài lòng")],
                 [[str(row.very_satisfied), str(row.satisfied), str(row.not_satisfied)]],
                 [60, 60, 60], first_left=0)
        _reasons(pdf, detail["quick"]["reasons"], _("Lý do không hài lòng"))
    else:
        _agency_indices(pdf, report, context)
    if detail is not None:
        _criteria_tables(pdf, detail["elements"])
    if context.get("counters"):
        def covered(line) -> str:
            if not line.get("coverage"):
                return "–"
            responses, served = line["coverage"]
            return _("%(responses)s / %(served)s hồ sơ (%(ratio)s%%)",
                     responses=reports.format_count(responses),
                     served=reports.format_count(served),
                     ratio=reports.format_percent(100 * responses / served))

        rows = [[line["label"], f"{line['n']}{_small(line['small'])}",
                 reports.format_percent(line["estimate"]), reports.format_interval(line),
                 covered(line)]
                for line in context["counters"]]
        pdf.grid(_("Theo quầy (chỉ số hài lòng chung, không gia quyền)"),
                 [_("Quầy"), _("Số phiếu"), _("Chỉ số (%%)") % {},
                  _("Khoảng tin cậy 95%%") % {}, _("Phiếu trên hồ sơ đã giải quyết")], rows,
                 [60, 20, 20, 40, 40])
        pdf.para(_("Mỗi quầy thường có ít phiếu nên chỉ hiện số phiếu và chỉ số chung; chỉ số "
                   "theo tiêu chí của từng quầy không đủ tin cậy."), size=8.5, color=GREY)
        pdf.para(_("Số hồ sơ của một quầy được biết khi quầy phát mã đánh giá (mỗi hồ sơ một "
                   "mã; khi đó chỉ tính phiếu từ lúc quầy phát mã đầu tiên) hoặc khi cơ quan chỉ "
                   "có một quầy; số phiếu ở cột này gồm cả phiếu bất thường. Trên 100%% là dấu "
                   "hiệu phiếu không phải của người dân đã được phục vụ.") % {},
                 size=8.5, color=GREY)
    for line in context.get("coverage", []):
        text = _("Tỷ lệ phản hồi kỳ %(period)s: %(responses)s phiếu trên %(served)s hồ sơ đã "
                 "giải quyết (%(ratio)s%%).", period=reports.period_name(line.period),
                 responses=line.responses, served=line.served,
                 ratio=reports.format_percent(line.ratio))
        if line.over:
            text += " " + _("Số phiếu vượt số hồ sơ: không phải phiếu nào cũng có thể là của "
                            "người dân đã được phục vụ.")
        pdf.para(text, size=9, style="B" if line.over else "")
    if report.quick is None:
        _trend(pdf, context.get("trend", []), context["name"])
    _notes(pdf, report, context.get("notes", []), context.get("flagged", []))
    _method(pdf)
    return _output(pdf), name


def _agency_indices(pdf: ReportPDF, report, context: dict) -> None:
    overall = context["detail"]["overall"]
    pdf.para(_("Chỉ số hài lòng chung: %(estimate)s%% (khoảng tin cậy 95%%: %(interval)s; số "
               "phiếu: %(n)s).", estimate=reports.format_percent(overall.estimate),
               interval=reports.format_interval(overall), n=overall.n)
             + _criteria_note(overall.criteria_used) + _small(overall.flag == "small_n"),
             size=11, style="B")
    values = {"diff": reports.format_percent(overall.diff),
              "p": reports.format_p(overall.diff_p_adj)}
    if overall.mark == "higher":
        versus = _("Cao hơn toàn bộ phạm vi có ý nghĩa thống kê (chênh lệch %(diff)s điểm, p "
                   "đã hiệu chỉnh Holm = %(p)s).", **values)
    elif overall.mark == "lower":
        versus = _("Thấp hơn toàn bộ phạm vi có ý nghĩa thống kê (chênh lệch %(diff)s điểm, p "
                   "đã hiệu chỉnh Holm = %(p)s).", **values)
    elif overall.flag == "small_n":
        versus = _("Ít phiếu: không so sánh với toàn bộ phạm vi.")
    else:
        versus = _("Không khác biệt có ý nghĩa thống kê so với toàn bộ phạm vi.")
    pdf.para(versus)
    whole = context.get("whole")
    if whole is not None:
        pdf.para(_("Chỉ số chung: %(estimate)s%% (khoảng tin cậy 95%%: %(interval)s; số phiếu: "
                   "%(n)s).", estimate=reports.format_percent(whole.estimate),
                   interval=reports.format_interval(whole), n=whole.n))
