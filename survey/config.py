"""Configuration: code defaults, overridden by SURVEY_-prefixed environment variables."""

import os
from datetime import timedelta
from zoneinfo import ZoneInfo

from analysis.questionnaire import LANGUAGES as QUESTIONNAIRE_LANGUAGES

PREFIX = "SURVEY_"
# The province's local time: dates shown to staff and the months/quarters of the reports.
TIMEZONE = "Asia/Ho_Chi_Minh"
LOCAL_TIME = ZoneInfo(TIMEZONE)


class Defaults:
    # No production secret is built in: create_app refuses to start outside debug/testing
    # without SURVEY_SECRET_KEY.
    SECRET_KEY = None
    # Empty means SQLite in the instance folder (filled in by create_app).
    DATABASE_URL = ""
    # Base of the URLs printed in QR codes and on posters, e.g. https://hailong.quangtri.gov.vn
    PUBLIC_URL = "http://127.0.0.1:5000"
    # The header line of every poster, e.g. "UBND tỉnh Quảng Trị"; empty: the name of each
    # agency's top ancestor.
    POSTER_PROVINCE = ""
    # Flask-WTF: a respondent may keep the page open a long time (queue, interruption).
    WTF_CSRF_TIME_LIMIT = int(timedelta(hours=8).total_seconds())
    # On https, security.check_origin requires the POST's Origin (or else Referer) to be this
    # host; Flask-WTF's own check would accept the Referer only.
    WTF_CSRF_SSL_STRICT = False
    # Validation messages come from our own translated table (survey/forms.py), not WTForms'.
    WTF_I18N_ENABLED = False
    # Anything larger than a full questionnaire with long comments is not a survey answer.
    MAX_CONTENT_LENGTH = 64 * 1024
    MAX_FORM_MEMORY_SIZE = 64 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # None: Secure exactly when PUBLIC_URL is https (a demo on http://127.0.0.1 still works).
    COOKIE_SECURE = None
    PERMANENT_SESSION_LIFETIME = int(timedelta(hours=12).total_seconds())
    BABEL_DEFAULT_LOCALE = "vi"
    BABEL_DEFAULT_TIMEZONE = TIMEZONE
    # The interface speaks the languages every questionnaire file is written in.
    LANGUAGES = QUESTIONNAIRE_LANGUAGES
    # Where questionnaire files live; relative paths are taken from the project root.
    QUESTIONNAIRE_DIR = ""
    DEFAULT_QUESTIONNAIRE = "sipas-service"
    # Reports: groups with fewer respondents are flagged.
    MIN_GROUP_N = 30
    # Reports over more responses than this answer from the stored figures (saying so) while
    # one worker recomputes them in the background; up to it, a page recomputes at once
    # (survey/report_cache.py).
    REPORT_INLINE_REFRESH = 20_000
    # Integrity (survey/integrity.py; each check's reason code in integrity.REASONS).
    # Faster than this is flagged `fast` when the questionnaire file declares no
    # integrity.min_seconds of its own.
    MIN_PLAUSIBLE_SECONDS = 20
    # `repeat_client`: one client address (a daily-rotating keyed hash, counted in
    # 10-minute buckets, kept 48 h) that already sent this many responses to one counter
    # within the hour, when the new one comes within QUICK_SUCCESSION_SECONDS of the
    # counter's previous response (a counter serves one citizen at a time)...
    REPEAT_PER_HOUR = 3
    QUICK_SUCCESSION_SECONDS = 120
    # ... or this many in the hour whatever the pace: more than one office Wi-Fi's honest
    # queue at one counter sends.
    REPEAT_HARD_PER_HOUR = 10
    # `identical_run`: this many responses in a row at one counter, within this many
    # minutes, whose coded answers differ in at most one question.
    IDENTICAL_RUN_LENGTH = 4
    IDENTICAL_RUN_MINUTES = 5
    # `over_volume`: the agency's counted responses in the period reached the dossiers it
    # served (ServiceVolume) times this.
    OVER_VOLUME_RATIO = 1.0
    # `outside_hours`: the page was opened outside these local hours and days, with the
    # grace either side (e.g. a queue at closing time).
    OPENING_HOURS = "07:00-17:30"
    OPENING_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat")
    OPENING_GRACE_MINUTES = 30
    # Receipt codes (survey/receipts.py): days a printed or API-issued code stays usable.
    RECEIPT_CODE_DAYS = 30
    # JSON API (survey/api.py): requests per key per minute before 429.
    API_RATE_PER_MINUTE = 120
    # Login throttle: failures per login name or client within the window.
    LOGIN_MAX_FAILURES = 5
    LOGIN_WINDOW_SECONDS = 15 * 60
    # Reverse proxies in front of the app (nginx, a load balancer) whose X-Forwarded-For and
    # X-Forwarded-Proto are trusted. 0 = none: the client is the TCP peer. Without it, the
    # login throttle and burst flags would see every client as the proxy.
    PROXY_COUNT = 0
    # The app's log (one line per request, tracebacks): survey/errors.py.
    LOG_LEVEL = "INFO"
    # Compress text responses when the client accepts gzip (the budget counts bytes on the wire).
    COMPRESS_RESPONSES = True


# Settings whose default is None ("decide from other settings") but that are booleans.
OPTIONAL_BOOLEANS = {"COOKIE_SECURE"}


def _coerce(name: str, default, raw: str):
    if isinstance(default, bool) or name in OPTIONAL_BOOLEANS:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


# Settings kept in the instance folder, in the same KEY=value form as a systemd
# EnvironmentFile (deploy/sipas.env). `./dev demo` writes its secret key and public URL
# there, so the documented `flask --app wsgi ...` commands work without exporting anything.
INSTANCE_FILE = "survey.env"


def read_env_file(path) -> dict[str, str]:
    """SURVEY_* assignments from a KEY=value file (blank lines and # comments ignored)."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key.startswith(PREFIX):
            values[key] = value
    return values


def load(environ=None, instance_path=None) -> dict:
    """The defaults above, overridden by the instance folder's survey.env, then SURVEY_<NAME>
    in the environment (the environment wins)."""
    environ = os.environ if environ is None else environ
    if instance_path is not None:
        environ = {**read_env_file(os.path.join(instance_path, INSTANCE_FILE)), **environ}
    config = {}
    for name in dir(Defaults):
        if not name.isupper():
            continue
        default = getattr(Defaults, name)
        raw = environ.get(PREFIX + name)
        config[name] = default if raw is None else _coerce(name, default, raw)
    return config
