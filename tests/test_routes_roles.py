"""Every route × every role gets the expected status: a new route cannot ship unprotected.

The table below lists every non-public endpoint. An endpoint that is in the app but neither
here nor in PUBLIC fails `test_every_endpoint_is_in_the_table`; add it to the table with the
roles that may use it, and the walk checks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from flask import url_for

from .factories import make_agency, make_counter, make_province, make_response
from .staff import login, make_user, page_token

# Endpoints anyone may use, signed in or not (blueprint.* means the whole blueprint).
# api.*: no staff session; every call needs an agency's API key (tests/test_api.py).
PUBLIC = {"respond.*", "static", "healthz", "auth.login", "api.*"}

ALL = ("admin", "agency", "analyst")
STAFF = ("admin", "agency")
ADMIN = ("admin",)


@dataclass(frozen=True)
class Route:
    roles: tuple[str, ...] | None  # None: any visitor, signed in or not (e.g. logout)
    args: dict = field(default_factory=dict)  # fixed URL arguments
    obj: str | None = None  # "agency", "counter", "user", "agency_code": scoped argument
    ok: dict = field(default_factory=lambda: {"GET": 200, "POST": 422})
    data: dict = field(default_factory=dict)  # what a POST sends besides the CSRF token


REDIRECT = {"GET": 303, "POST": 303}
EXPECT = {
    "auth.logout": Route(None, ok={"POST": 303}),
    "admin.dashboard": Route(ALL),
    "admin.agencies": Route(STAFF),
    "admin.agency_new": Route(STAFF),
    "admin.agency": Route(STAFF, obj="agency"),
    "admin.agency_edit": Route(STAFF, obj="agency"),
    "admin.agency_active": Route(STAFF, obj="agency", ok=REDIRECT, data={"active": "1"}),
    "admin.agency_posters": Route(STAFF, {"size": "A5"}, obj="agency"),
    "admin.agency_import": Route(STAFF),
    "admin.counters": Route(STAFF),
    "admin.counter_new": Route(STAFF),
    "admin.counter": Route(STAFF, obj="counter"),
    "admin.counter_edit": Route(STAFF, obj="counter"),
    "admin.counter_active": Route(STAFF, obj="counter", ok=REDIRECT, data={"active": "1"}),
    # GET: the confirmation page; POST: the revocation itself.
    "admin.token_revoke": Route(STAFF, obj="counter", ok={"GET": 200, "POST": 303},
                                data={"reason": "Kiểm tra quyền", "reissue": "y"}),
    # Paper sheets keyed in: a POST without the page's signed submission key is not a
    # sheet keyed in that page: 400 (validation of keyed sheets: tests/test_paper_entry.py).
    "admin.paper_entry": Route(STAFF, obj="counter", ok={"GET": 200, "POST": 400}),
    "admin.token_issue": Route(STAFF, obj="counter", ok=REDIRECT),
    "admin.counter_poster": Route(STAFF, {"size": "A4"}, obj="counter"),
    "admin.counter_qr": Route(STAFF, {"fmt": "png"}, obj="counter"),
    "admin.all_posters": Route(STAFF, {"size": "A4"}),
    "admin.counter_import": Route(STAFF),
    "admin.users": Route(ADMIN),
    "admin.user_new": Route(ADMIN),
    "admin.user_edit": Route(ADMIN, obj="user"),
    "admin.audit_log": Route(ADMIN),
    # Receipt codes and API keys (survey/receipts.py).
    "receipts.counter_receipts": Route(STAFF, obj="counter"),
    "receipts.receipt_setting": Route(STAFF, obj="counter", ok=REDIRECT, data={"required": "1"}),
    # A batch of slips: the PDF itself.
    "receipts.receipt_slips": Route(STAFF, obj="counter", ok={"POST": 200},
                                    data={"count": "2", "days": "30"}),
    # GET: the keys; POST: a new key, shown once on the page.
    "receipts.api_keys": Route(STAFF, obj="agency", ok={"GET": 200, "POST": 200},
                               data={"label": "Một cửa"}),
    "receipts.api_key_revoke": Route(STAFF, obj="agency", ok=REDIRECT, data={"key_id": "1"}),
    # Reports (survey/reports.py): every staff role, each within its agency scope.
    "reports.index": Route(ALL),
    "reports.agency": Route(ALL, obj="agency_code"),
    "reports.download": Route(ALL, {"fmt": "csv"}),
    "reports.methods": Route(ALL),
    "reports.scope_pdf": Route(ALL),
    "reports.agency_pdf": Route(ALL, obj="agency_code"),
    "comments.index": Route(ALL),
    "comments.agency": Route(ALL, obj="agency_code"),
    "comments.download": Route(ALL, {"fmt": "csv"}),
    "reports.responses_download": Route(ALL, {"fmt": "csv"}),
    # No served volumes in the walk's data: nothing was weighted, so nothing to download.
    "reports.volumes_download": Route(ALL, ok={"GET": 404}),
    # Served volumes (survey/volumes.py): the import of the agency's own subtree.
    "volumes.index": Route(STAFF),
}
ROLES = ["anonymous", "admin", "agency", "agency-outside", "analyst"]


def is_public(endpoint: str) -> bool:
    return endpoint in PUBLIC or endpoint.split(".")[0] + ".*" in PUBLIC


def rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_endpoint_is_in_the_table(app):
    unknown = sorted({rule.endpoint for rule, _ in rules(app)
                      if not is_public(rule.endpoint) and rule.endpoint not in EXPECT})
    assert not unknown, (
        f"Endpoints without an access rule in tests/test_routes_roles.py: {unknown}. "
        "Protect them (survey.auth.require_role) and add them to EXPECT, or to PUBLIC.")


@pytest.fixture
def world(session):
    """A province, the agency user's agency with a child, another agency, counters, users."""
    tree = make_province(session)
    own, other = tree["stp"], tree["syt"]
    child = make_agency(session, "STP-HT", "Phòng Hộ tịch", parent=own)
    counters = {agency.code: make_counter(session, agency, label)
                for agency, label in ((child, "Quầy Hộ tịch"), (other, "Quầy Y tế"))}
    # A few responses per counter, so report pages and downloads have something to show.
    for counter in counters.values():
        for value in (4, 5, 2):
            make_response(session, counter, {"field": 1, "a1": value})
    users = {
        "admin": make_user(session, "quantri", "admin"),
        "agency": make_user(session, "canbo-stp", "agency", agency=own),
        "analyst": make_user(session, "phantich", "analyst"),
    }
    inside = {"agency": child.id, "agency_code": child.code,
              "counter": counters["STP-HT"].id, "user": users["agency"].id}
    outside = {"agency": other.id, "agency_code": other.code, "counter": counters["SYT"].id}
    return users, inside, outside


