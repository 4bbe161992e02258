"""The throughput bench's floor (bench/floor_app.py) does the work it stands for.

Its rate is printed as the ceiling for the app's: a floor that answered without storing,
or stored for a revoked code, would set that ceiling too high.
"""

from __future__ import annotations

import importlib
import sys

from sqlalchemy import func, select

from survey.models import Answer, Response

from .conftest import ROOT


def floor_app(monkeypatch, database_url: str):
    monkeypatch.setenv("SURVEY_DATABASE_URL", database_url)
    monkeypatch.setenv("FLOOR_PAGE_BYTES", "1000")
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop("bench.floor_app", None)
    return importlib.import_module("bench.floor_app")


def test_the_floor_reads_the_counter_and_stores_the_response_and_answers(
        monkeypatch, database_url, session, make_counter):
    counter = make_counter()
    token = counter.tokens[0].token
    module = floor_app(monkeypatch, database_url)
    client = module.app.test_client()
    try:
        page = client.get(f"/r/{token}")
        assert page.status_code == 200 and len(page.data) > 1000
        assert str(counter.id).encode() in page.data  # the counter was read
        sent = client.post(f"/r/{token}", data={"submission_key": "k" * 48, "started": "x",
                                               "q1": "4", "q2": ["1", "3"], "comment": "tốt"})
        assert sent.status_code == 303 and sent.location.endswith(f"/r/{token}/cam-on")
        session.expire_all()
        stored = session.scalars(select(Response)).all()
        assert [(r.counter_id, r.agency_id) for r in stored] == [(counter.id,
                                                                  counter.agency_id)]
        answers = session.execute(select(Answer.question_id, Answer.value, Answer.text)
                                  .order_by(Answer.id)).all()
        assert answers == [("q1", 4, None), ("q2", 1, None), ("q2", 3, None),
                           ("comment", None, "tốt")]

        counter.tokens[0].revoked_at = func.now()
        session.commit()
        refused = client.post(f"/r/{token}", data={"submission_key": "k" * 48, "q1": "5"})
        assert refused.status_code == 404  # nothing stored for a revoked code
        assert session.scalar(select(func.count()).select_from(Response)) == 1
    finally:
        for connection in module._connection.values():
            connection.close()
        sys.modules.pop("bench.floor_app", None)
