"""Error pages and the log: database failures are a logged 500, never a 400 to the citizen."""

import logging

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from survey.models import Answer, Response

from .test_respond import complete_answers


def counts(session):
    session.expire_all()
    return (session.scalar(select(func.count()).select_from(Response)),
            session.scalar(select(func.count()).select_from(Answer)))


@pytest.fixture
def production_errors(app):
    """Exceptions handled as in production (tests otherwise let them propagate)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def failing_insert(monkeypatch, error):
    """Make the response insert fail the way a database outage or a bug would."""
    from survey import respond

    real_execute = respond.raw_execute

    def execute(cursor, statement, values):
        if getattr(statement, "table", None) is not None and statement.table.name == "response" \
                and statement.is_insert:
            raise error
        return real_execute(cursor, statement, values)

    monkeypatch.setattr(respond, "raw_execute", execute)

    def store(cursor, parameters):  # PostgreSQL writes it all in one statement
        raise error

    monkeypatch.setattr(respond, "postgres_store", store)


@pytest.mark.parametrize("make_error", [
    lambda dbapi: OperationalError("INSERT INTO response", {},
                                   Exception("server closed the connection")),
    lambda dbapi: dbapi.OperationalError("server closed the connection"),
    lambda dbapi: IntegrityError("INSERT INTO response", {},
                                 Exception("violates foreign key constraint")),
    # The driver's own class, the one store_response catches for a repeated key: any
    # other integrity error must still be a 500, never a 400 or "already stored".
    lambda dbapi: dbapi.IntegrityError("violates foreign key constraint"),
], ids=["outage", "driver-outage", "other-integrity-error", "driver-integrity-error"])
def test_a_database_error_on_submit_is_a_logged_500_and_nothing_is_claimed_saved(
        production_errors, app, client, session, make_counter, open_form, monkeypatch, caplog,
        make_error):
    counter = make_counter()
    hidden = open_form(counter.token)
    error = make_error(app.extensions["survey_db"].engine.dialect.loaded_dbapi)
    failing_insert(monkeypatch, error)
    with caplog.at_level(logging.INFO, logger="survey"):
        response = client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Đã có lỗi xảy ra" in html and "Cảm ơn" not in html
    assert "không hợp lệ" not in html  # the citizen is not blamed
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 1 and failures[0].exc_info[1] is error
    assert counter.token not in failures[0].getMessage()
    assert counts(session) == (0, 0)


def test_a_retried_submission_is_still_acknowledged_once(client, session, make_counter,
                                                          open_form):
    # The one IntegrityError store_response absorbs: the same submission key again.
    counter = make_counter()
    data = {**open_form(counter.token), **complete_answers()}
    assert client.post(f"/r/{counter.token}", data=data).status_code == 303
    assert client.post(f"/r/{counter.token}", data=data).status_code == 303
    assert counts(session)[0] == 1


def test_one_log_line_per_request_without_tokens_answers_or_clients(
        client, make_counter, open_form, caplog):
    counter = make_counter()
    hidden = open_form(counter.token)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="survey"):
        client.get(f"/r/{counter.token}?lang=en", headers={"User-Agent": "Phone/1.0"},
                   environ_base={"REMOTE_ADDR": "203.0.113.9"})
        client.post(f"/r/{counter.token}", data={**hidden, **complete_answers()})
        client.get("/r/ZZZZZZZZZZ")
    lines = [r.getMessage() for r in caplog.records if r.name == "survey.requests"]
    assert len(lines) == 3
    assert lines[0].startswith("GET respond.questionnaire 200 ") and lines[0].endswith(" ms")
    assert lines[1].startswith("POST respond.submit 303 ")
    assert lines[2].startswith("GET respond.questionnaire 404 ")
    text = " ".join(r.getMessage() for r in caplog.records)
    for secret in (counter.token, "ZZZZZZZZZZ", "lang=en", "Phone/1.0", "203.0.113.9",
                   "Cán bộ hướng dẫn", hidden["submission_key"]):
        assert secret not in text


def test_an_unhandled_exception_is_logged_with_its_traceback_and_a_vietnamese_500(
        production_errors, client, make_counter, monkeypatch, caplog):
    from survey import respond

    counter = make_counter()

    def broken(*_args):  # new_form(questionnaire, counter_id)
        raise RuntimeError("a bug")

    monkeypatch.setattr(respond, "new_form", broken)
    with caplog.at_level(logging.INFO, logger="survey"):
        response = client.get(f"/r/{counter.token}")
    assert response.status_code == 500
    assert "Đã có lỗi xảy ra" in response.get_data(as_text=True)
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and isinstance(logged[0].exc_info[1], RuntimeError)
    assert "respond.questionnaire" in logged[0].getMessage()
    assert counter.token not in logged[0].getMessage()
    request_lines = [r.getMessage() for r in caplog.records if r.name == "survey.requests"]
    assert request_lines and request_lines[-1].startswith("GET respond.questionnaire 500 ")


@pytest.mark.parametrize("method, path, status, text", [
    ("GET", "/khong-co", 404, "Không tìm thấy trang"),
    ("DELETE", "/r/ABCDEFGHJK", 405, "không nhận loại yêu cầu"),
    ("POST", "/r/ABCDEFGHJK", 413, "quá dài"),
])
def test_error_pages_are_vietnamese_with_their_status(client, method, path, status, text):
    response = client.open(path, method=method, data={"x": "y" * 70_000})
    assert response.status_code == status
    assert text in response.get_data(as_text=True)


def test_staff_form_without_csrf_gets_the_400_page(client):
    response = client.post("/admin/login", data={"login": "admin", "password": "x"})
    assert response.status_code == 400
    assert "Phiên làm việc đã hết hạn" in response.get_data(as_text=True)


def test_routing_redirects_are_not_turned_into_error_pages(client):
    response = client.get("/reports")
    assert response.status_code in (301, 308)