def url_args(app, rule, route, objects):
    args = dict(route.args)
    names = {"agency": "agency_id", "counter": "counter_id", "user": "user_id",
             "agency_code": "code"}
    if route.obj:
        args[names[route.obj]] = objects[route.obj]
    missing = set(rule.arguments) - set(args)
    assert not missing, f"{rule.endpoint}: give values for {missing} in EXPECT"
    return args


def expected(route: Route, role: str, method: str) -> int:
    if route.roles is None:
        return route.ok[method]
    if role == "anonymous":
        return 302
    account = "agency" if role == "agency-outside" else role
    if account not in route.roles:
        return 403
    if role == "agency-outside":
        return 404
    return route.ok[method]


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_as_expected(app, client, world, role):
    users, inside, outside = world
    if role != "anonymous":
        account = "agency" if role == "agency-outside" else role
        login(client, users[account].login)
        token = page_token(client)
    else:
        token = page_token(client, "/admin/login")
    objects = outside if role == "agency-outside" else inside
    # Reads first, then changes; logout last so the session lasts the whole walk.
    walk = sorted(((rule, method) for rule, method in rules(app)
                   if rule.endpoint in EXPECT),
                  key=lambda item: (item[0].endpoint == "auth.logout", item[1] != "GET",
                                    item[0].endpoint))
    mismatches = []
    for rule, method in walk:
        route = EXPECT[rule.endpoint]
        if role == "agency-outside" and route.obj is None:
            continue  # nothing outside the scope to ask for
        if route.obj == "user" and role == "agency-outside":
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **url_args(app, rule, route, objects))
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": token, **route.data})
        want = expected(route, role, method)
        if response.status_code != want:
            mismatches.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, "
                              f"expected {want}")
        if response.status_code == 302:
            assert "/admin/login" in response.headers["Location"]
    assert not mismatches, "\n".join(mismatches)


def test_every_post_route_rejects_a_missing_csrf_token(app, client, world):
    users, inside, _outside = world
    login(client, users["admin"].login)
    failures = []
    for rule, method in rules(app):
        route = EXPECT.get(rule.endpoint)
        if method != "POST" or route is None:
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **url_args(app, rule, route, inside))
        response = client.post(url, data=route.data)
        if response.status_code != 400:
            failures.append(f"POST {url}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("number", ["2147483648", "99999999999", "9" * 30, "0"])
def test_ids_no_row_can_have_are_a_404_never_a_database_error(app, client, world, number):
    """A number beyond the database's integer (PostgreSQL: out of range; SQLite: above
    2^63) in any route, or in a query parameter naming rows, names nothing: 404 or 400."""
    users, _inside, _outside = world
    login(client, users["admin"].login)
    token = page_token(client)
    failures, checked = [], []
    for rule, method in rules(app):
        if "<int:" not in rule.rule:
            continue
        checked.append(rule.rule)
        url = re.sub(r"<int:\w+>", number, rule.rule)
        url = re.sub(r"<(\w+:)?(\w+)>", lambda m: "x", url)  # other arguments: any value
        response = (client.get(url) if method == "GET"
                    else client.post(url, data={"csrf_token": token}))
        if response.status_code != 404:
            failures.append(f"{method} {url}: {response.status_code}")
    for url in (f"/admin/posters-A4.pdf?ids={number}", f"/admin/audit?page={number}",
                f"/admin/agencies/new?parent={number}", f"/admin/counters/new?agency={number}",
                f"/admin/counters?new={number}"):
        status = client.get(url).status_code
        if status not in (200, 400, 404):
            failures.append(f"GET {url}: {status}")
    assert len(checked) > 20 and not failures, "\n".join(failures)


@pytest.mark.parametrize("value", ["%00", "A%00", "2026-Q4%00", "%FF"])
def test_nul_or_invalid_utf8_in_a_staff_query_is_a_4xx_never_a_database_error(
        client, world, value):
    """The reports name a hostile filter on the page (test_reports); a download's agency
    is a 404 or 400 (PostgreSQL refused the NUL with a 500); other staff pages: 400."""
    users, _inside, _outside = world
    login(client, users["admin"].login)
    for path in ("/reports/comments/comments.csv", "/reports/comments/comments.xlsx",
                 "/reports/", "/reports/comments/", "/reports/indices.csv",
                 "/reports/responses.csv"):
        for name in ("agency", "period", "questionnaire", "date_from"):
            response = client.get(f"{path}?{name}={value}")
            assert response.status_code < 500, (path, name, response.status_code)
    for path in ("/admin/", "/admin/counters", "/admin/audit", "/admin/volumes/"):
        assert client.get(f"{path}?page={value}").status_code == 400, path
