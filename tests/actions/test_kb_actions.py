"""Answering from the knowledge base: what the action sends, says and remembers."""

from __future__ import annotations

import time

from actions.kb import ActionAnswerFromKb, ActionFeedback, ActionShowArticle
from tests.actions.support import FakeService, run, slots_set, tracker

ANSWER = {
    "decision": "answer",
    "confidence": 0.93,
    "cross_language": False,
    "query_id": 17,
    "results": [
        {"article_id": "password-reset-lv", "title": "Paroles atiestatīšana", "score": 0.91,
         "language": "lv", "body": "Atveriet **id.example.com**."},
        {"article_id": "account-locked-lv", "title": "Konts bloķēts", "score": 0.62, "language": "lv", "body": "..."},
    ],
}  # fmt: skip


def test_an_answer_is_the_article_text_in_the_users_language(service: FakeService) -> None:
    service.on("GET", "/api/kb/search", ANSWER)
    events, dispatcher = run(ActionAnswerFromKb(), tracker("aizmirsu paroli", slots={"language": "lv"}))

    (request,) = service.sent("GET", "/api/kb/search")
    assert request["params"] == {
        "q": "aizmirsu paroli",
        "lang": "lv",
        "top_k": "3",
        "conversation_id": "conv-42",
    }
    assert request["auth"] == "Bearer svc-token"
    article, ask = dispatcher.messages
    assert article["text"] == "**Paroles atiestatīšana**\n\nAtveriet **id.example.com**."
    assert article["custom"] == {"kind": "article", "article_id": "password-reset-lv", "language": "lv"}
    assert ask["response"] == "utter_ask_feedback"
    slots = slots_set(events)
    assert slots["awaiting"] == "feedback"
    assert slots["kb_article_id"] == "password-reset-lv"
    assert slots["kb_query_id"] == 17
    assert slots["kb_suggestions"] == [{"article_id": "account-locked-lv", "title": "Konts bloķēts"}]
    assert slots["kb_tried"][0] == {
        "article_id": "password-reset-lv",
        "title": "Paroles atiestatīšana",
        "score": 0.91,
    }


def test_clarify_offers_the_suggestions_as_buttons(service: FakeService) -> None:
    service.on("GET", "/api/kb/search", {**ANSWER, "decision": "clarify"})
    events, dispatcher = run(ActionAnswerFromKb(), tracker("parole", slots={"language": "lv"}))
    (message,) = dispatcher.messages
    assert message["response"] == "utter_clarify"
    assert [b["title"] for b in message["buttons"]] == [
        "Paroles atiestatīšana",
        "Konts bloķēts",
        "Neviens no šiem",
    ]
    assert message["buttons"][0]["payload"] == '/choose_article{"article_id": "password-reset-lv"}'
    assert message["buttons"][-1]["payload"] == "/not_helpful"
    assert slots_set(events)["awaiting"] == "clarify"


def test_no_answer_offers_a_person_and_counts_the_failure(service: FakeService) -> None:
    service.on("GET", "/api/kb/search", {**ANSWER, "decision": "none"})
    events, dispatcher = run(ActionAnswerFromKb(), tracker("how do I bake bread", slots={"failed_attempts": 1}))
    assert [m["response"] for m in dispatcher.messages] == ["utter_no_answer"]
    slots = slots_set(events)
    assert slots["awaiting"] == "offer_human" and slots["failed_attempts"] == 2
    assert slots["kb_tried"] == []  # nothing was shown, so nothing was tried


def test_service_down_gets_an_honest_message_and_a_way_to_a_person(service: FakeService) -> None:
    service.down = True
    events, dispatcher = run(ActionAnswerFromKb(), tracker("vpn is broken", slots={"language": "ru"}))
    (message,) = dispatcher.messages
    assert message["response"] == "utter_service_unavailable"
    assert message["buttons"] == [{"title": "Связаться с человеком", "payload": "/request_human"}]
    assert slots_set(events) == {"awaiting": "offer_human"}


