"""Helpers for the staff-side tests: users, login through the real form, CSRF tokens."""

from __future__ import annotations

import re

# Accounts come from the factories; kept importable from here for the staff tests.
from .factories import PASSWORD, PASSWORD_HASH, make_user  # noqa: F401


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
