"""Receipt codes: the codes themselves, the drill (part D of issue 10), staff pages, slips."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import func, select, update

from survey import receipts
from survey.domain import coverage
from survey.models import AuditEvent, ReceiptCode, Response, utcnow

from .conftest import form_fields
from .factories import make_volume
from .staff import login, make_user, page_token
from .test_posters import decode_pages

QUICK = {"overall": "3"}  # the counter-quick form's one required answer: "Rất hài lòng"


def stored(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Response))


@pytest.fixture
def receipt_counter(session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    counter.requires_receipt = True
    session.commit()
    return counter


def issue(app, counter, count=1, days=30):
    with app.app_context():
        from survey.db import get_db

        db = get_db()
        codes, _expires = receipts.issue_codes(db, counter.id, count, "slip", days)
        db.commit()
    return codes


def answer(client, token, code=None, data=QUICK):
    """Open the form (with the code in the link, as the slip's QR code does) and send it."""
    query = "" if code is None else f"?ma={code}"
    page = client.get(f"/r/{token}{query}")
    if page.status_code != 200 or 'id="survey"' not in page.get_data(as_text=True):
        return page
    hidden = form_fields(page.get_data(as_text=True))
    action = re.search(r'<form method="post" action="([^"]+)"', page.get_data(as_text=True))
    return client.post(action.group(1).replace("&amp;", "&"), data={**hidden, **data})


# --- the codes ---------------------------------------------------------------------------


def test_a_new_code_is_nine_symbols_of_the_alphabet_with_its_check():
    for _ in range(200):
        code = receipts.new_code()
        assert len(code) == 9 and set(code) <= set(receipts.ALPHABET)
        assert receipts.well_formed(code)
        assert receipts.normalize(receipts.printed(code)) == code


def test_every_single_typo_and_neighbour_swap_is_caught():
    code = receipts.new_code()
    for i, right in enumerate(code):
        for wrong in receipts.ALPHABET:
            if wrong != right:
                typo = code[:i] + wrong + code[i + 1:]
                assert not receipts.well_formed(typo), typo
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2:]
            assert not receipts.well_formed(swapped), swapped


CONFUSED = {"0": "Oo", "1": "IiLl", "V": "Uu", "2": "Zz"}


codes = st.text(alphabet=receipts.ALPHABET, min_size=8, max_size=8).map(
    lambda body: body + receipts.check_symbol(body))


@given(code=codes, data=st.data())
def test_typed_variants_of_a_code_read_as_the_code(code, data):
    """Lower case, spaces, dashes, full-width forms and look-alike letters all read back."""
    chars = []
    for char in code:
        options = [char, char.lower(), chr(ord(char) + 0xFEE0)] + list(CONFUSED.get(char, ""))
        chars.append(data.draw(st.sampled_from(options)))
        chars.append(data.draw(st.sampled_from(["", "", " ", "-", ".", "\u00a0"])))
    assert receipts.normalize("".join(chars)) == code


@given(st.text(max_size=60))
def test_any_text_is_either_a_code_or_none(text):
    code = receipts.normalize(text)
    assert code is None or (len(code) == 9 and set(code) <= set(receipts.ALPHABET))


# --- the drill, part D: a receipt-code counter ------------------------------------------


