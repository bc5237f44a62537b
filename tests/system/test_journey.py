"""The whole support journey with the three real processes.

The user talks socket.io to Rasa like the widget does; the agent uses the firstline
HTTP API. Every assertion is on what one side actually received.
"""

from __future__ import annotations

import queue
import time
import uuid
from typing import Any

import httpx
import pytest
import socketio

from tests.app_fixtures import REPO

pytestmark = pytest.mark.slow


class ChatUser:
    """A visitor in the chat widget: a socket.io client of Rasa's webchat channel."""

    def __init__(self, rasa_url: str, language: str) -> None:
        self.language = language
        self.session_id = uuid.uuid4().hex
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        confirmed: queue.Queue[str] = queue.Queue()
        self.sio = socketio.Client()
        self.sio.on("bot_uttered", self.inbox.put)
        self.sio.on("session_confirm", confirmed.put)
        self.sio.connect(rasa_url, transports=["websocket"])
        self.sio.emit("session_request", {"session_id": self.session_id})
        assert confirmed.get(timeout=10) == self.session_id

    def say(self, text: str, display: str | None = None) -> None:
        self.sio.emit(
            "user_uttered",
            {
                "message": text,
                "session_id": self.session_id,
                "metadata": {"language": self.language, "display_text": display or text},
            },
        )

    def receive(self, until: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Messages up to and including the first for which until(message) is true."""
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected message never came; received {received}")
            try:
                message = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            received.append(message)
            if until(message):
                return received

    def silence(self, seconds: float) -> list[dict[str, Any]]:
        time.sleep(seconds)
        got = []
        while not self.inbox.empty():
            got.append(self.inbox.get_nowait())
        return got

    def close(self) -> None:
        self.sio.disconnect()


def has_buttons(message: dict[str, Any]) -> bool:
    return bool(message.get("quick_replies"))


def article_body(language: str, slug: str) -> str:
    text = (REPO / "content" / "kb" / language / f"{slug}.md").read_text(encoding="utf-8")
    return text.split("---", 2)[2].strip()


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("en", "How do I reset my password?"),
        ("lv", "Aizmirsu paroli, kā to atjaunot?"),
        ("ru", "Я забыл пароль, как его сбросить?"),
    ],
)
def test_a_question_is_answered_from_the_knowledge_base(running_stack: Any, language: str, question: str) -> None:
    user = ChatUser(running_stack.config.rasa_url, language)
    try:
        user.say(question)
        messages = user.receive(has_buttons)
        article = messages[0]
        # One message carrying the whole article, taken from the knowledge base.
        assert article["custom"]["kind"] == "article"
        assert article["custom"]["article_id"] == f"password-reset-{language}"
        first_paragraph = article_body(language, "password-reset").split("\n\n")[0]
        assert first_paragraph in article["text"]
        assert [b["payload"] for b in messages[-1]["quick_replies"]] == ["/affirm", "/not_helpful"]
    finally:
        user.close()


def test_handoff_live_chat_close_and_rating(running_stack: Any) -> None:
    config = running_stack.config
    api = httpx.Client(base_url=config.service_url, timeout=10)
    token = api.post("/api/auth/login", json={"email": "agent@example.com", "password": "firstline-dev"}).json()[
        "token"
    ]
    agent = {"Authorization": f"Bearer {token}"}
    assert api.put("/api/me/status", json={"status": "online"}, headers=agent).status_code == 200
    user = ChatUser(config.rasa_url, "en")
    try:
        # 1. The bot answers; the user says it didn't help, then asks for a person.
        user.say("How do I reset my password?")
        user.receive(has_buttons)
        user.say("/not_helpful", "No")
        offered = user.receive(has_buttons)
        assert "/request_human" in [b["payload"] for b in offered[-1]["quick_replies"]]
        user.say("I want to talk to a human")
        asked = user.receive(lambda m: "e-mail" in m["text"])
        assert any("hand this over" in m["text"] for m in asked)
        user.say("maris.ozols@example.com")
        urgency = user.receive(has_buttons)
        assert [b["title"] for b in urgency[-1]["quick_replies"]][:2] == ["Low", "Normal"]
        user.say('/inform_priority{"priority": "high"}', "High")
        described = user.receive(has_buttons)
        (suggestion,) = described[-1]["quick_replies"]
        assert suggestion == {"title": "Use: How do I reset my password?", "payload": "How do I reset my password?"}
        user.say(suggestion["payload"], suggestion["title"])
        queued = user.receive(lambda m: (m.get("custom") or {}).get("kind") == "handoff_opened")
        assert "number 1 in the queue" in queued[-1]["text"]

        # 2. The agent sees it in the queue with the full transcript.
        waiting = api.get("/api/handoffs", params={"status": "queued"}, headers=agent).json()
        (handoff,) = [h for h in waiting if h["conversation_id"] == user.session_id]
        assert handoff["priority"] == "high" and handoff["contact"] == "maris.ozols@example.com"
        assert handoff["summary"] == "How do I reset my password?"
        assert handoff["bot_attempt"]["articles_tried"][0]["article_id"] == "password-reset-en"
        detail = api.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()
        transcript = [(m["role"], m["text"]) for m in detail["messages"]]
        assert transcript[0] == ("user", "How do I reset my password?")
        assert transcript[1][0] == "bot" and "Reset a forgotten password" in transcript[1][1]
        assert ("user", "No") in transcript and ("user", "maris.ozols@example.com") in transcript
        assert all(m["created_at"] for m in detail["messages"])

        # 3. Claim and reply: the user's chat receives both, live.
        assert api.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent).status_code == 200
        joined = user.receive(lambda m: (m.get("custom") or {}).get("kind") == "agent_joined")
        assert joined[-1]["text"] == "Anna Agent has joined the conversation."
        sent_at = time.monotonic()
        api.post(
            f"/api/handoffs/{handoff['id']}/messages",
            json={"text": "Hi, Anna here. Let me check."},
            headers=agent,
        )
        reply = user.receive(lambda m: (m.get("custom") or {}).get("kind") == "agent")
        assert reply[-1]["text"] == "Hi, Anna here. Let me check."
        assert reply[-1]["custom"]["agent_name"] == "Anna Agent"
        assert time.monotonic() - sent_at < 5

        # 4. While handed off the bot is silent and relays what the user writes.
        user.say("It says my account is locked")
        assert user.silence(3) == []
        detail = api.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()
        assert detail["messages"][-1]["role"] == "user"
        assert detail["messages"][-1]["text"] == "It says my account is locked"

        # 5. Close: the bot is back and asks for a rating, which is stored.
        api.post(f"/api/handoffs/{handoff['id']}/close", json={"note": "Unlocked the account"}, headers=agent)
        back = user.receive(has_buttons)
        assert any("closed the conversation" in m["text"] for m in back)
        assert [b["title"] for b in back[-1]["quick_replies"]] == ["1", "2", "3", "4", "5"]
        user.say('/rate{"rating": "5"}', "5")
        user.receive(lambda m: "Anything you'd like to add" in m["text"])
        user.say("Anna was quick and friendly, thank you!")
        user.receive(lambda m: "Thank you for your feedback" in m["text"])
        rated = api.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()
        assert rated["rating"] == 5 and rated["status"] == "closed"
        assert rated["rating_comment"] == "Anna was quick and friendly, thank you!"
    finally:
        user.close()
        api.close()


def test_the_user_can_cancel_the_handoff_in_their_language(running_stack: Any) -> None:
    # The handoff form takes whatever is typed as the e-mail, the urgency or the
    # description; "cancel" must end it instead, as the bot promises, and an e-mail
    # address must not switch the conversation to English.
    user = ChatUser(running_stack.config.rasa_url, "lv")
    try:
        user.say("/request_human", "cilvēku, lūdzu")
        asked = user.receive(lambda m: "e-pasta adresi" in m["text"])
        assert not any("aprakstiet problēmu" in m["text"] for m in asked), asked
        user.say("janis.ozols@example.lv")
        user.receive(lambda m: "Cik steidzami" in m["text"])
        user.say("atcelt")
        user.receive(lambda m: "atcēlu" in m["text"])
        assert user.silence(2) == []
    finally:
        user.close()
    user = ChatUser(running_stack.config.rasa_url, "en")
    try:
        user.say("I want to talk to a human")
        user.receive(lambda m: "e-mail address" in m["text"])
        user.say("cancel")
        replies = user.receive(lambda m: "cancelled" in m["text"])
        assert not any("e-mail" in m["text"] for m in replies), replies
    finally:
        user.close()


def test_rasa_api_token_is_required(running_stack: Any) -> None:
    config = running_stack.config
    response = httpx.post(
        f"{config.rasa_url}/conversations/x/trigger_intent",
        json={"name": "EXTERNAL_agent_message", "entities": {"message": "spoof"}},
    )
    assert response.status_code == 401


def test_with_the_service_down_the_bot_is_honest_and_the_handoff_arrives_exactly_once(running_stack: Any) -> None:
    config = running_stack.config
    user = ChatUser(config.rasa_url, "lv")
    try:
        user.say("Aizmirsu paroli, kā to atjaunot?")
        user.receive(has_buttons)
        running_stack.stop_process("service")
        try:
            # Searching: an honest message in the user's language, and a way to a person.
            user.say("Kā pieslēgties VPN no mājām?")
            down = user.receive(has_buttons)
            assert "nevaru piekļūt zināšanu bāzei" in down[-1]["text"]
            assert [b["payload"] for b in down[-1]["quick_replies"]] == ["/request_human"]
            # Asking for a person: the request is kept and the user is told so.
            user.say("/request_human", "Runāt ar cilvēku")
            user.receive(lambda m: "e-pasta" in m["text"])
            user.say("liga.kalnina@example.com")
            user.receive(has_buttons)
            user.say('/inform_priority{"priority": "normal"}', "Normāla")
            described = user.receive(has_buttons)
            user.say(described[-1]["quick_replies"][0]["payload"])
            deferred = user.receive(lambda m: "saglabāts" in m["text"])
            assert "liga.kalnina@example.com" in deferred[-1]["text"]
        finally:
            running_stack.start_process("service")
        api = httpx.Client(base_url=config.service_url, timeout=10)
        token = api.post("/api/auth/login", json={"email": "agent@example.com", "password": "firstline-dev"})
        agent = {"Authorization": f"Bearer {token.json()['token']}"}

        def mine() -> list[dict[str, Any]]:
            everything = api.get("/api/handoffs", params={"status": "queued", "limit": 500}, headers=agent).json()
            return [h for h in everything if h["conversation_id"] == user.session_id]

        deadline = time.monotonic() + 60
        while not mine() and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(5)  # any duplicate delivery would show up by now
        (handoff,) = mine()
        assert handoff["language"] == "lv" and handoff["contact"] == "liga.kalnina@example.com"
        detail = api.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()
        assert detail["messages"][0]["text"] == "Aizmirsu paroli, kā to atjaunot?"
        api.close()
    finally:
        user.close()
