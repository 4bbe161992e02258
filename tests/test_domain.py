"""Shared rules (survey/domain/): the forms, the CSV import and the CLI apply the same ones."""

from __future__ import annotations

import io
import unicodedata

import pytest
from sqlalchemy import func, select

from survey.domain.agencies import MAX_DEPTH, tree_levels, tree_problems
from survey.domain.text import clean
from survey.models import Agency, AuditEvent, Counter, StaffUser

from .factories import make_agency, make_counter, make_province, make_user
from .staff import login, page_token


@pytest.fixture
def province(session):
    province = make_province(session)
    make_user(session, "quantri", "admin")
    make_user(session, "canbo-stp", "agency", agency=province["stp"])
    return province


def post(client, url, **data):
    return client.post(url, data={"csrf_token": page_token(client), **data})


def upload(client, url, text: str):
    return client.post(url, data={"csrf_token": page_token(client),
                                  "file": (io.BytesIO(text.encode()), "data.csv")},
                       content_type="multipart/form-data")


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


# --- text -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, cleaned", [
    ("  Sở  Tư\tpháp \n", "Sở Tư pháp"),
    (unicodedata.normalize("NFD", "Quầy Hộ tịch"), "Quầy Hộ tịch"),
    ("Sở\x00 Y\x07 tế\x9b", "Sở Y tế"),  # C0, C1 and NUL
    ("Quầy\u200b 1\u2060\ufeff", "Quầy 1"),  # zero-width characters, BOM
    ("\u202eQuầy 2\u202c\u200f", "Quầy 2"),  # bidi overrides and marks
    ("Phòng\u00ad Tư pháp\u2028x", "Phòng Tư pháp x"),  # soft hyphen, line separator
    ("\u200b \u00a0\x00", ""),
    (None, ""),
])
def test_clean_strips_controls_and_invisible_formatting(raw, cleaned):
    assert clean(raw) == cleaned
    assert unicodedata.is_normalized("NFC", clean(raw))


# --- the tree ---------------------------------------------------------------------------


def test_tree_levels_depth_height_and_cycles_without_recursion():
    chain = {n: (n - 1 if n else None) for n in range(20_000)}  # far past recursion limits
    depth, height, cyclic = tree_levels(chain)
    assert depth[0] == 1 and depth[19_999] == 20_000 and height[0] == 20_000
    assert not cyclic
    loop = {"A": "B", "B": "C", "C": "A", "D": "A", "E": None}
    depth, height, cyclic = tree_levels(loop)
    assert cyclic == {"A", "B", "C", "D"} and depth == {"E": 1}
    problems = tree_problems({**chain, "x": MAX_DEPTH - 1}, ["x", 3])
    assert set(problems) == {"x", 3} and "tối đa 6 cấp" in problems["x"]


def test_depth_limit_is_the_same_for_the_form_and_the_import(client, session, province):
    # QT (1) > STP (2) > L3 > L4 > L5 > L6: the sixth level is the last one.
    parent = province["stp"]
    for level in range(3, MAX_DEPTH + 1):
        parent = make_agency(session, f"L{level}", f"Cấp {level}", parent=parent, commit=False)
    session.commit()
    login(client, "quantri")
    form = post(client, "/admin/agencies/new", code="L7", name="Cấp 7", parent_id=parent.id,
                level="department")
    assert form.status_code == 422
    assert "cây cơ quan có tối đa 6 cấp" in form.get_data(as_text=True)
    imported = upload(client, "/admin/agencies/import", "code,name,parent\nL7,Cấp 7,L6\n")
    assert imported.status_code == 422
    assert "Dòng 2, cột “parent”: cây cơ quan có tối đa 6 cấp" in imported.get_data(as_text=True)
    # Moving a two-level branch under L5 would put its lower agency on level 7: refused.
    make_agency(session, "SYT-1", "Phòng 1", parent=province["syt"])
    l5 = session.scalar(select(Agency).where(Agency.code == "L5"))
    moved = post(client, f"/admin/agencies/{province['syt'].id}/edit", name="Sở Y tế",
                 parent_id=l5.id, level="department")
    assert moved.status_code == 422
    imported = upload(client, "/admin/agencies/import", "code,name,parent\nSYT,Sở Y tế,L5\n")
    assert imported.status_code == 422
    assert count(session, Agency) == 3 + (MAX_DEPTH - 2) + 1
    session.expire_all()
    assert session.get(Agency, province["syt"].id).parent_id == province["qt"].id
    # One level up is fine, by either way.
    assert upload(client, "/admin/agencies/import",
                  "code,name,parent\nL6B,Cấp 6,L5\n").status_code == 303
    assert post(client, "/admin/agencies/new", code="L6C", name="Cấp 6", parent_id=l5.id,
                level="department").status_code == 303


