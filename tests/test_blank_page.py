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
        cached = respond.blank_page(counter, TOKEN, form)
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
