"""Configuration: code defaults, SURVEY_* overrides, and no production start without a key."""

import os
import subprocess
import sys

import pytest

from survey import config, create_app

from .conftest import ROOT


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


SIPAS_ENV = ROOT / "deploy" / "sipas.env"
GOOD_KEY = "0123456789abcdef" * 4  # 64 characters, as token_hex(32) gives


def production_app(tmp_path, key, public_url="https://hailong.example.vn", **extra):
    app = create_app({"SECRET_KEY": key, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
                      "PUBLIC_URL": public_url, **extra})
    app.extensions["survey_db"].engine.dispose()
    return app


def test_the_example_key_of_sipas_env_is_refused(tmp_path):
    # The operator copied deploy/sipas.env and left its example value: a string published
    # with the code, with which anyone could sign a staff session.
    example = config.read_env_file(SIPAS_ENV)["SURVEY_SECRET_KEY"]
    for mode in ({}, {"TESTING": True}, {"DEBUG": True}):
        with pytest.raises(RuntimeError, match="example value from deploy/sipas.env") as error:
            production_app(tmp_path, example, **mode)
        assert "secrets.token_hex(32)" in str(error.value)


def test_a_public_site_refuses_a_short_key(tmp_path):
    with pytest.raises(RuntimeError, match="SURVEY_SECRET_KEY is only 6 characters") as error:
        production_app(tmp_path, "sipas1")
    assert "secrets.token_hex(32)" in str(error.value)
    assert production_app(tmp_path, GOOD_KEY).config["SECRET_KEY"] == GOOD_KEY


def test_a_short_key_is_allowed_in_tests_and_on_plain_http(tmp_path, caplog):
    # The test suite and ./dev's servers (http://127.0.0.1) use short fixed keys.
    assert production_app(tmp_path, "t", TESTING=True).config["SECRET_KEY"] == "t"
    assert production_app(tmp_path, "t", DEBUG=True).config["SECRET_KEY"] == "t"
    with caplog.at_level("WARNING", logger="survey"):
        assert production_app(tmp_path, "t", "http://127.0.0.1:5000").config["SECRET_KEY"] == "t"
    assert "shorter than 32 characters" in caplog.text


def test_cookies_are_secure_exactly_when_the_public_url_is_https(tmp_path):
    base = {"SECRET_KEY": GOOD_KEY, "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite"}
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
