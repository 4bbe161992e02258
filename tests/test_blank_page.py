"""The questionnaire page served from cached parts is the page the template renders."""

from __future__ import annotations

import re

from flask import render_template
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey import respond
from survey.questionnaires import registry

HOSTILE = st.sampled_from([
    '=cmd|"/c calc"!A1', "+SUM(A1:A9)", "<script>alert(1)</script>", "&amp; \"q\" 'x'",
    "\x00label\x00", "%00token%00", "{{ 7*7 }}", "Quầy 3 – Tư pháp", "",
])
NAMES = HOSTILE | st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
TOKEN = "ABCDEFGHJK"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agency=NAMES, label=NAMES, lang=st.sampled_from(["vi", "en"]),
       questionnaire_id=st.sampled_from(["sipas-service", "counter-quick"]))
def test_the_cached_blank_page_is_the_rendered_page(app, agency, label, lang,
                                                    questionnaire_id):
    with app.test_request_context(f"/r/{TOKEN}?lang={lang}"):
        questionnaire = registry().latest(questionnaire_id)
        counter = respond.CounterView(7, label, questionnaire_id,
                                      respond.AgencyView(3, "STP", agency), usable=True)
        form = respond.new_form(questionnaire, counter.id)
        cached = respond.blank_page(counter, TOKEN, form).decode()
        rendered = render_template(
            "respond/form.html", counter=counter, token=TOKEN, form=form,
            questionnaire=questionnaire, answers=form.raw_answers(), notice=None)
    assert cached == rendered


def test_each_counter_gets_its_own_names_and_a_fresh_key_from_the_shared_parts(
        client, make_counter):
    first = make_counter(agency_name="Sở <Tư> pháp", label="Quầy \"1\"")
    second = make_counter(agency_code="SYT", agency_name="Sở Y tế", label="Quầy 2")
    pages = [client.get(f"/r/{counter.token}").get_data(as_text=True)
             for counter in (first, second, first)]
    assert "Sở &lt;Tư&gt; pháp" in pages[0] and "Quầy &#34;1&#34;" in pages[0]
    assert "Sở Y tế" in pages[1] and "Tư&gt; pháp" not in pages[1]
    assert f'action="/r/{second.token}"' in pages[1]
    keys = [re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
            for page in pages]
    assert len(set(keys)) == 3
    assert all("\x00" not in page and "%00" not in page for page in pages)


# --- the malformed-request check's shortcut for plain ASCII bodies (security.py) ---------

BODY_BYTES = st.binary(max_size=60) | st.lists(
    st.sampled_from([b"a1=4", b"&", b"=", b"+", b"%00", b"%FF", b"%C3%A1", b"\x00", b"\xff",
                     b"%", b"%2", b"x", b"%EF%BF%BD", b"\xc3\xa1", b"csrf_token=a.b-c_d"]),
    max_size=12).map(b"".join)


def _refused(app, body: bytes) -> bool:
    from werkzeug.exceptions import BadRequest

    from survey.security import refuse_malformed_request

    with app.test_request_context(f"/r/{TOKEN}", method="POST", data=body,
                                  content_type="application/x-www-form-urlencoded"):
        try:
            refuse_malformed_request()
        except BadRequest:
            return True
        return False


def _reference(body: bytes) -> bool:
    """Refused when the decoded body is not UTF-8 or a field holds a NUL or U+FFFD."""
    from urllib.parse import parse_qsl, unquote_to_bytes

    try:
        unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return True
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                      errors="replace")
    return any("\x00" in text or "\ufffd" in text for pair in pairs for text in pair)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY_BYTES)
def test_a_posted_body_is_refused_exactly_when_it_decodes_to_nul_or_bad_utf8(app, body):
    assert _refused(app, body) == _reference(body)
