"""QR codes and printable counter posters (PDF in A4/A5, bare QR as SVG and PNG)."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import qrcode
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _
from fpdf import FPDF
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from .models import Agency, Counter

FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "NotoSans"
# Millimetres. A5 is A4 scaled by 1/sqrt(2), so one layout serves both.
PAPER_SIZES = {"A4": (210.0, 297.0), "A5": (148.0, 210.0)}
# M recovers ~15% of damaged modules, enough for a laminated poster at a counter, and keeps
# the code at version 3-4 (29-33 modules) for our URLs: large modules, easy for old cameras.
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
# The quiet zone the QR specification requires around the code.
QUIET_ZONE = 4
PT = 25.4 / 72  # millimetres per typographic point
INK, BLUE, GREY, TINT = (0, 0, 0), (11, 83, 148), (85, 85, 85), (226, 237, 249)


@dataclass(frozen=True)
class Poster:
    """What one poster shows; built from a counter by `poster_for`."""

    agency: str
    counter: str
    url: str
    # The header line above the agency (the province); empty when the agency is the top.
    province: str = ""


def counter_url(token: str) -> str:
    """The public URL of a counter's questionnaire: exactly what its QR code encodes."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/r/{token}"


def province_of(agency: Agency) -> str:
    """SURVEY_POSTER_PROVINCE when set, else the name of the agency's top ancestor."""
    configured = (current_app.config.get("POSTER_PROVINCE") or "").strip()
    if configured:
        return configured
    top, seen = agency, {id(agency)}
    while top.parent is not None and id(top.parent) not in seen:  # a cycle stops the walk
        top = top.parent
        seen.add(id(top))
    return top.name


def poster_for(counter: Counter) -> Poster:
    """What a counter's poster shows: province, agency, counter label and its URL."""
    agency = counter.agency
    province = province_of(agency)
    if " ".join(province.split()).casefold() == " ".join(agency.name.split()).casefold():
        province = ""  # the agency is the province itself: say it once
    return Poster(agency=agency.name, counter=counter.label, url=counter_url(counter.token),
                  province=province)


def qr_matrix(data: str) -> list[list[bool]]:
    """Dark (True) and light modules, quiet zone included."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=QUIET_ZONE)
    code.add_data(data.encode("utf-8"))
    code.make(fit=True)
    return code.get_matrix()


def dark_runs(row: Sequence[bool]) -> Iterable[tuple[int, int]]:
    """(start, length) of each horizontal run of dark modules in a row."""
    start = None
    for x, dark in enumerate(row):
        if dark and start is None:
            start = x
        elif not dark and start is not None:
            yield start, x - start
            start = None
    if start is not None:
        yield start, len(row) - start


def qr_svg(data: str) -> bytes:
    """A standalone SVG: one path in module units on a white square (the quiet zone)."""
    matrix = qr_matrix(data)
    size = len(matrix)
    path = "".join(f"M{x} {y}h{n}v1h-{n}z" for y, row in enumerate(matrix)
                   for x, n in dark_runs(row))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'width="{size * 8}" height="{size * 8}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>'
    ).encode()


def qr_png(data: str, module_px: int = 16) -> bytes:
    """A black-and-white PNG, `module_px` pixels per module, quiet zone included."""
    matrix = qr_matrix(data)
    size = len(matrix)
    image = Image.new("1", (size, size), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    image = image.resize((size * module_px, size * module_px), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass(frozen=True)
class Block:
    """Lines of text fitted to a width: what `PosterPDF.draw` puts on the page."""

    lines: list[str]
    style: str
    size: float
    line_height: float
    width: float
    color: tuple[int, int, int]

    @property
    def height(self) -> float:
        return len(self.lines) * self.line_height


def _height(items: list) -> float:
    """Height of a column of (gap above, block or "rule") items."""
    return sum(gap + (0 if item == "rule" else item.height) for gap, item in items)


def page_texts(locale: str) -> dict[str, str]:
    """The words every poster carries, in one language."""
    with force_locale(locale):
        return {
            "invitation": _("Mời ông/bà quét mã QR để đánh giá mức độ hài lòng"),
            "reassurance": _("Không cần ghi tên · khoảng 2 phút"),
            "instruction": _("Mở camera điện thoại, hướng vào mã QR rồi chạm vào đường dẫn "
                             "hiện ra."),
            "link": _("Không quét được? Mở trình duyệt và gõ địa chỉ:"),
        }


def register_fonts(pdf: FPDF) -> frozenset[int]:
    """Embed Noto Sans (regular and bold, as subsets) in `pdf` as FONT, Vietnamese in the
    language metadata; the code points both weights draw (what `printable` keeps)."""
    pdf.add_font(FONT, "", FONTS / "NotoSans-Regular.ttf")
    pdf.add_font(FONT, "B", FONTS / "NotoSans-Bold.ttf")
    pdf.set_creator("sipas-survey")
    pdf.set_lang("vi")
    return frozenset(pdf.fonts[FONT.lower()].cmap) & frozenset(pdf.fonts[FONT.lower() + "B"].cmap)


def printable(text: str, covered: frozenset[int]) -> str:
    """NFC, every space-like character a plain space, only characters the font draws:
    anything else (emoji, CJK, controls) is dropped rather than printed as an empty box."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if c.isspace() else c for c in text if c.isspace() or
                   ord(c) in covered and unicodedata.category(c)[0] != "C")
    return " ".join(text.split())


