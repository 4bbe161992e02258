"""The database tables: agencies, counters and their tokens, responses, staff, audit."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

# Crockford's base32 without the letters that read like digits: case-insensitive, no
# 0/O or 1/I/L confusion when typed from a poster. 10 characters = 50 bits.
TOKEN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
TOKEN_LENGTH = 10

AGENCY_LEVELS = ("province", "department", "district", "commune", "vertical")
ROLES = ("admin", "agency", "analyst")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


# Row ids are 32-bit integers on PostgreSQL: a larger number in a URL names no row (404),
# never a database error.
MAX_ID = 2**31 - 1


def parse_id(raw: str | None) -> int | None:
    """A row id written in a URL or form (ASCII digits, 1..MAX_ID), else None."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_ID)):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def normalize_token(raw: str) -> str:
    """Tokens are case-insensitive: a typed or uppercase-encoded link finds the same counter."""
    return raw.strip().upper()


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Agency(Base):
    __tablename__ = "agency"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("agency.id"))
    level: Mapped[str] = mapped_column(String(20), default="department")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The hotline or feedback channel citizens are told about after answering (NĐ 61/2018
    # requires one): a phone number, an e-mail address, a web address or a short note.
    # Empty when the agency has not given one. Rules: survey/domain/agencies.py.
    feedback_contact: Mapped[str] = mapped_column(String(200), default="", server_default="")

    parent: Mapped[Agency | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Agency]] = relationship(back_populates="parent")
    counters: Mapped[list[Counter]] = relationship(back_populates="agency")

    def snapshot(self) -> dict:
        """What the audit log records of an agency, before and after a change."""
        return {"code": self.code, "name": self.name, "level": self.level,
                "parent": self.parent.code if self.parent else None, "active": self.active,
                "feedback_contact": self.feedback_contact or ""}

    def __repr__(self) -> str:
        return f"<Agency {self.code}>"


class Counter(Base):
    __tablename__ = "counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    questionnaire_id: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The form asks for a one-time receipt code (printed slip or the one-stop system's
    # receipt) and accepts one response per code: survey/receipts.py.
    requires_receipt: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())

    agency: Mapped[Agency] = relationship(back_populates="counters")
    tokens: Mapped[list[CounterToken]] = relationship(
        back_populates="counter", order_by="CounterToken.id"
    )

    @property
    def token(self) -> str | None:
        """The one live token, or None when every token was revoked."""
        for token in self.tokens:
            if token.revoked_at is None:
                return token.token
        return None

    def issue_token(self) -> CounterToken:
        token = CounterToken(token=new_token())
        self.tokens.append(token)
        return token

    def snapshot(self) -> dict:
        """What the audit log records of a counter, before and after a change."""
        return {"agency": self.agency.code, "label": self.label,
                "questionnaire": self.questionnaire_id, "active": self.active,
                "token": self.token}

    def __repr__(self) -> str:
        return f"<Counter {self.id} {self.label!r}>"


class CounterToken(Base):
    """A counter's public token. Revoked tokens stay so an old poster gets a clear answer."""

    __tablename__ = "counter_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counter.id"), index=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_reason: Mapped[str | None] = mapped_column(String(200))

    counter: Mapped[Counter] = relationship(back_populates="tokens")


class Response(Base):
    __tablename__ = "response"
    __table_args__ = (
        Index("ix_response_agency_submitted", "agency_id", "submitted_at"),
        # A counter's newest responses, read from the end (integrity.RECENT on the submit
        # path, activity.last_scanned on the staff pages): the id orders them.
        Index("ix_response_counter_latest", "counter_id", "id"),
        # The responses whose vector is still to be computed (survey/domain/vectors.py):
        # a partial index, empty once every response is encoded, so finding them is cheap.
        Index("ix_response_unencoded", "id", sqlite_where=text("criteria_codes IS NULL"),
              postgresql_where=text("criteria_codes IS NULL")),
        # The flagged responses, few: the report cache counts them on every page view.
        Index("ix_response_flagged", "id", sqlite_where=text("flags != ''"),
              postgresql_where=text("flags != ''")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counter.id"))
    # Copied at submit time: moving a counter to another agency later does not rewrite history.
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"))
    questionnaire_id: Mapped[str] = mapped_column(String(80))
    questionnaire_version: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    locale: Mapped[str] = mapped_column(String(8))
    seconds_taken: Mapped[int | None] = mapped_column(Integer)
    # The integrity reasons, space-separated codes from survey.integrity.REASONS (e.g.
    # "fast repeat_client"); empty when nothing looked odd. Reports leave flagged responses
    # out unless the analyst includes them.
    flags: Mapped[str] = mapped_column(String(200), default="")
    # The random part of the signed key the served page carries (integrity.issue_key): one
    # served page admits one response; a retried POST (weak network) is stored once.
    submission_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    # A digest of the answers stored under that key: a retried POST of the same answers is
    # acknowledged, different answers from the same page are refused (integrity.answers_digest).
    answers_digest: Mapped[str | None] = mapped_column(String(32))
    # "web" (the QR code's form) or "paper" (keyed in by staff; never timed or flagged).
    channel: Mapped[str] = mapped_column(String(10), default="web", server_default="web")
    # The response's vector, derived from its Answer rows (which stay the truth) so reports
    # read one row per response instead of ~22 (survey/domain/vectors.py):
    # the code answered to the question with role service_field (NULL if none), and one
    # character per criterion of the answered version in Questionnaire.criteria order:
    # "1".."5" the code, "0" not applicable, "." no answer. NULL: not computed yet.
    service_field: Mapped[int | None] = mapped_column(SmallInteger)
    criteria_codes: Mapped[str | None] = mapped_column(String(64))

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan"
    )
    counter: Mapped[Counter] = relationship()
    agency: Mapped[Agency] = relationship()


class Answer(Base):
    """One answer: a code (choice, scale point) or a text. A multiple choice gives one row
    per chosen option."""

    __tablename__ = "answer"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    response_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("response.id", ondelete="CASCADE"),
        index=True,
    )
    question_id: Mapped[str] = mapped_column(String(80))
    value: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)

    response: Mapped[Response] = relationship(back_populates="answers")