def test_a_service_slower_than_two_seconds_gets_the_same_message_in_time(service: FakeService) -> None:
    service.on("GET", "/api/kb/search", ANSWER)
    service.delay = 3.0
    started = time.monotonic()
    events, dispatcher = run(ActionAnswerFromKb(), tracker("vpn is broken", slots={"language": "lv"}))
    assert time.monotonic() - started < 2.5
    assert [m["response"] for m in dispatcher.messages] == ["utter_service_unavailable"]
    assert slots_set(events) == {"awaiting": "offer_human"}


def test_a_server_error_is_the_service_being_unavailable(service: FakeService) -> None:
    service.on("GET", "/api/kb/search", {"detail": "internal error"}, status=500)
    _, dispatcher = run(ActionAnswerFromKb(), tracker("vpn is broken"))
    assert [m["response"] for m in dispatcher.messages] == ["utter_service_unavailable"]


def test_yes_after_an_answer_records_that_it_helped(service: FakeService) -> None:
    service.on("POST", "/api/kb/feedback", None, status=204)
    current = tracker("/affirm", intent="affirm", slots={"awaiting": "feedback", "kb_query_id": 17})
    events, dispatcher = run(ActionFeedback(), current)
    assert service.sent("POST", "/api/kb/feedback")[0]["json"] == {"query_id": 17, "outcome": "helped"}
    assert [m["response"] for m in dispatcher.messages] == ["utter_glad_it_helped"]
    assert slots_set(events) == {"awaiting": None, "failed_attempts": 0, "escalate": False}


def test_didnt_help_offers_the_runner_up_first(service: FakeService) -> None:
    service.on("POST", "/api/kb/feedback", None, status=204)
    current = tracker(
        "that didn't help",
        intent="not_helpful",
        slots={
            "awaiting": "feedback",
            "kb_query_id": 17,
            "kb_article_id": "password-reset-en",
            "kb_suggestions": [{"article_id": "account-locked-en", "title": "Account locked"}],
        },
    )
    events, dispatcher = run(ActionFeedback(), current)
    assert service.sent("POST", "/api/kb/feedback")[0]["json"] == {"query_id": 17, "outcome": "not_helped"}
    (message,) = dispatcher.messages
    assert message["response"] == "utter_offer_alternatives"
    assert [b["payload"] for b in message["buttons"]] == [
        '/choose_article{"article_id": "account-locked-en"}',
        "/request_human",
    ]
    assert slots_set(events)["failed_attempts"] == 1
    assert slots_set(events)["escalate"] is False


def test_didnt_help_twice_starts_the_handoff(service: FakeService) -> None:
    service.on("POST", "/api/kb/feedback", None, status=204)
    current = tracker(
        "still not working",
        intent="not_helpful",
        slots={
            "awaiting": "feedback",
            "failed_attempts": 1,
            "kb_suggestions": [{"article_id": "x", "title": "X"}],
        },
    )
    events, dispatcher = run(ActionFeedback(), current)
    assert dispatcher.messages == []
    assert slots_set(events)["escalate"] is True


def test_yes_to_a_person_starts_the_handoff(service: FakeService) -> None:
    events, _ = run(ActionFeedback(), tracker("/affirm", intent="affirm", slots={"awaiting": "offer_human"}))
    assert slots_set(events)["escalate"] is True


def test_picking_a_suggestion_shows_that_article(service: FakeService) -> None:
    service.on("GET", "/api/kb/published/vpn-connect-en", {
        "article_id": "vpn-connect-en", "title": "Connect to the VPN", "body": "Open GlobalProtect.",
        "language": "en", "score": 1.0,
    })  # fmt: skip
    current = tracker(
        '/choose_article{"article_id": "vpn-connect-en"}',
        intent="choose_article",
        entities=[{"entity": "article_id", "value": "vpn-connect-en"}],
        slots={"kb_suggestions": [{"article_id": "vpn-connect-en", "title": "Connect to the VPN"}]},
    )
    events, dispatcher = run(ActionShowArticle(), current)
    assert dispatcher.messages[0]["text"] == "**Connect to the VPN**\n\nOpen GlobalProtect."
    assert slots_set(events) == {
        "kb_article_id": "vpn-connect-en",
        "kb_suggestions": [],
        "awaiting": "feedback",
    }
