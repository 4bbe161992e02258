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


@dataclass(frozen=True)
class Poster:
    """What one poster shows; built from a counter by `poster_for`."""

    agency: str
    counter: str
    url: str


def counter_url(token: str) -> str:
    """The public URL of a counter's questionnaire: exactly what its QR code encodes."""
    return f"{current_app.config['PUBLIC_URL'].rstrip('/')}/r/{token}"


def poster_for(counter: Counter) -> Poster:
    return Poster(agency=counter.agency.name, counter=counter.label,
                  url=counter_url(counter.token))


def qr_matrix(data: str) -> list[list[bool]]:
    """Dark (True) and light modules, quiet zone included."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=QUIET_ZONE)
    code.add_data(data.encode("utf-8"))
    code.make(fit=True)
    return code.get_matrix()


def _runs(row: Sequence[bool]) -> Iterable[tuple[int, int]]:
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
                   for x, n in _runs(row))
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


class PosterPDF(FPDF):
    """One document, one page per poster; the font is loaded once and embedded as a subset."""

    def __init__(self, size: str = "A4"):
        if size not in PAPER_SIZES:
            raise ValueError(f"unknown paper size {size!r}; expected one of {sorted(PAPER_SIZES)}")
        # Explicit millimetres: fpdf2 warns about its own "A5" (changed in 2.8.5).
        super().__init__(unit="mm", format=PAPER_SIZES[size])
        self.paper = size
        self.set_auto_page_break(False)
        self.set_margin(0)
        self.add_font(FONT, "", FONTS / "NotoSans-Regular.ttf")
        self.add_font(FONT, "B", FONTS / "NotoSans-Bold.ttf")
        self.set_creator("sipas-survey")
        self.set_lang("vi")
        self._lines_cache: dict = {}
        # Page texts are the same on every page: translate them once.
        self.instruction = _("Quét mã QR để đánh giá sự hài lòng của bạn")
        self.link_label = _("Hoặc mở đường dẫn:")

    def _fit(self, text: str, width: float, style: str, size: float, min_size: float,
             max_lines: int) -> tuple[float, list[str]]:
        """The largest font size (down to min_size) at which text fits in max_lines lines."""
        key = (text, width, style, size, min_size, max_lines)
        if key not in self._lines_cache:
            while True:
                self.set_font(FONT, style, size)
                lines = self.multi_cell(width, text=text, dry_run=True, output="LINES",
                                        wrapmode="WORD" if " " in text else "CHAR")
                if len(lines) <= max_lines or size <= min_size:
                    break
                size = max(min_size, size - 1)
            self._lines_cache[key] = (size, lines)
        return self._lines_cache[key]

    def text_block(self, y: float, text: str, style: str, size: float, min_size: float,
                    max_lines: int, width: float, leading: float = 1.2) -> float:
        size, lines = self._fit(text, width, style, size, min_size, max_lines)
        self.set_font(FONT, style, size)
        line_height = size * leading * 25.4 / 72
        left = (self.w - width) / 2
        for line in lines:
            self.set_xy(left, y)
            self.cell(width, line_height, line, align="C")
            y += line_height
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
            for start, length in _runs(row):
                self.rect(x + start * module, top, length * module, module, style="F")

    def add_poster(self, poster: Poster) -> None:
        self.add_page()
        k = self.w / PAPER_SIZES["A4"][0]  # A5 is the A4 layout scaled down
        margin = 16 * k
        width = self.w - 2 * margin
        self.set_text_color(0, 0, 0)
        y = self.text_block(margin, _nfc(poster.agency), "", 24 * k, 13 * k, 3, width)
        y = self.text_block(y + 3 * k, _nfc(poster.counter), "B", 34 * k, 16 * k, 2, width)
        self.set_draw_color(11, 83, 148)
        self.set_line_width(0.8 * k)
        self.line(margin + width * 0.3, y + 5 * k, margin + width * 0.7, y + 5 * k)
        y = self.text_block(y + 10 * k, self.instruction, "", 20 * k, 11 * k, 1, width)
        # Reserve the bottom for the written link, give the QR code what remains.
        bottom = self.h - margin - 22 * k
        side = min(width, bottom - (y + 2 * k))
        self._qr(poster.url, (self.w - side) / 2, y + 2 * k, side)
        y = self.text_block(y + 4 * k + side, self.link_label, "", 13 * k, 9 * k, 1, width)
        self.text_block(y, poster.url, "B", 19 * k, 9 * k, 2, width)


def _nfc(text: str) -> str:
    # Precomposed letters map one-to-one to the font's glyphs and extract back intact.
    return unicodedata.normalize("NFC", text)


def poster_pdf(posters: Iterable[Poster], size: str = "A4") -> bytes:
    """One PDF with a page per poster (an empty iterable gives a one-page note)."""
    with force_locale("vi"):
        pdf = PosterPDF(size)
        pdf.set_title(_("Áp phích mã QR khảo sát sự hài lòng"))
        count = 0
        for poster in posters:
            pdf.add_poster(poster)
            count += 1
        if not count:
            pdf.add_page()
            pdf.text_block(40, _("Không có quầy nào đang hoạt động để in."), "", 16, 10, 3,
                            pdf.w - 40)
    return bytes(pdf.output())


def printable_counters(db: Session, agency_ids: Iterable[int] | None = None) -> list[Counter]:
    """Active counters of active agencies that have a live token, in a stable order."""
    query = (
        select(Counter)
        .join(Counter.agency)
        .where(Counter.active.is_(True), Agency.active.is_(True))
        .options(joinedload(Counter.agency), selectinload(Counter.tokens))
        .order_by(Agency.code, Counter.label, Counter.id)
    )
    if agency_ids is not None:
        query = query.where(Counter.agency_id.in_(list(agency_ids)))
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
