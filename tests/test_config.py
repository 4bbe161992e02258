"""Configuration: code defaults, SURVEY_* overrides, and no production start without a key."""

import os
import subprocess
import sys

import pytest

from survey import config, create_app


def test_environment_overrides_with_the_default_types():
    loaded = config.load({"SURVEY_MIN_GROUP_N": "50", "SURVEY_COOKIE_SECURE": "false",
                          "SURVEY_LANGUAGES": "vi, en", "SURVEY_SECRET_KEY": "1"})
    assert loaded["MIN_GROUP_N"] == 50
    assert loaded["COOKIE_SECURE"] is False
    assert loaded["LANGUAGES"] == ("vi", "en")
    # A secret that happens to look like a boolean stays the string it is.
    assert loaded["SECRET_KEY"] == "1"


def test_production_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SURVEY_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SURVEY_SECRET_KEY"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"})


def test_cookies_are_secure_exactly_when_the_public_url_is_https(tmp_path):
    base = {"SECRET_KEY": "k", "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
    https = create_app({**base, "PUBLIC_URL": "https://hailong.example.vn"})
    plain = create_app({**base, "PUBLIC_URL": "http://127.0.0.1:5000"})
    assert https.config["SESSION_COOKIE_SECURE"] is True
    assert plain.config["SESSION_COOKIE_SECURE"] is False
    for app in (https, plain):
        app.extensions["survey_db"].engine.dispose()


def test_instance_file_settings_apply_below_the_environment(tmp_path):
    (tmp_path / "survey.env").write_text(
        "# demo settings\n\nSURVEY_SECRET_KEY=from-file\nSURVEY_PUBLIC_URL='http://127.0.0.1:5201'\n"
        "SURVEY_MIN_GROUP_N=12\nNOT_OURS=1\nbroken line\n",
        encoding="utf-8",
    )
    loaded = config.load({"SURVEY_MIN_GROUP_N": "40"}, instance_path=tmp_path)
    assert loaded["SECRET_KEY"] == "from-file"
    assert loaded["PUBLIC_URL"] == "http://127.0.0.1:5201"
    assert loaded["MIN_GROUP_N"] == 40  # the environment wins over the file
    assert "NOT_OURS" not in loaded
    # No file: nothing changes.
    assert config.load({}, instance_path=tmp_path / "missing")["SECRET_KEY"] is None


def test_cli_after_demo_needs_no_exported_secret(tmp_path):
    """The README's `flask --app wsgi ...` commands read the key ./dev demo left behind."""
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "survey.env").write_text("SURVEY_SECRET_KEY=k\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURVEY_")}
    script = (
        "import flask, survey\n"
        f"flask.Flask.auto_find_instance_path = lambda self: {str(instance)!r}\n"
        f"app = survey.create_app()\n"
        "print(app.config['SECRET_KEY'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "k"