class PosterPDF(FPDF):
    """One document, one page per poster; the fonts are loaded once and embedded as subsets."""

    def __init__(self, size: str = "A4"):
        if size not in PAPER_SIZES:
            raise ValueError(f"unknown paper size {size!r}; expected one of {sorted(PAPER_SIZES)}")
        # Explicit millimetres: fpdf2 warns about its own "A5" (changed in 2.8.5).
        super().__init__(unit="mm", format=PAPER_SIZES[size])
        self.paper = size
        self.set_auto_page_break(False)
        self.set_margin(0)
        self.covered = register_fonts(self)
        self._widths: dict[tuple[str, str], float] = {}
        self._fits: dict[tuple, tuple[float, list[str]]] = {}
        # Page texts are the same on every page: translate them once, in both languages.
        self.texts = page_texts("vi")
        self.english = page_texts("en")

    def close_fonts(self) -> None:
        """Release the font files (output() does it too; this covers a failed layout)."""
        for font in self.fonts.values():
            font.close()

    def clean(self, text: str) -> str:
        """NFC, every space-like character a plain space, only characters the font draws."""
        return printable(text, self.covered)

    def _width(self, style: str, text: str) -> float:
        """Width in millimetres of text at 1 pt (widths scale linearly with the size)."""
        key = (style, text)
        if key not in self._widths:
            self.set_font(FONT, style, 100)
            self._widths[key] = self.get_string_width(text) / 100
        return self._widths[key]

    def _wrap(self, words: list[str], style: str, size: float, width: float) -> list[str]:
        """Greedy line breaking on spaces; a word wider than the line is cut only here."""
        space = self._width(style, " ") * size
        lines: list[str] = []
        current, used = "", 0.0
        for word in words:
            word_width = self._width(style, word) * size
            if word_width > width:
                if current:
                    lines.append(current)
                pieces = self._cut(word, style, size, width)
                lines.extend(pieces[:-1])
                current, used = pieces[-1], self._width(style, pieces[-1]) * size
            elif current and used + space + word_width <= width:
                current, used = f"{current} {word}", used + space + word_width
            else:
                if current:
                    lines.append(current)
                current, used = word, word_width
        if current:
            lines.append(current)
        return lines

    def _cut(self, word: str, style: str, size: float, width: float) -> list[str]:
        """A word too wide for any line, in pieces that fit (the last resort of `fit`)."""
        pieces, current = [], ""
        for char in word:
            if current and self._width(style, current + char) * size > width:
                pieces.append(current)
                current = ""
            current += char
        return [*pieces, current]

    def fit(self, text: str, style: str, size: float, min_size: float, max_lines: int,
            width: float) -> tuple[float, list[str]]:
        """The largest size (down to min_size) at which text fits in max_lines whole-word lines.

        Shrinking comes before breaking: a word is cut only when it is wider than the line
        even at min_size, and lines beyond max_lines end in an ellipsis. Both happen only for
        text no agency would print (a 60-letter word, a 300-character label).
        """
        key = (text, style, size, min_size, max_lines, width)
        if key in self._fits:
            return self._fits[key]
        words = text.split()
        longest = max((self._width(style, w) for w in words), default=0.0)
        fitted = None
        while size >= min_size:
            if longest * size <= width:
                lines = self._wrap(words, style, size, width)
                if len(lines) <= max_lines:
                    fitted = (size, lines)
                    break
            size -= 0.5
        if fitted is None:
            lines = self._wrap(words, style, min_size, width)
            if len(lines) > max_lines:
                lines = lines[:max_lines]
                last = lines[-1]
                while last and self._width(style, last + "…") * min_size > width:
                    last = last[:-1]
                lines[-1] = last.rstrip() + "…"
            fitted = (min_size, lines)
        elif len(fitted[1]) > 1:
            fitted = (size, self._balance(words, style, size, width, fitted[1]))
        self._fits[key] = fitted
        return fitted

    def _balance(self, words: list[str], style: str, size: float, width: float,
                 lines: list[str]) -> list[str]:
        """The same number of lines, as even as they go (no lone word on the last line)."""
        low = max(self._width(style, w) for w in words) * size
        high = width
        while high - low > 0.5:
            middle = (low + high) / 2
            if len(self._wrap(words, style, size, middle)) <= len(lines):
                high = middle
            else:
                low = middle
        return self._wrap(words, style, size, high)

    def text_block(self, y: float, text: str, style: str, size: float, min_size: float,
                   max_lines: int, width: float, leading: float = 1.25,
                   color: tuple[int, int, int] = INK) -> float:
        """Draw text centred in lines of at most `width`, from y; the y below it."""
        block = self.block(text, style, size, min_size, max_lines, width, leading, color)
        return self.draw(block, y)

    def block(self, text: str, style: str, size: float, min_size: float, max_lines: int,
              width: float, leading: float = 1.25, color: tuple[int, int, int] = INK) -> Block:
        size, lines = self.fit(self.clean(text), style, size, min_size, max_lines, width)
        return Block(lines, style, size, leading * size * PT, width, color)

    def draw(self, block: Block, y: float) -> float:
        self.set_font(FONT, block.style, block.size)
        self.set_text_color(*block.color)
        left = (self.w - block.width) / 2
        for line in block.lines:
            self.set_xy(left, y)
            self.cell(block.width, block.line_height, line, align="C")
            y += block.line_height
        return y

    def _qr(self, data: str, x: float, y: float, side: float) -> None:
        """The code as vector rectangles: sharp at any printer resolution, tiny in the file."""
        matrix = qr_matrix(data)
        module = side / len(matrix)
        self.set_fill_color(255, 255, 255)
        self.rect(x, y, side, side, style="F")
        self.set_fill_color(0, 0, 0)
        for row_index, row in enumerate(matrix):
            top = y + row_index * module
            for start, length in dark_runs(row):
                self.rect(x + start * module, top, length * module, module, style="F")

    def add_poster(self, poster: Poster) -> None:
        """One page: header, counter, invitation, the code as large as fits, how to answer.

        The top (who asks) flows down from the top margin, the bottom (how, and the link)
        rests on the bottom margin, and the code takes the space between. English lines
        go first when names are so long that the code would get small.
        """
        self.add_page()
        k = self.w / PAPER_SIZES["A4"][0]  # A5 is the A4 layout scaled down
        margin = 13 * k
        width = self.w - 2 * margin
        for english in (True, False):
            top, bottom = self._top(poster, k, width, english), self._bottom(poster, k, width,
                                                                              english)
            room = self.h - 2 * margin - _height(top) - _height(bottom)
            side = min(width * 0.86, room - 16 * k)
            if side >= width * 0.55:
                break
        y = margin
        for gap, item in top:
            y += gap
            if item == "rule":
                self.set_draw_color(*BLUE)
                self.set_line_width(0.5 * k)
                self.line(margin, y, self.w - margin, y)
            else:
                y = self.draw(item, y)
        qr_top = y + (room - side) / 2
        self._qr(poster.url, (self.w - side) / 2, qr_top, side)
        # A frame draws the eye to the code; it lies outside the quiet zone.
        self.set_draw_color(*BLUE)
        self.set_line_width(0.7 * k)
        pad = 1.5 * k
        self.rect((self.w - side) / 2 - pad, qr_top - pad, side + 2 * pad, side + 2 * pad,
                  round_corners=True, corner_radius=4 * k)
        y = self.h - margin - _height(bottom)
        for index, (gap, item) in enumerate(bottom):
            if index == 0 and item.lines:  # the reassurance, on a light band
                text = self._width(item.style, item.lines[0]) * item.size
                self.set_fill_color(*TINT)
                self.rect((self.w - text) / 2 - 5 * k, y - 0.5 * k, text + 10 * k,
                          item.height + 1 * k, style="F", round_corners=True,
                          corner_radius=item.height / 2)
            y = self.draw(item, y + gap)

    def _top(self, poster: Poster, k: float, width: float, english: bool) -> list:
        """(gap above, block or "rule") from the header down to the invitation."""
        items: list = []
        province = self.clean(poster.province).upper()
        if province:
            items.append((0, self.block(province, "", 13 * k, 8 * k, 2, width, color=BLUE)))
        items.append((1 * k if province else 0,
                      self.block(poster.agency, "B", 19 * k, 11 * k, 2, width, color=BLUE)))
        items.append((3 * k, "rule"))
        items.append((8 * k, self.block(poster.counter, "B", 34 * k, 15 * k, 3, width)))
        items.append((7 * k, self.block(self.texts["invitation"], "B", 25 * k, 14 * k, 2,
                                        width)))
        if english and self.english["invitation"] != self.texts["invitation"]:
            items.append((1 * k, self.block(self.english["invitation"], "", 14 * k, 9 * k, 1,
                                            width, color=GREY)))
        return items

    def _bottom(self, poster: Poster, k: float, width: float, english: bool) -> list:
        """(gap above, block) for the reassurance, the instruction and the written link."""
        items = [(0, self.block(self.texts["reassurance"], "B", 17 * k, 11 * k, 1, width,
                                leading=1.5))]
        if english and self.english["reassurance"] != self.texts["reassurance"]:
            items.append((0, self.block(self.english["reassurance"], "", 12 * k, 8 * k, 1,
                                        width, color=GREY)))
        items.append((5 * k, self.block(self.texts["instruction"], "", 13 * k, 8 * k, 2,
                                        width)))
        if english and self.english["instruction"] != self.texts["instruction"]:
            items.append((0, self.block(self.english["instruction"], "", 11 * k, 7 * k, 2,
                                        width, color=GREY)))
        items.append((5 * k, self.block(self.texts["link"], "", 13 * k, 8 * k, 1, width)))
        if english and self.english["link"] != self.texts["link"]:
            items.append((0, self.block(self.english["link"], "", 11 * k, 7 * k, 1, width,
                                        color=GREY)))
        items.append((1 * k, self.block(poster.url, "B", 20 * k, 9 * k, 2, width,
                                        color=BLUE)))
        return items


