"""Property-based tests: hostile values in the staff forms and CSV imports, on both engines.

Whatever an agency user (or an admin) sends: no 5xx; a refusal is a clear 4xx that stores
nothing (no row, no audit event); what is stored is clean (no control or invisible
characters, no blank names) and stays inside the user's scope and the depth limit.
"""

from __future__ import annotations

import csv
import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from survey.domain.agencies import MAX_DEPTH, contact_error, contact_kind, tree_levels
from survey.domain.text import clean
from survey.models import Agency, AuditEvent, Counter, CounterToken, StaffUser

from .factories import make_agency, make_counter, make_province, make_user
from .staff import csrf_token, login, page_token

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

HOSTILE = [
    "", " ", "\x00", "A\x00B", "\u200b", "\u202eQuầy\u202c", "\ufeffSở", "=HYPERLINK(\"http://x\",\"y\")",
    "+1+1", "-2", "@SUM(A1)", "=1+1", "\t=cmd", "Sở\r\nTư pháp", "\x1b[31m",
    "Quầy 3 – Tư pháp", "Ủy ban nhân dân", "a" * 201, "Ａ", "٤", "STP", "QT", "SYT", "../..",
    "<script>alert(1)</script>", "' OR 1=1 --", "\x85\x9b", "ʼ", "e\u0301",
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from(list("=+-@ \x00\t\r\n\u200b\u202e\u00a0aĐđ1;,\"'")),
            max_size=30),
)
code_text = st.one_of(hostile_text, st.text(alphabet=string.ascii_letters + string.digits
                                            + "._-", min_size=1, max_size=45))
DROPPED = {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7f, 0xa0)} | {
    "\u200b", "\u200d", "\u202e", "\u202c", "\ufeff", "\u2060"}


# What agencies give as their hotline, and what should never be stored as one.
contacts = st.one_of(
    hostile_text,
    st.sampled_from(["0233 3822 123", "+84 233 3822123", "1900.1234", "(0233) 3822-123",
                     "gopy@snv.quangtri.gov.vn", "https://dichvucong.quangtri.gov.vn/gop-y",
                     "javascript:alert(1)", "data:text/html,x", "Tel: 0233 3822 123",
                     "Hộp thư góp ý tầng 1", "x" * 200, "x" * 201, "http://", "mailto:a@b.c"]),
)


def assert_clean_contact(stored: str, sent: str) -> None:
    """A stored contact is the cleaned value sent, short, and links only to what is safe."""
    assert stored == clean(sent) and len(stored) <= 200 and contact_error(stored) is None
    assert not set(stored) & DROPPED
    if stored.lower().startswith(("javascript:", "data:", "mailto:")):
        raise AssertionError(f"a link of another kind was stored: {stored!r}")
    assert contact_kind(stored) in (None, "phone", "email", "url", "text")


def snapshot(session) -> tuple:
    """Everything a refused request must leave as it was."""
    session.expire_all()
    agencies = session.execute(select(Agency.id, Agency.code, Agency.name, Agency.parent_id,
                                      Agency.level, Agency.active, Agency.feedback_contact)
                               .order_by(Agency.id)).all()
    counters = session.execute(select(Counter.id, Counter.agency_id, Counter.label,
                                      Counter.questionnaire_id, Counter.active)
                               .order_by(Counter.id)).all()
    return (tuple(agencies), tuple(counters),
            session.scalar(select(func.count()).select_from(CounterToken)),
            session.scalar(select(func.count()).select_from(AuditEvent)),
            session.scalar(select(func.count()).select_from(StaffUser)))


def assert_clean_tree(session, scope_root_id):
    """Stored names are clean and non-blank; the tree has no cycle and no level > MAX."""
    session.expire_all()
    for name, in session.execute(select(Agency.name)):
        assert name and name == clean(name) and not DROPPED & set(name), name
    for label, in session.execute(select(Counter.label)):
        assert label and label == clean(label) and not DROPPED & set(label), label
    parent_of = dict(session.execute(select(Agency.id, Agency.parent_id)).all())
    depth, _height, cyclic = tree_levels(parent_of)
    assert not cyclic and max(depth.values()) <= MAX_DEPTH


