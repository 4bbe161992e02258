"""The built wheel works outside the checkout: migrate a database, seed the demo, answer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a build reads; copied so that the build neither writes into the checkout nor sees the
# .mo files ./dev compiled there (the wheel must compile its own).
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "babel.cfg",
                "survey", "analysis", "questionnaires", "translations"]
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo", "instance")


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                            timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built offline from a copy of the sources."""
    folder = tmp_path_factory.mktemp("wheel-build")
    source = folder / "src"
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=SKIP)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    dist = folder / "dist"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", dist, source)
    (built,) = dist.glob("sipas_survey-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the checkout with only the wheel installed.

    The dependencies come from the test environment's site-packages through a .pth line,
    added after the install so that pip neither sees nor touches the editable checkout
    install there (a plain path in a .pth does not run that folder's own .pth hooks).
    """
    venv = tmp_path_factory.mktemp("venv") / "env"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
        "--no-index", wheel)
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                   .stdout.strip())
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_wheel_carries_questionnaires_and_compiled_translations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "questionnaires").glob("*.yaml"):
        assert f"survey/data/questionnaires/{path.name}" in names
    for po in (ROOT / "translations").glob("*/LC_MESSAGES/messages.po"):
        lang = po.parent.parent.name
        assert f"survey/data/translations/{lang}/LC_MESSAGES/messages.mo" in names
    assert "survey/templates/respond/form.html" in names
    assert "survey/migrations/env.py" in names
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    runtime = [line for line in metadata.splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any("statsmodels" in line for line in runtime), runtime


# Served from the installed package in a directory that is not the checkout.
CHECK = """
import json, sys
import survey
from survey import create_app

app = create_app()
client = app.test_client()
token = sys.argv[1]
vi = client.get(f"/r/{token}")
en = client.get(f"/r/{token}?lang=en")
health = client.get("/healthz")
print(json.dumps({
    "package": survey.__file__,
    "vi": [vi.status_code, "Gửi phiếu" in vi.get_data(as_text=True)],
    "en": [en.status_code, ">Submit<" in en.get_data(as_text=True)],
    "healthz": [health.status_code, health.get_json()],
}))
"""


def test_installed_wheel_migrates_seeds_the_demo_and_answers(installed, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(work),
        "SURVEY_SECRET_KEY": "x" * 64,
        "SURVEY_DATABASE_URL": f"sqlite:///{work / 'survey.sqlite'}",
        "SURVEY_PUBLIC_URL": "https://hailong.example.vn",
    }
    flask = [installed, "-m", "flask", "--app", "survey"]
    run(*flask, "db", "upgrade", cwd=work, env=env)
    demo = run(*flask, "demo", "--responses", "50", cwd=work, env=env).stdout
    tokens = re.findall(r"https://hailong\.example\.vn/r/(\w+)", demo)
    assert tokens, demo
    result = json.loads(run(installed, "-c", CHECK, tokens[0], cwd=work, env=env).stdout)

    assert Path(result["package"]).is_relative_to(installed.parent.parent), result["package"]
    assert not Path(result["package"]).is_relative_to(ROOT)
    assert result["vi"] == [200, True]
    assert result["en"] == [200, True]
    assert result["healthz"][0] == 200, result["healthz"]