def test_a_1200_deep_chain_import_is_refused_row_by_row(client, session, province):
    login(client, "canbo-stp")
    rows = [f"D{n},Đơn vị {n},{'STP' if n == 0 else f'D{n - 1}'}" for n in range(1200)]
    response = upload(client, "/admin/agencies/import", "code,name,parent\n" + "\n".join(rows))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.count("cây cơ quan có tối đa 6 cấp") == 1200  # every row, since each one
    # either sits too deep or carries agencies that would
    assert count(session, Agency) == 3


def test_an_existing_deep_tree_still_renders_every_page(client, session, province):
    """Rows stored before the limit (or by hand) must not take the admin pages down."""
    parent = province["stp"]
    rows = []
    for n in range(1200):
        parent = make_agency(session, f"D{n}", f"Đơn vị {n}", parent=parent, commit=False)
        rows.append(parent)
    session.commit()
    counter = make_counter(session, rows[-1], "Quầy sâu")
    for who in ("quantri", "canbo-stp"):
        login(client, who)
        for path in ("/admin/agencies", "/admin/agencies/new", f"/admin/agencies/{rows[-1].id}",
                     f"/admin/agencies/{rows[-1].id}/edit", f"/admin/agencies/{rows[0].id}/edit",
                     "/admin/counters/new", f"/admin/counters/{counter.id}/edit",
                     "/admin/users/new" if who == "quantri" else "/admin/counters"):
            assert client.get(path).status_code == 200, (who, path)
        # Renaming an agency deep down still works: only placing agencies is limited.
        response = post(client, f"/admin/agencies/{rows[-1].id}/edit", name="Đơn vị cuối",
                        parent_id=rows[-2].id, level="department")
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        client.post("/admin/logout", data={"csrf_token": page_token(client)})


# --- one rule for the form, the import and the command line -----------------------------


def test_same_counter_label_means_equal_after_cleaning_in_form_and_import(client, session,
                                                                         province):
    # A label stored in decomposed letters with a double space (an older import, by hand).
    stored = make_counter(session, province["stp"], unicodedata.normalize("NFD", "Quầy  1"))
    login(client, "canbo-stp")
    form = post(client, "/admin/counters/new", agency_id=province["stp"].id, label="Quầy 1",
                questionnaire_id="sipas-service")
    assert form.status_code == 422
    assert "Cơ quan này đã có một quầy cùng tên." in form.get_data(as_text=True)
    # The import sees the same counter: it updates it instead of making a twin.
    imported = upload(client, "/admin/counters/import",
                      "agency,label,questionnaire\nSTP,Quầy 1,counter-quick\n")
    assert imported.status_code == 303
    assert count(session, Counter) == 1
    assert session.get(Counter, stored.id).questionnaire_id == "counter-quick"


@pytest.mark.parametrize("padding, accepted", [("\u200b" * 200, True), ("x" * 200, False)])
def test_form_and_import_measure_a_label_after_cleaning(client, session, province, padding,
                                                        accepted):
    """Invisible characters do not count towards the 200-character limit, in the form as in
    the import; visible ones do, with the same Vietnamese message."""
    login(client, "canbo-stp")
    label = "Quầy" + padding + " 1"
    form = post(client, "/admin/counters/new", agency_id=province["stp"].id, label=label,
                questionnaire_id="sipas-service")
    imported = upload(client, "/admin/counters/import",
                      f"agency,label,questionnaire\nSTP,{label} B,counter-quick\n")
    if accepted:
        assert form.status_code == 303 and imported.status_code == 303
        assert count(session, Counter) == 2
    else:
        assert form.status_code == 422 and imported.status_code == 422
        for page in (form, imported):
            assert "dài quá 200 ký tự" in page.get_data(as_text=True)
        assert count(session, Counter) == 0