def poster_pdf(posters: Iterable[Poster], size: str = "A4") -> bytes:
    """One PDF with a page per poster (an empty iterable gives a one-page note)."""
    with force_locale("vi"):
        pdf = PosterPDF(size)
        try:
            pdf.set_title(_("Áp phích mã QR khảo sát sự hài lòng"))
            count = 0
            for poster in posters:
                pdf.add_poster(poster)
                count += 1
            if not count:
                pdf.add_page()
                pdf.text_block(40, _("Không có quầy nào đang hoạt động để in."), "", 16, 10,
                               3, pdf.w - 40)
            return bytes(pdf.output())
        finally:
            pdf.close_fonts()


def printable_counters(db: Session, agency_ids: Iterable[int] | None = None,
                       counter_ids: Iterable[int] | None = None) -> list[Counter]:
    """Active counters of active agencies that have a live token, in a stable order.

    `agency_ids` limits them to a scope; `counter_ids` to chosen counters (e.g. those a CSV
    import just created), still within that scope.
    """
    query = (
        select(Counter)
        .join(Counter.agency)
        .where(Counter.active.is_(True), Agency.active.is_(True))
        .options(joinedload(Counter.agency), selectinload(Counter.tokens))
        .order_by(Agency.code, Counter.label, Counter.id)
    )
    if agency_ids is not None:
        query = query.where(Counter.agency_id.in_(list(agency_ids)))
    if counter_ids is not None:
        query = query.where(Counter.id.in_(list(counter_ids)))
    return [c for c in db.scalars(query) if c.token]


