"""Each response's vector: its service field and criteria codes, kept on the response row.

The Answer rows stay the truth; the vector is derived from them so that the reports read one
row per response instead of ~22 answer rows. Semantics of the two columns of ``response``:

- ``service_field``: the code answered to the question with role ``service_field`` of the
  version the response answered; NULL when the version has no such question or it was
  not answered.
- ``criteria_codes``: one character per criterion of that version, in
  ``Questionnaire.criteria`` order: ``"1"``..``"5"`` the code answered (any stored code
  0..9 is its digit), ``"0"`` not applicable, ``"."`` no answer stored (left blank, or a
  question the skip logic hid: those are never stored). NULL: not computed yet.

The vector records what is stored; it does not apply the skip logic again. A write path
that changes a response's answers afterwards sets ``criteria_codes`` back to NULL
(:func:`reset`) or stores a fresh :func:`encode`; :func:`fill_missing` computes every NULL
vector from the Answer rows, in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from analysis.questionnaire import SERVICE_FIELD, Questionnaire

from ..models import Answer, Response

# The width of response.criteria_codes: a version with more criteria cannot be encoded
# (its responses keep a NULL vector and the reports read their Answer rows).
MAX_CRITERIA = 64
NO_ANSWER = "."
# response.service_field is a SMALLINT.
MAX_SERVICE_FIELD = 32767
DEFAULT_BATCH = 5000

_RESPONSE = Response.__table__


def encode(questionnaire: Questionnaire, answers: Mapping) -> tuple[int | None, str]:
    """(service_field, criteria_codes) of one response to this questionnaire version.

    ``answers`` maps question ids to what is stored: a code, a list of codes or a text
    (``None`` or a missing key: no answer). Raises ValueError for what the columns cannot
    hold (a criterion code outside 0..9, more than 64 criteria, a field code outside
    SMALLINT): such a response keeps a NULL vector.
    """
    field = None
    field_question = questionnaire.roles.get(SERVICE_FIELD)
    if field_question is not None:
        given = answers.get(field_question.id)
        if _is_code(given):
            if not 0 <= given <= MAX_SERVICE_FIELD:
                raise ValueError(f"service field code {given} does not fit the column")
            field = int(given)
    criteria = questionnaire.criteria
    if len(criteria) > MAX_CRITERIA:
        raise ValueError(f"{len(criteria)} criteria do not fit in {MAX_CRITERIA} characters")
    chars = []
    for question in criteria:
        given = answers.get(question.id)
        if not _is_code(given):
            chars.append(NO_ANSWER)
        elif 0 <= given <= 9:
            chars.append(str(given))
        else:
            raise ValueError(f"criterion {question.id}: code {given} is not one digit")
    return field, "".join(chars)


def _is_code(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def encoded_columns(questionnaire: Questionnaire, answers: Mapping) -> dict:
    """The response row's vector columns for an insert, NULL when it cannot be encoded."""
    try:
        field, codes = encode(questionnaire, answers)
    except ValueError:
        return {"service_field": None, "criteria_codes": None}
    return {"service_field": field, "criteria_codes": codes}


def reset(db: Session, response_ids: Iterable[int]) -> None:
    """Mark these responses' vectors as stale (their answers changed): recomputed later."""
    ids = list(response_ids)
    for start in range(0, len(ids), 1000):
        db.execute(update(Response).where(Response.id.in_(ids[start:start + 1000]))
                   .values(service_field=None, criteria_codes=None))


def fill_missing(db: Session, registry=None, batch_size: int = DEFAULT_BATCH,
                 limit: int | None = None) -> int:
    """Compute the vector of every response whose ``criteria_codes`` is NULL from its Answer
    rows, ``batch_size`` responses a transaction; returns how many were encoded. With
    ``limit``, stop after about that many responses (a page must not encode a whole
    database after an upgrade: the reports read the rest from their Answer rows, and
    ``flask reports encode-responses`` encodes everything).

    Idempotent, and safe with several processes at once: a row is only written while it is
    still NULL, and every process computes the same value from the same answers. Responses
    of a version the registry does not know, or that cannot be encoded, stay NULL (the
    reports read their Answer rows). ``registry`` defaults to the app's questionnaires.
    """
    if registry is None:
        from ..questionnaires import registry as app_registry

        registry = app_registry()
    statement = (update(_RESPONSE)
                 .where(and_(_RESPONSE.c.id == bindparam("rid"),
                             _RESPONSE.c.criteria_codes.is_(None)))
                 .values(service_field=bindparam("field"), criteria_codes=bindparam("codes")))
    done, seen, last = 0, 0, None
    while limit is None or seen < limit:
        size = batch_size if limit is None else min(batch_size, limit - seen)
        query = (select(Response.id, Response.questionnaire_id, Response.questionnaire_version)
                 .where(Response.criteria_codes.is_(None)).order_by(Response.id)
                 .limit(size))
        if last is not None:
            query = query.where(Response.id > last)
        pending = db.execute(query).all()
        if not pending:
            break
        last = pending[-1].id
        seen += len(pending)
        answers: dict[int, dict] = {row.id: {} for row in pending}
        if last - pending[0].id + 1 == len(pending):
            which = Answer.response_id.between(pending[0].id, last)
        else:
            which = Answer.response_id.in_(list(answers))
        for rid, qid, value in db.execute(
                select(Answer.response_id, Answer.question_id, Answer.value)
                .where(which, Answer.value.is_not(None))):
            given = answers.get(rid)
            if given is not None:
                given[qid] = value
        params = []
        for row in pending:
            questionnaire = registry.versions.get((row.questionnaire_id,
                                                   row.questionnaire_version))
            if questionnaire is None:
                continue
            columns = encoded_columns(questionnaire, answers[row.id])
            if columns["criteria_codes"] is not None:
                params.append({"rid": row.id, "field": columns["service_field"],
                               "codes": columns["criteria_codes"]})
        if params:
            db.execute(statement, params)
        db.commit()
        done += len(params)
        if len(pending) < size:
            break
    return done


def decode(codes: Iterable[str], width: int) -> np.ndarray:
    """The criteria codes of many responses of one version as an (n, width) float array:
    the code, NaN for no answer and for not applicable (the reports leave both out)."""
    codes = list(codes)
    joined = "".join(codes).encode("ascii")
    if width == 0:
        return np.empty((len(codes), 0))
    return decode_bytes(np.frombuffer(joined, dtype=np.uint8).reshape(-1, width))


def decode_bytes(codes: np.ndarray) -> np.ndarray:
    """:func:`decode` of an (n, width) array of the codes' ASCII bytes."""
    digits = codes.astype(np.float64) - ord("0")
    digits[(digits <= 0) | (digits > 9)] = np.nan
    return digits
