"""The agent console (/agent) in a real browser against a real firstline service (Rasa faked)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from firstline.db import utcnow
from handoff.models import HandoffRow
from tests.web.conftest import ConsoleServer, assert_accessible, login, screenshot

pytestmark = pytest.mark.slow

#: Replaces the browser's Notification API with one that records what it was asked to show.
FAKE_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = class {
  constructor(title, options) { window.__notifications.push({ title, body: (options || {}).body }); }
  close() {}
  static requestPermission() { return Promise.resolve("granted"); }
};
window.Notification.permission = "granted";
"""


def sent_to_chat(server: ConsoleServer, conversation: str, intent: str, timeout: float = 5.0) -> dict[str, Any]:
    """What the service sent towards this conversation's chat (through the fake Rasa)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in server.fake_rasa.calls:
            if call["body"]["name"] == intent and f"/conversations/{conversation}/" in call["path"]:
                return call
        time.sleep(0.05)
    raise AssertionError(f"{intent} never reached {conversation}")


def open_console(page: Any, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/agent")
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_text("Live", exact=True).wait_for()  # the event stream is open


def test_a_new_handoff_appears_live_and_is_claimed_answered_and_closed(
    console_server: ConsoleServer, context: Any, page: Any
) -> None:
    server = console_server
    context.add_init_script(FAKE_NOTIFICATIONS)
    page.goto(f"{server.url}/agent")
    # Log in through the form; a wrong password is refused with a message.
    page.get_by_label("E-mail").fill("agent@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("alert").filter(has_text="Wrong e-mail or password").wait_for()
    page.get_by_label("Password").fill("firstline-dev")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_text("Live", exact=True).wait_for()
    page.get_by_label("Your status").select_option("online")
    page.get_by_role("button", name="Enable alerts").click()
    page.get_by_role("button", name="Alerts on").wait_for()
    page.evaluate("window.__stillTheSamePage = true")

    # A handoff opened through the API is in the open console within a second, without a reload.
    started = time.monotonic()
    handoff = server.create_handoff(priority="high", contact="ilze.kalnina@example.com")
    item = page.locator(f".queue-item[data-id='{handoff['id']}']")
    item.wait_for(timeout=5_000)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the new handoff took {elapsed:.2f}s to appear"
    assert page.evaluate("window.__stillTheSamePage") is True
    assert item.locator(".badge.prio-high").inner_text() == "High"
    assert item.locator(".badge.lang").inner_text().lower() == "en"
    assert "SLA" in item.locator(".sla").inner_text() and "left" in item.locator(".sla").inner_text()
    assert "waiting" in item.inner_text()
    # ... and raised a browser notification and a sound.
    page.wait_for_function("window.__notifications.length > 0")
    assert page.evaluate("window.__notifications[0].title") == "New conversation waiting"
    assert int(page.evaluate("document.body.dataset.beeps")) >= 2  # the test beep and the alert

    # Claim: the conversation opens in a tab with its transcript and the bot's diagnosis.
    item.get_by_role("button", name="Claim").click()
    panel = page.locator(f"#panel-{handoff['id']}")
    panel.wait_for()
    transcript = panel.get_by_role("log", name="Transcript")
    transcript.locator(".bubble.user").filter(has_text="How do I reset my password?").wait_for()
    assert transcript.locator(".bubble.bot").count() == 1
    details = panel.get_by_label("Conversation details")
    assert "ilze.kalnina@example.com" in details.inner_text()
    assert "password-reset-en · score 0.81" in details.inner_text()
    assert "1 answer(s) did not help" in details.inner_text()
    sent_to_chat(server, handoff["conversation_id"], "EXTERNAL_handoff_claimed")

    # A canned answer from the knowledge base, edited, then sent with Enter.
    panel.get_by_label("Canned answers").fill("forgot password")
    panel.get_by_role("button", name="Insert “Reset a forgotten password”").click()
    reply = panel.get_by_label("Reply to the user")
    assert "choose **Forgot password**" in reply.input_value()
    reply.fill("Hi, Anna here. " + reply.input_value())
    reply.press("Enter")
    mine = transcript.locator(".bubble.agent").filter(has_text="Hi, Anna here.")
    mine.wait_for()
    assert "Anna Agent" in mine.inner_text()
    sent = sent_to_chat(server, handoff["conversation_id"], "EXTERNAL_agent_message")
    assert sent["body"]["entities"]["message"].startswith("Hi, Anna here. Go to https://id.example.com")
    page.get_by_text("Delivered").first.wait_for()

    # The user answers: the new message appears live.
    server.user_says(handoff["id"], "It says my account is locked")
    transcript.locator(".bubble.user").filter(has_text="It says my account is locked").wait_for(timeout=5_000)

    # A waiting conversation past its SLA turns red in the queue.
    late = server.create_handoff(priority="urgent", language="lv", contact="janis@example.com", summary="VPN nestrādā")
    with server.app.state.db.session() as session:
        session.execute(
            update(HandoffRow).where(HandoffRow.id == late["id"]).values(sla_due_at=utcnow() - timedelta(minutes=7))
        )
    server.create_handoff(priority="low", language="ru", contact="olga@example.com", summary="Нужен новый монитор")
    breached = page.locator(f".queue-item[data-id='{late['id']}'] .sla.breached")
    breached.wait_for()
    # The queue re-renders on every event, so these retry until they hold (the element may be replaced).
    expect(breached).to_have_text(re.compile(r"^SLA breached 7 min"))
    expect(breached).to_have_css("color", "rgb(180, 35, 24)")
    screenshot(page, "agent-console")

    # Close with a note.
    panel.get_by_role("button", name="Close", exact=True).click()
    page.get_by_label("Resolution note").fill("Unlocked the account")
    page.get_by_role("button", name="Close conversation").click()
    panel.locator(".badge.status-closed").wait_for()
    sent_to_chat(server, handoff["conversation_id"], "EXTERNAL_handoff_closed")
    with server.api() as api:
        stored = api.get(f"/api/handoffs/{handoff['id']}").json()
    assert stored["status"] == "closed" and stored["resolution_note"] == "Unlocked the account"
    assert page.evaluate("window.__stillTheSamePage") is True


def test_tabs_unread_counts_take_next_transfer_and_release(
    console_server: ConsoleServer, context: Any, page: Any
) -> None:
    server = console_server
    with server.api("admin@example.com") as admin:
        created = admin.post(
            "/api/agents",
            json={"email": f"boris{time.monotonic_ns()}@example.com", "name": "Boris Backup",
                  "password": "a-long-password-1", "languages": ["en", "lv"]},
        )  # fmt: skip
        assert created.status_code == 201, created.text
    first = server.create_handoff(priority="urgent", contact="first@example.com")
    second = server.create_handoff(priority="urgent", contact="second@example.com")
    login(context, server.url, "agent@example.com")
    open_console(page, server)

    # "Take next" claims the most urgent, longest-waiting one; then the other one by its Claim button.
    for handoff in (first, second):
        page.locator(f".queue-item[data-id='{handoff['id']}']").wait_for()
    with server.api() as api:
        expected = api.get("/api/handoffs", params={"status": "queued"}).json()[0]["id"]
    page.get_by_role("button", name="Take next").click()
    page.locator(f"#panel-{expected}").wait_for()
    for handoff in (first, second):
        if handoff["id"] != expected:
            page.locator(f".queue-item[data-id='{handoff['id']}']").get_by_role("button", name="Claim").click()
            page.locator(f"#panel-{handoff['id']}").wait_for()
    page.locator(f"#tab-{second['id']}").click()
    tabs = page.get_by_role("tablist", name="Open conversations")
    assert tabs.get_by_role("tab").count() >= 2
    first_tab = page.locator(f"#tab-{first['id']}")
    assert first_tab.get_attribute("aria-selected") == "false"

    # A message in the background tab raises its unread count; opening the tab clears it.
    server.user_says(first["id"], "Are you still there?")
    first_tab.locator(".badge.count").wait_for()
    assert first_tab.locator(".badge.count").text_content() == "1 unread"
    assert page.title().startswith("(1)")
    first_tab.click()
    page.locator(f"#panel-{first['id']} .bubble.user").filter(has_text="Are you still there?").wait_for()
    assert first_tab.locator(".badge.count").is_hidden()

    # Keyboard: arrow keys move between the conversation tabs.
    first_tab.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == f"tab-{second['id']}"
    assert page.locator(f"#panel-{second['id']}").is_visible()

    # Transfer the second conversation to Boris; release the first back to the queue.
    page.locator(f"#panel-{second['id']}").get_by_role("button", name="Transfer").click()
    page.get_by_label("Agent", exact=True).select_option(label="Boris Backup — offline")
    page.get_by_label("Note for the transcript (optional)").fill("Boris knows the printers")
    page.get_by_role("dialog", name="Transfer to another agent").get_by_role("button", name="Transfer").click()
    page.locator(f"#panel-{second['id']} .badge.status-assigned").filter(has_text="With Boris Backup").wait_for()
    page.locator(f"#panel-{second['id']} .bubble.system").filter(has_text="Transferred to Boris Backup").wait_for()
    assert page.locator(f"#panel-{second['id']} form.composer").is_hidden()

    first_tab.click()
    page.locator(f"#panel-{first['id']}").get_by_role("button", name="Release").click()
    page.locator(f"#panel-{first['id']} .badge.status-queued").wait_for()
    page.locator(f"#queue-list .queue-item[data-id='{first['id']}']").wait_for()
    sent_to_chat(server, first["conversation_id"], "EXTERNAL_handoff_released")

    # Tabs survive a reload.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.locator(f"#tab-{first['id']}").wait_for()
    page.locator(f"#tab-{second['id']}").wait_for()


def test_what_users_typed_is_shown_as_text_and_no_script_runs(
    console_server: ConsoleServer, context: Any, page: Any
) -> None:
    server = console_server
    image = '<img src=x onerror="window.__xss=1">'
    script = "<script>window.__xss=2</script>"
    handoff = server.create_handoff(
        summary=f"{image} {script}",
        contact="x@example.com",
        transcript=[
            {"role": "user", "text": image, "timestamp": "2026-11-22T09:00:00Z"},
            {"role": "bot", "text": f"You said {script}", "timestamp": "2026-11-22T09:00:01Z"},
        ],
        articles_tried=[{"article_id": "x", "title": f"{image}", "score": 0.5}],
        feedback=script,
    )
    login(context, server.url, "agent@example.com")
    open_console(page, server)
    item = page.locator(f".queue-item[data-id='{handoff['id']}']")
    item.wait_for()
    assert item.locator(".summary").inner_text() == f"{image} {script}"
    item.get_by_role("button", name="Claim").click()
    panel = page.locator(f"#panel-{handoff['id']}")
    panel.locator(".bubble.user").first.wait_for()
    server.user_says(handoff["id"], script)
    panel.locator(".bubble.user").nth(1).wait_for()

    texts = panel.locator(".bubble.user .text").all_inner_texts()
    assert texts == [image, script]
    assert panel.locator(".bubble.bot .text").inner_text() == f"You said {script}"
    assert script in panel.get_by_label("Conversation details").inner_text()
    # No element was made from the text: no image, no script in the page body.
    assert page.locator("#app img").count() == 0
    assert page.locator("#app script").count() == 0
    page.wait_for_timeout(300)  # give a broken image's onerror its chance to fire
    assert page.evaluate("typeof window.__xss") == "undefined"
    screenshot(page, "agent-console-xss")


def test_the_agent_console_is_accessible(console_server: ConsoleServer, context: Any, page: Any) -> None:
    server = console_server
    page.goto(f"{server.url}/agent")
    page.get_by_label("E-mail").wait_for()
    assert_accessible(page)  # the login form

    handoff = server.create_handoff(priority="urgent", contact="axe@example.com")
    login(context, server.url, "agent@example.com")
    open_console(page, server)
    page.locator(f".queue-item[data-id='{handoff['id']}']").get_by_role("button", name="Claim").click()
    page.locator(f"#panel-{handoff['id']} .bubble.user").first.wait_for()
    page.locator(f"#panel-{handoff['id']}").get_by_label("Canned answers").fill("vpn")
    page.locator(f"#panel-{handoff['id']} .canned-results li").first.wait_for()
    assert_accessible(page)
    screenshot(page, "agent-console-axe")

    # The close dialog too, and Escape leaves it.
    page.locator(f"#panel-{handoff['id']}").get_by_role("button", name="Close", exact=True).click()
    page.get_by_role("dialog", name="Close the conversation").wait_for()
    assert_accessible(page)
    page.keyboard.press("Escape")
    page.get_by_role("dialog", name="Close the conversation").wait_for(state="hidden")
