"""The JSON API: API keys (hashed, scoped, revocable, audited), receipt codes, volumes."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from survey import receipts
from survey.models import ApiKey, AuditEvent, ReceiptCode, Response, ServiceVolume

from .factories import make_agency
from .staff import login, make_user, page_token
from .test_receipts import answer, stored

API = "/api/v1"


@pytest.fixture
def world(session, make_counter):
    """A province; the key's agency with a child; another agency; a counter in each."""
    province = make_agency(session, "QT", "UBND tỉnh Quảng Trị", level="province")
    own = make_counter("STP", "Sở Tư pháp", "Quầy 1", "counter-quick", parent=province)
    child = make_counter("STP-HT", "Phòng Hộ tịch", "Quầy Hộ tịch", "counter-quick",
                         parent=own.agency)
    other = make_counter("SYT", "Sở Y tế", "Quầy Y tế", "counter-quick", parent=province)
    return own, child, other


def new_key(app, session, agency, label="Một cửa") -> str:
    with app.app_context():
        secret = receipts.new_api_key()
        session.add(ApiKey(agency_id=agency.id, label=label,
                           key_hash=receipts.api_key_hash(secret), prefix=secret[:12]))
        session.commit()
    return secret


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def codes_stored(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(ReceiptCode))


def test_staff_create_a_key_shown_once_stored_hashed_and_audited(app, client, session, world):
    own, _child, other = world
    make_user(session, "canbo", "agency", agency=own.agency)
    login(client, "canbo")
    url = f"/admin/agencies/{own.agency_id}/api-keys"
    page = client.post(url, data={"csrf_token": page_token(client, url),
                                  "label": "Hệ thống một cửa"})
    assert page.status_code == 200
    secret = re.search(r"<code>(sipas_[A-Za-z0-9_-]+)</code>", page.get_data(as_text=True))[1]
    # Shown once: the list afterwards names only its first characters.
    again = client.get(url).get_data(as_text=True)
    assert secret not in again and secret[:12] in again
    session.expire_all()
    key = session.scalars(select(ApiKey)).one()
    assert key.key_hash != secret and secret not in json.dumps(
        [key.key_hash, key.prefix, key.label])
    with app.app_context():
        assert key.key_hash == receipts.api_key_hash(secret)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "issue_api_key")).one()
    assert event.after == {"agency": "STP", "label": "Hệ thống một cửa",
                           "prefix": secret[:12], "active": True}
    assert secret not in json.dumps([event.before, event.after])
    # The key works, then is revoked (audited) and stops working at once.
    assert client.post(f"{API}/counters/{own.id}/receipt-codes",
                       headers=bearer(secret)).status_code == 201
    response = client.post(f"{url}/revoke", data={"csrf_token": page_token(client, url),
                                                  "key_id": str(key.id)})
    assert response.status_code == 303
    refused = client.post(f"{API}/counters/{own.id}/receipt-codes", headers=bearer(secret))
    assert refused.status_code == 401 and refused.json["error"] == "unauthorized"
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "revoke_api_key")) == 1
    # Another agency's keys are out of this user's reach.
    assert client.get(f"/admin/agencies/{other.agency_id}/api-keys").status_code == 404


def test_a_code_from_the_api_admits_one_response(app, client, session, world):
    own, _child, _other = world
    own.requires_receipt = True
    session.commit()
    secret = new_key(app, session, own.agency)
    response = client.post(f"{API}/counters/{own.token.lower()}/receipt-codes",
                           headers=bearer(secret))
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert set(body) == {"code", "url", "expires_at", "counter"}
    assert re.fullmatch(r"[0-9A-Y]{3}-[0-9A-Y]{3}-[0-9A-Y]{3}", body["code"])
    code = receipts.normalize(body["code"])
    assert body["url"] == f"https://hailong.example.vn/r/{own.token}?ma={code}"
    session.expire_all()
    row = session.scalars(select(ReceiptCode)).one()
    assert row.source == "api" and code not in row.code_hash
    assert answer(client, own.token, body["code"]).status_code == 303
    assert answer(client, own.token, body["code"]).status_code == 409
    assert stored(session) == 1