def answer_rows(response_id: int, answers: dict) -> list[dict]:
    """Insert parameters for a response's answers: {question id: code, codes or text}.

    A multiple choice gives one row per chosen code; every row has both columns, so the
    rows go to the database in one executemany.
    """
    rows = []
    for question_id, value in answers.items():
        if isinstance(value, list):
            rows.extend({"response_id": response_id, "question_id": question_id,
                         "value": code, "text": None} for code in value)
        elif isinstance(value, str):
            rows.append({"response_id": response_id, "question_id": question_id,
                         "value": None, "text": value})
        else:
            rows.append({"response_id": response_id, "question_id": question_id,
                         "value": value, "text": None})
    return rows


class ServiceVolume(Base):
    """Transactions served per agency, service field and period: the weighting totals."""

    __tablename__ = "service_volume"
    __table_args__ = (UniqueConstraint("agency_id", "service_field", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"))
    service_field: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(20))
    transactions: Mapped[int] = mapped_column(Integer)

    agency: Mapped[Agency] = relationship()


class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    # For role "agency": the agency whose subtree this user manages.
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agency.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of what every session cookie of this user is checked against: bumped on logout
    # and on a password change, it signs out every copy of the user's earlier cookies.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    agency: Mapped[Agency | None] = relationship()

    def set_password(self, password: str) -> None:
        """Store a salted hash (werkzeug's default, scrypt) and end the user's sessions."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def end_sessions(self) -> None:
        """Invalidate every session cookie issued to this user so far."""
        self.session_generation = (self.session_generation or 0) + 1


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(80))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)

    user: Mapped[StaffUser | None] = relationship()


class RateEvent(Base):
    """Events counted by the login throttle, shared by all workers.

    `key` is a keyed hash (never a raw IP address or user agent) and rows expire: see
    survey/integrity.py. Kept apart from responses on purpose.
    """

    __tablename__ = "rate_event"
    __table_args__ = (Index("ix_rate_event_scope_key_at", "scope", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SubmissionCount(Base):
    """How many responses one client sent to one counter in one 10-minute bucket.

    All the repeat check keeps about clients: a daily-rotating keyed hash of the address
    (never the address), no time finer than the bucket, no row id in arrival order and no
    link to a response. Rows older than integrity.KEEP_COUNTS are deleted.
    """

    __tablename__ = "submission_count"

    counter_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    client_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True, index=True)
    submissions: Mapped[int] = mapped_column(Integer, default=1)


class ReceiptCode(Base):
    """A one-time code admitting one response at a counter (survey/receipts.py).

    Only a keyed hash of the code is kept, never the code; nothing links it to a person, a
    dossier number or the response it admitted (`used` has no time on purpose).
    """

    __tablename__ = "receipt_code"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    counter_id: Mapped[int] = mapped_column(ForeignKey("counter.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "slip" (a printed batch) or "api" (one per served dossier, from the one-stop system).
    source: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiKey(Base):
    """A key the one-stop system of an agency uses on the JSON API (survey/api.py).

    Only a keyed hash is stored; the key is shown once. It reaches the agency and those below.
    """

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, shown in lists so staff can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()

    agency: Mapped[Agency] = relationship()

    def snapshot(self) -> dict:
        """What the audit log records of a key (never the key or its hash)."""
        return {"agency": self.agency.code, "label": self.label, "prefix": self.prefix,
                "active": self.revoked_at is None}


def issue_tokens(db: Session, counters: list[Counter]) -> list[CounterToken]:
    """A new live token for each counter, one that no counter ever had (revoked tokens are
    never reused): drawn, then checked against every stored token in one query."""
    with db.no_autoflush:
        tokens = [counter.issue_token() for counter in counters]
        while True:
            drawn = {t.token for t in tokens}
            taken = set(db.scalars(select(CounterToken.token)
                                        .where(CounterToken.token.in_(drawn))))
            clashes = [t for t in tokens if t.token in taken]
            if len(drawn) == len(tokens) and not clashes:
                return tokens
            seen = set()
            for token in tokens:
                if token.token in taken or token.token in seen:
                    token.token = new_token()
                seen.add(token.token)


class ReportCache(Base):
    """A computed report (survey/report_cache.py): key = hash of filters, scope, language
    and settings; version = the data it was computed from; payload = the pickled result."""

    __tablename__ = "report_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
