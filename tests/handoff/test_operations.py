"""Transfers, releases, transcripts, privacy, metrics, webhooks, retention, limits."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from firstline.db import utcnow
from firstline.main import create_app
from handoff.delivery import RasaClient, WebhookClient
from handoff.models import HandoffRow
from handoff.privacy import mask
from handoff.retention import purge
from kb_index.embedder import Embedder
from tests.app_fixtures import SERVICE, FakeRasa, login, make_settings
from tests.handoff.test_api import new_handoff


def create(client: TestClient, conversation: str = "conv-1", **overrides: object) -> dict:
    response = client.post("/api/handoffs", json=new_handoff(conversation, **overrides), headers=SERVICE)
    assert response.status_code == 201, response.text
    return response.json()


def new_agent(client: TestClient, email: str, name: str) -> dict[str, str]:
    admin = login(client, "admin@example.com")
    body = {"email": email, "name": name, "password": "a-long-password-1", "languages": ["en", "lv"]}
    assert client.post("/api/agents", json=body, headers=admin).status_code == 201
    return login(client, email, "a-long-password-1")


def test_transfer_and_release(client: TestClient, fake_rasa: FakeRasa) -> None:
    anna = login(client)
    bob = new_agent(client, "bob@example.com", "Bob Builder")
    handoff = create(client)
    client.post(f"/api/handoffs/{handoff['id']}/claim", headers=anna)
    agents = {a["name"]: a["id"] for a in client.get("/api/agents", headers=anna).json()}
    moved = client.post(
        f"/api/handoffs/{handoff['id']}/transfer",
        json={"agent_id": agents["Bob Builder"], "note": "VPN expert"},
        headers=anna,
    )
    assert moved.status_code == 200 and moved.json()["agent"]["name"] == "Bob Builder"
    # Anna no longer has it; Bob does, and the user is told who joined.
    assert client.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "x"}, headers=anna).status_code == 403
    assert (
        client.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "Bob here"}, headers=bob).status_code
        == 201
    )
    released = client.post(f"/api/handoffs/{handoff['id']}/release", headers=bob)
    assert released.json()["status"] == "queued" and released.json()["agent"] is None
    fake_rasa.wait_for("EXTERNAL_handoff_released")
    claimed = [c["body"]["entities"] for c in fake_rasa.calls if c["body"]["name"] == "EXTERNAL_handoff_claimed"]
    assert [c["agent_name"] for c in claimed] == ["Anna Agent", "Bob Builder"]
    texts = [m["text"] for m in client.get(f"/api/handoffs/{handoff['id']}", headers=anna).json()["messages"]]
    assert "Transferred to Bob Builder. VPN expert" in texts and "Released to the queue." in texts


def test_take_next_respects_languages_priority_and_capacity(client: TestClient) -> None:
    bob = new_agent(client, "bob@example.com", "Bob")  # en and lv, up to 5 at once
    create(client, "ru-urgent", language="ru", priority="urgent")
    create(client, "en-low", language="en", priority="low")
    create(client, "lv-high", language="lv", priority="high")
    first = client.post("/api/handoffs/next", headers=bob).json()
    second = client.post("/api/handoffs/next", headers=bob).json()
    assert [first["conversation_id"], second["conversation_id"]] == ["lv-high", "en-low"]
    assert client.post("/api/handoffs/next", headers=bob).status_code == 204  # only Russian is left


def test_transcript_as_text(client: TestClient) -> None:
    handoff = create(client)
    text = client.get(f"/api/handoffs/{handoff['id']}/transcript?format=text", headers=login(client))
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert lines[0] == f"Handoff {handoff['id']} - queued, normal priority, language en"
    assert "User: How do I reset my password?" in lines[-3]


def test_personal_data_is_masked_but_the_contact_kept(client: TestClient) -> None:
    handoff = create(
        client,
        transcript=[
            {
                "role": "user",
                "text": "my mail is maris@example.com, call +371 2612 3456",
                "timestamp": "2026-11-22T09:00:00Z",
            },
            {"role": "bot", "text": "Call the Service Desk on +371 6700 0000.", "timestamp": "2026-11-22T09:00:01Z"},
            {
                "role": "user",
                "text": "card 4111 1111 1111 1111, kods 010190-12345",
                "timestamp": "2026-11-22T09:00:02Z",
            },
        ],
    )
    client.post(
        f"/api/handoffs/{handoff['id']}/user-messages",
        json={"text": "IBAN LV80BANK0000435195001, other mail x@y.lv"},
        headers=SERVICE,
    )
    texts = [m["text"] for m in client.get(f"/api/handoffs/{handoff['id']}", headers=login(client)).json()["messages"]]
    assert texts == [
        "my mail is maris@example.com, call [phone]",  # maris@example.com is the contact
        "Call the Service Desk on +371 6700 0000.",  # the bot's own words are not masked
        "card [card number], kods [personal code]",
        "IBAN [IBAN], other mail [e-mail]",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order 2026-11-22, build 10.0.22631.4460, ticket INC0012345", None),
        ("card 4111 1111 1111 1112 fails the Luhn check", None),
        ("new code 321234-56789", "new code [personal code]"),
        ("tel. 26 123 456", "tel. [phone]"),
    ],
)
def test_masking_leaves_ordinary_numbers(text: str, expected: str | None) -> None:
    assert mask(text) == (expected or text)


def test_metrics_json_and_prometheus(client: TestClient) -> None:
    agent = login(client)
    first = create(client, "a", priority="urgent")
    create(client, "b", priority="low")
    client.post(f"/api/handoffs/{first['id']}/claim", headers=agent)
    client.post(f"/api/handoffs/{first['id']}/messages", json={"text": "hi"}, headers=agent)
    client.post(f"/api/handoffs/{first['id']}/close", json={"note": "done"}, headers=agent)
    client.post(f"/api/handoffs/{first['id']}/rating", json={"rating": 4}, headers=SERVICE)
    data = client.get("/api/metrics", headers=agent).json()
    assert data["queue"]["low"]["queued"] == 1 and data["queue"]["urgent"]["queued"] == 0
    assert data["first_response_seconds"]["count"] == 1 and data["resolution_seconds"]["count"] == 1
    assert data["csat"] == {"count": 1, "average": 4.0, "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}}
    assert data["conversations"]["handed_off"] == 2
    client.cookies.clear()  # the login above left a session cookie
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers=SERVICE).text
    assert 'firstline_queue_length{priority="low"} 1.0' in text
    assert "firstline_csat_average 4.0" in text


def test_webhooks_are_signed_retried_and_visible(tmp_path: Path, embedder: Embedder, fake_rasa: FakeRasa) -> None:
    received: list[httpx.Request] = []
    failures = {"left": 2}

    def ticketing(request: httpx.Request) -> httpx.Response:
        if failures["left"]:
            failures["left"] -= 1
            return httpx.Response(503)
        received.append(request)
        return httpx.Response(200)

    settings = make_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'f.db'}",
        webhook_url="https://tickets.test/hook",
        webhook_secret="s3cret",
    )
    app = create_app(
        settings,
        rasa=RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(fake_rasa.handler)),
        webhook=WebhookClient("https://tickets.test/hook", "s3cret", transport=httpx.MockTransport(ticketing)),
        embedder=embedder,
    )
    with TestClient(app) as client:
        handoff = create(client)
        import time

        deadline = time.monotonic() + 15
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert received, "the webhook was never delivered"
        body = received[0].content
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert received[0].headers["X-Firstline-Signature"] == expected
        payload = json.loads(body)
        assert payload["event"] == "handoff.created" and payload["handoff"]["id"] == handoff["id"]
        rows = client.get("/api/outbox?kind=webhook", headers=login(client, "admin@example.com")).json()
        assert rows[0]["status"] == "delivered" and rows[0]["attempts"] == 3
        assert client.get("/api/outbox", headers=login(client)).status_code == 403


def test_retention_removes_old_transcripts(client: TestClient) -> None:
    agent = login(client)
    handoff = create(client)
    client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent)
    client.post(f"/api/handoffs/{handoff['id']}/close", json={"note": "done"}, headers=agent)
    db = client.app.state.db  # type: ignore[attr-defined]
    assert purge(db, days=30) == {"handoffs": 0, "search_logs": 0}
    with db.session() as session:
        session.get(HandoffRow, handoff["id"]).closed_at = utcnow() - timedelta(days=31)
    assert purge(db, days=30)["handoffs"] == 1
    detail = client.get(f"/api/handoffs/{handoff['id']}", headers=agent).json()
    assert detail["messages"] == [] and detail["contact"] == "" and detail["status"] == "closed"
    audit = client.get("/api/audit", headers=login(client, "admin@example.com")).json()
    assert audit[0]["action"] == "purged" and [a["action"] for a in audit][-1] == "created"


def test_login_is_rate_limited(client: TestClient) -> None:
    codes = [
        client.post("/api/auth/login", json={"email": "agent@example.com", "password": "wrong"}).status_code
        for _ in range(12)
    ]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]


def test_an_expired_session_is_refused(client: TestClient) -> None:
    agent = login(client)
    db = client.app.state.db  # type: ignore[attr-defined]
    from sqlalchemy import update

    from handoff.models import AuthTokenRow

    with db.session() as session:
        session.execute(update(AuthTokenRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = client.get("/api/handoffs", headers=agent)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


@pytest.mark.parametrize("origins", [[], ["https://shop.example"]], ids=["no origins", "one origin"])
def test_cross_origin_requests_only_from_configured_origins(
    tmp_path: Path, database_url: str, embedder: Embedder, origins: list[str]
) -> None:
    app = create_app(make_settings(tmp_path / "data", database_url, cors_origins=origins), embedder=embedder)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with TestClient(app) as client:
        for origin in ("https://shop.example", "https://evil.example"):
            allowed = origin in origins
            answer = client.options("/api/auth/login", headers={"Origin": origin, **preflight})
            assert (answer.headers.get("access-control-allow-origin") == origin) is allowed, answer.headers
            login = client.post(
                "/api/auth/login",
                json={"email": "agent@example.com", "password": "firstline-dev"},
                headers={"Origin": origin},
            )
            assert login.status_code == 200
            assert (login.headers.get("access-control-allow-origin") == origin) is allowed, login.headers
