"""Headless Chromium (Debian's) driving the real app served on 127.0.0.1 over SQLite."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bench.live import LiveApp
from survey.models import Response

CHROMIUM = os.environ.get("SURVEY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
PHONE = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 1}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
DEVICES = {"phone": PHONE, "desktop": DESKTOP}


@pytest.fixture(scope="session")
def live():
    with LiveApp() as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip("Chromium is not installed (./dev test installs it)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def new_page(browser, live, request):
    """Open a page in a fresh context: a new phone or desktop, JavaScript on or off.

    Vietnamese is the phone's language unless ``locale`` says otherwise. Pages are closed
    with their context at the end of the test.
    """
    contexts = []

    def open_(device="phone", javascript=True, locale="vi-VN", **options):
        context = browser.new_context(**DEVICES[device], java_script_enabled=javascript,
                                      locale=locale, base_url=live.base_url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request):
    """Keep a full-page screenshot in test-artifacts/browser/ (named after the test)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name.removeprefix("test_")).strip("_")

    def shoot(page, step):
        path = ARTIFACTS / f"{base}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shoot


def stored_response(live, submission_key: str) -> Response | None:
    """The response saved from one page view (its hidden submission key), with answers."""
    # The page's key is "nonce.issued.signature" (integrity.py); the response keeps the nonce.
    nonce = submission_key.split(".")[0]
    with live.session() as session:
        return session.scalar(
            select(Response)
            .where(Response.submission_key == nonce)
            .options(selectinload(Response.answers))
        )


def stored_answers(response: Response) -> dict:
    """question id -> code, sorted list of codes (several rows), or text."""
    out: dict = {}
    for answer in response.answers:
        value = answer.text if answer.value is None else answer.value
        if answer.question_id in out:
            previous = out[answer.question_id]
            out[answer.question_id] = sorted(
                (previous if isinstance(previous, list) else [previous]) + [value])
        else:
            out[answer.question_id] = value
    return out
