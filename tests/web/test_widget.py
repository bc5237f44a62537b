"""The chat widget in a real browser against the real system (firstline service, Rasa, actions)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.conftest import PASSWORD, assert_accessible, screenshot

pytestmark = pytest.mark.slow

BOT_REPLY = 30_000  # ms: the first answer of a fresh Rasa can take a while on a busy machine


@pytest.fixture
def agent_api(running_stack: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running_stack.config.service_url, timeout=10) as client:
        token = client.post("/api/auth/login", json={"email": "agent@example.com", "password": PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {token['token']}"
        yield client


def open_widget(page: Any, stack: Any, lang: str = "en") -> Any:
    page.goto(f"{stack.config.service_url}/?lang={lang}")
    page.locator("#firstline-widget .launcher").click()
    page.wait_for_selector("#firstline-widget >> section[data-ready=true]")
    return page.locator("#firstline-widget section.panel")


def ask(panel: Any, text: str) -> None:
    box = panel.get_by_role("textbox")
    box.fill(text)
    box.press("Enter")


def focused(page: Any) -> dict[str, Any]:
    """The focused element, looking inside the widget's shadow root."""
    return dict(
        page.evaluate(
            """() => {
            let el = document.activeElement;
            while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
            const style = el ? getComputedStyle(el) : null;
            return { tag: el && el.tagName.toLowerCase(), cls: el && el.className, text: el && el.textContent,
                     label: el && el.getAttribute("aria-label"),
                     outline: style ? style.outlineStyle + " " + style.outlineWidth : "" };
        }"""
        )
    )


def go_through_the_handoff_form(page: Any, log: Any) -> None:
    """Answers the bot's handoff questions (e-mail, urgency, a summary) in whatever order it asks."""
    opened = log.locator(".msg[data-kind=handoff_opened]")
    answered: set[str] = set()
    deadline = time.monotonic() + 90
    while not opened.count():
        assert time.monotonic() < deadline, log.inner_text()
        last = log.locator(".msg").last
        high = last.get_by_role("button", name="High", exact=True)
        suggestion = last.get_by_role("button", name=re.compile("^Use: "))
        text = last.inner_text()
        if "e-mail address" in text and "email" not in answered:
            answered.add("email")
            ask(log.locator("xpath=.."), "maris.ozols@example.com")
        elif high.count() and high.is_enabled():
            high.click()
        elif suggestion.count() and suggestion.first.is_enabled():
            suggestion.first.click()
        else:
            page.wait_for_timeout(200)  # waiting for the bot's next question
    assert "queue" in opened.inner_text()


def session_id(page: Any) -> str:
    return str(json.loads(page.evaluate("localStorage.getItem('firstline:session')")))


def test_ask_in_the_widget_and_see_the_answer(running_stack: Any, page: Any) -> None:
    page.goto(f"{running_stack.config.service_url}/?lang=en")
    page.get_by_role("button", name="Open chat").click()
    panel = page.get_by_role("dialog", name="IT Service Desk")
    page.wait_for_selector("#firstline-widget >> section[data-ready=true]")
    box = panel.get_by_role("textbox", name="Your message")
    box.fill("How do I reset my password?")
    box.press("Enter")
    log = panel.get_by_role("log")
    answer = log.locator(".msg.bot").filter(has_text="Reset a forgotten password")
    answer.wait_for(timeout=BOT_REPLY)
    # Markdown became markup: the portal address is bold, the steps a list.
    assert answer.locator("strong").first.inner_text() == "Reset a forgotten password"
    assert answer.locator("ol li").count() >= 3
    log.get_by_role("button", name="Yes, it helped").wait_for()
    assert_accessible(page)
    screenshot(page, "widget-answer")

    # The session and the visible history survive a reload.
    page.reload()
    page.get_by_role("dialog", name="IT Service Desk").get_by_role("log").locator(".msg.bot").filter(
        has_text="Reset a forgotten password"
    ).wait_for(timeout=10_000)


