"""Integrity of anonymous submissions: single-use signed page keys, flags with reasons, and
the coarse, expiring counts the repeat check keeps about clients."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time as time_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from flask import current_app, g, request
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import bindparam, case, delete, func, select, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .config import LOCAL_TIME
from .db import current_database, raw_execute, raw_statement
from .domain.activity import as_utc, period_labels, window_starts
from .models import Answer, RateEvent, Response, ServiceVolume, SubmissionCount, utcnow

# Login-throttle events (RateEvent) are deleted after this.
KEEP_EVENTS = timedelta(days=2)
# Submission counts (SubmissionCount) are deleted after this: the repeat check looks back
# an hour, and client keys rotate daily, so two days keep nothing it does not need.
KEEP_COUNTS = timedelta(hours=48)
# The repeat check's time resolution: counts per client per counter per bucket, no finer.
BUCKET = timedelta(minutes=10)
# About one recorded event in this many also deletes the expired ones: the tables stay at
# roughly two days of rows without a scheduled job, and no request pays for it often.
PURGE_EVERY = 100

# Why a response was flagged: the codes stored in Response.flags, what each means.
REASONS = {
    # Completed faster than the questionnaire's integrity.min_seconds (its YAML file).
    "fast": _l("trả lời quá nhanh"),
    # One client address sent more than REPEAT_PER_HOUR responses to one counter within the
    # hour and this one came in quick succession at that counter (a counter serves one
    # citizen at a time), or more than REPEAT_HARD_PER_HOUR within the hour in any case.
    "repeat_client": _l("gửi dồn dập từ cùng một địa chỉ mạng"),
    # This response and the counter's previous ones form a run of IDENTICAL_RUN_LENGTH
    # (near-)identical answer patterns within IDENTICAL_RUN_MINUTES.
    "identical_run": _l("nhiều phiếu giống nhau gửi liên tiếp"),
    # The agency already has as many counted responses in the period as dossiers served
    # (ServiceVolume) times OVER_VOLUME_RATIO.
    "over_volume": _l("số phiếu vượt số hồ sơ đã giải quyết"),
    # The page was opened outside the opening hours (OPENING_HOURS, OPENING_DAYS) with
    # OPENING_GRACE_MINUTES either side.
    "outside_hours": _l("mở phiếu ngoài giờ làm việc"),
    # Earlier versions' reasons, still found on old responses.
    "no_timer": _l("không rõ thời điểm mở phiếu"),
    "burst": _l("gửi dồn dập (cách kiểm tra cũ)"),
}
# Opening days as config.OPENING_DAYS spells them (Monday first).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def now() -> datetime:
    """The integrity checks' clock (one place for tests to move time)."""
    return utcnow()


def keyed_hash(*parts: str) -> str:
    """What the integrity data stores instead of an identifier: an HMAC under the secret."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


# --- one served page, one response -------------------------------------------------------

# nonce . issued-at (unix seconds, hex) . HMAC(nonce, counter, issued-at)
SUBMISSION_KEY = re.compile(r"([0-9a-f]{32})\.([0-9a-f]{8})\.([0-9a-f]{32})")
# A key issued "in the future" beyond this is forged (clock steps between workers aside).
KEY_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class SubmissionKey:
    """A verified key: its random part (stored, unique) and when the page was served."""

    nonce: str
    issued_at: datetime


def issue_key(counter_id: int) -> str:
    """The key a served page carries: random, bound to the counter and the time, signed."""
    nonce = secrets.token_hex(16)
    issued = f"{int(now().timestamp()):08x}"
    return f"{nonce}.{issued}.{keyed_hash('submission-key', nonce, str(counter_id), issued)}"


def key_is_well_formed(key: str) -> bool:
    return SUBMISSION_KEY.fullmatch(key) is not None


def verify_key(key: str, counter_id: int) -> SubmissionKey | None:
    """The key's nonce and issue time when we issued it for this counter, else None."""
    match = SUBMISSION_KEY.fullmatch(key)
    if match is None:
        return None
    nonce, issued, mac = match.groups()
    expected = keyed_hash("submission-key", nonce, str(counter_id), issued)
    if not hmac.compare_digest(mac, expected):
        return None
    issued_at = datetime.fromtimestamp(int(issued, 16), UTC)
    if issued_at > now() + KEY_CLOCK_SKEW:
        return None
    return SubmissionKey(nonce, issued_at)


