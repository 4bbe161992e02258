"""Helpers for the staff-side tests: users, login through the real form, CSRF tokens."""

from __future__ import annotations

import re

from werkzeug.security import generate_password_hash

from survey.models import StaffUser

PASSWORD = "mat-khau-thu-nghiem"
# A cheap hash: the tests log in often; the app itself uses werkzeug's default (scrypt).
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def make_user(session, login, role, agency=None, active=True, name=""):
    user = StaffUser(login=login, role=role, agency_id=agency.id if agency else None,
                     password_hash=PASSWORD_HASH, active=active, name=name)
    session.add(user)
    session.commit()
    return user


def csrf_token(response) -> str:
    found = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', response.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client, login, password=PASSWORD, expect=303):
    token = csrf_token(client.get("/admin/login"))
    response = client.post("/admin/login",
                           data={"csrf_token": token, "login": login, "password": password})
    assert response.status_code == expect, response.get_data(as_text=True)[:800]
    return response


def page_token(client, path="/admin/") -> str:
    """A CSRF token for the signed-in session (every staff page carries one)."""
    return csrf_token(client.get(path))
