"""The report pages printed from the browser: no filter form, menus or buttons; charts
kept whole on a page."""

from __future__ import annotations

import pytest

from .test_last_mile import signed_in_analyst  # noqa: F401 (the fixture)

pytestmark = pytest.mark.browser


# The overview always has the ranking chart; the agency's trend needs two periods, which
# the fixture's responses (all submitted now) do not have.
@pytest.mark.parametrize(("path", "charts"), [
    ("/reports/?questionnaire=sipas-service", 1),
    ("/reports/agency/TTPVHCC?questionnaire=sipas-service", 0)])
def test_print_media_hides_the_form_and_keeps_charts_whole(signed_in_analyst,  # noqa: F811
                                                           screenshot, path, charts):
    page = signed_in_analyst
    assert page.goto(path).status == 200
    assert page.locator("form.filters").is_visible()  # on screen, the form is there
    page.emulate_media(media="print")
    for selector in ("form.filters", "nav.reports-nav", "form.who", "a.report-pdf"):
        assert page.locator(selector).first.is_hidden(), selector
    assert page.locator("button:visible").count() == 0
    shown = page.locator("svg.chart")
    assert shown.count() >= charts
    for index in range(shown.count()):
        chart = shown.nth(index)
        assert chart.is_visible()
        assert chart.evaluate("e => getComputedStyle(e).breakInside") == "avoid"
    table = page.locator("table").first
    assert table.is_visible()
    assert table.evaluate("e => getComputedStyle(e).color") == "rgb(0, 0, 0)"
    screenshot(page, path.split("?")[0].strip("/").replace("/", "-"))
