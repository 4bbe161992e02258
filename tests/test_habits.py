"""Habits that keep the tree readable: a one-line docstring on every view and every module.

(`import analysis` loading neither Flask nor argparse is kept by test_questionnaires.py.)
"""

from __future__ import annotations

import ast
import inspect

import pytest

from survey import create_app

from .conftest import ROOT

PACKAGES = ("survey", "analysis")


@pytest.fixture(scope="module")
def view_functions(tmp_path_factory):
    """Every view the app registers, by endpoint (the static files' view left out)."""
    path = tmp_path_factory.mktemp("habits") / "survey.sqlite"
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                      "DATABASE_URL": f"sqlite:///{path}"})
    yield {endpoint: view for endpoint, view in app.view_functions.items()
           if endpoint != "static"}
    app.extensions["survey_db"].engine.dispose()


def summary_line(doc: str | None) -> str:
    """The docstring's first line, stripped ("" when there is no docstring)."""
    return doc.splitlines()[0].strip() if doc and doc.strip() else ""


def test_every_view_opens_with_a_one_line_docstring(view_functions):
    assert len(view_functions) > 20  # the blueprints are registered
    missing = sorted(f"{endpoint} ({inspect.unwrap(view).__module__})"
                     for endpoint, view in view_functions.items()
                     if not summary_line(inspect.unwrap(view).__doc__))
    assert missing == []


def test_every_module_of_the_app_and_the_library_starts_with_a_docstring():
    modules = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
    assert len(modules) > 30
    missing = [str(path.relative_to(ROOT)) for path in modules
               if not summary_line(ast.get_docstring(ast.parse(path.read_text("utf-8"))))]
    assert missing == []


def test_the_readme_architecture_names_every_module():
    """A newcomer finds every module of the app and the library in the README's tree."""
    readme = (ROOT / "README.md").read_text("utf-8")
    tree = readme.split("## Architecture", 1)[1].split("```", 2)[1]
    modules = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                     if "migrations" not in path.parts)
    named = [path.parent.name + "/" if path.name == "__init__.py" and path.parent.name
             not in PACKAGES else path.name for path in modules]
    missing = [name for name in named if name not in tree]
    assert missing == []