def world(session):
    province = make_province(session)
    qt, stp, syt = province["qt"], province["stp"], province["syt"]
    ht = make_agency(session, "STP-HT", parent=stp)
    counter = make_counter(session, stp, "Quầy 1")
    make_user(session, "quantri", "admin")
    make_user(session, "canbo-stp", "agency", agency=stp)
    return {"qt": qt.id, "stp": stp.id, "syt": syt.id, "ht": ht.id, "counter": counter.id}


def check(session, response, before, ok=(303,)):
    """No 5xx; a refusal changes nothing."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code not in ok:
        assert 400 <= response.status_code < 500
        assert snapshot(session) == before
    return response.status_code in ok


def in_scope(session, ids, agency_id):
    row = session.get(Agency, agency_id)
    while row is not None:
        if row.id == ids["stp"]:
            return True
        row = row.parent
    return False


def test_agency_forms_take_hostile_values(client, session):
    ids = world(session)
    login(client, "canbo-stp")
    token = page_token(client)
    parents = st.one_of(st.sampled_from([ids["stp"], ids["ht"], ids["syt"], ids["qt"], 0]),
                        st.integers(-5, 10_000).map(str), hostile_text)

    @FUZZ
    @given(code=code_text, name=hostile_text, parent=parents,
           level=st.one_of(st.sampled_from(["department", "commune"]), hostile_text),
           edit=st.booleans(), contact=contacts)
    def run(code, name, parent, level, edit, contact):
        before = snapshot(session)
        url = f"/admin/agencies/{ids['ht']}/edit" if edit else "/admin/agencies/new"
        response = client.post(url, data={"csrf_token": token, "code": code, "name": name,
                                          "parent_id": parent, "level": level,
                                          "feedback_contact": contact})
        if check(session, response, before, ok=(303,)):
            assert clean(name)
            stored = session.scalar(select(Agency).where(Agency.name == clean(name))
                                    .order_by(Agency.id.desc()).limit(1))
            assert stored is not None and in_scope(session, ids, stored.id)
            assert_clean_contact(stored.feedback_contact, contact)
        assert_clean_tree(session, ids["stp"])

    run()


def test_activation_switches_follow_the_scope_rules(client, session):
    ids = world(session)
    login(client, "canbo-stp")
    token = page_token(client)

    @FUZZ
    @given(target=st.sampled_from(["stp", "ht", "syt", "qt"]),
           value=st.one_of(st.sampled_from(["0", "1"]), hostile_text))
    def run(target, value):
        before = snapshot(session)
        response = client.post(f"/admin/agencies/{ids[target]}/active",
                               data={"csrf_token": token, "active": value})
        expected = {"stp": 403, "ht": 303, "syt": 404, "qt": 404}[target]
        assert response.status_code == expected
        if expected != 303:
            assert snapshot(session) == before

    run()


def test_counter_forms_take_hostile_values(client, session):
    ids = world(session)
    login(client, "canbo-stp")
    token = page_token(client)

    @FUZZ
    @given(label=hostile_text, reason=hostile_text,
           agency=st.one_of(st.sampled_from([ids["stp"], ids["ht"], ids["syt"]]),
                            hostile_text),
           questionnaire=st.one_of(st.sampled_from(["sipas-service", "counter-quick"]),
                                   hostile_text),
           edit=st.booleans())
    def run(label, reason, agency, questionnaire, edit):
        before = snapshot(session)
        url = f"/admin/counters/{ids['counter']}/edit" if edit else "/admin/counters/new"
        response = client.post(url, data={"csrf_token": token, "label": label,
                                          "agency_id": agency,
                                          "questionnaire_id": questionnaire})
        check(session, response, before)
        before = snapshot(session)
        response = client.post(f"/admin/counters/{ids['counter']}/token/revoke",
                               data={"csrf_token": token, "reason": reason, "reissue": "y"})
        # Revoked (303), or the confirmation page again with the message (422).
        assert response.status_code in (303, 422)
        if clean(reason) and len(reason) <= 200:
            assert response.status_code == 303
        if response.status_code == 422:
            assert snapshot(session) == before
        reasons = session.scalars(select(CounterToken.revoked_reason)
                                  .where(CounterToken.revoked_reason.is_not(None))).all()
        assert all(r and r == clean(r) for r in reasons)
        assert_clean_tree(session, ids["stp"])

    run()


def csv_bytes(rows, header, delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def upload(client, url, token, content: bytes):
    return client.post(url, data={"csrf_token": token, "file": (io.BytesIO(content), "a.csv")},
                       content_type="multipart/form-data")


agency_row = st.tuples(
    st.one_of(code_text, st.sampled_from(["STP", "STP-HT", "SYT", "QT", "N1", "N2"])),
    hostile_text,
    st.one_of(st.sampled_from(["STP", "STP-HT", "SYT", "QT", "N1", "N2", ""]), code_text),
    st.one_of(st.sampled_from(["", "commune", "Cấp xã"]), hostile_text),
    st.one_of(st.sampled_from(["", "0", "1"]), hostile_text),
    contacts,
)


def test_agency_import_takes_hostile_files(client, session):
    ids = world(session)
    login(client, "canbo-stp")
    token = page_token(client)

    @FUZZ
    @given(rows=st.lists(agency_row, min_size=1, max_size=8),
           delimiter=st.sampled_from([",", ";"]), raw=st.none() | st.binary(max_size=200))
    def run(rows, delimiter, raw):
        before = snapshot(session)
        content = raw if raw is not None else csv_bytes(
            rows, ["code", "name", "parent", "level", "active", "feedback_contact"], delimiter)
        response = upload(client, "/admin/agencies/import", token, content)
        if check(session, response, before):
            session.expire_all()
            for agency in session.scalars(select(Agency)):
                if agency.id not in (ids["qt"], ids["syt"]):
                    assert in_scope(session, ids, agency.id), agency.code
                stored = agency.feedback_contact
                assert len(stored) <= 200 and contact_error(stored) is None
                assert not set(stored) & DROPPED
            assert session.get(Agency, ids["stp"]).active is True
        else:
            assert response.status_code == 422
            assert "Dòng " in response.get_data(as_text=True)
        assert_clean_tree(session, ids["stp"])

    run()


def test_counter_import_takes_hostile_files(client, session):
    ids = world(session)
    login(client, "canbo-stp")
    token = page_token(client)
    row = st.tuples(st.one_of(st.sampled_from(["STP", "STP-HT", "SYT", "stp"]), code_text),
                    hostile_text,
                    st.one_of(st.sampled_from(["", "counter-quick"]), hostile_text),
                    st.one_of(st.sampled_from(["", "0", "1"]), hostile_text))

    @FUZZ
    @given(rows=st.lists(row, min_size=1, max_size=8))
    def run(rows):
        before = snapshot(session)
        content = csv_bytes(rows, ["agency", "label", "questionnaire", "active"])
        response = upload(client, "/admin/counters/import", token, content)
        if not check(session, response, before):
            assert response.status_code == 422
        session.expire_all()
        agency_ids = set(session.scalars(select(Counter.agency_id)))
        assert agency_ids <= {ids["stp"], ids["ht"]}
        assert_clean_tree(session, ids["stp"])

    run()


def test_user_form_and_login_take_hostile_values(app, client, session):
    ids = world(session)
    login(client, "quantri")
    token = page_token(client)
    anonymous = app.test_client()
    login_token = csrf_token(anonymous.get("/admin/login"))

    @FUZZ
    @given(login_name=st.one_of(hostile_text, st.sampled_from(["canbo.moi", "QuanTri"])),
           name=hostile_text, role=st.one_of(st.sampled_from(["admin", "agency", "analyst"]),
                                             hostile_text),
           agency=st.one_of(st.sampled_from([0, ids["stp"]]), hostile_text),
           password=st.one_of(st.just("mat-khau-dai-1"), hostile_text),
           next_=hostile_text)
    def run(login_name, name, role, agency, password, next_):
        before = snapshot(session)
        response = client.post("/admin/users/new", data={
            "csrf_token": token, "login": login_name, "name": name, "role": role,
            "agency_id": agency, "password": password, "active": "y"})
        if check(session, response, before):
            user = session.scalars(select(StaffUser).order_by(StaffUser.id.desc())).first()
            assert user.name == clean(user.name) and (user.role == "admin") == (
                user.agency_id is None and user.role == "admin")
        response = anonymous.post("/admin/login", query_string={"next": next_}, data={
            "csrf_token": login_token, "login": login_name, "password": password})
        assert response.status_code in (303, 422, 429)
        if response.status_code == 303:
            assert response.headers["Location"].startswith("/")
            assert not set(response.headers["Location"]) & DROPPED
            anonymous.post("/admin/logout", data={"csrf_token": page_token(anonymous)})

    run()
