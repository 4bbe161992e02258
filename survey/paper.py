"""The paper questionnaire: its printable layout and the CSV template for typing answers in."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from analysis.questionnaire import Question, Questionnaire, Section

# Columns every typed paper response has before its answers: the ones `python -m analysis`
# groups and weights by, as the live database export (survey/reports_data.py) names them.
RESPONSE_COLUMNS = ("response_id", "agency", "period")
# Several ticked boxes of a multiple-choice question go in one cell: "1;4".
MULTIPLE_SEPARATOR = ";"


def csv_columns(questionnaire: Questionnaire) -> list[str]:
    """The template's header: response id, agency, period, then one column per question.

    Questions keep their paper order so the typist moves left to right down the sheet.
    A ``likert5`` column takes 1–5, blank for no answer or "not applicable"; a single
    choice or yes/no column takes the printed code; a multiple-choice column takes the
    codes separated by ``;``; a text column takes the words as written.
    """
    return [*RESPONSE_COLUMNS, *questionnaire.questions]


def csv_template(questionnaire: Questionnaire) -> bytes:
    """The CSV template: the header row only, UTF-8 with a byte-order mark (for Excel)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(csv_columns(questionnaire))
    return buffer.getvalue().encode("utf-8-sig")


@dataclass(frozen=True)
class Block:
    """What the paper shows as one unit: a grid of likert5 criteria, or one question."""

    kind: str  # "grid" | "question"
    questions: tuple[Question, ...]
    not_applicable: bool = False


def blocks(section: Section) -> list[Block]:
    """Consecutive likert5 questions of a section become one grid (a row each)."""
    out: list[Block] = []
    run: list[Question] = []

    def flush():
        if run:
            out.append(Block("grid", tuple(run), any(q.not_applicable for q in run)))
            run.clear()

    for question in section.questions:
        if question.type == "likert5" and question.show_if is None:
            run.append(question)
            continue
        flush()
        out.append(Block("question", (question,)))
    flush()
    return out


def file_name(questionnaire: Questionnaire, suffix: str) -> str:
    return f"{questionnaire.id}-v{questionnaire.version}-{suffix}"
