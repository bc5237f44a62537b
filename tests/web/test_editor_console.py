"""The editor console (/editor) in a real browser against a real firstline service."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.app_fixtures import SERVICE
from tests.web.conftest import ConsoleServer, assert_accessible, login, screenshot

pytestmark = pytest.mark.slow

BODY_V1 = "Open **Teams**, choose *Settings → Devices* and pick your camera.\n\n1. Close other apps\n2. Restart Teams"
BODY_V2 = "Unplug the camera, plug it back in, then restart Teams."


def open_editor(page: Any, server: ConsoleServer, route: str = "#/articles") -> None:
    page.goto("about:blank")  # a new load even when only the #route differs
    page.goto(f"{server.url}/editor{route}")
    page.wait_for_selector("body[data-ready=true]")


def test_create_publish_try_and_restore_an_article(console_server: ConsoleServer, context: Any, page: Any) -> None:
    server = console_server
    slug = f"teams-camera-{uuid.uuid4().hex[:6]}"
    article_id = f"{slug}-en"
    page.goto(f"{server.url}/editor")
    page.get_by_label("E-mail").fill("editor@example.com")
    page.get_by_label("Password").fill("firstline-dev")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_role("link", name="New article").click()

    # Problems show up inline while typing, before anything is saved.
    problems = page.get_by_role("list", name="Problems")
    page.get_by_label("Article id").fill(article_id)
    problems.get_by_text("The title is empty.").wait_for()
    page.get_by_label("Title").fill("Teams does not see my camera")
    page.get_by_label("Translation group").fill("password-reset")  # already has an English article
    page.get_by_label("Body (Markdown)").fill(BODY_V1)
    problems.get_by_text("translation group 'password-reset' already has a en article", exact=False).wait_for()
    assert page.get_by_label("Translation group").get_attribute("aria-invalid") == "true"
    page.get_by_label("Translation group").fill(slug)
    page.get_by_label("Example questions").fill(
        "my camera does not work in teams\nteams cannot find my webcam\nvideo is black in a teams call"
    )
    page.get_by_text("No problems found.").wait_for()
    # The preview renders the Markdown as it is typed.
    preview = page.get_by_role("region", name="Preview")
    assert preview.locator("strong").inner_text() == "Teams"
    assert preview.locator("ol li").count() == 2

    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("Saved revision 1", exact=True).wait_for()
    list_item = (
        page.get_by_role("list", name="Articles").get_by_role("link").filter(has_text="Teams does not see my camera")
    )
    list_item.wait_for()
    assert "Published" in list_item.inner_text()

    # "Try a question" finds it straight away, as the bot would.
    page.get_by_role("tab", name="Try a question").click()
    page.get_by_role("searchbox", name="Question").fill("teams does not find my web camera")
    ranking = page.get_by_role("list", name="Ranking")
    ranking.locator(f"li[data-article='{article_id}']").wait_for()
    assert ranking.locator("li").first.get_attribute("data-article") == article_id
    assert page.locator("#try-decision").get_attribute("data-decision") in ("answer", "clarify")
    assert "confidence" in page.locator("#try-result").inner_text()
    page.locator(".toast").first.wait_for(state="detached")  # a clean picture for the README
    screenshot(page, "editor-console")

    # A second revision, then restore the first.
    page.get_by_label("Body (Markdown)").fill(BODY_V2)
    page.get_by_role("button", name="Publish changes").click()
    page.get_by_text("Saved revision 2", exact=True).wait_for()
    page.get_by_role("tab", name="History").click()
    revisions = page.get_by_role("list", name="Revisions, newest first")
    revisions.locator("li[data-revision='2']").wait_for()
    diff = page.get_by_label("Differences")
    assert diff.locator("ins").filter(has_text="Unplug").count() >= 1
    assert diff.locator("del").filter(has_text="Settings").count() >= 1
    screenshot(page, "editor-history")
    page.get_by_role("button", name="Restore revision 1").click()
    page.get_by_text("Restored revision 1", exact=True).wait_for()
    assert page.get_by_label("Body (Markdown)").input_value() == BODY_V1
    revisions.locator("li[data-revision='3']").wait_for()

    with server.api("editor@example.com") as api:
        stored = api.get(f"/api/kb/articles/{article_id}").json()
        assert (stored["revision"], stored["body"], stored["status"]) == (3, BODY_V1, "published")
    found = httpx.get(f"{server.url}/api/kb/search", params={"q": "teams cannot find my webcam", "lang": "en"}).json()
    assert found["results"][0]["article_id"] == article_id
    assert found["results"][0]["body"] == BODY_V1

    # Filters: the new article has no Latvian or Russian translation yet.
    page.get_by_label("Missing translation").select_option("lv")
    page.get_by_label("Search").fill("teams camera")
    list_item.wait_for()
    page.get_by_label("Missing translation").select_option("")
    page.get_by_label("Language").first.select_option("lv")
    list_item.wait_for(state="detached")


def test_translations_side_by_side(console_server: ConsoleServer, context: Any, page: Any) -> None:
    login(context, console_server.url, "editor@example.com")
    open_editor(page, console_server, "#/articles/password-reset-en")
    page.get_by_label("Title").wait_for()
    page.get_by_role("tab", name="Translations").click()
    panel = page.get_by_role("tabpanel", name="Translations")
    panel.get_by_text("Aizmirstas paroles atiestatīšana").wait_for()
    assert panel.get_by_text("Сброс забытого пароля").is_visible()
    # An article without translations offers to write one, prefilled with its group.
    open_editor(page, console_server, "#/articles/printer-add-en")
    page.get_by_label("Title").wait_for()
    page.get_by_role("tab", name="Translations").click()
    page.get_by_role("button", name="Write the Latviešu translation").click()
    page.get_by_role("heading", name="New article").wait_for()
    assert page.get_by_label("Article id").input_value() == "printer-add-lv"
    assert page.get_by_label("Translation group").input_value() == "printer-add"
    assert page.locator("#a-language").input_value() == "lv"


def test_a_content_gap_starts_a_prefilled_article(console_server: ConsoleServer, context: Any, page: Any) -> None:
    server = console_server
    wordings = ["my laptop screen is cracked", "the display of my notebook is broken", "laptop screen cracked"]
    for number, question in enumerate(wordings):
        response = httpx.get(
            f"{server.url}/api/kb/search",
            params={"q": question, "lang": "en", "conversation_id": f"gap-{uuid.uuid4().hex}-{number}"},
            headers=SERVICE,
        )
        assert response.status_code == 200
        httpx.post(
            f"{server.url}/api/kb/feedback",
            json={"query_id": response.json()["query_id"], "outcome": "not_helped"},
            headers=SERVICE,
        )
    login(context, server.url, "editor@example.com")
    open_editor(page, server, "#/gaps")
    gap = page.locator(".gap").filter(has_text="laptop screen is cracked")
    gap.wait_for()
    assert int(gap.locator(".count").inner_text().split()[0]) >= 2
    assert "no answer ×" in gap.inner_text() or "didn't help ×" in gap.inner_text()
    assert_accessible(page)
    gap.get_by_role("button", name="Write an article").click()
    page.get_by_role("heading", name="New article").wait_for()
    questions = page.get_by_label("Example questions").input_value().splitlines()
    assert "my laptop screen is cracked" in questions and len(questions) >= 2
    assert page.locator("#a-language").input_value() == "en"


def test_the_dashboard_draws_its_charts(console_server: ConsoleServer, context: Any, page: Any) -> None:
    server = console_server
    server.create_handoff(language="lv", priority="low")
    login(context, server.url, "editor@example.com")
    open_editor(page, server, "#/dashboard")
    page.get_by_role("heading", name="Conversations per day").wait_for()
    titles = ["Share resolved by the bot", "Handoffs per day", "CSAT per day (1–5)"]
    for title in [*titles, "Top articles", "Top gaps", "Per language"]:
        page.get_by_role("heading", name=title).wait_for()
    assert page.locator("figure.chart svg[role=img]").count() >= 5
    assert int(page.locator(".kpi").filter(has_text="Handoffs").locator(".value").inner_text()) >= 1
    assert_accessible(page)
    screenshot(page, "editor-dashboard")


def test_the_editor_console_is_accessible(console_server: ConsoleServer, context: Any, page: Any) -> None:
    page.goto(f"{console_server.url}/editor")
    page.get_by_label("E-mail").wait_for()
    assert_accessible(page)
    login(context, console_server.url, "editor@example.com")
    open_editor(page, console_server, "#/articles/password-reset-en")
    page.get_by_label("Title").wait_for()
    page.get_by_role("searchbox", name="Question").fill("forgot my password")
    page.locator("#try-decision").wait_for()
    assert_accessible(page)
    page.get_by_role("tab", name="History").click()
    page.get_by_label("Differences").wait_for()
    assert_accessible(page)
    # An agent account cannot use the editor console.
    context.clear_cookies()
    page.reload()
    page.get_by_label("E-mail").fill("agent@example.com")
    page.get_by_label("Password").fill("firstline-dev")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").filter(has_text="needs the editor role").wait_for()
