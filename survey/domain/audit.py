"""The audit log: who changed what, and what it keeps about a staff user."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy.orm import Session

from ..models import AuditEvent, StaffUser


def audit(db: Session, user: StaffUser | None, action: str, entity: str, entity_id,
          before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Record who changed what (added to the session; committed with the change itself).

    `user` is the staff user acting, or None for the command line.
    """
    event = AuditEvent(user_id=user.id if user else None, action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id),
                       before=before, after=after)
    db.add(event)
    return event


def user_snapshot(user: StaffUser) -> dict:
    """What the audit log keeps about a user (never the password hash)."""
    return {"login": user.login, "name": user.name, "role": user.role,
            "agency": user.agency.code if user.agency else None, "active": user.active}


# --- the log in words: what the audit page shows instead of the stored ids --------------

ACTION_LABELS = {
    "create": _l("Tạo mới"),
    "update": _l("Sửa thông tin"),
    "activate": _l("Cho hoạt động trở lại"),
    "deactivate": _l("Ngừng hoạt động"),
    "revoke_token": _l("Thu hồi mã QR"),
    "issue_token": _l("Cấp mã QR mới"),
    "import": _l("Nhập từ tệp CSV"),
    "login": _l("Đăng nhập"),
    # (Contexts: one record in the log, where the same words elsewhere name a page or list.)
    "paper_entry": lazy_pgettext("audit", "Nhập phiếu giấy"),
    "receipt_batch": _l("In lô mã biên nhận"),
    "issue_api_key": _l("Cấp khóa API"),
    "revoke_api_key": _l("Thu hồi khóa API"),
}
ENTITY_LABELS = {
    "agency": _l("Cơ quan"),
    "counter": _l("Quầy"),
    "staff_user": lazy_pgettext("audit", "Tài khoản"),
    "response": lazy_pgettext("audit", "Phiếu"),
    "api_key": _l("Khóa API"),
    "service_volume": _l("Số hồ sơ đã giải quyết"),
}
FIELD_LABELS = {
    "code": _l("Mã cơ quan"),
    "name": _l("Tên"),
    "level": _l("Cấp"),
    "parent": _l("Cơ quan cấp trên"),
    "active": _l("Trạng thái"),
    "feedback_contact": _l("Đường dây nóng, góp ý"),
    "agency": _l("Cơ quan"),
    "label": _l("Tên quầy"),
    "questionnaire": _l("Mẫu phiếu"),
    "version": _l("Phiên bản"),
    "counter": _l("Quầy"),
    "token": _l("Mã QR"),
    "reason": _l("Lý do"),
    "login": _l("Tên đăng nhập"),
    "role": _l("Vai trò"),
    "password": _l("Mật khẩu"),
    "requires_receipt": _l("Yêu cầu mã biên nhận"),
    "count": _l("Số lượng"),
    "days": _l("Số ngày hiệu lực"),
    "prefix": _l("Đầu khóa"),
    "rows": _l("Số dòng"),
    "created": _l("Thêm mới"),
    "updated": _l("Cập nhật"),
    "periods": _l("Kỳ"),
    "sheet_date": _l("Ngày ghi trên phiếu"),
}
PASSWORD_WORDS = {"set": _l("đã đặt"), "changed": _l("đã đổi")}


def field_label(key: str) -> str:
    return str(FIELD_LABELS.get(key, key))


def value_words(key: str, value, questionnaire_title=str, role_label=str, level_label=str):
    """A stored audit value as the page shows it: "Đang hoạt động", a questionnaire's title,
    a role's name, "–" for nothing; anything else as it was recorded."""
    if value is None or value == "":
        return "–"
    if key == "active" and isinstance(value, bool):
        return str(_l("Đang hoạt động") if value else _l("Ngừng hoạt động"))
    if key == "questionnaire":
        return questionnaire_title(value)
    if key == "role":
        return role_label(value)
    if key == "level":
        return level_label(value)
    if key == "password":
        return str(PASSWORD_WORDS.get(value, value))
    if key == "sheet_date" and isinstance(value, str) and len(value) == 10:
        year, month, day = value.split("-")  # stored as YYYY-MM-DD, read as written in Vietnam
        return f"{day}/{month}/{year}"
    if isinstance(value, bool):
        return str(_l("Có") if value else _l("Không"))
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
