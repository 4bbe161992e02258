"""The committed message template is current and the English catalogue is complete."""

import unicodedata

from babel.messages.pofile import read_po

from survey import i18n

from .conftest import ROOT

TRANSLATIONS = ROOT / "translations"


def _ids(path, locale=None):
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    return catalog, {m.id for m in catalog if m.id}


def test_message_template_is_not_stale(tmp_path, monkeypatch):
    fresh = tmp_path / "messages.pot"
    monkeypatch.setattr(i18n, "POT", fresh)
    i18n.extract()
    _, committed = _ids(TRANSLATIONS / "messages.pot")
    _, extracted = _ids(fresh)
    assert extracted - committed == set(), "new strings: run `flask --app wsgi translate update`"
    assert committed - extracted == set(), "gone strings: run `flask --app wsgi translate update`"


def test_english_catalogue_translates_every_message():
    _, template = _ids(TRANSLATIONS / "messages.pot")
    catalog, ids = _ids(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", "en")
    assert template - ids == set(), "en catalogue misses messages: run translate update"
    untranslated = [m.id for m in catalog if m.id and (
        "fuzzy" in m.flags or not (all(m.string) if isinstance(m.string, tuple) else m.string))]
    assert untranslated == []


def test_vietnamese_source_text_is_nfc():
    text = (TRANSLATIONS / "messages.pot").read_text("utf-8")
    assert unicodedata.is_normalized("NFC", text)
    for path in (ROOT / "survey" / "templates").rglob("*.html"):
        assert unicodedata.is_normalized("NFC", path.read_text("utf-8")), path