def answers_digest(answers: Mapping) -> str:
    """A digest of a response's answers: the same answers give the same digest, so a retried
    POST can be told from a second response built from the same page."""
    canonical = json.dumps(answers, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _serializer() -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _serializer_for(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="survey-started")


_stamp: tuple = (None, None, "")


def start_stamp() -> str:
    """A signed marker of when the page was served, carried by the form (the signed
    submission key carries the same time and is what the checks use).

    It names the second only, the same for every page served in it: signed once a second.
    """
    global _stamp
    secret, second = current_app.config["SECRET_KEY"], int(time_module.time())
    if _stamp[:2] != (secret, second):
        _stamp = (secret, second, _serializer_for(secret).dumps(0))
    return _stamp[2]


def stamp_is_ours(stamp: str) -> bool:
    """Whether a posted start stamp is one start_stamp() signed (any age)."""
    if not stamp or len(stamp) > 100:
        return False
    try:
        _serializer().loads(stamp)
    except BadData:
        return False
    return True


# --- the client, as the repeat check sees it ---------------------------------------------


def client_address() -> str:
    """The client's address; for IPv6 its /64, which one subscriber can rotate within."""
    raw = request.remote_addr or ""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_key(scope: str) -> str:
    """A keyed hash of the client's address that changes every day; never the address.

    Not the User-Agent: a client changes it at will, so it would only split one sender
    into many. Many citizens behind one office Wi-Fi share the key, which is why the key
    alone never flags a response (see `reasons`). Computed once per request and scope.
    """
    day = now().date().isoformat()  # YYYY-MM-DD, as strftime("%Y-%m-%d") gave it
    known = g.setdefault("client_keys", {})
    if (scope, day) not in known:
        known[scope, day] = keyed_hash(scope, day, client_address())
    return known[scope, day]


def bucket_of(moment: datetime) -> datetime:
    """The start of the 10-minute bucket holding `moment` (UTC)."""
    moment = as_utc(moment)
    step = int(BUCKET.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // step * step, UTC)


def _count_upsert(insert):
    return insert(SubmissionCount.__table__).values(
        {column: bindparam(column)
         for column in ("counter_id", "client_key", "bucket", "submissions")}
    ).on_conflict_do_update(
        index_elements=["counter_id", "client_key", "bucket"],
        set_={"submissions": SubmissionCount.__table__.c.submissions + 1})


# "Add one, or start at one", built once per dialect (the submit hot path).
COUNT_UPSERT = {"postgresql": _count_upsert(postgresql_insert),
                "sqlite": _count_upsert(sqlite_insert)}


def count_submission(cursor, counter_id: int, client: str, at: datetime) -> None:
    """Add one to the client's count for this counter and bucket, on a DBAPI cursor in the
    transaction that stores the response (db.raw_connection); `purge_now` says when to
    expire old counts, after that transaction."""
    raw_execute(cursor, COUNT_UPSERT[current_database().engine.dialect.name], {
        "counter_id": counter_id, "client_key": client, "bucket": bucket_of(at),
        "submissions": 1})


def purge_now() -> bool:
    """About one call in PURGE_EVERY: time to delete the expired events and counts."""
    return secrets.randbelow(PURGE_EVERY) == 0


def client_submissions(db: Session, counter_id: int, client: str, at: datetime,
                       window: timedelta) -> int:
    """The client's submissions to the counter in the buckets overlapping the window."""
    return db.scalar(
        select(func.coalesce(func.sum(SubmissionCount.submissions), 0))
        .where(SubmissionCount.counter_id == counter_id,
               SubmissionCount.client_key == client,
               SubmissionCount.bucket >= bucket_of(at - window))) or 0


# --- the login throttle's events ---------------------------------------------------------


def record(db: Session, scope: str, key: str) -> None:
    """Count one event (a failed login); now and then expire old ones."""
    db.execute(RateEvent.__table__.insert(), {"scope": scope, "key": key, "at": utcnow()})
    if secrets.randbelow(PURGE_EVERY) == 0:
        purge_expired(db)


def reached(db: Session, scope: str, key: str, window: timedelta, limit: int) -> bool:
    """Whether `key` has at least `limit` events in `scope` within `window`.

    Reads at most `limit` index entries: a client that floods the login page must not make
    each of its own requests (and everyone else's) slower as it goes.
    """
    since = utcnow() - window
    recent = (
        select(RateEvent.id)
        .where(RateEvent.scope == scope, RateEvent.key == key, RateEvent.at >= since)
        .limit(limit)
        .subquery()
    )
    return db.scalar(select(func.count()).select_from(recent)) >= limit


def purge_expired(db: Session) -> int:
    """Delete login events and submission counts older than their retention window."""
    result = db.execute(delete(RateEvent).where(RateEvent.at < utcnow() - KEEP_EVENTS))
    counts = db.execute(delete(SubmissionCount)
                        .where(SubmissionCount.bucket < bucket_of(now() - KEEP_COUNTS)))
    return (result.rowcount or 0) + (counts.rowcount or 0)


# --- the reasons -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """The thresholds of the checks (from the configuration and the questionnaire)."""

    min_seconds: int
    repeat_per_hour: int = 3
    repeat_hard_per_hour: int = 10
    quick_succession: timedelta = timedelta(seconds=120)
    run_length: int = 4
    run_window: timedelta = timedelta(minutes=5)
    run_tolerance: int = 1
    # A pattern of fewer coded answers (the quick form's one rating, say) tells nothing:
    # honest citizens give the same one all day. It neither makes an identical run nor
    # clears a repeat from one address.
    pattern_min_answers: int = 8
    opens: time = time(7, 0)
    closes: time = time(17, 30)
    open_days: frozenset[int] = frozenset(range(6))
    grace: timedelta = timedelta(minutes=30)
    over_volume_ratio: float = 1.0

    @classmethod
    def from_config(cls, config: Mapping, min_seconds: int | None) -> Rules:
        opens, closes = (time.fromisoformat(part.strip())
                         for part in config["OPENING_HOURS"].split("-"))
        days = config["OPENING_DAYS"]
        return cls(
            min_seconds=min_seconds or config["MIN_PLAUSIBLE_SECONDS"],
            repeat_per_hour=config["REPEAT_PER_HOUR"],
            repeat_hard_per_hour=config["REPEAT_HARD_PER_HOUR"],
            quick_succession=timedelta(seconds=config["QUICK_SUCCESSION_SECONDS"]),
            run_length=config["IDENTICAL_RUN_LENGTH"],
            run_window=timedelta(minutes=config["IDENTICAL_RUN_MINUTES"]),
            opens=opens, closes=closes,
            open_days=frozenset(WEEKDAYS.index(day.lower()[:3]) for day in days),
            grace=timedelta(minutes=config["OPENING_GRACE_MINUTES"]),
            over_volume_ratio=float(config["OVER_VOLUME_RATIO"]),
        )


@dataclass(frozen=True)
class Prior:
    """One of the counter's earlier web responses: when, and its coded answers.

    answers None: not read, because the stored criteria vectors already show that it
    differs from the new response in more questions than the identical-run tolerance
    (read_context), and it is not the response before a quick repeat from one address;
    such a prior never completes a run.
    """

    at: datetime
    answers: Mapping[str, object] | None


@dataclass(frozen=True)
class Context:
    """What the store says around a new submission (read by `read_context`).

    client_submissions: the client's earlier submissions to the counter within the hour;
    previous: the counter's latest web responses, newest first;
    served/counted: dossiers served in the current period and the agency's responses
    counted (unflagged) in it; served None when the one-stop system's figure is missing.
    """

    client_submissions: int = 0
    previous: Sequence[Prior] = ()
    served: int | None = None
    counted: int = 0


def coded(answers: Mapping) -> dict:
    """The answers that make a pattern: codes only (free text varies without meaning)."""
    return {qid: value for qid, value in answers.items() if not isinstance(value, str)}


def differences(one: Mapping, other: Mapping) -> int:
    """In how many questions two coded answer sets differ."""
    return sum(one.get(qid) != other.get(qid) for qid in set(one) | set(other))


def reasons(at: datetime, seconds: int | None, answers: Mapping, context: Context,
            rules: Rules) -> list[str]:
    """The reason codes (REASONS) for a web response submitted at `at`, in a fixed order.

    Deterministic: the same submission in the same context always gets the same reasons.
    A client address alone never flags: only with an hourly count no single counter's
    honest queue reaches, or with quick succession at the counter and, where the answers
    form a telling pattern, answers like the counter's previous response's (many citizens
    share one office Wi-Fi address; their answers differ).
    """
    flags = []
    if seconds is None:
        flags.append("no_timer")
    elif seconds < rules.min_seconds:
        flags.append("fast")
    previous = context.previous
    gap = at - previous[0].at if previous else None
    pattern = coded(answers)
    telling = len(pattern) >= rules.pattern_min_answers
    if context.client_submissions >= rules.repeat_hard_per_hour or (
            context.client_submissions >= rules.repeat_per_hour
            and gap is not None and gap < rules.quick_succession
            and (not telling or previous[0].answers is None
                 or differences(pattern, previous[0].answers) <= len(pattern) // 4)):
        flags.append("repeat_client")
    run = previous[:rules.run_length - 1]
    if (telling and len(run) == rules.run_length - 1 and at - run[-1].at <= rules.run_window
            and all(prior.answers is not None
                    and differences(pattern, prior.answers) <= rules.run_tolerance
                    for prior in run)):
        flags.append("identical_run")
    if context.served is not None and context.counted >= context.served * rules.over_volume_ratio:
        flags.append("over_volume")
    opened = (at - timedelta(seconds=seconds or 0)).astimezone(LOCAL_TIME)
    if not _open_at(opened, rules):
        flags.append("outside_hours")
    return flags


def _open_at(moment: datetime, rules: Rules) -> bool:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if moment.weekday() not in rules.open_days:
        return False
    opens = day.replace(hour=rules.opens.hour, minute=rules.opens.minute) - rules.grace
    closes = day.replace(hour=rules.closes.hour, minute=rules.closes.minute) + rules.grace
    return opens <= moment <= closes


RESPONSE, ANSWER = Response.__table__, Answer.__table__
VOLUME, COUNTS = ServiceVolume.__table__, SubmissionCount.__table__
WHEN = RESPONSE.c.submitted_at.type

# The counter's latest web responses, newest first, with what says which version they
# answered and their criteria vector (the identical-run check's first, cheap comparison).
# Built once: the submit hot path.
RECENT = (select(RESPONSE.c.id, RESPONSE.c.submitted_at, RESPONSE.c.questionnaire_id,
                 RESPONSE.c.questionnaire_version, RESPONSE.c.criteria_codes)
          .where(RESPONSE.c.counter_id == bindparam("counter"), RESPONSE.c.channel == "web")
          .order_by(RESPONSE.c.id.desc()).limit(bindparam("recent")))
# One earlier response's coded answers (in no order: read_prior_answers sorts a multiple
# choice's codes), read only when its vector leaves a run possible.
CODED_ANSWERS = (select(ANSWER.c.question_id, ANSWER.c.value)
                 .where(ANSWER.c.response_id == bindparam("response"),
                        ANSWER.c.value.is_not(None)))

_RECENT = RECENT.subquery("recent")


def _served(window: str):
    return (select(func.sum(VOLUME.c.transactions))
            .where(VOLUME.c.agency_id == bindparam("agency"),
                   VOLUME.c.period == bindparam(f"{window}_label"))
            .scalar_subquery())


def _counted(window: str):
    return (select(func.count()).select_from(RESPONSE)
            .where(RESPONSE.c.agency_id == bindparam("agency"),
                   RESPONSE.c.submitted_at >= bindparam(f"{window}_start", type_=WHEN),
                   RESPONSE.c.flags == "")
            .scalar_subquery())


# The client's count within the hour, the dossiers served in this month, quarter and year,
# and the counted responses of the first of those periods with a figure: one row.
NUMBERS = select(
    select(func.coalesce(func.sum(COUNTS.c.submissions), 0))
    .where(COUNTS.c.counter_id == bindparam("counter"),
           COUNTS.c.client_key == bindparam("client"),
           COUNTS.c.bucket >= bindparam("since_bucket", type_=COUNTS.c.bucket.type))
    .scalar_subquery().label("client"),
    *(_served(window).label(window) for window in ("month", "quarter", "year")),
    case(*((_served(window).is_not(None), _counted(window))
           for window in ("month", "quarter", "year")), else_=0).label("counted"),
)


def vector_differences(one: str, other: str) -> int:
    """In how many criteria two criteria vectors (one version's) differ."""
    return sum(a != b for a, b in zip(one, other, strict=True))


def read_prior_answers(cursor, response_id: int) -> dict:
    """An earlier response's coded answers as the identical-run check compares them."""
    answers: dict = {}
    for question_id, value in raw_execute(cursor, CODED_ANSWERS,
                                          {"response": response_id}).fetchall():
        if question_id in answers:  # a multiple choice: its codes as a sorted list
            codes = answers[question_id]
            answers[question_id] = sorted([*codes, value] if isinstance(codes, list)
                                          else [codes, value])
        else:
            answers[question_id] = value
    return answers

_NUMBERS = NUMBERS.subquery("numbers")
# Both in one statement: the numbers on each of the recent responses' rows, or on one row
# with NULLs for a counter without any.
CONTEXT = (select(*_NUMBERS.c, *_RECENT.c)
           .select_from(_NUMBERS.outerjoin(_RECENT, true()))
           .order_by(_RECENT.c.id.desc()))


def read_context(cursor, counter_id: int, agency_id: int, client: str, at: datetime,
                 rules: Rules, version: tuple | None = None,
                 codes: str | None = None) -> Context:
    """What `reasons` needs, in one indexed statement built once (CONTEXT), on a DBAPI
    cursor.

    The earlier responses' answers are read only when they could complete an identical
    run: inside the window, and, when the new response's criteria vector `codes` (of the
    questionnaire `version`, (id, version)) is given, with a stored vector of the same
    version differing in no more criteria than the tolerance. Each differing criterion is
    a differing question, so a prior ruled out this way would be ruled out by its answers.
    """
    labels, starts = _periods(at.astimezone(LOCAL_TIME).date())
    rows = raw_execute(cursor, CONTEXT, {
        "counter": counter_id, "recent": max(rules.run_length - 1, 1), "client": client,
        "since_bucket": bucket_of(at - timedelta(hours=1)), "agency": agency_id,
        **{f"{window}_label": labels[window] for window in ("month", "quarter", "year")},
        **{f"{window}_start": starts[window] for window in ("month", "quarter", "year")},
    }).fetchall()
    read_when = raw_statement(CONTEXT).reader(6)  # after the five numbers and the id
    # One row per earlier response, newest first (one row of NULLs when there is none).
    recent = [(response_id, as_utc(read_when(when)), (questionnaire_id, number), vector)
              for *_numbers, response_id, when, questionnaire_id, number, vector in rows
              if response_id is not None]
    # client, month, quarter, year, counted
    client_count, *served_in, counted = rows[0][:5]
    run = recent[:rules.run_length - 1]
    possible = (len(run) == rules.run_length - 1 and at - run[-1][1] <= rules.run_window
                and not any(
                    codes is not None and vector is not None and answered == version
                    and len(vector) == len(codes)
                    and vector_differences(codes, vector) > rules.run_tolerance
                    for _id, _when, answered, vector in run))
    # The repeat check compares a quick repeat from one address with the response before.
    repeat_possible = (int(client_count) >= rules.repeat_per_hour and bool(recent)
                       and at - recent[0][1] < rules.quick_succession)
    previous = tuple(
        Prior(when, read_prior_answers(cursor, response_id)
              if (possible and index < len(run)) or (repeat_possible and index == 0)
              else None)
        for index, (response_id, when, _answered, _vector) in enumerate(recent))
    served = next((figure for figure in served_in if figure is not None), None)
    return Context(client_submissions=int(client_count), previous=previous,
                   served=None if served is None else int(served),
                   counted=0 if served is None else int(counted or 0))


@functools.lru_cache(maxsize=4)
def _periods(local_day) -> tuple[dict, dict]:
    """This local day's period labels and window starts (the same all day)."""
    moment = datetime.combine(local_day, time(12), LOCAL_TIME)
    return period_labels(moment), window_starts(moment)


# The settings Rules.from_config reads: parsed once per distinct set of values.
RULE_SETTINGS = ("OPENING_HOURS", "OPENING_DAYS", "MIN_PLAUSIBLE_SECONDS", "REPEAT_PER_HOUR",
                 "REPEAT_HARD_PER_HOUR", "QUICK_SUCCESSION_SECONDS", "IDENTICAL_RUN_LENGTH",
                 "IDENTICAL_RUN_MINUTES", "OPENING_GRACE_MINUTES", "OVER_VOLUME_RATIO")


@functools.lru_cache(maxsize=64)
def _rules(settings: tuple, min_seconds: int | None) -> Rules:
    return Rules.from_config(dict(zip(RULE_SETTINGS, settings, strict=True)), min_seconds)


def submission_flags(cursor, counter, questionnaire, seconds: int | None,
                     answers: Mapping, at: datetime, codes: str | None = None) -> list[str]:
    """The reasons for a web response about to be stored (count_web_submission counts it),
    read on a DBAPI cursor (db.raw_connection). `codes`: its criteria vector, when encoded
    (vectors.encode): earlier responses whose vectors rule out a run are not read."""
    config = current_app.config
    settings = tuple(tuple(value) if isinstance(value, list) else value
                     for value in map(config.__getitem__, RULE_SETTINGS))
    rules = _rules(settings, questionnaire.min_seconds)
    client = client_key(f"submit:{counter.id}")
    context = read_context(cursor, counter.id, counter.agency_id, client, at, rules,
                           (questionnaire.id, questionnaire.version), codes)
    return reasons(at, seconds, answers, context, rules)


def count_parameters(counter, at: datetime) -> dict:
    """What counts a web response for the repeat check: its counter, client and bucket."""
    return {"counter_id": counter.id, "client_key": client_key(f"submit:{counter.id}"),
            "bucket": bucket_of(at)}


def count_web_submission(cursor, counter, at: datetime) -> None:
    """Count a web response for the repeat check, in the transaction that stores it (a
    refused insert counts nothing). Last before the commit: the count's row is shared by
    every submission from one client to one counter, and its lock is held until then.
    (PostgreSQL: respond.POSTGRES_STORE counts it in the statement that stores it.)"""
    count_submission(cursor, counter.id, client_key(f"submit:{counter.id}"), at)
