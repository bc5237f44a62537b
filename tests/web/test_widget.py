"""The chat widget in a real browser against the real system."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_fixtures import REPO
from tests.conftest import missing_system_package

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing_system_package("chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_ask_in_the_widget_and_see_the_answer(running_stack: Any, page: Any) -> None:
    page.goto(f"{running_stack.config.service_url}/?lang=en")
    page.get_by_role("button", name="Open chat").click()
    panel = page.get_by_role("dialog", name="IT Service Desk")
    page.wait_for_selector("#firstline-widget >> section[data-ready=true]")
    box = panel.get_by_role("textbox")
    box.fill("How do I reset my password?")
    box.press("Enter")
    log = panel.get_by_role("log")
    answer = log.locator(".msg.bot").filter(has_text="Reset a forgotten password")
    answer.wait_for(timeout=20_000)
    # Markdown became markup: the portal address is bold, the steps a list.
    assert answer.locator("strong").first.inner_text() == "Reset a forgotten password"
    assert answer.locator("ol li").count() >= 3
    assert log.get_by_role("button", name="Yes, it helped").is_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "widget-answer.png"))

    # The session and the visible history survive a reload.
    page.reload()
    page.get_by_role("dialog", name="IT Service Desk").get_by_role("log").locator(".msg.bot").filter(
        has_text="Reset a forgotten password"
    ).wait_for(timeout=10_000)
