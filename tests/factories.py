"""Test data: one small factory per kind of row, with defaults a test overrides by keyword.

Each factory takes the SQLAlchemy session `db` first, adds the row and commits (pass
`commit=False` to only flush, e.g. when building many rows before one commit). Answers go
through the app's own `answer_rows`, as a submission stores them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from survey.models import (
    Agency,
    Answer,
    Counter,
    Response,
    ServiceVolume,
    StaffUser,
    answer_rows,
)

PASSWORD = "mat-khau-thu-nghiem"
# A cheap hash: the tests log in often; the app itself uses werkzeug's default (scrypt).
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")

# The names the tests' usual agencies go by, so that a code alone is enough.
AGENCY_NAMES = {
    "QT": "UBND tỉnh Quảng Trị",
    "STP": "Sở Tư pháp",
    "SYT": "Sở Y tế",
    "STP-HT": "Phòng Hộ tịch",
    "DONGHOI": "UBND phường Đồng Hới",
}


def _save(db: Session, row, commit: bool):
    db.add(row)
    if commit:
        db.commit()
    else:
        db.flush()
    return row


def make_agency(db: Session, code: str = "STP", name: str | None = None, *,
                parent: Agency | None = None, level: str = "department", commit: bool = True,
                **fields) -> Agency:
    """An agency; its name defaults to the usual one for the code (AGENCY_NAMES)."""
    agency = Agency(code=code, name=AGENCY_NAMES.get(code, code) if name is None else name,
                    parent=parent, level=level, **fields)
    return _save(db, agency, commit)


def agency_with_code(db: Session, code: str = "STP", name: str | None = None, **kwargs) -> Agency:
    """The agency with this code, made (as make_agency would) when there is none yet."""
    found = db.scalars(select(Agency).where(Agency.code == code)).one_or_none()
    return found if found is not None else make_agency(db, code, name, **kwargs)


def make_province(db: Session) -> dict[str, Agency]:
    """The usual small tree: the province QT with two departments, STP and SYT."""
    qt = make_agency(db, "QT", level="province", commit=False)
    stp = make_agency(db, "STP", parent=qt, commit=False)
    syt = make_agency(db, "SYT", parent=qt)
    return {"qt": qt, "stp": stp, "syt": syt}


def make_counter(db: Session, agency: Agency | None = None, label: str = "Quầy 3 – Tư pháp",
                 questionnaire_id: str = "sipas-service", *, commit: bool = True,
                 **fields) -> Counter:
    """A counter with a live token, at the given agency (default: STP, made if missing)."""
    if agency is None:
        agency = agency_with_code(db, "STP", commit=False)
    counter = Counter(agency=agency, label=label, questionnaire_id=questionnaire_id, **fields)
    counter.issue_token()
    return _save(db, counter, commit)


def make_user(db: Session, login: str = "quantri", role: str = "admin",
              agency: Agency | None = None, *, active: bool = True, name: str = "",
              password_hash: str = PASSWORD_HASH, commit: bool = True) -> StaffUser:
    """A staff account that signs in with PASSWORD (a cheap hash, see above)."""
    user = StaffUser(login=login, role=role, agency_id=agency.id if agency else None,
                     password_hash=password_hash, active=active, name=name)
    return _save(db, user, commit)


def make_response(db: Session, counter: Counter, answers: dict | None = None, *,
                  at: datetime | None = None, agency_id: int | None = None,
                  channel: str = "web", locale: str = "vi", questionnaire_id: str | None = None,
                  questionnaire_version: int = 1, commit: bool = True, **fields) -> Response:
    """A response at a counter with its answers {question id: code, [codes] or text}.

    Stored under the counter's agency unless `agency_id` says otherwise (a counter moved
    since); submitted now unless `at` is given.
    """
    response = Response(counter_id=counter.id, agency_id=agency_id or counter.agency_id,
                        questionnaire_id=questionnaire_id or counter.questionnaire_id,
                        questionnaire_version=questionnaire_version, locale=locale,
                        channel=channel, **fields)
    if at is not None:
        response.submitted_at = at
    db.add(response)
    db.flush()
    rows = answer_rows(response.id, answers or {})
    if rows:
        db.execute(insert(Answer), rows)
        db.expire(response, ["answers"])
    if commit:
        db.commit()
    return response


def make_volume(db: Session, agency_id: int, service_field: str = "1", period: str = "2026",
                transactions: int = 100, *, commit: bool = True) -> ServiceVolume:
    """The transactions an agency served in one service field and period (weighting totals)."""
    volume = ServiceVolume(agency_id=agency_id, service_field=service_field, period=period,
                           transactions=transactions)
    return _save(db, volume, commit)
