"""The published questionnaires of the web application: one registry per app, from a folder.

The model itself (load, validate, frozen dataclasses) is :mod:`analysis.questionnaire`,
shared with the analysis library; this module only finds the published files and serves
them to the views.
"""

from __future__ import annotations

from pathlib import Path

from analysis.questionnaire import Questionnaire, QuestionnaireError, load_file


class Registry:
    """Every published questionnaire version in a folder; the latest version is the live one."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.versions: dict[tuple[str, int], Questionnaire] = {}
        for path in sorted(self.folder.glob("*.yaml")):
            questionnaire = load_file(path)
            # Responses record id and version: a published file is named by both.
            expected = f"{questionnaire.id}-v{questionnaire.version}.yaml"
            if path.name != expected:
                raise QuestionnaireError(
                    f"{path}: the file must be named {expected} (id and version)")
            self.versions[(questionnaire.id, questionnaire.version)] = questionnaire
        if not self.versions:
            raise QuestionnaireError(f"{self.folder}: no questionnaire files (*.yaml)")

    def ids(self) -> list[str]:
        return sorted({qid for qid, _ in self.versions})

    def latest(self, questionnaire_id: str) -> Questionnaire:
        candidates = [q for (qid, _), q in self.versions.items() if qid == questionnaire_id]
        if not candidates:
            raise KeyError(questionnaire_id)
        return max(candidates, key=lambda q: q.version)

    def get(self, questionnaire_id: str, version: int) -> Questionnaire:
        return self.versions[(questionnaire_id, version)]


def default_folder() -> Path:
    """questionnaires/ of the checkout, or the copy an installed wheel carries (setup.py)."""
    package = Path(__file__).resolve().parent
    shipped = package / "data" / "questionnaires"
    return shipped if shipped.is_dir() else package.parent / "questionnaires"


def init_app(app) -> None:
    folder = app.config.get("QUESTIONNAIRE_DIR") or default_folder()
    app.extensions["questionnaires"] = Registry(Path(folder))


def registry() -> Registry:
    from flask import current_app

    return current_app.extensions["questionnaires"]
