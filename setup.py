"""Build hook: put the questionnaires and the compiled translations inside the wheel.

Everything else is declared in pyproject.toml. questionnaires/ and translations/ stay at
the top of the repository (they are edited and reviewed there); at build time they are
copied under survey/data/ in the build tree, and each .po catalogue is compiled to the
.mo that Flask-Babel reads, so an installed wheel needs no checkout and no compile step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    """build_py, then survey/data/questionnaires and survey/data/translations/*.mo."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's folders directly
        target = Path(self.build_lib) / "survey" / "data"
        shutil.rmtree(target, ignore_errors=True)
        questionnaires = target / "questionnaires"
        questionnaires.mkdir(parents=True)
        for path in sorted((ROOT / "questionnaires").glob("*.yaml")):
            shutil.copy2(path, questionnaires / path.name)
        self._compile_catalogues(target / "translations")

    @staticmethod
    def _compile_catalogues(target: Path) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        catalogues = sorted((ROOT / "translations").glob("*/LC_MESSAGES/messages.po"))
        if not catalogues:
            raise SystemExit("no translations/*/LC_MESSAGES/messages.po to compile")
        for po in catalogues:
            with po.open("rb") as handle:
                catalogue = read_po(handle, locale=po.parent.parent.name)
            mo = target / po.relative_to(ROOT / "translations").with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with mo.open("wb") as handle:
                write_mo(handle, catalogue)


setup(cmdclass={"build_py": BuildPyWithData})
