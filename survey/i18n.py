"""Locale selection: ?lang=, the in-form language switch, a cookie, then Vietnamese."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from flask import current_app, request
from flask_babel import Babel, get_locale
from werkzeug.exceptions import HTTPException

LANGUAGE_FIELD = "_lang"
COOKIE = "lang"
# The checkout's catalogues; an installed wheel carries compiled ones in survey/data (setup.py).
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
SHIPPED_TRANSLATIONS = Path(__file__).resolve().parent / "data" / "translations"


def _chosen() -> str | None:
    """A language the user picked explicitly in this request, if any."""
    languages = current_app.config["LANGUAGES"]
    # (No query string, no ?lang=: the arguments are not parsed to find that out.)
    lang = request.args.get("lang") if request.query_string else None
    if lang is None and request.method == "POST":
        try:
            lang = request.form.get(LANGUAGE_FIELD)
        except HTTPException:  # e.g. the body was too large: the error page still renders
            lang = None
    return lang if lang in languages else None


def select_locale() -> str:
    """The explicit choice (this request's, else the remembered one), else Vietnamese.

    Accept-Language is not consulted, on public and staff pages alike: a phone set to
    English still gets the Vietnamese form, with the English switch in sight (issue 13).
    """
    # Read once per request (kept on the request, as Babel keeps its Locale): the page,
    # the stored response and Babel each ask.
    current = request._get_current_object()
    selected = getattr(current, "selected_locale", None)
    if selected is None:
        languages = current_app.config["LANGUAGES"]
        lang = _chosen() or current.cookies.get(COOKIE)
        selected = current.selected_locale = lang if lang in languages else languages[0]
    return selected


def remember_locale(response):
    """Keep an explicit choice for the next pages (the thank-you page, a later visit)."""
    lang = _chosen()
    if lang:
        response.set_cookie(COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax",
                            secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True)
    return response


def localized(text, lang: str | None = None) -> str:
    """A {vi, en} text from a questionnaire file in `lang`, by default the current locale.

    Templates looping over many texts pass `lang` once looked up: get_locale() per text
    was a fifth of the questionnaire page's rendering time.
    """
    if text is None:
        return ""
    return text.get(lang or str(get_locale()))


def in_english() -> bool:
    """Whether the request's language is English (Vietnamese outside a request)."""
    try:
        return str(get_locale()).startswith("en")
    except (RuntimeError, KeyError):
        return False


def number_marks() -> tuple[str, str]:
    """The decimal and thousands separators of the request's language: Vietnamese writes
    1.234,5 and English 1,234.5 (Vietnamese outside a request)."""
    return (".", ",") if in_english() else (",", ".")


def local_number(text: str) -> str:
    """A number formatted the Python way ('1,234.5') in the request's language's style."""
    decimal, thousands = number_marks()
    return text.translate(str.maketrans({".": decimal, ",": thousands}))


def language_url(lang: str) -> str:
    """This page's address (path and query) in `lang`: what the pages' language link opens
    (?lang= is remembered in a cookie by remember_locale)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return quote(request.path) + "?" + urlencode([*args, ("lang", lang)])


def init_app(app) -> None:
    folder = SHIPPED_TRANSLATIONS if SHIPPED_TRANSLATIONS.is_dir() else TRANSLATIONS
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(folder))
    Babel(app, locale_selector=select_locale)
    app.after_request(remember_locale)
    app.add_template_filter(localized, "loc")
    register_cli(app)
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
    app.jinja_env.globals["language_url"] = language_url


def _pybabel(*args: str) -> None:
    from babel.messages.frontend import CommandLineInterface

    CommandLineInterface().run(["pybabel", "-q", *args])


POT = TRANSLATIONS / "messages.pot"
ROOT = TRANSLATIONS.parent


def extract() -> None:
    """Write translations/messages.pot from the code and templates (Vietnamese msgids)."""
    _pybabel("extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l", "--no-location",
             "--sort-output", "--no-wrap", "--project", "sipas-survey", "-o", str(POT), str(ROOT))


def register_cli(app) -> None:
    import click

    @app.cli.group("translate")
    def translate():
        """Babel catalogue commands (wrapping pybabel)."""

    @translate.command("update")
    def update():
        """Re-extract the messages and merge them into every catalogue."""
        extract()
        _pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "--no-wrap",
                 "--ignore-obsolete")
        click.echo(f"Updated {POT} and the catalogues; translate the new msgids in en.")

    @translate.command("compile")
    def compile_():
        """Compile the .po catalogues into the .mo files the app reads."""
        _pybabel("compile", "-d", str(TRANSLATIONS))
