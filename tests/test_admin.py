"""Staff administration: agencies, counters, tokens, CSV imports, users, the audit log."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from survey.models import Agency, AuditEvent, Counter, CounterToken, StaffUser

from .factories import make_province, make_user
from .staff import login, page_token
from .test_posters import decode_pages


@pytest.fixture
def province(session):
    province = make_province(session)
    make_user(session, "quantri", "admin")
    make_user(session, "canbo-stp", "agency", agency=province["stp"])
    make_user(session, "phantich", "analyst")
    return province


def post(client, url, **data):
    return client.post(url, data={"csrf_token": page_token(client), **data})


def events(session, entity=None):
    session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if entity:
        query = query.where(AuditEvent.entity == entity)
    return session.scalars(query).all()


def upload(client, url, content: bytes, name="data.csv"):
    return client.post(url, data={"csrf_token": page_token(client),
                                  "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


# --- agencies ---------------------------------------------------------------------------


def test_admin_creates_edits_and_deactivates_an_agency_with_an_audit_trail(
        client, session, province):
    login(client, "quantri")
    response = post(client, "/admin/agencies/new", code="stp-ht", name="Phòng  Hộ tịch ",
                    parent_id=province["stp"].id, level="department")
    assert response.status_code == 303
    agency = session.scalars(select(Agency).where(Agency.code == "STP-HT")).one()
    assert agency.name == "Phòng Hộ tịch" and agency.parent_id == province["stp"].id

    response = post(client, f"/admin/agencies/{agency.id}/edit", name="Phòng Hộ tịch – Quốc tịch",
                    parent_id=province["qt"].id, level="department",
                    feedback_contact=" 0233\u200b 3822 123 ")
    assert response.status_code == 303
    response = post(client, f"/admin/agencies/{agency.id}/active", active="0")
    assert response.status_code == 303

    created, updated, deactivated = events(session, "agency")
    user_id = session.scalar(select(StaffUser.id).where(StaffUser.login == "quantri"))
    assert {e.user_id for e in (created, updated, deactivated)} == {user_id}
    assert created.action == "create" and created.before is None
    assert created.after == {"code": "STP-HT", "name": "Phòng Hộ tịch", "level": "department",
                             "parent": "STP", "active": True, "feedback_contact": ""}
    assert updated.before["name"] == "Phòng Hộ tịch" and updated.before["parent"] == "STP"
    assert updated.after["name"] == "Phòng Hộ tịch – Quốc tịch"
    assert updated.after["parent"] == "QT"
    assert updated.after["feedback_contact"] == "0233 3822 123"  # cleaned like names
    assert deactivated.action == "deactivate" and deactivated.after["active"] is False
    log = client.get("/admin/audit").get_data(as_text=True)
    assert "Phòng Hộ tịch – Quốc tịch" in log and "quantri" in log
    # The log in words: actions, fields and values, not ids and Python literals.
    assert "Tạo mới" in log and "Ngừng hoạt động" in log and "Sửa thông tin" in log
    assert "Cơ quan cấp trên: QT" in log and "Trạng thái: Đang hoạt động" in log
    assert "Đường dây nóng, góp ý: 0233 3822 123" in log
    for raw in ("deactivate", "active: True", "parent:", "feedback_contact"):
        assert raw not in log
    page = client.get(f"/admin/agencies/{agency.id}").get_data(as_text=True)
    assert '<a href="tel:02333822123">0233 3822 123</a>' in page


def test_english_navigation_names_the_lists_not_one_record(client, session, province):
    """"Cơ quan" is both a form's field (one agency) and the list's link (all of them)."""
    login(client, "quantri")
    html = client.get("/admin/agencies?lang=en").get_data(as_text=True)
    nav = html.split('<nav aria-label="', 1)[1].split("</nav>", 1)[0]
    assert ">Agencies</a>" in nav and ">Agency</a>" not in nav
    crumbs = client.get("/admin/counters/import").get_data(as_text=True)
    assert ">Counters</a></p>" in crumbs
    form = client.get("/admin/counters/new").get_data(as_text=True)
    assert ">Agency</label>" in form  # the field still names one record
    vietnamese = client.get("/admin/agencies?lang=vi").get_data(as_text=True)
    assert ">Cơ quan</a></li>" in vietnamese

def test_agency_form_rejects_duplicates_and_cycles(client, session, province):
    login(client, "quantri")
    response = post(client, "/admin/agencies/new", code="SYT", name="Sở Y tế 2",
                    parent_id=0, level="department")
    assert response.status_code == 422
    assert "Mã này đã được dùng" in response.get_data(as_text=True)
    # A parent cannot be the agency itself or below it.
    response = post(client, f"/admin/agencies/{province['qt'].id}/edit", name="UBND tỉnh",
                    parent_id=province["stp"].id, level="province")
    assert response.status_code == 422
    session.expire_all()
    assert session.get(Agency, province["qt"].id).parent_id is None


def test_agency_user_works_inside_its_subtree_only(client, session, province):
    login(client, "canbo-stp")
    listing = client.get("/admin/agencies").get_data(as_text=True)
    assert "Sở Tư pháp" in listing and "Sở Y tế" not in listing
    assert "UBND tỉnh Quảng Trị" not in listing
    assert client.get(f"/admin/agencies/{province['syt'].id}").status_code == 404
    # New agencies go below the user's own agency, never at the top or elsewhere.
    for parent in (0, province["syt"].id, province["qt"].id):
        response = post(client, "/admin/agencies/new", code="X1", name="Phòng X",
                        parent_id=parent, level="department")
        assert response.status_code == 422, parent
    response = post(client, "/admin/agencies/new", code="STP-HT", name="Phòng Hộ tịch",
                    parent_id=province["stp"].id, level="department")
    assert response.status_code == 303
    # The user's own agency keeps its place in the tree and stays switched on.
    response = post(client, f"/admin/agencies/{province['stp'].id}/edit",
                    name="Sở Tư pháp tỉnh Quảng Trị", parent_id=0, level="department")
    assert response.status_code == 303
    session.expire_all()
    stp = session.get(Agency, province["stp"].id)
    assert stp.name == "Sở Tư pháp tỉnh Quảng Trị" and stp.parent_id == province["qt"].id
    assert post(client, f"/admin/agencies/{stp.id}/active", active="0").status_code == 403


# --- counters and tokens ----------------------------------------------------------------


def test_counter_gets_a_token_choices_its_questionnaire_and_lands_on_it(client, session,
                                                                         province):
    login(client, "canbo-stp")
    form = client.get("/admin/counters/new").get_data(as_text=True)
    assert 'value="counter-quick"' in form and 'value="sipas-service"' in form
    assert "Sở Y tế" not in form
    response = post(client, "/admin/counters/new", agency_id=province["stp"].id,
                    label="Quầy 3 – Tư pháp", questionnaire_id="counter-quick")
    assert response.status_code == 303
    counter = session.scalars(select(Counter)).one()
    assert counter.questionnaire_id == "counter-quick"
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{10}", counter.token)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"https://hailong.example.vn/r/{counter.token}" in page
    assert client.get(f"/r/{counter.token}").status_code == 200
    # Same label twice in one agency would make two identical posters.
    again = post(client, "/admin/counters/new", agency_id=province["stp"].id,
                 label="Quầy 3 – Tư pháp", questionnaire_id="sipas-service")
    assert again.status_code == 422
    # Not in another agency's name.
    elsewhere = post(client, "/admin/counters/new", agency_id=province["syt"].id,
                     label="Quầy lạ", questionnaire_id="sipas-service")
    assert elsewhere.status_code == 422
    assert session.scalar(select(func.count()).select_from(Counter)) == 1
    [event] = events(session, "counter")
    assert event.after["token"] == counter.token and event.after["label"] == "Quầy 3 – Tư pháp"


def test_edit_and_deactivate_a_counter(client, session, province, make_counter):
    counter = make_counter()
    login(client, "quantri")
    response = post(client, f"/admin/counters/{counter.id}/edit", agency_id=counter.agency_id,
                    label="Quầy 4 – Tư pháp", questionnaire_id="counter-quick")
    assert response.status_code == 303
    assert post(client, f"/admin/counters/{counter.id}/active", active="0").status_code == 303
    assert client.get(f"/r/{counter.token}").status_code == 410
    update, deactivate = events(session, "counter")
    assert update.before["label"] == "Quầy 3 – Tư pháp"
    assert update.after["questionnaire"] == "counter-quick"
    assert deactivate.before["active"] is True and deactivate.after["active"] is False


def test_revoke_and_reissue_keeps_the_old_token_recorded_and_answering_410(
        client, session, province, make_counter):
    counter = make_counter()
    old = counter.token
    login(client, "canbo-stp")
    response = post(client, f"/admin/counters/{counter.id}/token/revoke",
                    reason="Mã bị dán ở nơi khác", reissue="y")
    assert response.status_code == 303
    session.expire_all()
    tokens = session.scalars(select(CounterToken).order_by(CounterToken.id)).all()
    assert [t.token for t in tokens][0] == old and len(tokens) == 2
    assert tokens[0].revoked_at is not None and tokens[0].revoked_reason == "Mã bị dán ở nơi khác"
    assert tokens[1].revoked_at is None and tokens[1].token != old
    assert client.get(f"/r/{old}").status_code == 410
    assert client.get(f"/r/{old.lower()}").status_code == 410
    assert client.get(f"/r/{tokens[1].token}").status_code == 200
    [event] = events(session, "counter")
    assert event.action == "revoke_token"
    assert event.before["token"] == old and event.after["token"] == tokens[1].token
    assert event.after["reason"] == "Mã bị dán ở nơi khác"


def test_revoke_without_reissue_then_issue_later(client, session, province, make_counter):
    counter = make_counter()
    old = counter.token
    login(client, "quantri")
    assert post(client, f"/admin/counters/{counter.id}/token/revoke", reason="Tạm dừng",
                reissue="").status_code == 303
    session.expire_all()
    assert session.get(Counter, counter.id).token is None
    # No live token: nothing to confirm, back to the counter's page.
    assert client.get(f"/admin/counters/{counter.id}/token/revoke").status_code == 303
    assert post(client, f"/admin/counters/{counter.id}/token/issue").status_code == 303
    session.expire_all()
    fresh = session.get(Counter, counter.id).token
    assert fresh and fresh != old
    assert [e.action for e in events(session, "counter")] == ["revoke_token", "issue_token"]


def test_a_revoked_token_is_never_issued_again(app, session, province, make_counter,
                                               monkeypatch):
    from survey import admin

    counter = make_counter()
    old = counter.token
    counter.tokens[0].revoked_at = counter.tokens[0].created_at
    session.commit()
    fresh = iter([old, old, "ZZZZZZZZZZ"])
    # Counter.issue_token and models.issue_tokens both draw from models.new_token.
    monkeypatch.setattr("survey.models.new_token", lambda: next(fresh))
    with app.app_context():
        from survey.db import get_db

        db = get_db()
        again = db.get(Counter, counter.id)
        token = admin.issue_token(db, again)
        db.commit()
    assert token.token == "ZZZZZZZZZZ"


def test_agency_user_gets_404_for_other_agencies_counters(client, session, province,
                                                          make_counter):
    other = make_counter(agency_code="SYT", label="Quầy Y tế")
    login(client, "canbo-stp")
    assert "Quầy Y tế" not in client.get("/admin/counters").get_data(as_text=True)
    for path in (f"/admin/counters/{other.id}", f"/admin/counters/{other.id}/edit",
                 f"/admin/counters/{other.id}/poster-A4.pdf"):
        assert client.get(path).status_code == 404, path
    response = post(client, f"/admin/counters/{other.id}/token/revoke", reason="x", reissue="y")
    assert response.status_code == 404
    assert client.get(f"/r/{other.token}").status_code == 200  # untouched


# --- CSV imports ------------------------------------------------------------------------

AGENCIES_CSV = (
    "code,name,parent,level\n"
    "TTPVHCC,Trung tâm Phục vụ hành chính công tỉnh,QT,province\n"
    "DONGHOI,UBND phường Đồng Hới,QT,Cấp xã\n"
    "DONGHOI-1,Tổ một cửa phường Đồng Hới,DONGHOI,commune\n"
)


def test_agency_import_from_excel_csv_with_bom_and_semicolons(client, session, province):
    login(client, "quantri")
    content = "\ufeff" + AGENCIES_CSV.replace(",", ";").replace("\n", "\r\n")
    response = upload(client, "/admin/agencies/import", content.encode("utf-8"))
    assert response.status_code == 303, response.get_data(as_text=True)
    session.expire_all()
    dh = session.scalars(select(Agency).where(Agency.code == "DONGHOI")).one()
    assert dh.name == "UBND phường Đồng Hới" and dh.level == "commune"
    assert dh.parent.code == "QT"
    assert [c.code for c in dh.children] == ["DONGHOI-1"]
    assert len(events(session, "agency")) == 3
    assert "3 mục mới" in client.get("/admin/agencies").get_data(as_text=True)


def test_agency_import_accepts_decomposed_letters_and_stores_nfc(client, session, province):
    import unicodedata

    login(client, "quantri")
    nfd = unicodedata.normalize("NFD", "code,name\nXQT,UBND xã Quảng Trạch\n")
    assert upload(client, "/admin/agencies/import", nfd.encode()).status_code == 303
    session.expire_all()
    name = session.scalar(select(Agency.name).where(Agency.code == "XQT"))
    assert name == unicodedata.normalize("NFC", "UBND xã Quảng Trạch")


def test_agency_import_is_all_or_nothing_and_names_row_column_reason(client, session,
                                                                      province):
    login(client, "quantri")
    content = (AGENCIES_CSV + "XA1,UBND xã A,KHONGCO,commune\n"
               "XA2,,QT,huyện lỵ\n").encode()
    response = upload(client, "/admin/agencies/import", content)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Dòng 5, cột “parent”: không có cơ quan mã “KHONGCO”." in html
    assert "Dòng 6, cột “name”: thiếu tên cơ quan." in html
    assert "Dòng 6, cột “level”" in html
    assert "không có dòng nào được lưu" in html
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Agency)) == 3
    assert events(session) == [e for e in events(session) if e.action == "login"]


IMPORT_ERRORS = [
    (b"code,name\nX,\xff\xfe\n", "Dòng 2: tệp không phải UTF-8"),
    (b"code,ten goi\nX,Y\n", "Dòng 1, cột “ten goi”: cột không được hỗ trợ"),
    (b"name\nY\n", "Dòng 1, cột “code”: thiếu cột bắt buộc"),
    (b"code,name\n", "Dòng 2: tệp không có dòng dữ liệu nào"),
    ("code,name\nSNV,Sở Nội vụ\nsnv,Sở Nội vụ\n".encode(),
     "Dòng 3, cột “code”: mã “SNV” đã xuất hiện ở dòng 2"),
    ("code,name,parent\nA,Đơn vị A,B\nB,Đơn vị B,A\n".encode(), "tạo thành vòng lặp"),
    ("code,name,parent\nQT,UBND tỉnh,STP\n".encode(), "tạo thành vòng lặp"),
    ("code,name\nmã sai,Tên\n".encode(), "Dòng 2, cột “code”: mã “mã sai” không hợp lệ"),
    ("code,name,active\nA,Tên,có lẽ\n".encode(), "Dòng 2, cột “active”"),
]


def test_agency_import_errors(client, session, province):
    # One database for all the cases: the checks do not depend on the engine.
    login(client, "quantri")
    for content, message in IMPORT_ERRORS:
        response = upload(client, "/admin/agencies/import", content)
        assert response.status_code == 422, content
        assert message in response.get_data(as_text=True), content
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Agency)) == 3


def test_reimport_updates_and_vietnamese_headers_work(client, session, province):
    login(client, "quantri")
    content = "Mã,Tên đơn vị,Mã cấp trên,Cấp\nSTP,Sở Tư pháp tỉnh Quảng Trị,,\n".encode()
    response = upload(client, "/admin/agencies/import", content)
    assert response.status_code == 303
    session.expire_all()
    stp = session.get(Agency, province["stp"].id)
    assert stp.name == "Sở Tư pháp tỉnh Quảng Trị" and stp.parent.code == "QT"
    [event] = events(session, "agency")
    assert event.before["name"] == "Sở Tư pháp" and event.after["name"] == stp.name


def test_agency_user_import_stays_inside_its_scope(client, session, province):
    login(client, "canbo-stp")
    outside = upload(client, "/admin/agencies/import",
                     "code,name,parent\nSTP-HT,Phòng Hộ tịch,SYT\nSYT,Sở Y tế mới,\n"
                     "TOP,Đơn vị ngoài,\nSTP,Sở Tư pháp,SYT\n".encode())
    html = outside.get_data(as_text=True)
    assert outside.status_code == 422
    assert "Dòng 2, cột “parent”: không có cơ quan mã “SYT”." in html
    assert "Dòng 3, cột “code”: mã “SYT” đã được dùng cho một cơ quan khác." in html
    assert "Dòng 4, cột “parent”: cần mã cơ quan cấp trên" in html
    assert "Dòng 5, cột “parent”: bạn không thể chuyển cơ quan của mình" in html
    inside = upload(client, "/admin/agencies/import",
                    "code,name,parent\nSTP-HT,Phòng Hộ tịch,STP\nSTP,Sở Tư pháp,QT\n".encode())
    assert inside.status_code == 303


COUNTERS_CSV = (
    "agency,label,questionnaire\n"
    "STP,Quầy 1 – Hộ tịch,sipas-service\n"
    "STP,Quầy 2 – Chứng thực,counter-quick\n"
    "SYT,Quầy Dược,\n"
)


def test_counter_import_creates_counters_with_tokens_and_reimport_updates(client, session,
                                                                          province):
    login(client, "quantri")
    response = upload(client, "/admin/counters/import", ("\ufeff" + COUNTERS_CSV).encode())
    assert response.status_code == 303, response.get_data(as_text=True)
    session.expire_all()
    counters = session.scalars(select(Counter).order_by(Counter.label)).all()
    assert [(c.agency.code, c.label, c.questionnaire_id) for c in counters] == [
        ("STP", "Quầy 1 – Hộ tịch", "sipas-service"),
        ("STP", "Quầy 2 – Chứng thực", "counter-quick"),
        ("SYT", "Quầy Dược", "sipas-service")]
    assert all(c.token for c in counters) and len({c.token for c in counters}) == 3
    for counter in counters:
        assert client.get(f"/r/{counter.token}").status_code == 200
    response = upload(client, "/admin/counters/import",
                      "agency,label,active\nSYT,Quầy Dược,0\n".encode())
    assert response.status_code == 303
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Counter)) == 3
    assert session.scalar(select(Counter.active).where(Counter.label == "Quầy Dược")) is False
    assert [e.action for e in events(session, "counter")] == ["import"] * 4


def test_counter_import_errors_name_row_and_column_and_keep_nothing(client, session, province):
    login(client, "canbo-stp")
    content = ("agency,label,questionnaire\n"
               "STP,Quầy 1,sipas-service\n"
               "SYT,Quầy Y tế,sipas-service\n"
               "STP,Quầy 2,phieu-khong-co\n"
               "STP,,\n"
               "STP,Quầy 1,\n").encode()
    response = upload(client, "/admin/counters/import", content)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Dòng 3, cột “agency”: không có cơ quan mã “SYT”." in html  # outside the scope
    assert "Dòng 4, cột “questionnaire”: không có mẫu phiếu “phieu-khong-co”" in html
    assert "Dòng 5, cột “label”: thiếu tên quầy." in html
    assert "Dòng 6, cột “label”: quầy này đã xuất hiện ở dòng 2." in html
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Counter)) == 0


def test_import_takes_files_larger_than_a_form_and_checks_csrf(client, session, province):
    login(client, "quantri")
    rows = "".join(f"STP,Quầy số {n} – Tiếp nhận và trả kết quả hồ sơ đất đai\n"
                   for n in range(1500))
    content = ("agency,label\n" + rows).encode()
    assert len(content) > 64 * 1024
    response = upload(client, "/admin/counters/import", content)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Counter)) == 1500
    no_token = client.post("/admin/counters/import",
                           data={"file": (io.BytesIO(b"agency,label\nSTP,X\n"), "a.csv")},
                           content_type="multipart/form-data")
    assert no_token.status_code == 400


# --- users ------------------------------------------------------------------------------


def test_admin_creates_and_edits_users(client, session, province):
    login(client, "quantri")
    response = post(client, "/admin/users/new", login="CanBo.SYT", name="Lê Văn Cường",
                    role="agency", agency_id=province["syt"].id, password="mat-khau-dai-1",
                    active="y")
    assert response.status_code == 303
    user = session.scalars(select(StaffUser).where(StaffUser.login == "canbo.syt")).one()
    assert user.agency_id == province["syt"].id and user.password_hash != "mat-khau-dai-1"
    missing_agency = post(client, "/admin/users/new", login="canbo2", role="agency",
                          agency_id=0, password="mat-khau-dai-1", active="y")
    assert missing_agency.status_code == 422
    assert "phải thuộc một cơ quan" in missing_agency.get_data(as_text=True)
    short = post(client, "/admin/users/new", login="canbo3", role="analyst", agency_id=0,
                 password="ngan", active="y")
    assert short.status_code == 422
    response = post(client, f"/admin/users/{user.id}/edit", login="canbo.syt",
                    name="Lê Văn Cường", role="analyst", agency_id=0, password="", active="")
    assert response.status_code == 303
    session.expire_all()
    user = session.get(StaffUser, user.id)
    assert (user.role, user.active, user.agency_id) == ("analyst", False, None)
    created, updated = events(session, "staff_user")[-2:]
    assert created.after["password"] == "set"
    assert updated.before["role"] == "agency" and updated.after["active"] is False
    assert all("password_hash" not in (e.after or {}) for e in events(session))
    client.post("/admin/logout", data={"csrf_token": page_token(client)})
    login(client, "canbo.syt", expect=422)  # deactivated


def test_admin_cannot_lock_themselves_out(client, session, province):
    login(client, "quantri")
    me = session.scalar(select(StaffUser).where(StaffUser.login == "quantri"))
    response = post(client, f"/admin/users/{me.id}/edit", login="quantri", role="agency",
                    agency_id=province["stp"].id, password="", active="y")
    assert response.status_code == 422
    session.expire_all()
    assert session.get(StaffUser, me.id).role == "admin"


def test_analyst_sees_the_staff_home_but_no_administration(client, province):
    login(client, "phantich")
    home = client.get("/admin/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert "/admin/agencies" not in html and "/admin/users" not in html
    assert client.get("/admin/agencies").status_code == 403


def test_staff_pages_are_vietnamese_and_without_inline_code(client, session, province,
                                                            make_counter):
    counter = make_counter()
    login(client, "quantri")
    for path in ("/admin/", "/admin/agencies", f"/admin/agencies/{province['stp'].id}",
                 "/admin/agencies/new", "/admin/counters", f"/admin/counters/{counter.id}",
                 "/admin/counters/new", "/admin/agencies/import", "/admin/counters/import",
                 "/admin/users", "/admin/users/new", "/admin/audit"):
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert '<html lang="vi">' in html and "admin.css" in html, path
        assert "<script" not in html and "style=" not in html, path
        for label_for in re.findall(r'<label for="([^"]+)"', html):
            assert f'id="{label_for}"' in html, (path, label_for)


# --- plain words, confirmations, posters of new counters (issue 13) --------------------


def test_revoking_asks_for_confirmation_first(client, session, province, make_counter):
    counter = make_counter()
    login(client, "canbo-stp")
    page = client.get(f"/admin/counters/{counter.id}").get_data(as_text=True)
    # The counter's page links to the confirmation; it holds no revoking form itself.
    assert f'action="/admin/counters/{counter.id}/token/revoke"' not in page
    assert f'href="/admin/counters/{counter.id}/token/revoke"' in page
    confirm = client.get(f"/admin/counters/{counter.id}/token/revoke")
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert f"Thu hồi mã {counter.token}?" in html and "Xác nhận thu hồi mã" in html
    assert "không bao giờ được dùng lại" in html
    session.expire_all()
    assert session.get(Counter, counter.id).tokens[0].revoked_at is None  # nothing yet


def test_counter_import_offers_the_posters_of_just_the_new_counters(client, session,
                                                                      province, make_counter,
                                                                      tmp_path):
    old = make_counter()
    login(client, "canbo-stp")
    response = upload(client, "/admin/counters/import",
                      "agency,label\nSTP,Quầy 3 – Tư pháp\nSTP,Quầy mới A\nSTP,Quầy mới B\n"
                      .encode())
    assert response.status_code == 303
    session.expire_all()
    new = sorted(c.id for c in session.scalars(select(Counter)) if c.id != old.id)
    assert len(new) == 2
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Tệp vừa nhập tạo 2 quầy mới" in page
    link = re.search(r'href="(/admin/posters-A4\.pdf\?ids=[^"]+)"', page).group(1)
    pdf = client.get(link.replace("&amp;", "&"))
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    tokens = {session.get(Counter, i).token for i in new}
    pages = decode_pages(pdf.data, tmp_path)
    assert sorted(code.rsplit("/", 1)[1] for page in pages for code in page) == sorted(tokens)
    # Ids outside the user's scope print nothing; malformed ids are refused.
    assert client.get("/admin/posters-A4.pdf?ids=x,1").status_code == 400
    foreign = make_counter(agency_code="SYT", label="Quầy Y tế")
    page = client.get(f"/admin/counters?new={foreign.id}").get_data(as_text=True)
    assert "Tệp vừa nhập tạo" not in page


def test_agency_import_reads_the_feedback_contact_and_refuses_other_links(client, session,
                                                                          province):
    login(client, "quantri")
    response = upload(client, "/admin/agencies/import",
                      "code,name,Đường dây nóng\nSTP,Sở Tư pháp, 0233\u200b 3822 123 \n"
                      "SNV,Sở Nội vụ,https://snv.quangtri.gov.vn/gop-y\n".encode())
    assert response.status_code == 303, response.get_data(as_text=True)
    session.expire_all()
    contacts = dict(session.execute(select(Agency.code, Agency.feedback_contact)).all())
    assert contacts == {"QT": "", "STP": "0233 3822 123", "SYT": "",
                        "SNV": "https://snv.quangtri.gov.vn/gop-y"}
    # A blank cell keeps what an agency has; a link of another kind is refused.
    assert upload(client, "/admin/agencies/import",
                  b"code,name,feedback_contact\nSTP,S\xe1\xbb\x9f T\xc6\xb0 ph\xc3\xa1p,\n"
                  ).status_code == 303
    session.expire_all()
    assert session.get(Agency, province["stp"].id).feedback_contact == "0233 3822 123"
    refused = upload(client, "/admin/agencies/import",
                     b"code,name,feedback_contact\nSTP,STP,javascript:alert(1)\n")
    assert refused.status_code == 422
    assert "Dòng 2, cột “feedback_contact”: ghi số điện thoại" in refused.get_data(as_text=True)


def test_questionnaires_by_title_and_the_import_example_as_a_table(client, session, province,
                                                                   make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    login(client, "quantri")
    for url in (f"/admin/counters/{counter.id}", f"/admin/counters/{counter.id}/edit",
                f"/admin/agencies/{counter.agency_id}", "/admin/counters/new"):
        html = client.get(url).get_data(as_text=True)
        assert "Đánh giá nhanh việc giải quyết hồ sơ" in html, url
        assert "(counter-quick)" not in html and ">counter-quick<" not in html, url
    html = client.get("/admin/counters/import").get_data(as_text=True)
    assert "<pre>" not in html and "<td>Quầy 1 – Tiếp nhận hồ sơ</td>" in html
    pages = [html] + [client.get(url).get_data(as_text=True) for url in (
        "/admin/agencies/import", "/admin/agencies", f"/admin/agencies/{counter.agency_id}/edit")]
    for page in pages:
        assert "đơn vị" not in page.lower()  # one word for the Agency record: "cơ quan"
