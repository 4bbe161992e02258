"""Staff sign-in: hashed passwords, sessions, the login throttle, scope, `create-user`."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash

from survey import create_app
from survey.domain.scope import subtree_ids
from survey.models import AuditEvent, RateEvent, StaffUser

from .factories import PASSWORD, make_agency, make_province, make_user
from .staff import csrf_token, login, page_token

WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."
THROTTLED = "Đăng nhập sai quá nhiều lần"


def test_login_leads_to_the_staff_home_and_logout_ends_the_session(client, session):
    make_user(session, "quantri", "admin", name="Nguyễn Văn An")
    assert client.get("/admin/").status_code == 302
    response = login(client, "QuanTri ")  # login names are case-insensitive
    assert response.headers["Location"] == "/admin/"
    home = client.get("/admin/")
    assert home.status_code == 200
    assert "Nguyễn Văn An" in home.get_data(as_text=True)
    out = client.post("/admin/logout", data={"csrf_token": page_token(client)})
    assert out.status_code == 303
    assert client.get("/admin/").status_code == 302


def test_login_page_is_vietnamese_accessible_and_without_inline_code(client):
    html = client.get("/admin/login").get_data(as_text=True)
    assert "Đăng nhập" in html and '<label for="login">' in html
    assert '<label for="password">' in html and "<fieldset>" in html
    assert "<script" not in html and "style=" not in html


def test_wrong_password_and_unknown_user_get_the_same_answer(client, session):
    make_user(session, "quantri", "admin")
    wrong = login(client, "quantri", "sai-mat-khau", expect=422)
    unknown = login(client, "khong-co", PASSWORD, expect=422)
    assert WRONG in wrong.get_data(as_text=True) and WRONG in unknown.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_inactive_user_cannot_log_in(client, session):
    make_user(session, "nghiviec", "agency", active=False)
    assert WRONG in login(client, "nghiviec", expect=422).get_data(as_text=True)


def test_next_goes_back_to_the_page_asked_for_but_never_off_site(client, session):
    make_user(session, "quantri", "admin")
    response = client.get("/admin/counters")
    assert response.headers["Location"] == "/admin/login?next=/admin/counters"
    token = csrf_token(client.get("/admin/login"))
    data = {"csrf_token": token, "login": "quantri", "password": PASSWORD}
    response = client.post("/admin/login?next=/admin/counters", data=data)
    assert response.headers["Location"] == "/admin/counters"
    client.post("/admin/logout", data={"csrf_token": page_token(client)})
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        data["csrf_token"] = csrf_token(client.get("/admin/login"))
        response = client.post("/admin/login", query_string={"next": target}, data=data)
        assert response.headers["Location"] == "/admin/", target
        client.post("/admin/logout", data={"csrf_token": page_token(client)})


def test_throttle_per_login_name_blocks_even_the_right_password(app, client, session):
    make_user(session, "quantri", "admin")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        login(client, "quantri", "sai-mat-khau", expect=422)
    blocked = login(client, "quantri", PASSWORD, expect=429)
    assert THROTTLED in blocked.get_data(as_text=True)
    assert "15 phút" in blocked.get_data(as_text=True)
    # Counted in the database as keyed hashes, never the login name or the address.
    keys = session.scalars(select(RateEvent.key)).all()
    assert keys and not any("quantri" in key or "127.0.0.1" in key for key in keys)


def test_throttle_per_client_across_login_names(app, client, session):
    make_user(session, "quantri", "admin")
    for n in range(app.config["LOGIN_MAX_FAILURES"]):
        login(client, f"doan-{n}", "sai-mat-khau", expect=422)
    assert THROTTLED in login(client, "quantri", expect=429).get_data(as_text=True)
    # Another client (address) may still sign in with that name.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    login(other, "quantri")


def test_throttle_is_shared_by_every_worker(app, client, session, database_url, tmp_path):
    """Two app instances (two gunicorn workers) on one database count the same failures."""
    make_user(session, "quantri", "admin")
    other_worker = create_app({"TESTING": True, "SECRET_KEY": "test-secret",
                               "DATABASE_URL": database_url,
                               "PUBLIC_URL": "https://hailong.example.vn"})
    other_worker.instance_path = str(tmp_path / "other")
    try:
        other_client = other_worker.test_client()
        for n in range(app.config["LOGIN_MAX_FAILURES"]):
            login(client if n % 2 else other_client, "quantri", "sai", expect=422)
        login(client, "quantri", expect=429)
        login(other_client, "quantri", expect=429)
    finally:
        other_worker.extensions["survey_db"].engine.dispose()


def test_a_successful_login_forgets_earlier_failures_of_that_name(app, client, session):
    make_user(session, "quantri", "admin")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        login(client, "quantri", "sai", expect=422)
    login(client, "quantri")
    client.post("/admin/logout", data={"csrf_token": page_token(client)})
    login(client, "quantri", "sai", expect=422)  # not yet blocked
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "login")).all()


def test_changing_the_password_signs_out_other_sessions(app, client, session):
    user = make_user(session, "quantri", "admin")
    login(client, "quantri")
    assert client.get("/admin/").status_code == 200
    user.password_hash = "pbkdf2:sha256:1000$x$y"
    session.commit()
    assert client.get("/admin/").status_code == 302


def test_deactivated_user_loses_access_at_once(client, session):
    user = make_user(session, "canbo", "analyst")
    login(client, "canbo")
    user.active = False
    session.commit()
    assert client.get("/admin/").status_code == 302


def test_login_form_needs_a_csrf_token(client, session):
    make_user(session, "quantri", "admin")
    response = client.post("/admin/login", data={"login": "quantri", "password": PASSWORD})
    assert response.status_code == 400


def test_subtree_is_the_agency_and_everything_below(session):
    province = make_province(session)
    root, stp, syt = province["qt"], province["stp"], province["syt"]
    ht = make_agency(session, "STP-HT", parent=stp)
    ht2 = make_agency(session, "STP-HT-1", "Tổ Hộ tịch 1", parent=ht)
    assert subtree_ids(session, stp.id) == {stp.id, ht.id, ht2.id}
    assert subtree_ids(session, root.id) == {root.id, stp.id, ht.id, ht2.id, syt.id}


# --- create-user ----------------------------------------------------------------------


def test_create_user_command_hashes_the_password_and_audits(runner, session, monkeypatch):
    make_agency(session, "STP")
    monkeypatch.setenv("SURVEY_NEW_USER_PASSWORD", "mot-mat-khau-dai")
    result = runner.invoke(args=["create-user", "CanBo.STP", "--role", "agency",
                                 "--agency", "STP", "--name", "Trần Thị Bình"])
    assert result.exit_code == 0, result.output
    user = session.scalars(select(StaffUser)).one()
    assert (user.login, user.role, user.agency.code, user.name) == (
        "canbo.stp", "agency", "STP", "Trần Thị Bình")
    assert "mot-mat-khau-dai" not in user.password_hash
    assert check_password_hash(user.password_hash, "mot-mat-khau-dai")
    event = session.scalars(select(AuditEvent)).one()
    assert (event.action, event.entity, event.user_id) == ("create", "staff_user", None)
    assert event.after["login"] == "canbo.stp" and "password_hash" not in event.after

    again = runner.invoke(args=["create-user", "canbo.stp", "--role", "agency",
                                "--agency", "STP"])
    assert again.exit_code != 0 and "exists" in again.output
    update = runner.invoke(args=["create-user", "canbo.stp", "--role", "analyst", "--update"])
    assert update.exit_code == 0, update.output


def test_create_user_prompts_for_the_password(runner, session):
    result = runner.invoke(args=["create-user", "quantri2", "--role", "admin"],
                           input="mat-khau-moi-123\nmat-khau-moi-123\n")
    assert result.exit_code == 0, result.output
    user = session.scalars(select(StaffUser)).one()
    assert check_password_hash(user.password_hash, "mat-khau-moi-123")


def test_create_user_refuses_bad_input(runner, monkeypatch):
    monkeypatch.setenv("SURVEY_NEW_USER_PASSWORD", "mot-mat-khau-dai")
    no_agency = runner.invoke(args=["create-user", "canbo", "--role", "agency"])
    assert no_agency.exit_code != 0 and "--agency" in no_agency.output
    unknown = runner.invoke(args=["create-user", "canbo", "--role", "agency",
                                  "--agency", "KHONG"])
    assert unknown.exit_code != 0
    monkeypatch.setenv("SURVEY_NEW_USER_PASSWORD", "ngan")
    short = runner.invoke(args=["create-user", "canbo", "--role", "admin"])
    assert short.exit_code != 0


# --- sessions and the throttle against an attacker --------------------------------------


def test_a_cookie_copied_before_logout_is_dead_after_it(app, client, session):
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    copied = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/admin/users").status_code == 200
    client.post("/admin/logout", data={"csrf_token": page_token(client)})
    assert thief.get("/admin/users").status_code == 302
    # Signing in again gives a new, working session; the copied one stays dead.
    login(client, "quantri")
    assert client.get("/admin/users").status_code == 200
    assert thief.get("/admin/users").status_code == 302


def test_a_password_change_ends_the_sessions_of_that_user(app, client, session):
    user = make_user(session, "quantri", "admin")
    login(client, "quantri")
    user.set_password("mat-khau-moi-dai")
    session.commit()
    assert client.get("/admin/").status_code == 302
    login(client, "quantri", "mat-khau-moi-dai")
    assert client.get("/admin/").status_code == 200


def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(app, client, session):
    make_user(session, "admin", "admin")
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        login(attacker, "admin", "doan-mo", expect=422)
    assert THROTTLED in login(attacker, "admin", expect=429).get_data(as_text=True)
    # A guesser on a fresh address gets one try at the locked name, then waits.
    second = app.test_client()
    second.environ_base["REMOTE_ADDR"] = "203.0.113.8"
    login(second, "admin", "doan-mo-2", expect=422)
    login(second, "admin", expect=429)
    # The owner, from a client without failures, still signs in with the right password.
    login(client, "admin")
    assert client.get("/admin/").status_code == 200


def test_rotating_the_user_agent_does_not_escape_the_client_limit(app, client, session):
    make_user(session, "quantri", "admin")
    for n in range(app.config["LOGIN_MAX_FAILURES"]):
        client.environ_base["HTTP_USER_AGENT"] = f"Mozilla/5.0 (rotation {n})"
        login(client, f"doan-{n}", "sai-mat-khau", expect=422)
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 (yet another)"
    assert THROTTLED in login(client, "quantri", expect=429).get_data(as_text=True)


@pytest.mark.parametrize("target", ["/admin/counters\r\nSet-Cookie: x=1", "/admin/\n",
                                    "/admin/\x00", "/admin/\x7f", "/admin/\u2028x",
                                    "/\r\n/evil.example"])
def test_next_with_control_characters_goes_home_never_500(client, session, target):
    make_user(session, "quantri", "admin")
    token = csrf_token(client.get("/admin/login", query_string={"next": target}))
    data = {"csrf_token": token, "login": "quantri", "password": PASSWORD}
    response = client.post("/admin/login", query_string={"next": target}, data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    assert "Set-Cookie: x" not in str(response.headers)
    # Signed in, the login page's GET redirect is just as safe.
    again = client.get("/admin/login", query_string={"next": target})
    assert again.status_code == 302 and again.headers["Location"] == "/admin/"


def test_login_names_with_nul_and_invisible_characters_are_just_wrong(client, session):
    make_user(session, "quantri", "admin")
    assert WRONG in login(client, "khong\x00co", expect=422).get_data(as_text=True)
    login(client, "quan\u200btri\x00")  # the same name once the invisible ones are gone
