"""Reading responses, element maps and questionnaires; invalid values stop with a clear error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analysis
from analysis import AnalysisInputError

from .helpers import DATA, element_map, responses

ELEMENTS = {"A": ["q1", "q2"], "B": ["q3"]}


def write(path, text: str, bom: bool = False) -> str:
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return str(path)


def test_questionnaire_and_element_csv_give_the_same_map():
    from_yaml = analysis.read_questionnaire(DATA / "questionnaire.yaml")
    from_csv = element_map()
    assert from_yaml.criteria == from_csv.criteria == ("a1", "a2", "a3", "b1", "b2", "c1", "c2")
    assert from_yaml.elements == ("A", "B", "C")
    assert from_yaml.element_of == from_csv.element_of


def test_element_order_is_first_appearance(tmp_path):
    path = write(tmp_path / "map.csv", "item,element\nx1,E2\ny1,E1\nx2,E2\n")
    emap = analysis.read_elements(path)
    assert emap.elements == ("E2", "E1")
    assert emap.criteria_of("E2") == ("x1", "x2")


def test_element_map_rejects_a_criterion_listed_twice(tmp_path):
    path = write(tmp_path / "map.csv", "item,element\nx1,A\nx1,B\n")
    with pytest.raises(AnalysisInputError, match="x1"):
        analysis.read_elements(path)


@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_or_without_bom_and_vietnamese_values(tmp_path, bom):
    path = write(
        tmp_path / "r.csv",
        "response_id,agency,q1,q2,q3\n1,Sở Tư pháp,5,4,\n2,Sở Tư pháp,3.0,,2\n"
        "3,UBND xã Hòa Bình,4,4,4\n",
        bom=bom,
    )
    frame = analysis.read_responses(path, ["q1", "q2", "q3"])
    assert list(frame.columns)[0] == "response_id"
    table = analysis.compute_indices(frame, ELEMENTS, by="agency", min_n=2)
    assert set(table["agency"].dropna()) == {"Sở Tư pháp", "UBND xã Hòa Bình"}
    crit = table[(table["by"] == "ALL") & (table["level"] == "criterion")].set_index("key")
    assert crit.loc["q1", "estimate"] == pytest.approx(200 / 3)
    assert crit.loc["q2", "n_answered"] == 2


@pytest.mark.parametrize("value", ["0", "6", "abc", "3.5", "-1", "NA"])
def test_invalid_answer_names_row_response_and_column(tmp_path, value):
    path = write(tmp_path / "r.csv", f"response_id,agency,q1,q2,q3\nA1,X,5,4,3\nA2,X,4,{value},3\n")
    frame = analysis.read_responses(path, ["q1", "q2", "q3"])
    with pytest.raises(AnalysisInputError) as info:
        analysis.compute_indices(frame, ELEMENTS)
    message = str(info.value)
    assert "row 2" in message and "A2" in message and "q2" in message and value in message


def test_blank_and_whitespace_are_not_answered(tmp_path):
    path = write(tmp_path / "r.csv", "response_id,q1,q2,q3\n1,5, ,\n2,4,,2\n")
    frame = analysis.read_responses(path, ["q1", "q2", "q3"])
    table = analysis.compute_indices(frame, ELEMENTS)
    q2 = table[(table["level"] == "criterion") & (table["key"] == "q2")].iloc[0]
    assert q2["n_answered"] == 0 and np.isnan(q2["estimate"]) and q2["ci_method"] == "none"


def test_missing_criterion_column(tmp_path):
    frame = pd.DataFrame({"q1": [4, 5], "q2": [4, 5]})
    with pytest.raises(AnalysisInputError, match="q3"):
        analysis.compute_indices(frame, ELEMENTS)


def test_codes_keep_leading_zeros_and_na_is_a_value(tmp_path):
    path = write(tmp_path / "r.csv", "response_id,agency,q1,q2,q3\n1,007,5,4,4\n2,NA,4,4,4\n")
    frame = analysis.read_responses(path, ["q1", "q2", "q3"])
    table = analysis.compute_indices(frame, ELEMENTS, by="agency")
    assert set(table["agency"].dropna()) == {"007", "NA"}


def test_dataframe_from_a_database_gives_the_csv_results():
    """Nullable integers with <NA>, string dtypes: what survey/reports builds from the DB."""
    frame = responses()
    emap = element_map()
    db = frame.copy()
    for c in emap.criteria:
        db[c] = db[c].astype("Int64")
    for c in ("agency", "gender", "age_band", "period"):
        db[c] = db[c].replace("", None).astype("string")
    a = analysis.compute_indices(frame, emap, by=["agency", "age_band"])
    b = analysis.compute_indices(db, emap, by=["agency", "age_band"])
    pd.testing.assert_frame_equal(a, b)


def test_blank_grouping_values_are_in_no_group_but_in_the_design():
    frame = responses()
    table = analysis.compute_indices(frame, element_map(), by="age_band")
    groups = table[table["by"] == "age_band"].groupby("age_band")["n"].first()
    assert "" not in groups.index
    assert groups.sum() == (frame["age_band"] != "").sum() < len(frame)


def test_output_formats_round_trip_vietnamese(tmp_path):
    frame = responses()
    table = analysis.compute_indices(frame, element_map(), by="agency")
    analysis.write_table(table, tmp_path / "t.csv")
    raw = (tmp_path / "t.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads UTF-8
    csv = pd.read_csv(tmp_path / "t.csv", encoding="utf-8-sig", keep_default_na=False)
    assert "Sở Tư pháp" in set(csv["agency"])
    # df: whole numbers for t intervals, blank where there is none (an infinite df is "Inf")
    assert "" in set(csv["df"]) and {d for d in csv["df"] if d} <= {str(k) for k in range(1000)}
    analysis.write_table(table, tmp_path / "t.xlsx")
    xlsx = pd.read_excel(tmp_path / "t.xlsx")
    assert len(xlsx) == len(table) and "UBND xã Hòa Bình" in set(xlsx["agency"])
    np.testing.assert_allclose(xlsx["estimate"], table["estimate"], rtol=1e-15)
    analysis.write_table(table, tmp_path / "t.json")
    records = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert len(records) == len(table)
    first = records[0]
    assert first["by"] == "ALL" and first["agency"] is None and first["df"] == "878"
    with pytest.raises(AnalysisInputError, match="xlsx"):
        analysis.write_table(table, tmp_path / "t.parquet")


def test_xlsx_to_a_file_object_with_named_and_extra_sheets():
    """A web download: a binary buffer, the table's sheet named, more sheets after its
    notes, every sheet formula-safe."""
    import io

    from openpyxl import load_workbook

    table = pd.DataFrame({"agency": ["=1+1", "Sở Tư pháp"], "n": [3, 4]})
    table.attrs["notes"] = pd.DataFrame({"kind": ["pooled"], "detail": ["@SUM(A1)"]})
    codebook = pd.DataFrame({"column": ["q1"], "label": ["+Thủ tục"]})
    buffer = io.BytesIO()
    analysis.write_table(table, buffer, format="xlsx", sheet_name="phieu",
                         sheets={"codebook": codebook})
    book = load_workbook(io.BytesIO(buffer.getvalue()))
    assert book.sheetnames == ["phieu", "notes", "codebook"]
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    assert book["codebook"]["B2"].value.endswith("+Thủ tục")
    assert book["phieu"]["B3"].value == 4


def test_mapping_and_pairs_are_the_same_element_map():
    pairs = [("q1", "A"), ("q2", "A"), ("q3", "B")]
    assert analysis.ElementMap.coerce(ELEMENTS).criteria == analysis.ElementMap(pairs).criteria
    assert analysis.ElementMap.coerce(pairs).elements == ("A", "B")


@pytest.mark.parametrize(("reader", "what", "text"), [
    ("responses", "responses", "agency,q1,q2,q1,q3\nA,4,5,1,3\nA,5,4,1,4\n"),
    ("totals", "totals", "agency,count,count\nA,10,20\n"),
    ("elements", "element map", "item,element,item\nq1,A,x\n"),
])
def test_a_column_given_twice_is_named_in_its_file(tmp_path, reader, what, text):
    """pandas renames a second "q1" to "q1.1": the first alone was used without a word, and
    a totals file with two count columns was blamed on the responses file."""
    path = write(tmp_path / "file.csv", text)
    read = {"responses": lambda p: analysis.read_responses(p, ["q1", "q2", "q3"]),
            "totals": analysis.read_totals, "elements": analysis.read_elements}[reader]
    with pytest.raises(AnalysisInputError, match=rf"^{what} .*file.csv: the column '\w+' "
                       r"appears twice \(columns \d and \d\); keep one$"):
        read(path)


@settings(max_examples=40, deadline=None)
@given(
    answers=st.lists(st.lists(st.sampled_from(["", "1", "2", "3", "4", "5"]), min_size=3,
                              max_size=3), min_size=2, max_size=30),
    agencies=st.lists(st.sampled_from(["Sở Tư pháp", "UBND xã Ba Lòng", "A;B", "007"]),
                      min_size=30, max_size=30),
    sep=st.sampled_from([";", "\t"]),
)
def test_semicolon_and_tab_files_read_as_the_comma_file(tmp_path_factory, answers, agencies,
                                                        sep):
    """A spreadsheet set to Vietnamese number formats saves "CSV" with semicolons; it used
    to be read as one column ("at least 2 responses are needed"). Any such file -- quoted
    values holding the delimiter, Vietnamese text, leading zeros -- gives the comma file's
    frame and indices."""
    import csv

    folder = tmp_path_factory.mktemp("sep")
    rows = [[agencies[i], *a] for i, a in enumerate(answers)]
    frames = []
    for name, delimiter in (("comma.csv", ","), ("other.csv", sep)):
        with open(folder / name, "w", encoding="utf-8", newline="") as f:
            out = csv.writer(f, delimiter=delimiter)
            out.writerow(["agency", "q1", "q2", "q3"])
            out.writerows(rows)
        frames.append(analysis.read_responses(folder / name, ["q1", "q2", "q3"]))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    if frames[0][["q1", "q2", "q3"]].notna().any().all():
        first, second = (analysis.compute_indices(f, ELEMENTS, by="agency") for f in frames)
        pd.testing.assert_frame_equal(first, second)


def test_a_quoted_comma_in_a_semicolon_header(tmp_path):
    """The delimiter is the one that splits the header into the most columns: a quoted
    header holding a comma does not make a semicolon file a comma file."""
    path = write(tmp_path / "r.csv", '"Cơ quan, đơn vị";q1;q2;q3\n"Sở Tư pháp";4;5;3\n'
                 '"Sở Y tế";5;;4\n')
    frame = analysis.read_responses(path, ["q1", "q2", "q3"])
    assert list(frame.columns) == ["Cơ quan, đơn vị", "q1", "q2", "q3"]
    assert frame["q2"].isna().tolist() == [False, True]