def test_keys_reach_their_agency_and_those_below_only(app, client, session, world):
    own, child, other = world
    secret = new_key(app, session, own.agency)
    assert client.post(f"{API}/counters/{child.id}/receipt-codes",
                       headers=bearer(secret)).status_code == 201
    forbidden = client.post(f"{API}/counters/{other.id}/receipt-codes", headers=bearer(secret))
    assert forbidden.status_code == 403 and forbidden.json["error"] == "forbidden"
    for ident in ("999999", "NOSUCHTOK", "x" * 40):
        missing = client.post(f"{API}/counters/{ident}/receipt-codes", headers=bearer(secret))
        assert missing.status_code == 404 and missing.json["error"] == "not_found"
    assert codes_stored(session) == 1


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer sipas_not-a-key"}, {"Authorization": "Bearer " + "x" * 5000},
])
def test_without_a_valid_key_401_in_json(app, client, session, world, headers):
    own, _child, _other = world
    new_key(app, session, own.agency)
    response = client.post(f"{API}/counters/{own.id}/receipt-codes", headers=headers)
    assert response.status_code == 401 and response.mimetype == "application/json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post(f"{API}/service-volumes", headers=headers,
                       json={"rows": []}).status_code == 401
    assert codes_stored(session) == 0


def test_a_key_of_an_inactive_agency_is_refused(app, client, session, world):
    own, _child, _other = world
    secret = new_key(app, session, own.agency)
    own.agency.active = False
    session.commit()
    assert client.post(f"{API}/counters/{own.id}/receipt-codes",
                       headers=bearer(secret)).status_code == 401


def test_rate_limited_per_key(app, client, session, world):
    own, _child, _other = world
    app.config["API_RATE_PER_MINUTE"] = 3
    first, second = new_key(app, session, own.agency), new_key(app, session, own.agency, "Dự phòng")
    for _ in range(3):
        assert client.post(f"{API}/counters/{own.id}/receipt-codes",
                           headers=bearer(first)).status_code == 201
    limited = client.post(f"{API}/counters/{own.id}/receipt-codes", headers=bearer(first))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    assert limited.json["error"] == "rate_limited"
    # The limit is per key: the agency's other key still works.
    assert client.post(f"{API}/counters/{own.id}/receipt-codes",
                       headers=bearer(second)).status_code == 201
    assert codes_stored(session) == 4


def test_no_csrf_token_or_cookie_is_needed(app, session, world):
    own, _child, _other = world
    app.config["WTF_CSRF_ENABLED"] = True
    secret = new_key(app, session, own.agency)
    client = app.test_client(use_cookies=False)
    assert client.post(f"{API}/counters/{own.id}/receipt-codes",
                       headers=bearer(secret)).status_code == 201


# --- served volumes -----------------------------------------------------------------


def test_volumes_all_rows_or_none(app, client, session, world):
    own, child, other = world
    secret = new_key(app, session, own.agency)
    rows = [{"agency": "STP", "service_field": "1", "period": "2026-Q3", "count": 1250},
            {"agency": "stp-ht", "service_field": 2, "period": "2026-07", "count": "40"}]
    response = client.post(f"{API}/service-volumes", headers=bearer(secret), json={"rows": rows})
    assert response.status_code == 200, response.json
    assert response.json == {"stored": 2, "created": 2, "updated": 0}
    session.expire_all()
    assert {(v.agency_id, v.service_field, v.period, v.transactions)
            for v in session.scalars(select(ServiceVolume))} == {
        (own.agency_id, "1", "2026-Q3", 1250), (child.agency_id, "2", "2026-07", 40)}
    # One bad row (another agency's), one changed: nothing changes, every error is named.
    bad = [{"agency": "STP", "service_field": "1", "period": "2026-Q3", "count": 9},
           {"agency": "SYT", "service_field": "1", "period": "2026-Q3", "count": 5},
           {"agency": "STP", "service_field": "1", "period": "Q3", "count": -1}]
    refused = client.post(f"{API}/service-volumes", headers=bearer(secret), json={"rows": bad})
    assert refused.status_code == 422
    assert {(e["row"], e["field"]) for e in refused.json["errors"]} >= {
        (2, "agency"), (3, "period"), (3, "count")}
    session.expire_all()
    assert sorted(v.transactions for v in session.scalars(select(ServiceVolume))) == [40, 1250]
    assert other.agency_id not in set(session.scalars(select(ServiceVolume.agency_id)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
bad_rows = st.one_of(
    json_values,
    st.lists(st.fixed_dictionaries({}, optional={
        "agency": json_values | st.sampled_from(["STP", "SYT", "=cmd|'/c calc'!A1", ""]),
        "service_field": json_values, "period": json_values | st.just("2026-13"),
        "count": json_values | st.sampled_from([-1, 10**12, "1e3", "12,5", 1.5])}),
        min_size=1, max_size=5),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    json_values,
    st.fixed_dictionaries({"rows": bad_rows}),
    st.fixed_dictionaries({"days": json_values}),
    st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=3)),
    target=st.sampled_from(["volumes", "codes"]))
