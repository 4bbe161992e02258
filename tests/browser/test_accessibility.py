"""axe-core on every public page, tap targets, and the page budget as the browser loads it."""

from __future__ import annotations

import json

import pytest
from axe_playwright_python.base import AXE_FILE_PATH

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

# axe-core comes from the PyPI package axe-playwright-python (the test extra), which ships
# axe.min.js: injected from disk, never fetched from a CDN while testing.

BLOCKING = ("serious", "critical")


def open_service(page, live):
    page.goto(f"/r/{live.tokens['service']}")


def errors_shown(page, live):
    page.goto(f"/r/{live.tokens['service']}")
    with page.expect_navigation():
        page.locator("button.send").click()


def quick_not_satisfied(page, live):
    page.goto(f"/r/{live.tokens['quick']}")
    page.locator("#q-overall label:has(input[value='1'])").click()
    page.locator("#s-quick summary").click()


def thank_you(page, live):
    page.goto(f"/r/{live.tokens['quick']}")
    page.locator("#q-overall label:has(input[value='3'])").click()
    with page.expect_navigation():
        page.locator("button.send").click()
    assert page.url.endswith("/cam-on")


PAGES = {
    "questionnaire-vi": (open_service, {}),
    "questionnaire-vi-noscript": (open_service, {"script": False}),
    "questionnaire-en": (open_service, {"locale": "en-US"}),
    "quick-form": (lambda page, live: page.goto(f"/r/{live.tokens['quick']}"), {}),
    "errors-shown": (errors_shown, {}),
    "errors-shown-noscript": (errors_shown, {"script": False}),
    "quick-not-satisfied": (quick_not_satisfied, {}),
    "thank-you": (thank_you, {}),
    "404": (lambda page, live: page.goto("/r/ZZZZZZZZZZ"), {}),
    "410": (lambda page, live: page.goto(f"/r/{live.tokens['revoked']}"), {}),
    "home": (lambda page, live: page.goto("/"), {}),
    "paper-form": (lambda page, live: page.goto(f"/r/{live.tokens['service']}/phieu"), {}),
}


def run_axe(page) -> dict:
    # Injected from the file into a context that bypasses the page's CSP (which forbids
    # inline scripts, as it should): only these runs bypass it.
    page.add_script_tag(path=str(AXE_FILE_PATH))
    return page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")


@pytest.mark.parametrize("name", PAGES)
def test_axe_reports_no_serious_or_critical_violation(new_page, live, name):
    open_, options = PAGES[name]
    options = dict(options)
    script = options.pop("script", True)
    page = new_page("phone", bypass_csp=True, **options)
    if not script:
        # axe itself needs JavaScript: the page as it is without JavaScript is the page
        # without our script (nothing else on it runs).
        page.route("**/survey.js", lambda route: route.abort())
    open_(page, live)
    results = run_axe(page)
    folder = ARTIFACTS.parent / "axe"
    folder.mkdir(parents=True, exist_ok=True)
    violations = results["violations"]
    (folder / f"{name}.json").write_text(json.dumps(violations, indent=1, ensure_ascii=False))
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    report = "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:5])
        for v in blocking
    )
    assert not blocking, f"axe on {name}:\n{report}"


@pytest.mark.parametrize("name", ["questionnaire-vi", "errors-shown", "quick-not-satisfied",
                                  "thank-you"])
def test_tap_targets_are_at_least_44px(new_page, live, name):
    open_, options = PAGES[name]
    page = new_page("phone", **options)
    open_(page, live)
    small = page.evaluate("""() => {
        const out = [];
        const targets = 'main label, main button, main a, textarea, main summary';
        for (const el of document.querySelectorAll(targets)) {
            const box = el.getBoundingClientRect();
            if (box.width === 0 && box.height === 0) continue;  // hidden
            if (el.classList.contains('default-submit')) continue;  // off-screen, Enter only
            if (box.height < 44 || box.width < 44)
                out.push(`${el.tagName} "${el.textContent.trim().slice(0, 40)}" `
                         + `${Math.round(box.width)}x${Math.round(box.height)}`);
        }
        return out;
    }""")
    assert not small, "tap targets under 44 px: " + "; ".join(small)


def test_page_budget_as_the_browser_loads_it(new_page, live):
    page = new_page("phone")
    loaded = []
    page.on("requestfinished", lambda request: loaded.append(request))
    page.goto(f"/r/{live.tokens['service']}", wait_until="load")
    sizes = [(r.url, r.sizes()) for r in loaded]
    total = sum(s["responseBodySize"] + s["responseHeadersSize"] for _, s in sizes)
    assert len(sizes) <= 3, [url for url, _ in sizes]
    assert total <= 14 * 1024, f"{total} bytes: {sizes}"
    assert not [url for url, _ in sizes if any(ext in url for ext in (".woff", ".ttf", ".otf"))]
    assert page.evaluate("document.fonts.size") == 0  # no @font-face: system fonts only
