"""Reading responses, element maps, questionnaires, totals and margins; writing result tables."""

from __future__ import annotations

import csv
import io
import json
import math
import mmap
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from .questionnaire import Questionnaire, QuestionnaireError, load_file

__all__ = [
    "AnalysisInputError",
    "ElementMap",
    "criterion_answers",
    "load_questionnaire",
    "normalize_text",
    "read_elements",
    "read_margin",
    "read_questionnaire",
    "read_responses",
    "read_totals",
    "safe_cell",
    "write_table",
]


class AnalysisInputError(ValueError):
    """Input data that cannot be analysed; the message names the file, row, column or cell."""


PathLike = str | os.PathLike


class ElementMap:
    """Which criterion belongs to which element, in the order elements first appear.

    Parameters
    ----------
    pairs : iterable of (criterion, element)
        One pair per criterion. Element order is the order of first appearance; criterion
        order is the order given.

    Attributes
    ----------
    criteria : tuple of str
        Criterion ids, in order.
    elements : tuple of str
        Element ids, in order of first appearance.
    element_of : tuple of int
        For each criterion, the index of its element in ``elements``.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        criteria: list[str] = []
        elements: list[str] = []
        element_of: list[int] = []
        for criterion, element in pairs:
            criterion, element = _text(criterion), _text(element)
            if not criterion or not element:
                raise AnalysisInputError("element map: empty criterion or element id")
            if criterion in criteria:
                raise AnalysisInputError(f"element map: criterion {criterion!r} is listed twice")
            if element not in elements:
                elements.append(element)
            criteria.append(criterion)
            element_of.append(elements.index(element))
        if not criteria:
            raise AnalysisInputError("element map: no criteria")
        self.criteria = tuple(criteria)
        self.elements = tuple(elements)
        self.element_of = tuple(element_of)

    @classmethod
    def coerce(cls, value: ElementMap | Mapping | Sequence) -> ElementMap:
        """Build from an ElementMap, a mapping element -> criteria or (criterion, element) pairs."""
        if isinstance(value, ElementMap):
            return value
        if isinstance(value, Mapping):
            return cls((c, e) for e, crits in value.items() for c in _as_list(crits))
        return cls(value)

    def criteria_of(self, element: str) -> tuple[str, ...]:
        """The criteria of one element, in order."""
        k = self.elements.index(element)
        return tuple(c for c, e in zip(self.criteria, self.element_of, strict=True) if e == k)

    def __repr__(self) -> str:
        parts = ", ".join(f"{e}: {list(self.criteria_of(e))}" for e in self.elements)
        return f"ElementMap({{{parts}}})"


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def normalize_text(value) -> str:
    """A category value as analysed: text, trimmed, Unicode NFC (blank for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return unicodedata.normalize("NFC", str(value).strip())


_text = normalize_text  # the short name used inside this module (and by analysis.quick)


def _delimiter(path, what: str) -> str:
    """The delimiter of a CSV file -- comma, semicolon or tab, whichever splits its header
    line into the most columns (a comma on a tie) -- after refusing duplicated names.

    A spreadsheet set to Vietnamese number formats (decimal comma) saves "CSV" with
    semicolons, which used to be read as one column and reported as something else ("at
    least 2 responses are needed"). A name given twice is an error naming both positions:
    pandas would rename the second to ``name.1`` and the first one alone would be used,
    or the error would blame another file. A path-less input (a file object) is left to
    pandas (a comma).
    """  # fmt: skip
    if not isinstance(path, (str, os.PathLike)):
        return ","
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            line = f.readline()
    except FileNotFoundError:
        raise AnalysisInputError(f"{what}: file not found: {path}") from None
    except IsADirectoryError:
        raise AnalysisInputError(f"{what} {path}: is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise AnalysisInputError(f"{what} {path}: not UTF-8 text ({exc.reason})") from None
    if not line.strip():
        raise AnalysisInputError(f"{what} {path}: the file is empty")
    split = {}
    for sep in (",", ";", "\t"):
        try:
            split[sep] = next(csv.reader([line], delimiter=sep))
        except (csv.Error, StopIteration):
            split[sep] = [line]
    sep = max(split, key=lambda c: len(split[c]))  # the first of the longest: comma on a tie
    names = [_unquote_cell(_text(c)) for c in split[sep]]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen and name != "":
            raise AnalysisInputError(
                f"{what} {path}: the column {name!r} appears twice (columns {seen[name] + 1} "
                f"and {i + 1}); keep one"
            )
        seen.setdefault(name, i)
    return sep


def _read_csv_text(path: PathLike, what: str, **kwargs) -> pd.DataFrame:
    """A CSV (UTF-8, with or without BOM; comma, semicolon or tab, see :func:`_delimiter`)
    with every column kept as text."""
    sep = _delimiter(path, what)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            skipinitialspace=False,
            **kwargs,
        )
    except FileNotFoundError:
        raise AnalysisInputError(f"{what}: file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise AnalysisInputError(f"{what} {path}: not UTF-8 text ({exc.reason})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise AnalysisInputError(f"{what} {path}: cannot read as CSV: {exc}") from None
    frame.columns = [_unquote_cell(_text(c)) for c in frame.columns]
    _unquote_columns(frame)
    return frame


def read_responses(
    path: PathLike,
    criteria: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a wide responses CSV: one row per response, one column per criterion.

    Parameters
    ----------
    path : str or path-like
        UTF-8 CSV, with or without a byte-order mark.
    criteria : sequence of str, optional
        Criterion columns. They are parsed as numbers (blank = missing); every other column
        is kept as text, so codes such as ``007`` keep their leading zeros and ``NA`` stays a
        value, not a missing one. When omitted, every column is text.
    columns : sequence of str, optional
        Read only these columns and the criteria, which saves time and memory on large
        files. ``response_id`` is then read only if an invalid answer has to be reported.
        ``optional`` columns are read too where the file has them (e.g. ``flags``).
        A column that does not exist is reported.

    Returns
    -------
    pandas.DataFrame
        The responses. Criterion values are validated later, by the estimators, so that a
        DataFrame built from the database goes through the same checks.
    """
    sep = _delimiter(path, "responses")
    try:
        header = [_unquote_cell(_text(c))
                  for c in pd.read_csv(path, nrows=0, sep=sep, encoding="utf-8-sig").columns]
    except FileNotFoundError:
        raise AnalysisInputError(f"responses: file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise AnalysisInputError(f"responses {path}: not UTF-8 text ({exc.reason})") from None
    except pd.errors.EmptyDataError:
        raise AnalysisInputError(f"responses {path}: the file is empty") from None
    wanted = list(dict.fromkeys(criteria or ()))
    usecols = None
    if columns is not None:
        keep = set(wanted) | set(columns) | {c for c in optional if c in header}
        absent = [c for c in columns if c not in header]
        if absent:
            raise AnalysisInputError(f"responses {path}: no column(s) {', '.join(absent)}")
        usecols = [i for i, c in enumerate(header) if c in keep]
    names = header if usecols is None else [header[i] for i in usecols]
    text = {c: str for c in names if c not in wanted}
    numbers = [c for c in names if c in wanted]
    read = {
        "sep": sep,
        "keep_default_na": False,
        "na_values": {c: [""] for c in numbers},
        "encoding": "utf-8-sig",
        "low_memory": False,
        "memory_map": True,  # fewer copies: page faults are a large part of reading
        "usecols": usecols,
    }
    frame = _read_responses_arrow(path, names, numbers, sep)
    if frame is not None:
        if "response_id" in header and "response_id" not in frame.columns:
            frame.attrs["response_id_source"] = str(path)
        return frame
    try:
        try:
            # Criteria straight to float; anything else (a typo, "NA") fails here and is
            # read again as text so that the error can name the row and column.
            frame = pd.read_csv(path, dtype={**text, **dict.fromkeys(numbers, "float64")}, **read)
        except ValueError:
            frame = pd.read_csv(path, dtype=text, **read)
    except pd.errors.ParserError as exc:
        raise AnalysisInputError(f"responses {path}: cannot read as CSV: {exc}") from None
    frame.columns = [_unquote_cell(_text(c)) for c in frame.columns]
    if _file_mentions_quote(path):  # a file write_table wrote: its quotes come off
        _unquote_columns(frame, [c for c in frame.columns if c not in wanted])
    if "response_id" in header and "response_id" not in frame.columns:
        frame.attrs["response_id_source"] = str(path)
    return frame


def _read_responses_arrow(
    path: PathLike, names: Sequence[str], numbers: Sequence[str], sep: str = ","
) -> pd.DataFrame | None:
    """The common case of :func:`read_responses`, parsed by Arrow's multi-threaded reader.

    Only for a plain file: a header of distinct names that need no normalising, no quote
    character anywhere (nothing for :func:`_unquote_cell` to undo), criteria holding whole
    numbers or blank. Text columns are read dictionary-encoded (few distinct values) and
    criteria as small integers, which Arrow parses only from plain digits -- values that
    pandas parses to the same number. Anything else -- a ragged row, invalid UTF-8, an
    answer such as ``4.0``, `` 4`` or ``x`` -- returns None, and the pandas reader reads the
    file again with the same values and the same located errors as before. About a third
    of the time of pandas' reader on a million responses.
    """
    if not isinstance(path, (str, os.PathLike)) or _file_mentions_quote(path):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return None
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            raw = next(csv.reader(f, delimiter=sep))
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error):
        return None
    if len(set(raw)) != len(raw) or [_unquote_cell(_text(c)) for c in raw] != raw:
        return None
    if any(name not in raw for name in names):
        return None
    wanted = set(numbers)
    text = pa.dictionary(pa.int32(), pa.string())
    types = {name: pa.int8() if name in wanted else text for name in names}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 20),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(names),
                column_types=types,
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError, OSError):
        return None
    columns = {}
    for name in names:
        column = table.column(name)
        if name in wanted:
            columns[name] = column.to_numpy(zero_copy_only=False).astype("float64", copy=False)
        else:
            columns[name] = _dictionary_text(column)
    return pd.DataFrame(columns, columns=list(names))


def _dictionary_text(column) -> np.ndarray:
    """An Arrow dictionary-encoded text column as an object array of str, chunk by chunk
    (each chunk has its own dictionary; unifying them first costs more than this)."""
    parts = [
        chunk.dictionary.to_numpy(zero_copy_only=False).astype(object)[
            chunk.indices.to_numpy(zero_copy_only=False)
        ]
        for chunk in column.chunks
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _response_id(responses: pd.DataFrame, row: int) -> str:
    """The response_id of a row, for messages; read from the file if it was left out."""
    if "response_id" in responses.columns:
        return _text(responses["response_id"].iloc[row])
    source = responses.attrs.get("response_id_source")
    if not source:
        return ""
    ids = pd.read_csv(
        source, usecols=["response_id"], dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    return _text(ids["response_id"].iloc[row]) if row < len(ids) else ""


def criterion_answers(responses: pd.DataFrame, criteria: Sequence[str]) -> np.ndarray:
    """Validate the criterion columns and return them as a small-integer matrix.

    Parameters
    ----------
    responses : pandas.DataFrame
        One row per response.
    criteria : sequence of str
        The criterion columns.

    Returns
    -------
    numpy.ndarray
        ``int8`` array of shape (respondents, criteria), column-major, holding 1-5 and 0 for
        blank (not answered or not applicable).

    Raises
    ------
    AnalysisInputError
        When a column is missing, or a value is neither blank nor a whole number 1-5; the
        message names the 1-based data row, the ``response_id`` when present, and the column.
    """
    missing = [c for c in criteria if c not in responses.columns]
    if missing:
        raise AnalysisInputError(f"responses: criterion column(s) missing: {', '.join(missing)}")
    answers = np.zeros((len(responses), len(criteria)), dtype=np.int8, order="F")
    for j, criterion in enumerate(criteria):
        column = responses[criterion]
        values, bad = _criterion_values(column)
        if bad is not None:
            row = int(bad)
            raw = column.iloc[row]
            rid = _response_id(responses, row)
            rid = f" (response_id {rid})" if rid else ""
            shown = raw if isinstance(raw, str) else _number_text(raw)
            raise AnalysisInputError(
                f"responses: row {row + 1}{rid}, column {criterion}: {shown!r} is not an "
                "answer 1-5 or blank"
            )
        answers[:, j] = values
    return answers


def _number_text(value) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if f.is_integer() else repr(f)


def _criterion_values(column: pd.Series) -> tuple[np.ndarray, int | None]:
    """Codes 0 (blank) to 5 for one column, or the position of the first invalid value."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(object)
    if pd.api.types.is_bool_dtype(column.dtype):
        return np.zeros(len(column), np.int8), 0 if len(column) else None
    if pd.api.types.is_numeric_dtype(column.dtype):
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        text_blank = np.zeros(len(column), dtype=bool)
    else:
        raw = column.astype(object)
        stripped = raw.map(lambda v: v.strip() if isinstance(v, str) else v)
        text_blank = (stripped == "").to_numpy(dtype=bool) | raw.isna().to_numpy()
        numbers = pd.to_numeric(stripped.where(~text_blank, None), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        unparsed = np.isnan(numbers) & ~text_blank
        if unparsed.any():
            return numbers, int(np.flatnonzero(unparsed)[0])
    blank = np.isnan(numbers)
    with np.errstate(invalid="ignore"):
        valid = blank | ((numbers >= 1) & (numbers <= 5) & (numbers == np.round(numbers)))
    if not valid.all():
        return numbers, int(np.flatnonzero(~valid)[0])
    return np.where(blank, 0, numbers).astype(np.int8), None


def read_elements(path: PathLike) -> ElementMap:
    """Read a two-column CSV ``item,element`` mapping each criterion to its element.

    Element order is the order of first appearance in the file.
    """
    frame = _read_csv_text(path, "element map")
    if list(frame.columns[:2]) != ["item", "element"]:
        raise AnalysisInputError(
            f"element map {path}: expected the columns item,element, found "
            f"{','.join(frame.columns)}"
        )
    try:
        return ElementMap(zip(frame["item"], frame["element"], strict=True))
    except AnalysisInputError as exc:
        raise AnalysisInputError(f"{path}: {exc}") from None


def read_questionnaire(path: PathLike) -> ElementMap:
    """The criteria of a questionnaire file: ``likert5`` questions in a section with ``element``.

    Parameters
    ----------
    path : str or path-like
        A questionnaire YAML file (format in ``questionnaires/README.md``), read and
        validated by :func:`load_questionnaire`.

    Returns
    -------
    ElementMap
        Criteria in file order; elements in order of first appearance among them.
    """
    questionnaire = load_questionnaire(path)
    if not questionnaire.criteria:
        raise AnalysisInputError(
            f"{path}: no criteria (likert5 questions in a section with an element)"
        )
    return ElementMap((q.id, q.element) for q in questionnaire.criteria)


def load_questionnaire(path: PathLike) -> Questionnaire:
    """A questionnaire file, read and validated by :mod:`analysis.questionnaire`.

    Raises
    ------
    AnalysisInputError
        For any fault; the message names the file, the path inside it and what is wrong.
    """
    try:
        return load_file(path)
    except QuestionnaireError as exc:
        raise AnalysisInputError(str(exc)) from None


def read_totals(path: PathLike) -> pd.DataFrame:
    """Read post-stratification totals: the post-stratum columns and ``count``."""
    frame = _read_csv_text(path, "totals")
    return _with_numbers(frame, path, "totals", ("count",))


def read_margin(path: PathLike) -> pd.DataFrame:
    """Read one raking margin: the margin's variable column(s) and ``count`` or ``share``."""
    frame = _read_csv_text(path, "margin")
    kinds = [c for c in ("count", "share") if c in frame.columns]
    if len(kinds) != 1:
        raise AnalysisInputError(f"margin {path}: needs exactly one of the columns count, share")
    return _with_numbers(frame, path, "margin", tuple(kinds))


def _with_numbers(frame: pd.DataFrame, path, what: str, columns: tuple[str, ...]) -> pd.DataFrame:
    for column in columns:
        if column not in frame.columns:
            raise AnalysisInputError(f"{what} {path}: no {column} column")
        numbers = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        bad = numbers.isna() | (numbers < 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise AnalysisInputError(
                f"{what} {path}: row {row + 1}, column {column}: "
                f"{frame[column].iloc[row]!r} is not a non-negative number"
            )
        frame[column] = numbers.astype("float64")
    if len(frame.columns) < len(columns) + 1:
        raise AnalysisInputError(f"{what} {path}: no variable column besides {columns[0]}")
    return frame


# A text cell that a spreadsheet would evaluate as a formula (OWASP "CSV injection"):
# after any spaces, = + - @ or a full-width or small form of them (NFKC folds those to
# ASCII, as spreadsheets do), or a tab, CR or LF at the very start. Leading quotes are
# looked through, so that an added quote can be told from one that was already there.
_FORMULA_START = frozenset("=+-@\u2212")
_CONTROL_START = frozenset("\t\r\n")
# A plain number written as text ("-5", "+0,5", "1e-3") is read as that number, not
# evaluated; it stays as it is so that codes and figures read back unchanged.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")
# What XLSX (XML 1.0) cannot hold, and invisible controls that reorder what a reader sees:
# C0/C1 controls other than tab, LF and CR; surrogates; U+FFFE/U+FFFF; bidi overrides.
_UNWRITABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
    "\u202a-\u202e\u2066-\u2069]"
)


def _formula_like(text: str) -> bool:
    core = text.lstrip("'")
    if core[:1] in _CONTROL_START:
        return True
    core = core.lstrip()
    return bool(core) and (
        unicodedata.normalize("NFKC", core[0])[:1] in _FORMULA_START
    ) and _PLAIN_NUMBER.fullmatch(text) is None


def safe_cell(value):
    """A cell value as every writer of CSV/XLSX files puts it, so no spreadsheet runs it.

    Text loses the characters a spreadsheet file cannot hold or that reorder what is shown
    (controls other than tab/LF/CR, bidi overrides); text that a spreadsheet would take as a
    formula (``=``, ``+``, ``-``, ``@``, their full-width forms, a leading tab or CR) gets a
    single quote in front. Plain numbers written as text and every non-text value are left
    as they are. The readers of this module (``read_responses``, ``read_totals``,
    ``read_margin``, ``read_elements``) take the added quote off again, so a table written
    and read back keeps its values.
    """
    if not isinstance(value, str):
        return value
    value = _UNWRITABLE.sub("", value)
    return "'" + value if _formula_like(value) else value


def _unquote_cell(value):
    """Undo :func:`safe_cell`'s added quote (the stripped characters stay stripped)."""
    if isinstance(value, str) and value[:1] == "'" and _formula_like(value[1:]):
        return value[1:]
    return value


def _unquote_columns(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> None:
    """Take the quotes :func:`safe_cell` added off the text columns, in place."""
    for column in frame.columns if columns is None else columns:
        values = frame[column]
        if values.dtype != object:
            continue
        distinct = values.unique()
        if any(isinstance(v, str) and v[:1] == "'" for v in distinct):
            frame[column] = values.map(_unquote_cell)


def _file_mentions_quote(path) -> bool:
    """Whether a file holds a ``'`` at all (read as bytes, cheaply); True if unsure."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(b"'") >= 0
    except (TypeError, ValueError, OSError):
        return True


FORMATS = ("csv", "xlsx", "json")


FLAGS = "flags"


def drop_flagged(responses: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The responses without those the web app flagged (a non-blank ``flags`` column, as
    its responses download writes it: reason codes separated by spaces), and how many were
    dropped for each reason. A file without the column is returned as it is."""
    if FLAGS not in responses.columns:
        return responses, {}
    flags = responses[FLAGS].fillna("").astype(str).str.strip()
    flagged = flags != ""
    reasons: dict[str, int] = {}
    for codes in flags[flagged]:
        for code in codes.split():
            reasons[code] = reasons.get(code, 0) + 1
    return responses[~flagged], reasons


def write_table(
    table: pd.DataFrame,
    path: PathLike | IO | None,
    *,
    format: str | None = None,  # noqa: A002 - the word the CLI and the web use
    sheet_name: str = "indices",
    sheets: Mapping[str, pd.DataFrame] | None = None,
) -> None:
    """Write a result table as CSV (UTF-8 with BOM, for Excel), XLSX or JSON records.

    Parameters
    ----------
    table : pandas.DataFrame
        The table. When ``table.attrs["notes"]`` is a non-empty DataFrame (what the
        estimators pooled, dropped or fell back to), an XLSX file gets it as a second sheet
        ``notes``; CSV and JSON hold the table only.
    path : str, path-like, file object or None
        A file name; a binary or text file object (e.g. ``io.BytesIO`` for a web
        download); ``None`` or ``-`` for CSV on stdout.
    format : {"csv", "xlsx", "json"}, optional
        Default: the extension of ``path`` (or of a file object's ``name``), else CSV.
    sheet_name : str
        XLSX only: the name of the table's sheet.
    sheets : mapping of str to pandas.DataFrame, optional
        XLSX only: more named sheets after the table (and its notes), written the same way.

    Notes
    -----
    Numbers keep full precision; missing values are blank cells (``null`` in JSON); an
    infinite ``df`` is written ``Inf``. A file or binary object gets UTF-8 with a byte-order
    mark; a text object (stdout) gets text without one; XLSX needs a binary object.
    Every text cell and column name of CSV and XLSX goes through :func:`safe_cell`, so
    no cell is a formula, and XLSX text cells are always string cells.
    """
    import sys

    if path is None or (isinstance(path, str | os.PathLike) and str(path) == "-"):
        path = sys.stdout
    kind = _output_format(path, format)
    if kind == "json":
        records = [
            {k: _json_value(v) for k, v in row.items()}
            for row in _for_output(table, safe=False).to_dict(orient="records")
        ]
        text = json.dumps(records, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
        _write_text(path, text, bom=False)
        return
    out = _for_output(table)
    if kind == "xlsx":
        written = {sheet_name: out}
        notes = table.attrs.get("notes")
        if isinstance(notes, pd.DataFrame) and not notes.empty:
            written["notes"] = _for_output(notes)
        written.update({name: _for_output(frame) for name, frame in (sheets or {}).items()})
        if isinstance(path, io.TextIOBase):
            raise AnalysisInputError("output: XLSX needs a file name or a binary file object")
        _write_xlsx(written, path)
        return
    # CRLF rows (RFC 4180): the csv module then quotes every cell holding a CR or LF, which
    # with LF rows a lone CR would not be, and a reader would split the row there.
    text = out.to_csv(index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    _write_text(path, text, bom=True)


def _output_format(path, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise AnalysisInputError(f"output format {format!r}: use csv, xlsx or json")
        return format
    name = path if isinstance(path, str | os.PathLike) else getattr(path, "name", "")
    suffix = Path(str(name)).suffix.lower() if isinstance(name, str | os.PathLike) else ""
    if suffix in (".xlsx", ".json"):
        return suffix[1:]
    if suffix in (".csv", ".txt", "") or not isinstance(path, str | os.PathLike):
        return "csv"
    raise AnalysisInputError(f"output {path}: use a .csv, .xlsx or .json file name")


def _write_text(path, text: str, *, bom: bool) -> None:
    """Text to a file name (UTF-8, BOM if asked), a binary object (same) or a text object."""
    if isinstance(path, str | os.PathLike):
        with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            f.write(text)
    elif isinstance(path, io.TextIOBase):
        path.write(text)
    else:
        path.write(("\ufeff" + text if bom else text).encode("utf-8"))


def _write_xlsx(sheets: Mapping[str, pd.DataFrame], path) -> None:
    """Sheets of cells, text always as string cells (never a formula)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for name, frame in sheets.items():
        sheet = book.create_sheet(name)

        def cell(value, sheet=sheet):
            if isinstance(value, str):
                text = WriteOnlyCell(sheet, value=None)
                text.value, text.data_type = value, "s"  # a string even if it looks like =…
                return text
            if isinstance(value, float) and not math.isfinite(value):
                return None if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
            return value

        sheet.append([cell(str(c)) for c in frame.columns])
        values = frame.astype(object).where(frame.notna(), None)
        for row in values.itertuples(index=False, name=None):
            sheet.append([cell(v) for v in row])
    book.save(path)


def _for_output(table: pd.DataFrame, *, safe: bool = True) -> pd.DataFrame:
    """The table as written: ``df`` as text (``Inf``; whole numbers without a decimal
    point, Satterthwaite's with their two decimals); for CSV/XLSX every text cell and
    column name through :func:`safe_cell`."""
    out = table.copy()
    out.attrs = {}
    if "df" in out.columns:
        out["df"] = [
            "" if pd.isna(v) else "Inf" if math.isinf(v) else _number_text(round(float(v), 2))
            for v in out["df"]
        ]
    if safe:
        for column in out.columns:
            values = out[column]
            if not (pd.api.types.is_numeric_dtype(values.dtype)
                    or pd.api.types.is_bool_dtype(values.dtype)):
                out[column] = _safe_column(values)
        out.columns = [safe_cell(str(c)) for c in out.columns]
    return out


def _safe_column(values: pd.Series) -> pd.Series:
    """:func:`safe_cell` of every value of a column, computed once per distinct value (a
    result table repeats a few levels, keys and methods over tens of thousands of rows)."""
    raw = values.astype(object)
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    cleaned = np.array([safe_cell(u) for u in uniques] + [None], dtype=object)
    result = raw.to_numpy(dtype=object, copy=True)
    present = codes >= 0
    result[present] = cleaned[codes[present]]
    return pd.Series(result, index=values.index, dtype=object)


def _json_value(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if value == "" or (isinstance(value, str) and not value):
        return None
    return value
