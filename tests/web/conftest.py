"""Browser fixtures for the web tests: Debian's Chromium, a console server, axe-core, screenshots."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from firstline.main import create_app
from handoff.delivery import RasaClient
from kb_index.embedder import Embedder
from tests.app_fixtures import REPO, SAMPLE_ARTICLES, SERVICE, FakeRasa, LiveServer, make_settings
from tests.conftest import missing_system_package

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts"
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "firstline-dev"


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
def context(browser: Any) -> Iterator[Any]:
    # bypass_csp: the consoles forbid inline scripts; the tests inject axe-core as one.
    context = browser.new_context(viewport={"width": 1366, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    """Saves a screenshot under test-artifacts/ (git-ignored); returns its path."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Runs axe-core (from npm) in the page, shadow roots included; the violations of these impacts."""
    if not AXE.is_file():
        pytest.fail("node_modules/axe-core is missing; run `npm ci`", pytrace=False)
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        """async () => {
            const r = await axe.run(document, { resultTypes: ["violations"] });
            return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({ target: n.target, summary: n.failureSummary })) }));
        }"""
    )
    return [v for v in results if v["impact"] in impacts]


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert not violations, json.dumps(violations, indent=2)


def login(context: Any, base_url: str, email: str) -> None:
    """Logs the browser context in through the API (sets the session cookie)."""
    response = context.request.post(f"{base_url}/api/auth/login", data={"email": email, "password": PASSWORD})
    assert response.ok, response.text()


# -- a firstline service for the consoles (no Rasa: a fake records what it was sent) ------------------
@dataclass
class ConsoleServer:
    url: str
    fake_rasa: FakeRasa
    app: Any

    @contextlib.contextmanager
    def api(self, email: str = "agent@example.com") -> Iterator[httpx.Client]:
        """An API client logged in as this account."""
        with httpx.Client(base_url=self.url, timeout=10) as client:
            token = client.post("/api/auth/login", json={"email": email, "password": PASSWORD}).json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"
            yield client

    def create_handoff(self, **overrides: Any) -> dict[str, Any]:
        conversation = overrides.pop("conversation_id", f"web-{uuid.uuid4().hex[:10]}")
        body = {
            "conversation_id": conversation,
            "language": "en",
            "priority": "normal",
            "contact": "maris.ozols@example.com",
            "summary": "Cannot reset my password",
            "transcript": [
                {"role": "user", "text": "How do I reset my password?", "timestamp": "2026-11-22T09:00:00Z"},
                {"role": "bot", "text": "**Reset a forgotten password**\n\nGo to id.example.com …",
                 "timestamp": "2026-11-22T09:00:01Z"},
                {"role": "user", "text": "No", "timestamp": "2026-11-22T09:00:30Z"},
            ],
            "articles_tried": [
                {"article_id": "password-reset-en", "title": "Reset a forgotten password", "score": 0.81},
                {"article_id": "vpn-connect-en", "title": "Connect to the VPN from home", "score": 0.22},
            ],
            "feedback": "1 answer(s) did not help",
            "idempotency_key": f"key-{conversation}",
            **overrides,
        }  # fmt: skip
        response = httpx.post(f"{self.url}/api/handoffs", json=body, headers=SERVICE, timeout=10)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def user_says(self, handoff_id: int, text: str) -> None:
        response = httpx.post(
            f"{self.url}/api/handoffs/{handoff_id}/user-messages", json={"text": text}, headers=SERVICE, timeout=10
        )
        assert response.status_code == 201, response.text


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[ConsoleServer]:
    """One firstline service for all console tests: SQLite, the sample articles, a fake Rasa."""
    fake_rasa = FakeRasa()
    data_dir = tmp_path_factory.mktemp("console") / "data"
    settings = make_settings(data_dir, f"sqlite:///{data_dir.parent / 'firstline.db'}", login_rate_limit=1000)
    rasa = RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(fake_rasa.handler))
    app = create_app(settings, rasa=rasa, embedder=embedder)
    with LiveServer(app) as server:
        app.state.kb.import_articles(SAMPLE_ARTICLES, "test")
        app.state.kb.refresh()
        yield ConsoleServer(server.url, fake_rasa, app)
