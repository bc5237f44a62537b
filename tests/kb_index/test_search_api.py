"""Searching through the HTTP API: decisions, languages, bad input, live updates."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.app_fixtures import SERVICE, login


def search(client: TestClient, q: str, lang: str = "en", **params: object) -> dict:
    response = client.get("/api/kb/search", params={"q": q, "lang": lang, **params})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("query", "lang", "expected"),
    [
        ("How do I reset my password?", "en", "password-reset-en"),
        ("I can't get on the VPN from home", "en", "vpn-connect-en"),
        ("aizmirsu paroli", "lv", "password-reset-lv"),
        ("я забыл свой пароль", "ru", "password-reset-ru"),
    ],
)
def test_questions_find_their_article_in_their_language(
    client: TestClient, query: str, lang: str, expected: str
) -> None:
    found = search(client, query, lang)
    assert found["results"][0]["article_id"] == expected
    assert found["decision"] in ("answer", "clarify")
    assert found["cross_language"] is False
    assert 0.0 <= found["confidence"] <= 1.0
    assert {"article_id", "title", "score", "body", "language"} <= set(found["results"][0])


def test_an_unrelated_question_is_not_answered(client: TestClient) -> None:
    found = search(client, "what is the capital of australia", "en")
    assert found["decision"] == "none"


def test_a_language_without_a_fitting_article_falls_back_and_says_so(client: TestClient) -> None:
    found = search(client, "How do I add the office printer?", "lv")
    assert found["results"][0]["article_id"] == "printer-add-en"
    assert found["cross_language"] is True


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "   \t ", "lang": "en"}, "query is empty"),
        ({"q": "\x01\x02\x03", "lang": "en"}, "query is empty"),
        ({"q": "pass\x00word", "lang": "en"}, "NUL characters are not allowed in URLs"),
        ({"q": "password", "lang": "de"}, "unknown language 'de'; use one of en, lv, ru"),
    ],
)
def test_bad_queries_get_a_clear_error(client: TestClient, params: dict, message: str) -> None:
    response = client.get("/api/kb/search", params=params)
    assert response.status_code == 422
    assert response.json()["detail"] == message


def test_a_missing_query_names_the_field(client: TestClient) -> None:
    for params in ({"lang": "en"}, {"q": "", "lang": "en"}):
        response = client.get("/api/kb/search", params=params)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "q"]


def test_long_and_mixed_queries_get_a_sensible_answer(client: TestClient) -> None:
    long = search(client, "I forgot my password " * 500, "en")  # 10,500 characters
    assert long["results"][0]["article_id"] == "password-reset-en"
    mixed = search(client, "забыл password, aizmirsu paroli 🙈", "ru")
    assert mixed["results"]


def test_the_bot_logs_its_searches_and_the_feedback(client: TestClient) -> None:
    found = client.get(
        "/api/kb/search",
        params={"q": "forgot my password", "lang": "en", "conversation_id": "c-9"},
        headers=SERVICE,
    ).json()
    assert isinstance(found["query_id"], int)
    anonymous = search(client, "forgot my password", conversation_id="c-9")
    assert anonymous["query_id"] is None  # only the bot's searches are logged
    response = client.post(
        "/api/kb/feedback", json={"query_id": found["query_id"], "outcome": "not_helped"}, headers=SERVICE
    )
    assert response.status_code == 204


def test_a_published_edit_answers_within_two_seconds(client: TestClient) -> None:
    editor = login(client, "editor@example.com")
    article = {
        "language": "en",
        "title": "Order a new headset",
        "body": "Request a headset in the IT self-service portal under **Hardware → Accessories**.",
        "questions": ["how can I get a new headset", "my headset is broken, can I get another"],
        "tags": ["hardware"],
    }
    before = search(client, "I need a new headset for calls")
    assert before["results"][0]["article_id"] != "headset-en"
    started = time.monotonic()
    saved = client.put("/api/kb/articles/headset-en", json=article, headers=editor)
    assert saved.status_code == 200 and saved.json()["revision"] == 1
    found = search(client, "I need a new headset for calls")
    assert time.monotonic() - started < 2.0
    assert found["results"][0]["article_id"] == "headset-en"

    # A draft is not searchable; restoring revision 1 publishes it again.
    client.put("/api/kb/articles/headset-en", json={**article, "status": "draft"}, headers=editor)
    assert search(client, "I need a new headset for calls")["results"][0]["article_id"] != "headset-en"
    history = client.get("/api/kb/articles/headset-en/revisions", headers=editor).json()
    assert [r["revision"] for r in history] == [2, 1]
    restored = client.post("/api/kb/articles/headset-en/revisions/1/restore", headers=editor)
    assert restored.json()["revision"] == 3 and restored.json()["status"] == "published"
    assert search(client, "I need a new headset for calls")["results"][0]["article_id"] == "headset-en"


def test_an_invalid_article_changes_nothing(client: TestClient) -> None:
    editor = login(client, "editor@example.com")
    bad = {"language": "en", "title": "", "body": "x"}
    assert client.put("/api/kb/articles/x-en", json=bad, headers=editor).status_code == 422
    clash = {"language": "en", "title": "Another", "body": "x", "translation_group": "password-reset"}
    response = client.put("/api/kb/articles/other-en", json=clash, headers=editor)
    assert response.status_code == 422
    assert "already has a en article" in response.json()["problems"][0]["message"]
    assert client.get("/api/kb/articles/other-en", headers=editor).status_code == 404
    agent = login(client)
    assert client.put("/api/kb/articles/y-en", json={**bad, "title": "ok"}, headers=agent).status_code == 403
