"""Configuration: code defaults, SURVEY_* overrides, and no production start without a key."""

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