@click.command("posters")
@with_appcontext
@click.option("--agency", "agency_code", metavar="CODE", help="The agency whose counters to print.")
@click.option("--with-children", is_flag=True, help="Also the agencies below --agency.")
@click.option("--all", "all_agencies", is_flag=True, help="Every agency's counters.")
@click.option("--size", type=click.Choice(sorted(PAPER_SIZES), case_sensitive=False),
              default="A4", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              default="posters.pdf", show_default=True)
def posters_command(agency_code, with_children, all_agencies, size, output):
    """Write one PDF with a poster per active counter (one agency, or --all)."""
    from .db import get_db
    from .domain.scope import subtree_ids

    if bool(agency_code) == bool(all_agencies):
        raise click.UsageError("Give either --agency CODE or --all.")
    db = get_db()
    agency_ids = None
    if agency_code:
        agency = db.scalar(select(Agency).where(Agency.code == agency_code.strip()))
        if agency is None:
            raise click.UsageError(f"No agency with code {agency_code!r}.")
        agency_ids = subtree_ids(db, agency.id) if with_children else {agency.id}
    counters = printable_counters(db, agency_ids)
    if not counters:
        raise click.ClickException("No active counter with a live token to print.")
    data = poster_pdf((poster_for(c) for c in counters), size.upper())
    Path(output).write_bytes(data)
    click.echo(f"Wrote {len(counters)} poster(s), {size.upper()}, "
               f"{len(data) / 1e6:.2f} MB: {output}")


def init_app(app) -> None:
    app.cli.add_command(posters_command)
