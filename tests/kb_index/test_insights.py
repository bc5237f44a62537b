"""What editors see: content gaps grouped by meaning, the dashboard, validation while typing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.app_fixtures import SERVICE, login
from tests.handoff.test_api import new_handoff


def bot_search(client: TestClient, q: str, conversation: str, lang: str = "en") -> dict:
    response = client.get(
        "/api/kb/search", params={"q": q, "lang": lang, "conversation_id": conversation}, headers=SERVICE
    )
    assert response.status_code == 200
    return response.json()


def test_unresolved_questions_are_grouped_into_gaps(client: TestClient) -> None:
    for number, question in enumerate(
        [
            "how do I book a meeting room",
            "how can I reserve a meeting room",
            "booking a conference room",
            "what is the capital of australia",
        ]
    ):
        bot_search(client, question, f"c-{number}")
    helped = bot_search(client, "I forgot my password", "c-9")
    client.post("/api/kb/feedback", json={"query_id": helped["query_id"], "outcome": "helped"}, headers=SERVICE)
    editor = login(client, "editor@example.com")
    gaps = client.get("/api/kb/gaps", headers=editor).json()
    rooms = [g for g in gaps if "meeting room" in g["title"] or "conference" in g["title"]]
    assert len(rooms) == 1, gaps
    assert rooms[0]["count"] == 3 and rooms[0]["reasons"] == {"no_answer": 3}
    assert set(rooms[0]["examples"]) == {
        "how do I book a meeting room",
        "how can I reserve a meeting room",
        "booking a conference room",
    }
    assert all("password" not in g["title"] for g in gaps)  # it helped: not a gap
    assert client.get("/api/kb/gaps", headers=login(client)).status_code == 403


def test_dashboard_counts_conversations_handoffs_and_csat(client: TestClient) -> None:
    bot_search(client, "I forgot my password", "resolved")
    bot_search(client, "vpn from home", "escalated")
    handoff = client.post("/api/handoffs", json=new_handoff("escalated"), headers=SERVICE).json()
    agent = login(client)
    client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent)
    client.post(f"/api/handoffs/{handoff['id']}/close", json={"note": "ok"}, headers=agent)
    client.post(f"/api/handoffs/{handoff['id']}/rating", json={"rating": 5}, headers=SERVICE)
    data = client.get("/api/kb/dashboard?days=7", headers=login(client, "editor@example.com")).json()
    assert data["totals"] == {"conversations": 2, "resolved_by_bot": 1, "handoffs": 1, "bot_resolution_rate": 0.5}
    today = data["per_day"][-1]
    assert (today["conversations"], today["handoffs"], today["csat"]) == (2, 1, 5.0)
    assert len(data["per_day"]) == 7
    assert data["per_language"]["en"]["conversations"] == 2
    assert data["top_articles"][0]["article_id"] in {"password-reset-en", "vpn-connect-en"}


def test_validation_while_typing_changes_nothing(client: TestClient) -> None:
    editor = login(client, "editor@example.com")
    draft = {"id": "vpn-connect-lv-2", "language": "en", "title": "x", "body": "y", "translation_group": "vpn-connect"}
    problems = client.post("/api/kb/validate", json=draft, headers=editor).json()["problems"]
    assert [p["message"] for p in problems] == [
        "translation group 'vpn-connect' already has a en article (vpn-connect-en at article vpn-connect-en (stored))"
    ]
    fine = client.post("/api/kb/validate", json={**draft, "language": "lv"}, headers=editor).json()
    assert fine == {"problems": []}
    assert client.get("/api/kb/articles/vpn-connect-lv-2", headers=editor).status_code == 404