def test_without_a_code_the_form_asks_for_one_and_stores_nothing(client, session,
                                                                 receipt_counter):
    page = client.get(f"/r/{receipt_counter.token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Mời ông/bà nhập mã đánh giá" in html and 'name="ma"' in html
    assert 'id="survey"' not in html
    # A POST without a code, built from another counter's page or by hand: the code page.
    response = client.post(f"/r/{receipt_counter.token}", data=QUICK)
    assert response.status_code == 422 and "nhập mã đánh giá" in response.get_data(as_text=True)
    assert stored(session) == 0


def test_the_drill_inflating_without_codes_reused_and_forged_codes_stores_only_valid_ones(
        app, client, session, receipt_counter):
    token = receipt_counter.token
    codes = issue(app, receipt_counter, 5)
    # (D) 30 best-answer submissions without a code: none stored.
    for _ in range(30):
        assert answer(client, token).status_code == 200
    assert stored(session) == 0
    # 30 forged codes, well formed (check symbol right) but never issued: 404, none stored.
    for _ in range(30):
        response = answer(client, token, receipts.new_code())
        assert response.status_code == 404
        assert "Không tìm thấy mã này" in response.get_data(as_text=True)
    assert stored(session) == 0
    # Valid codes: exactly one response each.
    for code in codes:
        assert answer(client, token, code).status_code == 303
    assert stored(session) == 5
    # Each reused: 409 "used", nothing more stored, whether opened fresh or replayed.
    for code in codes:
        response = answer(client, token, receipts.printed(code).lower())
        assert response.status_code == 409
        assert "Mã này đã được dùng" in response.get_data(as_text=True)
    assert stored(session) == 5


def test_one_page_opened_with_a_code_admits_one_response_only(app, client, session,
                                                              receipt_counter):
    """Two pages opened with the same code before either was sent: the second is refused."""
    (code,) = issue(app, receipt_counter)
    token = receipt_counter.token
    first = client.get(f"/r/{token}?ma={code}").get_data(as_text=True)
    second = client.get(f"/r/{token}?ma={code}").get_data(as_text=True)
    assert client.post(f"/r/{token}?ma={code}",
                       data={**form_fields(first), **QUICK}).status_code == 303
    response = client.post(f"/r/{token}?ma={code}", data={**form_fields(second), **QUICK})
    assert response.status_code == 409
    assert stored(session) == 1
    session.expire_all()
    assert session.scalars(select(ReceiptCode.used)).all() == [True]


def test_a_retried_post_with_its_code_is_acknowledged_and_stored_once(app, client, session,
                                                                      receipt_counter):
    (code,) = issue(app, receipt_counter)
    token = receipt_counter.token
    page = client.get(f"/r/{token}?ma={code}").get_data(as_text=True)
    data = {**form_fields(page), **QUICK}
    assert client.post(f"/r/{token}?ma={code}", data=data).status_code == 303
    assert client.post(f"/r/{token}?ma={code}", data=data).status_code == 303
    assert stored(session) == 1


def test_errors_and_language_switch_keep_the_code(app, client, session, receipt_counter):
    (code,) = issue(app, receipt_counter)
    token = receipt_counter.token
    page = client.get(f"/r/{token}?ma={code}").get_data(as_text=True)
    assert re.search(rf'action="/[rR]/{token}\?ma={code}"', page)
    # A missing answer: the page comes back (redirect or directly) still carrying the code.
    response = client.post(f"/r/{token}?ma={code}", data=form_fields(page),
                           follow_redirects=True)
    assert response.status_code == 422
    assert f"?ma={code}" in response.get_data(as_text=True)
    switched = client.post(f"/r/{token.lower()}?ma={code}",
                           data={**form_fields(page), "_lang": "en"}, follow_redirects=True)
    assert switched.status_code == 200
    assert re.search(rf'action="/[rR]/{token}\?ma={code}"', switched.get_data(as_text=True))
    assert 'lang="en"' in switched.get_data(as_text=True)
    assert stored(session) == 0


def test_an_expired_code_is_410_and_another_counters_code_is_unknown(
        app, client, session, receipt_counter, make_counter):
    (old,) = issue(app, receipt_counter)
    session.execute(update(ReceiptCode).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    response = answer(client, receipt_counter.token, old)
    assert response.status_code == 410
    assert "Mã này đã hết hạn" in response.get_data(as_text=True)
    other = make_counter(label="Quầy 4", questionnaire_id="counter-quick")
    other.requires_receipt = True
    session.commit()
    (theirs,) = issue(app, other)
    assert answer(client, receipt_counter.token, theirs).status_code == 404
    assert stored(session) == 0


def test_a_mistyped_code_is_told_so_and_keeps_what_was_typed(app, client, receipt_counter):
    (code,) = issue(app, receipt_counter)
    typo = code[:3] + ("2" if code[3] != "2" else "3") + code[4:]
    response = client.get(f"/r/{receipt_counter.token}?ma={typo}")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "có một ký tự chưa đúng" in html and f'value="{typo}"' in html
    assert client.get(f"/r/{receipt_counter.token}?ma=abc").status_code == 422


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(typed=st.one_of(
    st.text(max_size=50),
    st.sampled_from(["=HYPERLINK(\"x\")", "<script>alert(1)</script>", "' OR 1=1 --",
                     "%00", "\u202e", "A" * 5000, "ＡＢＣ", "ma=1&ma=2"])))
def test_hostile_codes_open_no_form_and_store_nothing(app, client, session, receipt_counter,
                                                      typed):
    """Whatever is typed as a code, no form opens and nothing is stored unless it is a code
    issued to this counter (none is, here)."""
    response = client.get(f"/r/{receipt_counter.token}", query_string={"ma": typed})
    assert 200 <= response.status_code < 500
    assert 'id="survey"' not in response.get_data(as_text=True)
    post = client.post(f"/r/{receipt_counter.token}", query_string={"ma": typed}, data=QUICK)
    assert 200 <= post.status_code < 500 and post.status_code != 303
    assert stored(session) == 0


def test_a_counter_without_the_setting_ignores_codes(client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    assert answer(client, counter.token).status_code == 303
    assert answer(client, counter.token, "whatever").status_code == 303
    assert stored(session) == 2


# --- staff pages ----------------------------------------------------------------------


def test_staff_switch_the_setting_and_print_slips_that_work(app, client, session,
                                                            make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    page = client.get(f"/admin/counters/{counter.id}")
    assert f"/admin/counters/{counter.id}/receipts" in page.get_data(as_text=True)
    token = page_token(client, f"/admin/counters/{counter.id}/receipts")
    response = client.post(f"/admin/counters/{counter.id}/receipts/setting",
                           data={"csrf_token": token, "required": "1"})
    assert response.status_code == 303
    session.expire_all()
    assert session.get(type(counter), counter.id).requires_receipt is True

    response = client.post(f"/admin/counters/{counter.id}/receipts/slips",
                           data={"csrf_token": token, "count": "12", "days": "30"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == 2  # 10 slips per A4 page
    text = "".join(page.extract_text() for page in reader.pages)
    printed = re.findall(r"\b[0-9A-Y]{3}-[0-9A-Y]{3}-[0-9A-Y]{3}\b", text)
    assert len(set(printed)) == 12
    # Only hashes are stored: no printed code appears in the table.
    session.expire_all()
    hashes = set(session.scalars(select(ReceiptCode.code_hash)))
    assert len(hashes) == 12
    codes = [receipts.normalize(p) for p in printed]
    assert not {c for c in codes} & hashes
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "receipt_batch")).all()
    assert [e.after for e in events] == [{"count": 12, "days": 30}]
    # A printed code, typed by hand in lower case with spaces, opens the form and counts once.
    client.post("/admin/logout", data={"csrf_token": token})
    typed = printed[0].lower().replace("-", " ")
    assert answer(client, counter.token, typed).status_code == 303
    assert answer(client, counter.token, typed).status_code == 409
    assert stored(session) == 1


def test_slips_carry_a_qr_code_with_the_code_filled_in(app, make_counter, tmp_path):
    """Every slip's QR code (decoded by zbar from the rendered page) opens the counter's
    form with its own code: ten per page, all different, each matching the printed code."""
    counter = make_counter(label="Quầy 12 – Tiếp nhận và trả kết quả hồ sơ đất đai, nhà ở")
    codes = [receipts.new_code() for _ in range(10)]
    with app.test_request_context():
        pdf = receipts.slips_pdf(counter, codes, utcnow() + timedelta(days=30))
    (page,) = decode_pages(pdf, tmp_path, dpi=150)
    assert sorted(page) == sorted(f"https://hailong.example.vn/r/{counter.token}?ma={code}"
                                  for code in codes)


def test_a_batch_out_of_bounds_is_422_and_issues_nothing(client, session, make_counter):
    counter = make_counter()
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    token = page_token(client, f"/admin/counters/{counter.id}/receipts")
    for count, days in (("0", "30"), ("501", "30"), ("10", "0"), ("x", "30"), ("10", "=1+1")):
        response = client.post(f"/admin/counters/{counter.id}/receipts/slips",
                               data={"csrf_token": token, "count": count, "days": days})
        assert response.status_code == 422, (count, days)
    assert session.scalar(select(func.count()).select_from(ReceiptCode)) == 0


# --- coverage -------------------------------------------------------------------------


def test_coverage_per_agency_and_the_over_100_percent_flag(app, client, session, make_counter):
    counter = make_counter(questionnaire_id="counter-quick")
    for _ in range(3):
        assert answer(client, counter.token).status_code == 303
    label = utcnow().astimezone(coverage.LOCAL_TIME).strftime("%Y-%m")
    make_volume(session, counter.agency_id, "1", label, 2)
    make_volume(session, counter.agency_id, "2", "2020", 400)
    rows = {row.period: row for row in coverage.agency_coverage(session)}
    assert rows[label].responses == 3 and rows[label].served == 2
    assert rows[label].ratio == pytest.approx(150.0) and rows[label].over
    assert rows["2020"].responses == 0 and rows["2020"].ratio == 0 and not rows["2020"].over
    assert [row.period for row in coverage.over_served(session)] == [label]
    assert coverage.agency_coverage(session, agency_ids=set()) == []
    # Shown to staff: the agency's page and (its only counter) the counter's page.
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    warning = "Số phiếu nhiều hơn số hồ sơ đã giải quyết"
    agency_page = client.get(f"/admin/agencies/{counter.agency_id}").get_data(as_text=True)
    assert warning in agency_page and "150,0%" in agency_page
    counter_page = client.get(f"/admin/counters/{counter.id}").get_data(as_text=True)
    assert "150,0%" in counter_page
    receipts_page = client.get(f"/admin/counters/{counter.id}/receipts").get_data(as_text=True)
    assert warning in receipts_page


def test_period_ranges_follow_local_time():
    start, end = coverage.period_range("2026-Q4")
    assert (start.isoformat(), end.isoformat()) == ("2026-09-30T17:00:00+00:00",
                                                    "2026-12-31T17:00:00+00:00")
    assert coverage.period_range("2026-12")[1].isoformat() == "2026-12-31T17:00:00+00:00"
    assert coverage.period_range("2026")[0].isoformat() == "2025-12-31T17:00:00+00:00"
    assert coverage.period_range("Q4") is None and coverage.period_range("2026-13") is None


def test_counter_coverage_counts_codes_issued_as_dossiers(app, client, session,
                                                          receipt_counter, make_counter):
    make_counter(label="Quầy khác")  # two counters: the agency's volume does not split
    codes = issue(app, receipt_counter, 4)
    assert answer(client, receipt_counter.token, codes[0]).status_code == 303
    make_user(session, "quantri", "admin")
    login(client, "quantri")
    html = client.get(f"/admin/counters/{receipt_counter.id}/receipts").get_data(as_text=True)
    assert "25,0%" in html and "4 hồ sơ" in html
