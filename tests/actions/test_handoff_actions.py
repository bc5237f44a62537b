"""Handoff actions: the transcript that goes to the queue, relaying, rating."""

from __future__ import annotations

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import (
    ActionAskIssueSummary,
    ActionHandoffClosed,
    ActionOpenHandoff,
    ActionRelayAgentMessage,
    ActionRelayUserMessage,
    ActionStartHandoff,
    ActionSubmitRating,
    ActionSubmitRatingComment,
    ValidateHandoffForm,
    ValidateRatingCommentForm,
    canonical_priority,
    parse_rating,
)
from actions.outbox import Outbox
from tests.actions.support import FakeService, bot_event, drain, run, slots_set, tracker, user_event

CONVERSATION = [
    user_event("How do I reset my password?", "ask_question", 1_700_000_000.0),
    bot_event("**Reset a forgotten password**\n\nGo to id.example.com", 1_700_000_001.0),
    user_event("/not_helpful", "not_helpful", 1_700_000_030.0, metadata={"display_text": "No"}),
    bot_event("What e-mail address can the Service Desk reach you at?", 1_700_000_031.0),
]


def test_the_handoff_carries_the_whole_transcript(service: FakeService) -> None:
    service.on("POST", "/api/handoffs", {"id": 7, "queue_position": 2, "agents_online": 1}, status=201)
    current = tracker(
        '/inform_priority{"priority": "high"}',
        intent="inform_priority",
        events=CONVERSATION,
        metadata={"display_text": "High"},
        slots={
            "language": "en",
            "contact_email": "maris@example.com",
            "priority": "high",
            "issue_summary": "How do I reset my password?",
            "handoff_key": "k-1",
            "failed_attempts": 1,
            "kb_tried": [{"article_id": "password-reset-en", "title": "Reset", "score": 0.8}],
        },
    )
    events, dispatcher = run(ActionOpenHandoff(), current)
    (sent,) = service.sent("POST", "/api/handoffs")
    body = sent["json"]
    assert body["conversation_id"] == "conv-42"
    assert body["priority"] == "high" and body["contact"] == "maris@example.com"
    assert body["idempotency_key"] == "k-1"
    assert body["articles_tried"] == [{"article_id": "password-reset-en", "title": "Reset", "score": 0.8}]
    assert [(line["role"], line["text"]) for line in body["transcript"]] == [
        ("user", "How do I reset my password?"),
        ("bot", "**Reset a forgotten password**\n\nGo to id.example.com"),
        ("user", "No"),  # what the user saw on the button, not its payload
        ("bot", "What e-mail address can the Service Desk reach you at?"),
        ("user", "High"),
    ]
    assert body["transcript"][0]["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert dispatcher.messages[0]["response"] == "utter_handoff_queued"
    assert dispatcher.messages[0]["position"] == 2
    slots = slots_set(events)
    assert slots["handoff_id"] == "7" and slots["handoff_active"] is True


def test_no_agent_online_is_said_honestly(service: FakeService) -> None:
    service.on(
        "POST", "/api/handoffs",
        {"id": 8, "queue_position": 1, "agents_online": 0, "next_opening": "2026-11-23T08:00:00+02:00"},
        status=201,
    )  # fmt: skip
    _, dispatcher = run(ActionOpenHandoff(), tracker("x", slots={"contact_email": "a@example.com"}))
    message = dispatcher.messages[0]
    assert message["response"] == "utter_handoff_after_hours"
    assert message["opening"] == "2026-11-23 08:00" and message["contact"] == "a@example.com"


def test_a_handoff_asked_for_while_the_service_is_down_is_delivered_later_exactly_once(
    service: FakeService, outbox: Outbox
) -> None:
    service.down = True
    current = tracker("x", events=CONVERSATION, slots={"contact_email": "a@example.com", "handoff_key": "k-9"})
    events, dispatcher = run(ActionOpenHandoff(), current)
    assert dispatcher.messages[0]["response"] == "utter_handoff_deferred"
    assert dispatcher.messages[0]["contact"] == "a@example.com"
    assert "handoff_active" not in slots_set(events)
    (kept,) = outbox.pending()
    assert kept["kind"] == "handoff" and kept["payload"]["idempotency_key"] == "k-9"
    assert len(kept["payload"]["transcript"]) == 5

    assert drain(outbox) == 0  # still down: kept, with a backoff
    service.down = False
    service.on("POST", "/api/handoffs", {"id": 11, "queue_position": 1, "agents_online": 1}, status=201)
    outbox._db.execute("UPDATE outbox SET next_at = 0")  # skip the backoff wait
    assert drain(outbox) == 1
    assert outbox.pending() == []
    (sent,) = service.sent("POST", "/api/handoffs")
    assert sent["json"]["idempotency_key"] == "k-9"


def test_starting_a_handoff_suggests_the_description() -> None:
    events, dispatcher = run(
        ActionStartHandoff(), tracker("a person please", intent="request_human", events=CONVERSATION)
    )
    assert dispatcher.messages[0]["response"] == "utter_handoff_intro"
    slots = slots_set(events)
    assert slots["summary_suggestion"] == "How do I reset my password?"
    assert slots["issue_summary"] is None and slots["escalate"] is False


def test_the_description_question_offers_the_users_own_words() -> None:
    current = tracker("", slots={"summary_suggestion": "VPN drops every hour", "language": "lv"})
    _, dispatcher = run(ActionAskIssueSummary(), current)
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ask_issue_summary_suggested"
    assert message["buttons"] == [{"title": "Izmantot: VPN drops every hour", "payload": "VPN drops every hour"}]
    _, plain = run(ActionAskIssueSummary(), tracker(""))
    assert plain.messages[0]["response"] == "utter_ask_issue_summary"


def test_a_description_needs_a_few_words() -> None:
    form = ValidateHandoffForm()
    dispatcher = CollectingDispatcher()
    assert form.validate_issue_summary("ok", dispatcher, tracker("ok"), {}) == {"issue_summary": None}
    assert dispatcher.messages[0]["response"] == "utter_invalid_issue_summary"
    text = "  Outlook   asks for my password every 5 minutes "
    assert form.validate_issue_summary(text, CollectingDispatcher(), tracker(text), {}) == {
        "issue_summary": "Outlook asks for my password every 5 minutes"
    }


def test_the_form_starts_without_complaining_about_the_cleared_description() -> None:
    # action_start_handoff clears issue_summary; the form's first validation sees that
    # SlotSet among the latest events and must not answer it with "describe the problem".
    started = tracker("a person please", intent="request_human")
    for name, value in (("summary_suggestion", "VPN drops"), ("issue_summary", None), ("escalate", False)):
        started.events.append({"event": "slot", "name": name, "value": value})
        started.slots[name] = value
    started.slots["requested_slot"] = None
    domain = {"forms": {"handoff_form": {"required_slots": ["contact_email", "priority", "issue_summary"]}}}
    events, dispatcher = run(ValidateHandoffForm(), started, domain)
    assert dispatcher.messages == []
    assert slots_set(events).get("issue_summary") is None


def test_user_messages_are_relayed_silently(service: FakeService) -> None:
    service.on("POST", "/api/handoffs/7/user-messages", {"id": 1}, status=201)
    events, dispatcher = run(
        ActionRelayUserMessage(),
        tracker("it still says locked", slots={"handoff_id": "7", "handoff_active": True}),
    )
    (sent,) = service.sent("POST", "/api/handoffs/7/user-messages")
    assert sent["json"]["text"] == "it still says locked"
    assert sent["json"]["client_id"] == "msg-1"
    assert dispatcher.messages == [] and events == []


def test_relayed_messages_survive_the_service_being_down_and_keep_their_order(
    service: FakeService, outbox: Outbox
) -> None:
    slots = {"handoff_id": "7", "handoff_active": True}
    service.down = True
    events, dispatcher = run(ActionRelayUserMessage(), tracker("hello?", slots=slots))
    assert dispatcher.messages[0]["response"] == "utter_relay_delayed"
    assert slots_set(events) == {"relay_delayed": True}
    # Told once; the next message waits quietly behind the first.
    service.down = False
    service.on("POST", "/api/handoffs/7/user-messages", {"id": 1}, status=201)
    _, again = run(ActionRelayUserMessage(), tracker("is anyone there", slots={**slots, "relay_delayed": True}))
    assert again.messages == []
    assert [item["payload"]["text"] for item in outbox.pending()] == ["hello?", "is anyone there"]
    drain(outbox)
    assert [r["json"]["text"] for r in service.sent("POST", "/api/handoffs/7/user-messages")] == [
        "hello?",
        "is anyone there",
    ]


def test_agent_messages_show_the_agents_name() -> None:
    current = tracker(
        "", intent="EXTERNAL_agent_message",
        entities=[{"entity": "message", "value": "Hi, I reset it."}, {"entity": "agent_name", "value": "Anna"}],
    )  # fmt: skip
    _, dispatcher = run(ActionRelayAgentMessage(), current)
    assert dispatcher.messages[0]["text"] == "Hi, I reset it."
    assert dispatcher.messages[0]["custom"] == {"kind": "agent", "agent_name": "Anna"}


def test_closing_brings_the_bot_back_and_asks_for_a_rating() -> None:
    current = tracker(
        "", intent="EXTERNAL_handoff_closed",
        entities=[{"entity": "agent_name", "value": "Anna"}, {"entity": "handoff_id", "value": "7"}],
        slots={"handoff_id": "7", "handoff_active": True},
    )  # fmt: skip
    events, dispatcher = run(ActionHandoffClosed(), current)
    assert [m["response"] for m in dispatcher.messages] == ["utter_agent_left", "utter_ask_rating"]
    slots = slots_set(events)
    assert slots["handoff_active"] is False and slots["handoff_id"] is None
    assert slots["last_handoff_id"] == "7" and slots["awaiting"] == "rating"


def test_the_rating_and_the_comment_are_stored_with_the_handoff(service: FakeService) -> None:
    service.on("POST", "/api/handoffs/7/rating", {"id": 7, "rating": 4})
    current = tracker(
        '/rate{"rating": "4"}', intent="rate", entities=[{"entity": "rating", "value": "4"}],
        slots={"last_handoff_id": "7"},
    )  # fmt: skip
    events, dispatcher = run(ActionSubmitRating(), current)
    assert service.sent("POST", "/api/handoffs/7/rating")[0]["json"] == {"rating": 4, "comment": ""}
    assert slots_set(events)["rating"] == "4" and dispatcher.messages == []

    form = ValidateRatingCommentForm()
    starting = tracker('/rate{"rating": "4"}', intent="rate")
    assert form.validate_rating_comment(None, CollectingDispatcher(), starting, {}) == {"rating_comment": None}
    comment_turn = tracker("Anna was quick, thanks", intent="thank")
    assert form.validate_rating_comment("Anna was quick, thanks", CollectingDispatcher(), comment_turn, {}) == {
        "rating_comment": "Anna was quick, thanks"
    }
    short_thanks = tracker("nē, paldies", intent="deny")
    assert form.validate_rating_comment("nē, paldies", CollectingDispatcher(), short_thanks, {}) == {
        "rating_comment": "-"
    }
    no_thanks = tracker("/deny", intent="deny")
    assert form.validate_rating_comment("/deny", CollectingDispatcher(), no_thanks, {}) == {"rating_comment": "-"}

    done = tracker("", slots={"last_handoff_id": "7", "rating": "4", "rating_comment": "Anna was quick"})
    _, thanks = run(ActionSubmitRatingComment(), done)
    assert service.sent("POST", "/api/handoffs/7/rating")[1]["json"] == {"rating": 4, "comment": "Anna was quick"}
    assert thanks.messages[0]["response"] == "utter_thanks_for_rating"
    _, skipped = run(
        ActionSubmitRatingComment(), tracker("", slots={"last_handoff_id": "7", "rating": "4", "rating_comment": "-"})
    )
    assert len(service.sent("POST", "/api/handoffs/7/rating")) == 2  # "no, thanks" sends nothing
    assert skipped.messages[0]["response"] == "utter_thanks_for_rating"


@pytest.mark.parametrize("said", ["great", "10/10", "0", "8 out of 10"])
def test_an_unreadable_rating_is_asked_again(service: FakeService, said: str) -> None:
    events, dispatcher = run(ActionSubmitRating(), tracker(said, intent="rate", slots={"last_handoff_id": "7"}))
    assert dispatcher.messages[0]["response"] == "utter_ask_rating"
    assert slots_set(events) == {"rating": None}
    assert service.requests == []


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("4", 4), ("4/5", 4), ("5 stars", 5), ("I'd give 3 out of 5", 3), ("★★", 2), ("⭐⭐⭐⭐⭐", 5),
        ("four", 4), ("četri", 4), ("пять", 5), ("ну три", 3),
        ("10/10", None), ("15", None), ("0 stars", None), ("thanks", None), ("", None),
    ],
)  # fmt: skip
def test_ratings_are_read_from_what_people_type(said: str, expected: int | None) -> None:
    assert parse_rating(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("urgent", "urgent"), ("not urgent", "low"), ("It's quite urgent", "high"), ("normāla", "normal"),
        ("не срочно", "low"), ("срочно!", "urgent"), ("3", "high"), ("purple", None),
    ],
)  # fmt: skip
def test_urgency_words_in_three_languages(said: str, expected: str) -> None:
    assert canonical_priority(said) == expected


def test_an_invalid_email_is_asked_again() -> None:
    form = ValidateHandoffForm()
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    current = tracker("my mail is maris at example")
    assert form.validate_contact_email("my mail is maris at example", dispatcher, current, {}) == {
        "contact_email": None
    }
    assert dispatcher.messages[0]["response"] == "utter_invalid_email"
    ok = form.validate_contact_email("sure, it's Maris.Ozols@example.lv thanks", CollectingDispatcher(), current, {})
    assert ok == {"contact_email": "Maris.Ozols@example.lv"}


def test_a_release_is_announced_and_the_bot_stays_quiet() -> None:
    from actions.handoff import ActionAgentReleased

    current = tracker(
        "", intent="EXTERNAL_handoff_released", entities=[{"entity": "agent_name", "value": "Anna"}],
        slots={"handoff_active": True, "agent_name": "Anna"},
    )  # fmt: skip
    events, dispatcher = run(ActionAgentReleased(), current)
    assert dispatcher.messages[0]["response"] == "utter_agent_released"
    assert dispatcher.messages[0]["agent_name"] == "Anna"
    assert "handoff_active" not in slots_set(events)