def test_handoff_agent_reply_close_and_rating(running_stack: Any, agent_api: httpx.Client, page: Any) -> None:
    assert agent_api.put("/api/me/status", json={"status": "online"}).status_code == 200
    panel = open_widget(page, running_stack)
    log = panel.get_by_role("log")
    ask(panel, "How do I reset my password?")
    log.get_by_role("button", name="No", exact=True).click(timeout=BOT_REPLY)
    log.locator(".msg.user").filter(has_text="No").wait_for()
    log.get_by_role("button", name="Talk to a person").click(timeout=BOT_REPLY)
    go_through_the_handoff_form(page, log)

    # The agent finds the conversation in the queue and claims it.
    conversation = session_id(page)
    queued = agent_api.get("/api/handoffs", params={"status": "queued"}).json()
    (handoff,) = [h for h in queued if h["conversation_id"] == conversation]
    assert handoff["priority"] == "high" and handoff["contact"] == "maris.ozols@example.com"
    assert agent_api.post(f"/api/handoffs/{handoff['id']}/claim").status_code == 200
    log.locator(".msg.notice").filter(has_text="Anna Agent has joined the conversation.").wait_for(timeout=BOT_REPLY)

    # The agent's reply arrives with the agent's name.
    reply = agent_api.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "Hi, Anna here. Let me check."})
    assert reply.status_code == 201
    from_agent = log.locator(".msg.agent").filter(has_text="Hi, Anna here. Let me check.")
    from_agent.wait_for(timeout=BOT_REPLY)
    assert from_agent.locator(".who").inner_text() == "Anna Agent"

    # What the user writes now goes to the agent, and the bot stays silent.
    ask(panel, "It says my account is locked")
    deadline = time.monotonic() + 20
    while True:
        messages = agent_api.get(f"/api/handoffs/{handoff['id']}").json()["messages"]
        if messages[-1]["text"] == "It says my account is locked":
            break
        assert time.monotonic() < deadline, messages[-3:]
        time.sleep(0.2)
    screenshot(page, "widget")

    # The agent closes; the bot is back and asks for a rating.
    closed = agent_api.post(f"/api/handoffs/{handoff['id']}/close", json={"note": "Unlocked the account"})
    assert closed.status_code == 200
    log.locator(".msg.notice").filter(has_text="closed the conversation").wait_for(timeout=BOT_REPLY)
    log.get_by_role("button", name="5", exact=True).click(timeout=BOT_REPLY)
    log.locator(".msg.user").filter(has_text="5").wait_for()
    log.locator(".msg.bot").filter(has_text="Thank you").wait_for(timeout=BOT_REPLY)
    deadline = time.monotonic() + 20
    while agent_api.get(f"/api/handoffs/{handoff['id']}").json()["rating"] != 5:
        assert time.monotonic() < deadline, "the rating was never stored"
        time.sleep(0.2)
    screenshot(page, "widget-rated")


def test_keyboard_only_use_of_the_widget(running_stack: Any, page: Any) -> None:
    page.goto(f"{running_stack.config.service_url}/?lang=en")
    page.wait_for_selector("#firstline-widget >> .launcher")
    # Tab through the page until the chat button has the focus, then open it with Enter.
    for _ in range(15):
        page.keyboard.press("Tab")
        if focused(page)["label"] and focused(page)["label"].startswith("Open chat"):
            break
    else:
        raise AssertionError("Tab never reached the chat button")
    assert focused(page)["outline"].split()[0] != "none", "the focused chat button shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_selector("#firstline-widget >> section[data-ready=true]")
    assert focused(page)["tag"] == "textarea"

    page.keyboard.type("How do I reset my password?")
    page.keyboard.press("Enter")
    panel = page.locator("#firstline-widget section.panel")
    panel.get_by_role("button", name="No", exact=True).wait_for(timeout=BOT_REPLY)
    # From the message box, Shift+Tab reaches the newest buttons: "No", then "Yes, it helped".
    page.keyboard.press("Shift+Tab")
    assert focused(page)["text"] == "No"
    assert focused(page)["outline"].split()[0] != "none", "the focused button shows no focus ring"
    page.keyboard.press("Shift+Tab")
    assert focused(page)["text"] == "Yes, it helped"
    page.keyboard.press("Enter")
    # The pressed button is disabled; the focus goes back to the message box.
    assert focused(page)["tag"] == "textarea"
    panel.locator(".msg.user").filter(has_text="Yes, it helped").wait_for()
    panel.locator(".msg.bot").filter(has_text="glad").wait_for(timeout=BOT_REPLY)

    # The language switcher and the minimise button are reachable too; Escape minimises.
    for _ in range(40):
        page.keyboard.press("Shift+Tab")
        if focused(page)["tag"] == "select":
            break
    assert focused(page)["tag"] == "select"
    page.keyboard.press("Escape")
    assert panel.is_hidden()
    assert (focused(page)["label"] or "").startswith("Open chat")
    page.keyboard.press("Enter")
    assert panel.is_visible() and focused(page)["tag"] == "textarea"