def test_admin_tied_to_an_agency_is_refused_by_form_and_cli(client, runner, session,
                                                            province, monkeypatch):
    login(client, "quantri")
    form = post(client, "/admin/users/new", login="quantri2", role="admin",
                agency_id=province["stp"].id, password="mat-khau-dai-1", active="y")
    assert form.status_code == 422
    assert "Quản trị hệ thống không gắn với cơ quan nào." in form.get_data(as_text=True)
    monkeypatch.setenv("SURVEY_NEW_USER_PASSWORD", "mat-khau-dai-1")
    cli = runner.invoke(args=["create-user", "quantri2", "--role", "admin", "--agency", "STP"])
    assert cli.exit_code != 0
    assert "Quản trị hệ thống không gắn với cơ quan nào." in cli.output
    assert session.scalar(select(StaffUser).where(StaffUser.login == "quantri2")) is None
    ok = runner.invoke(args=["create-user", "quantri2", "--role", "admin"])
    assert ok.exit_code == 0, ok.output


def test_own_agency_cannot_be_switched_by_button_or_import(client, session, province):
    login(client, "canbo-stp")
    stp = province["stp"]
    assert post(client, f"/admin/agencies/{stp.id}/active", active="0").status_code == 403
    imported = upload(client, "/admin/agencies/import", "code,name,active\nSTP,Sở Tư pháp,0\n")
    assert imported.status_code == 422
    assert ("Dòng 2, cột “active”: bạn không thể bật hoặc tắt cơ quan của mình."
            in imported.get_data(as_text=True))
    session.expire_all()
    assert session.get(Agency, stp.id).active is True
    # Repeating the current state is not a switch; agencies below may be switched.
    assert upload(client, "/admin/agencies/import",
                  "code,name,parent,active\nSTP,Sở Tư pháp,,1\nSTP-HT,Phòng Hộ tịch,STP,0\n"
                  ).status_code == 303
    session.expire_all()
    assert session.scalar(select(Agency.active).where(Agency.code == "STP-HT")) is False


@pytest.mark.parametrize("blank", ["   ", "\u200b\u200b", "\x00", "\u202e \u00a0"])
def test_blank_names_after_cleaning_are_refused_everywhere(client, session, province, blank):
    counter = make_counter(session, province["stp"], "Quầy 1")
    events = count(session, AuditEvent)
    login(client, "quantri")
    assert post(client, "/admin/agencies/new", code="X", name=blank, parent_id=0,
                level="department").status_code == 422
    assert post(client, f"/admin/agencies/{province['stp'].id}/edit", name=blank,
                parent_id=province["qt"].id, level="department").status_code == 422
    assert post(client, "/admin/counters/new", agency_id=province["stp"].id, label=blank,
                questionnaire_id="sipas-service").status_code == 422
    refused = post(client, f"/admin/counters/{counter.id}/token/revoke", reason=blank,
                   reissue="y")
    assert refused.status_code == 422  # the confirmation page again, with the message
    assert "Vui lòng ghi lý do thu hồi mã" in refused.get_data(as_text=True)
    imported = upload(client, "/admin/agencies/import", f"code,name\nX,{blank}\n")
    assert imported.status_code == 422 and "thiếu tên cơ quan" in imported.get_data(as_text=True)
    imported = upload(client, "/admin/counters/import", f"agency,label\nSTP,{blank}\n")
    assert imported.status_code == 422 and "thiếu tên quầy" in imported.get_data(as_text=True)
    session.expire_all()
    assert count(session, Agency) == 3 and count(session, Counter) == 1
    assert session.get(Agency, province["stp"].id).name == "Sở Tư pháp"
    assert session.get(Counter, counter.id).token == counter.token
    assert count(session, AuditEvent) == events + 1  # the login only


