"""Staff account rules: login names, passwords, and which roles belong to an agency."""

from __future__ import annotations

import re

from flask_babel import gettext as _

from .text import clean

LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
MIN_PASSWORD_LENGTH = 10


def normalize_login(raw: str | None) -> str:
    """Login names are case-insensitive and never carry invisible characters."""
    return clean(raw).lower()


def login_error(login: str) -> str | None:
    """Why a login name is not acceptable, or None."""
    if not LOGIN_PATTERN.match(login):
        return _("Tên đăng nhập gồm 2–80 ký tự: chữ thường không dấu, chữ số, dấu chấm, "
                 "gạch ngang hoặc gạch dưới.")
    return None


def password_error(password: str | None) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return _("Mật khẩu phải có ít nhất %(n)d ký tự.", n=MIN_PASSWORD_LENGTH)
    return None


def role_agency_error(role: str, agency_id: int | None) -> str | None:
    """An agency user belongs to an agency; an administrator to none."""
    if role == "agency" and agency_id is None:
        return _("Cán bộ cơ quan phải thuộc một cơ quan.")
    if role == "admin" and agency_id is not None:
        return _("Quản trị hệ thống không gắn với cơ quan nào.")
    return None