@pytest.mark.parametrize(
    ("lang", "title", "message", "send", "restart"),
    [
        ("lv", "IT atbalsts", "Jūsu ziņa", "Sūtīt", "Jauna saruna"),
        ("ru", "Служба поддержки", "Ваше сообщение", "Отправить", "Новый разговор"),
    ],
)
def test_the_widget_speaks_the_page_language(
    running_stack: Any, page: Any, lang: str, title: str, message: str, send: str, restart: str
) -> None:
    open_widget(page, running_stack, lang)
    panel = page.get_by_role("dialog", name=title)
    assert panel.get_attribute("lang") == lang
    assert panel.get_by_role("textbox", name=message).is_visible()
    assert panel.get_by_role("button", name=send).is_visible()
    assert panel.get_by_role("combobox").input_value() == lang
    assert_accessible(page)
    # "New conversation" starts over with a new session.
    before = session_id(page)
    ask(panel, "Sveiki" if lang == "lv" else "Привет")
    panel.locator(".msg.bot").first.wait_for(timeout=BOT_REPLY)
    panel.get_by_role("button", name=restart).click()
    assert panel.locator(".msg").count() == 0
    assert session_id(page) != before
    page.wait_for_selector("#firstline-widget >> section[data-ready=true]")


def test_a_long_article_on_a_phone_is_shown_from_its_beginning(running_stack: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        panel = open_widget(page, running_stack)
        box = panel.bounding_box()
        assert box is not None and box["width"] <= 360 and box["x"] >= 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ask(panel, "How do I reset my password?")
        log = panel.get_by_role("log")
        log.get_by_role("button", name="No", exact=True).wait_for(timeout=BOT_REPLY)
        article = log.locator(".msg.bot.article").last
        article_box, log_box = article.bounding_box(), log.bounding_box()
        assert article_box is not None and log_box is not None
        assert article_box["height"] > log_box["height"], "the article should be longer than the screen"
        # Its title is in view, not its end.
        assert log_box["y"] - 1 <= article_box["y"] <= log_box["y"] + 40
        screenshot(page, "widget-phone")
        assert_accessible(page)
    finally:
        context.close()


def test_an_article_published_in_the_editor_answers_in_the_widget(running_stack: Any, page: Any) -> None:
    service = running_stack.config.service_url
    slug = f"projector-{uuid.uuid4().hex[:6]}"
    page.goto(f"{service}/editor#/new")
    page.get_by_label("E-mail").fill("editor@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="New article").wait_for()
    page.get_by_label("Article id").fill(f"{slug}-en")
    page.get_by_label("Title").fill("Connect your laptop to the meeting room projector")
    page.get_by_label("Example questions").fill(
        "how do I connect my laptop to the meeting room projector\n"
        "the meeting room projector shows no picture from my laptop\n"
        "present my laptop screen on the projector"
    )
    page.get_by_label("Body (Markdown)").fill(
        "Plug the **HDMI cable** on the table into your laptop, then press **Win+P** and choose *Duplicate*."
    )
    page.get_by_text("No problems found.").wait_for()
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("Saved revision 1", exact=True).wait_for()

    panel = open_widget(page, running_stack)
    ask(panel, "How do I connect my laptop to the meeting room projector?")
    answer = (
        panel.get_by_role("log")
        .locator(".msg.bot")
        .filter(has_text="Connect your laptop to the meeting room projector")
    )
    answer.wait_for(timeout=BOT_REPLY)
    assert "Win+P" in answer.inner_text()