def test_control_characters_never_reach_the_database(client, session, province):
    login(client, "quantri")
    name = "Phòng\x00 Hộ\u200b tịch\u202e\x1b"
    assert post(client, "/admin/agencies/new", code="HT\x00", name=name,
                parent_id=province["stp"].id, level="department").status_code == 303
    assert upload(client, "/admin/counters/import",
                  "agency,label\nHT,Quầy\x07 1\u200d\n").status_code == 303
    session.expire_all()
    agency = session.scalar(select(Agency).where(Agency.code == "HT"))
    assert agency.name == "Phòng Hộ tịch"
    assert session.scalar(select(Counter.label)) == "Quầy 1"


def test_audit_log_words_cover_receipt_codes_api_keys_and_volumes():
    """The audit page shows every action, record type and field in words, not stored ids."""
    from survey import create_app
    from survey.domain import audit as audit_words

    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": "sqlite://"})
    with app.test_request_context():
        for action in ("receipt_batch", "issue_api_key", "revoke_api_key", "import"):
            assert str(audit_words.ACTION_LABELS[action]) != action
        for entity in ("api_key", "service_volume", "counter"):
            assert str(audit_words.ENTITY_LABELS[entity]) != entity
        for field in ("requires_receipt", "count", "days", "prefix", "rows", "periods"):
            assert audit_words.field_label(field) != field
        assert audit_words.value_words("requires_receipt", True) == "Có"
        assert audit_words.value_words("requires_receipt", False) == "Không"
        assert audit_words.value_words("periods", ["2026-07", "2026-08"]) == "2026-07, 2026-08"


def test_staff_forms_speak_the_pages_language_not_wtforms_english(client, session, province):
    """WTForms' own messages (required, not a valid choice) in Vietnamese, or in English on
    an English page: never WTForms' English on a Vietnamese page."""
    login(client, "canbo-stp")
    for lang, required, choice in (("vi", "Vui lòng điền mục này.", "Lựa chọn không hợp lệ."),
                                   ("en", "Please fill in this field.", "Not a valid choice.")):
        client.get(f"/admin/?lang={lang}")
        page = post(client, "/admin/counters/new", agency_id="abc", label="",
                    questionnaire_id="no-such-form")
        html = page.get_data(as_text=True)
        assert page.status_code == 422
        assert required in html and choice in html
        assert "This field is required." not in html
        assert "could not coerce" not in html
    assert count(session, Counter) == 0


def test_two_concurrent_moves_cannot_build_a_loop(app, session, province):
    """Check and write are one step under the tree's lock: while one move that is fine on
    its own waits to commit, a second move that is also fine on its own but closes a loop
    with the first waits, then sees the first and is refused (both engines)."""
    import threading

    from survey.domain.agencies import parent_error

    p0 = make_agency(session, "P0", "P0", parent=province["stp"])
    q0 = make_agency(session, "Q0", "Q0", parent=province["stp"])
    p1 = make_agency(session, "P1", "P1", parent=p0)
    q1 = make_agency(session, "Q1", "Q1", parent=q0)
    maker = app.extensions["survey_db"].sessionmaker
    first_checked, second_done, outcome = threading.Event(), threading.Event(), {}

    def move(agency_id, parent_id, name, hold):
        with app.test_request_context(), maker() as db:  # messages need a locale
            problem = parent_error(db, agency_id, parent_id)
            if hold:
                first_checked.set()
            if problem is None:
                db.get(Agency, agency_id).parent_id = parent_id
                if hold:  # the second move runs meanwhile, up to the lock
                    second_done.wait(timeout=1.5)
                db.commit()
            outcome[name] = problem

    first = threading.Thread(target=move, args=(p0.id, q1.id, "first", True))
    first.start()
    assert first_checked.wait(timeout=20)
    second = threading.Thread(target=lambda: (move(q0.id, p1.id, "second", False),
                                              second_done.set()))
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    assert outcome["first"] is None
    assert outcome["second"] is not None  # P0 is below Q1 now: Q0 under P1 closes a loop
    session.expire_all()
    assert session.get(Agency, p0.id).parent_id == q1.id
    assert session.get(Agency, q0.id).parent_id == province["stp"].id
