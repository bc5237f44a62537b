"""The handoff queue through its HTTP API, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.app_fixtures import SERVICE, FakeRasa, login


def new_handoff(conversation_id: str = "conv-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "conversation_id": conversation_id,
        "language": "en",
        "priority": "normal",
        "contact": "maris@example.com",
        "summary": "Cannot reset my password",
        "transcript": [
            {"role": "user", "text": "How do I reset my password?", "timestamp": "2026-11-22T09:00:00Z"},
            {"role": "bot", "text": "Go to id.example.com ...", "timestamp": "2026-11-22T09:00:01Z"},
            {"role": "user", "text": "that didn't help", "timestamp": "2026-11-22T09:00:30Z"},
        ],
        "articles_tried": [{"article_id": "password-reset-en", "title": "Reset", "score": 0.81}],
        "feedback": "1 answer(s) did not help",
        "idempotency_key": f"key-{conversation_id}",
    }
    body.update(overrides)
    return body


def test_the_journey_through_the_queue(client: TestClient, fake_rasa: FakeRasa) -> None:
    created = client.post("/api/handoffs", json=new_handoff(), headers=SERVICE)
    assert created.status_code == 201, created.text
    handoff = created.json()
    assert handoff["status"] == "queued" and handoff["queue_position"] == 1
    assert handoff["bot_attempt"]["articles_tried"][0]["article_id"] == "password-reset-en"

    agent = login(client)
    queue = client.get("/api/handoffs?status=queued", headers=agent).json()
    assert [h["id"] for h in queue] == [handoff["id"]]

    claimed = client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent)
    assert claimed.status_code == 200
    assert claimed.json()["agent"]["name"] == "Anna Agent"
    # The whole transcript came along, in order, with its timestamps.
    assert [(m["role"], m["text"]) for m in claimed.json()["messages"]] == [
        ("user", "How do I reset my password?"),
        ("bot", "Go to id.example.com ..."),
        ("user", "that didn't help"),
    ]
    assert fake_rasa.wait_for("EXTERNAL_handoff_claimed")["body"]["entities"] == {
        "agent_name": "Anna Agent",
        "handoff_id": str(handoff["id"]),
    }

    reply = client.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "Hi, Anna here."}, headers=agent)
    assert reply.status_code == 201
    sent = fake_rasa.wait_for("EXTERNAL_agent_message")
    assert sent["path"] == "/conversations/conv-1/trigger_intent"
    assert sent["params"] == {"output_channel": "latest", "token": "rasa-token"}
    assert sent["body"]["entities"] == {"message": "Hi, Anna here.", "agent_name": "Anna Agent"}

    relayed = client.post(
        f"/api/handoffs/{handoff['id']}/user-messages",
        json={"text": "thanks, it says my account is locked", "client_id": "m-1"},
        headers=SERVICE,
    )
    assert relayed.status_code == 201
    again = client.post(
        f"/api/handoffs/{handoff['id']}/user-messages",
        json={"text": "thanks, it says my account is locked", "client_id": "m-1"},
        headers=SERVICE,
    )
    assert again.status_code == 200  # a retry is stored once

    closed = client.post(f"/api/handoffs/{handoff['id']}/close", json={"note": "Unlocked the account"}, headers=agent)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert fake_rasa.wait_for("EXTERNAL_handoff_closed")["body"]["entities"]["handoff_id"] == str(handoff["id"])

    rated = client.post(f"/api/handoffs/{handoff['id']}/rating", json={"rating": 5}, headers=SERVICE)
    assert rated.status_code == 200 and rated.json()["rating"] == 5

    detail = client.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "bot", "user", "agent", "user"]
    assert detail["resolution_note"] == "Unlocked the account"
    assert detail["messages"][3]["delivery"] == "delivered"


def test_creating_twice_returns_the_same_handoff(client: TestClient) -> None:
    first = client.post("/api/handoffs", json=new_handoff("c-1"), headers=SERVICE)
    second = client.post("/api/handoffs", json=new_handoff("c-1"), headers=SERVICE)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert len(client.get("/api/handoffs", headers=login(client)).json()) == 1


def test_queue_is_ordered_by_priority_then_waiting_time(client: TestClient) -> None:
    for name, priority in [("a", "low"), ("b", "urgent"), ("c", "normal"), ("d", "urgent")]:
        assert (
            client.post("/api/handoffs", json=new_handoff(name, priority=priority), headers=SERVICE).status_code == 201
        )
    queue = client.get("/api/handoffs", headers=login(client)).json()
    assert [h["conversation_id"] for h in queue] == ["b", "d", "c", "a"]
    assert [h["queue_position"] for h in queue] == [1, 2, 3, 4]


def test_a_claimed_handoff_cannot_be_claimed_again(client: TestClient) -> None:
    handoff = client.post("/api/handoffs", json=new_handoff(), headers=SERVICE).json()
    agent = login(client)
    assert client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent).status_code == 200
    again = client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent)
    assert again.status_code == 409
    assert "assigned" in again.json()["detail"]


def test_the_bot_and_the_agents_are_told_apart(client: TestClient) -> None:
    body = new_handoff()
    assert client.post("/api/handoffs", json=body).status_code == 401
    assert client.post("/api/handoffs", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/handoffs").status_code == 401
    # An agent's token is not the bot's token, and vice versa.
    assert client.post("/api/handoffs", json=body, headers=login(client)).status_code == 401
    assert client.get("/api/handoffs", headers=SERVICE).status_code == 401
    editor = login(client, "editor@example.com")
    assert client.get("/api/handoffs", headers=editor).status_code == 403


def test_bad_input_gets_a_clear_error_and_changes_nothing(client: TestClient) -> None:
    agent = login(client)
    bad = [
        {**new_handoff(), "priority": "whenever"},
        {**new_handoff(), "language": "de"},
        {**new_handoff(), "conversation_id": ""},
        {
            **new_handoff(),
            "transcript": [{"role": "wizard", "text": "x", "timestamp": "2026-01-01T00:00:00Z"}],
        },
        {**new_handoff(), "transcript": "not a list"},
    ]
    for body in bad:
        response = client.post("/api/handoffs", json=body, headers=SERVICE)
        assert response.status_code == 422, body
    malformed = client.post(
        "/api/handoffs", content=b"{not json", headers={**SERVICE, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert client.get("/api/handoffs", headers=agent).json() == []
    assert client.post("/api/handoffs/999/claim", headers=agent).status_code == 404
    huge = client.post("/api/handoffs/999/messages", json={"text": "x" * 1_000_000}, headers=agent)
    assert huge.status_code == 422


def test_a_wrong_password_is_refused(client: TestClient) -> None:
    response = client.post("/api/auth/login", json={"email": "agent@example.com", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong e-mail or password"


def test_agent_replies_survive_rasa_being_down(client: TestClient, fake_rasa: FakeRasa) -> None:
    handoff = client.post("/api/handoffs", json=new_handoff(), headers=SERVICE).json()
    agent = login(client)
    fake_rasa.fail = True
    client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent)
    client.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "first"}, headers=agent)
    client.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "second"}, headers=agent)
    messages = client.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()["messages"]
    assert [m["delivery"] for m in messages if m["role"] == "agent"] == ["pending", "pending"]
    fake_rasa.fail = False
    fake_rasa.wait_for("EXTERNAL_agent_message", timeout=10)
    deadline_intents = ["EXTERNAL_handoff_claimed", "EXTERNAL_agent_message", "EXTERNAL_agent_message"]
    import time

    for _ in range(100):
        if fake_rasa.intents() == deadline_intents:
            break
        time.sleep(0.1)
    # Delivered once each, in the order they were written.
    assert fake_rasa.intents() == deadline_intents
    assert [c["body"]["entities"].get("message") for c in fake_rasa.calls[1:]] == ["first", "second"]