def test_malformed_json_bodies_get_4xx_and_store_nothing(app, client, session, world, body,
                                                        target):
    own, _child, _other = world
    if not hasattr(app, "_test_key"):
        app._test_key = new_key(app, session, own.agency)
    if target == "volumes":
        url = f"{API}/service-volumes"
        ok = isinstance(body, dict) and set(body) == {"rows"} and isinstance(
            body["rows"], list) and body["rows"] and all(
            isinstance(r, dict) and set(r) == {"agency", "service_field", "period", "count"}
            for r in body["rows"])
    else:
        url = f"{API}/counters/{own.id}/receipt-codes"
        ok = body == {} or isinstance(body, dict) and set(body) == {"days"} and type(
            body["days"]) is int and 1 <= body["days"] <= 365
    before = (codes_stored(session),
              session.scalar(select(func.count()).select_from(ServiceVolume)))
    response = client.post(url, headers=bearer(app._test_key), data=json.dumps(body),
                           content_type="application/json")
    assert response.mimetype == "application/json"
    if ok and response.status_code < 300:
        return  # a body that happens to be valid (rare): stored, as it should be
    assert 400 <= response.status_code < 500, (body, response.status_code, response.json)
    assert "error" in response.json
    after = (codes_stored(session),
             session.scalar(select(func.count()).select_from(ServiceVolume)))
    assert after == before


@pytest.mark.parametrize("data,content_type,status", [
    ("{not json", "application/json", 400),
    ("rows=1", "application/x-www-form-urlencoded", 415),
    ('{"rows": [' + '{"agency": "STP"},' * 20000 + "{}]}", "application/json", 413),
    ("[]", "application/json", 422),
    ('"text"', "application/json", 422),
    ("{}", "application/json", 422),
    # Which count was meant? A key given twice is refused, in the body or in a row.
    ('{"rows": [], "rows": []}', "application/json", 422),
    ('{"rows": [{"agency": "STP", "service_field": "1", "period": "2026", "count": 1, '
     '"count": 2}]}', "application/json", 422),
    ("[" * 3_000 + "]" * 3_000, "application/json", 400),
    (b'{"rows": "\xff"}', "application/json", 400),
])
def test_odd_bodies_on_the_volumes_endpoint(app, client, session, world, data, content_type,
                                            status):
    own, _child, _other = world
    secret = new_key(app, session, own.agency)
    response = client.post(f"{API}/service-volumes", headers=bearer(secret), data=data,
                           content_type=content_type)
    assert response.status_code == status and response.mimetype == "application/json"
    assert session.scalar(select(func.count()).select_from(ServiceVolume)) == 0
    assert stored(session) == 0 and session.scalar(
        select(func.count()).select_from(Response)) == 0


def test_unknown_api_paths_and_crashes_answer_json(app, client, session, world, monkeypatch,
                                                   caplog):
    """Errors under /api are JSON wherever they arise: an unknown path (no view matched), a
    wrong method, and a bug or outage in a view (logged with its traceback, a JSON 500)."""
    own, _child, _other = world
    secret = new_key(app, session, own.agency)
    for response in (client.get(f"{API}/no-such-thing", headers=bearer(secret)),
                     client.get(f"{API}/counters/{own.id}/receipt-codes",
                                headers=bearer(secret))):
        assert response.status_code in (404, 405) and response.mimetype == "application/json"
        assert "<html" not in response.get_data(as_text=True).lower()

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(receipts, "issue_codes", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with caplog.at_level("ERROR"):
        response = client.post(f"{API}/counters/{own.id}/receipt-codes", headers=bearer(secret))
    assert response.status_code == 500 and response.mimetype == "application/json"
    assert any(r.exc_info and "database gone" in str(r.exc_info[1]) for r in caplog.records)
    assert codes_stored(session) == 0
