"""The paper questionnaire (printable A4) and the CSV template typists fill in for analysis."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from survey import paper
from survey.questionnaires import Registry, default_folder

from .conftest import ROOT

REGISTRY = Registry(default_folder())
QUESTIONNAIRES = ["sipas-service", "counter-quick"]


@pytest.mark.parametrize("qid", QUESTIONNAIRES)
def test_paper_form_prints_every_question_with_codes_to_tick(client, qid):
    questionnaire = REGISTRY.latest(qid)
    response = client.get(f"/phieu/{qid}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="vi">' in html
    assert "/static/paper.css" in html and "/static/survey.css" not in html
    assert "<script" not in html and "style=" not in html
    assert "Cách điền phiếu" in html and "Số phiếu:" in html
    for number, question in enumerate(questionnaire.questions.values(), start=1):
        assert f"{number}. {question.text.vi}" in html, question.id
        for option in question.options:
            if question.type != "likert5":
                assert f'<span class="code">{option.code}</span> {option.text.vi}' in html
    # One box per option of every choice question, and per answer of every grid row.
    boxes = sum(len(q.options) for q in questionnaire.questions.values())
    assert html.count('<span class="box"></span>') == boxes


def test_paper_form_says_when_to_skip_and_marks_not_applicable(client):
    html = client.get("/phieu/sipas-service").get_data(as_text=True)
    # One voice, and the number of the question to look at (issue 13).
    feedback = REGISTRY.latest("sipas-service").numbers["gave_feedback"]
    assert f"Chỉ trả lời phần này nếu ông/bà chọn “Có” ở câu {feedback}." in html
    assert html.count("<th scope=\"col\">Không áp dụng</th>") >= 4
    quick = client.get("/phieu/counter-quick").get_data(as_text=True)
    assert "Chỉ trả lời phần này nếu ông/bà chọn “Không hài lòng” ở câu 1." in quick


def test_paper_stylesheet_is_a4_and_print_ready(client):
    with client.get("/static/paper.css") as response:
        css = response.get_data(as_text=True)
    assert "@page{size:A4" in css and "@media print" in css
    assert "@font-face" not in css and "url(" not in css


def test_paper_form_in_english(client):
    html = client.get("/phieu/sipas-service?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Signs and directions at the service place" in html


def test_counter_paper_form_is_headed_with_agency_and_counter(client, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    html = client.get(f"/r/{counter.token}/phieu").get_data(as_text=True)
    assert "Sở Tư pháp" in html and "Quầy 3 – Tư pháp" in html
    assert "<strong>STP</strong>" in html
    assert "Đánh giá nhanh việc giải quyết hồ sơ" in html


def test_unknown_questionnaire_and_revoked_counter(client, session, make_counter):
    assert client.get("/phieu/no-such-form").status_code == 404
    assert client.get("/phieu/no-such-form.csv").status_code == 404
    counter = make_counter()
    counter.active = False
    session.commit()
    assert client.get(f"/r/{counter.token}/phieu").status_code == 410


@pytest.mark.parametrize("qid", QUESTIONNAIRES)
def test_csv_template_header_matches_the_questionnaire(client, qid):
    questionnaire = REGISTRY.latest(qid)
    response = client.get(f"/phieu/{qid}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    version = questionnaire.version
    assert disposition == f'attachment; filename="{qid}-v{version}-phieu-giay.csv"'
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, for Excel
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows == [["response_id", "agency", "period", *questionnaire.questions]]
    assert rows[0] == paper.csv_columns(questionnaire)


def test_paper_page_documents_every_csv_column(client):
    html = client.get("/phieu/counter-quick").get_data(as_text=True)
    for column in paper.csv_columns(REGISTRY.latest("counter-quick")):
        assert f"<td><code>{column}</code></td>" in html
    assert "1;4" in html
    assert "python -m analysis indices phieu.csv --questionnaire " \
           "questionnaires/counter-quick-v2.yaml" in html


def typed_sipas_sheet(path, header):
    """Ten paper responses typed as the instructions say (blank = no answer or N/A)."""
    rows = []
    for i in range(10):
        row = dict.fromkeys(header, "")
        row.update(response_id=f"P{i + 1:03d}", agency="STP" if i < 6 else "SYT",
                   period="2026-Q4", field=str(1 + i % 3), gave_feedback="2" if i % 4 else "1",
                   gender=("1", "2", "")[i % 3], comment="Tốt, cảm ơn" if i == 3 else "")
        for j, criterion in enumerate("a1 a2 a3 b1 b2 b3 b4 c1 c2 c3 d1 d2 d3".split()):
            row[criterion] = "" if (i + j) % 7 == 0 else str(1 + (i * 3 + j) % 5)
        if row["gave_feedback"] == "1":
            row.update(e1="4", e2="", e3="5")
        rows.append(row)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def test_typed_paper_answers_are_read_by_python_m_analysis(client, tmp_path):
    template = client.get("/phieu/sipas-service.csv").get_data().decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(template)))
    sheet = tmp_path / "phieu.csv"
    typed_sipas_sheet(sheet, header)
    out = tmp_path / "indices.csv"
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "indices", str(sheet),
         "--questionnaire", str(ROOT / "questionnaires" / "sipas-service-v1.yaml"),
         "--by", "agency", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with open(out, encoding="utf-8-sig") as f:
        table = list(csv.DictReader(f))
    keys = {(row["by"], row["agency"], row["level"], row["key"]) for row in table}
    assert ("ALL", "", "overall", "SIPAS") in keys
    assert ("agency", "STP", "criterion", "a1") in keys
    assert ("agency", "SYT", "element", "E") in keys


def test_paper_blocks_group_consecutive_criteria_into_grids():
    questionnaire = REGISTRY.latest("counter-quick")
    rating, why, quick = questionnaire.sections
    assert [(b.kind, [q.id for q in b.questions]) for b in paper.blocks(rating)] == [
        ("question", ["overall"])]
    assert [(b.kind, [q.id for q in b.questions]) for b in paper.blocks(why)] == [
        ("question", ["reasons"]), ("question", ["reason_text"])]
    (grid,) = paper.blocks(quick)
    assert grid.kind == "grid" and [q.id for q in grid.questions] == ["q1", "q2", "q3", "q4"]
    assert grid.not_applicable


def test_typed_quick_form_sheet_gives_its_own_indices(client, tmp_path):
    template = client.get("/phieu/counter-quick.csv").get_data().decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(template)))
    ratings = ["3", "2", "1", "2", "3", "1", "", "2", "3", "2"]
    reasons = ["", "", "1;4", "", "", "4", "", "", "", ""]
    with open(tmp_path / "quick.csv", "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\r\n")
        writer.writeheader()
        for i, (rating, reason) in enumerate(zip(ratings, reasons, strict=True)):
            writer.writerow({**dict.fromkeys(header, ""), "response_id": f"Q{i}", "agency": "STP",
                             "period": "2026-Q4", "overall": rating, "reasons": reason,
                             "q1": str(1 + i % 5), "q2": "4", "q4": "" if i % 3 else "5"})
    quick_file = str(ROOT / "questionnaires" / "counter-quick-v1.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "analysis.quick", str(tmp_path / "quick.csv"),
         "--questionnaire", quick_file, "-o", str(tmp_path / "out.csv")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out-satisfaction.csv", encoding="utf-8-sig") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["n_answered"], row["not_satisfied"]) == ("9", "2")
    assert float(row["unweighted"]) == pytest.approx(700 / 9)
    with open(tmp_path / "out-reasons.csv", encoding="utf-8-sig") as f:
        tally = {r["reason"]: r["count"] for r in csv.DictReader(f)}
    assert (tally["1"], tally["4"], tally["2"]) == ("1", "2", "0")
    # The same sheet also goes through the general command (criteria of element Q).
    general = subprocess.run(
        [sys.executable, "-m", "analysis", "indices", str(tmp_path / "quick.csv"),
         "--questionnaire", quick_file],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert general.returncode == 0, general.stderr
    assert ",criterion,q1," in general.stdout
