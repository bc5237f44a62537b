"""Handing the conversation to a person, relaying while handed off, and the rating after."""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.client import Rejected, ServiceUnavailable, get_client
from actions.common import label, language_of, last_user_question, transcript, user_text
from actions.outbox import get_outbox, send_or_keep

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# fmt: off
PRIORITY_WORDS: dict[str, list[str]] = {
    "urgent": ["urgent", "asap", "critical", "emergency", "steidzami", "ļoti steidzami", "kritiski", "срочно",
               "очень срочно", "критично", "4"],
    "high": ["high", "important", "quite urgent", "augsta", "augsts", "svarīgi", "высокий", "высокая", "важно", "3"],
    "normal": ["normal", "medium", "regular", "normāla", "normāls", "vidēja", "parasta", "обычный", "обычная",
               "средний", "нормальный", "2"],
    "low": ["low", "not urgent", "whenever", "zema", "zems", "nav steidzami", "низкий", "низкая", "не срочно", "1"],
}
# fmt: on
MAX_SUMMARY = 300
#: The slot value for "no, thanks" to "anything to add?" (the form needs some value to finish).
NO_COMMENT = "-"
NO_COMMENT_INTENTS = {"deny", "cancel", "goodbye", "thank"}


def _entity(tracker: Tracker, name: str) -> Any | None:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name:
            return entity.get("value")
    return None


def canonical_priority(value: Any) -> str | None:
    """Maps what the user said or pressed to low / normal / high / urgent."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower().rstrip(".!")
    if text in PRIORITY_WORDS:
        return text
    # Longest phrase first, so "not urgent" is low rather than urgent.
    phrases = sorted(((p, k) for k, ps in PRIORITY_WORDS.items() for p in ps), key=lambda x: -len(x[0]))
    for phrase, key in phrases:
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text):
            return key
    return None


class ActionStartHandoff(Action):
    """Explains what happens next and proposes a description; a rule then runs the form."""

    def name(self) -> str:
        return "action_start_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        suggestion = (tracker.get_slot("kb_query") or last_user_question(tracker) or "")[:MAX_SUMMARY]
        dispatcher.utter_message(response="utter_handoff_intro")
        return [
            SlotSet("summary_suggestion", suggestion or None),
            SlotSet("issue_summary", None),
            SlotSet("handoff_key", uuid.uuid4().hex),
            SlotSet("escalate", False),
        ]


class ActionAskIssueSummary(Action):
    """Asks for a one-line description, offering what the user asked the bot as a button."""

    def name(self) -> str:
        return "action_ask_issue_summary"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        suggestion = tracker.get_slot("summary_suggestion")
        if suggestion:
            # The button sends the text itself, which the form takes as the description.
            dispatcher.utter_message(
                response="utter_ask_issue_summary_suggested",
                buttons=[{"title": f"{label('use_this', language_of(tracker))}: {suggestion}", "payload": suggestion}],
            )
        else:
            dispatcher.utter_message(response="utter_ask_issue_summary")
        return []


class ValidateHandoffForm(FormValidationAction):
    def name(self) -> str:
        return "validate_handoff_form"

    def validate_contact_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"contact_email": None}
        found = EMAIL.search(str(_entity(tracker, "email") or value))
        if not found:
            dispatcher.utter_message(response="utter_invalid_email")
            return {"contact_email": None}
        return {"contact_email": found.group(0)}

    def validate_priority(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"priority": None}
        priority = canonical_priority(_entity(tracker, "priority")) or canonical_priority(value)
        if priority is None:
            dispatcher.utter_message(response="utter_invalid_priority")
        return {"priority": priority}

    def validate_issue_summary(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # reset when the handoff starts, not typed: nothing to complain about
            return {"issue_summary": None}
        text = " ".join(str(value).split())
        if len(text) < 3 or text.startswith("/"):
            dispatcher.utter_message(response="utter_invalid_issue_summary")
            return {"issue_summary": None}
        return {"issue_summary": text[:MAX_SUMMARY]}


class ActionOpenHandoff(Action):
    """Opens the handoff in the firstline service with the whole transcript."""

    def name(self) -> str:
        return "action_open_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        contact = tracker.get_slot("contact_email") or ""
        payload = {
            "conversation_id": tracker.sender_id,
            "language": language_of(tracker),
            "priority": tracker.get_slot("priority") or "normal",
            "contact": contact,
            "summary": tracker.get_slot("issue_summary") or "",
            "transcript": transcript(tracker),
            "articles_tried": tracker.get_slot("kb_tried") or [],
            "feedback": _feedback_summary(tracker),
            "idempotency_key": tracker.get_slot("handoff_key") or uuid.uuid4().hex,
        }
        done = [
            SlotSet("awaiting", None),
            SlotSet("failed_attempts", 0),
            SlotSet("priority", None),  # the next handoff asks again; the e-mail is kept
            SlotSet("issue_summary", None),
        ]
        try:
            created = await get_client().create_handoff(payload)
        except ServiceUnavailable:
            # Kept in the bot's outbox and delivered when the service is back (exactly once:
            # the idempotency key travels with it).
            get_outbox().put("handoff", payload)
            dispatcher.utter_message(response="utter_handoff_deferred", contact=contact)
            return done
        except Rejected:
            dispatcher.utter_message(response="utter_handoff_failed", contact=contact)
            return done
        handoff_id = str(created["id"])
        # Tells the widget that a person has the conversation now (no typing dots for the bot).
        opened = {"kind": "handoff_opened", "handoff_id": handoff_id}
        if created.get("agents_online"):
            dispatcher.utter_message(
                response="utter_handoff_queued", position=created.get("queue_position") or 1, json_message=opened
            )
        elif created.get("next_opening"):
            opening = datetime.fromisoformat(created["next_opening"]).strftime("%Y-%m-%d %H:%M")
            dispatcher.utter_message(
                response="utter_handoff_after_hours", contact=contact, opening=opening, json_message=opened
            )
        else:
            dispatcher.utter_message(response="utter_handoff_no_agents", contact=contact, json_message=opened)
        return [
            SlotSet("handoff_id", handoff_id),
            SlotSet("last_handoff_id", handoff_id),
            SlotSet("handoff_active", True),
            *done,
        ]


def _feedback_summary(tracker: Tracker) -> str:
    failed = int(tracker.get_slot("failed_attempts") or 0)
    if failed:
        return f"{failed} answer(s) did not help"
    return ""


class ActionRelayUserMessage(Action):
    """While handed off: append what the user wrote to the handoff, say nothing."""

    def name(self) -> str:
        return "action_relay_user_message"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        latest = tracker.latest_message
        event = {"text": latest.get("text"), "metadata": latest.get("metadata"), "parse_data": latest}
        text = user_text(event)
        handoff_id = tracker.get_slot("handoff_id")
        if not text or not handoff_id:
            return []
        user_events = [e for e in tracker.events if e.get("event") == "user"]
        timestamp = user_events[-1].get("timestamp") if user_events else None
        payload = {
            "handoff_id": handoff_id,
            "text": text,
            "client_id": str(latest.get("message_id") or f"{tracker.sender_id}:{timestamp}"),
            "timestamp": timestamp or 0,
        }
        try:
            sent = await send_or_keep("user_message", payload)
        except Rejected as exc:
            if exc.status == 404:  # the handoff is gone: the bot takes the conversation back
                return [SlotSet("handoff_active", False), SlotSet("handoff_id", None)]
            return []
        if not sent and not tracker.get_slot("relay_delayed"):
            dispatcher.utter_message(response="utter_relay_delayed")
            return [SlotSet("relay_delayed", True)]
        if sent and tracker.get_slot("relay_delayed"):
            return [SlotSet("relay_delayed", False)]
        return []


class ActionRelayAgentMessage(Action):
    """An agent's reply, pushed by the service through trigger_intent."""

    def name(self) -> str:
        return "action_relay_agent_message"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = _entity(tracker, "message")
        if not text:
            return []
        agent = _entity(tracker, "agent_name") or ""
        dispatcher.utter_message(text=str(text), json_message={"kind": "agent", "agent_name": agent})
        return []


class ActionAgentJoined(Action):
    """An agent claimed the handoff (or it was transferred to them)."""

    def name(self) -> str:
        return "action_agent_joined"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        agent = _entity(tracker, "agent_name") or ""
        handoff_id = _entity(tracker, "handoff_id") or tracker.get_slot("handoff_id")
        dispatcher.utter_message(
            response="utter_agent_joined", agent_name=agent, json_message={"kind": "agent_joined", "agent_name": agent}
        )
        # Also when the handoff was created later from the bot's outbox: from now on, relay.
        events: list[EventType] = [SlotSet("agent_name", agent), SlotSet("handoff_active", True)]
        if handoff_id:
            events += [SlotSet("handoff_id", str(handoff_id)), SlotSet("last_handoff_id", str(handoff_id))]
        return events


class ActionAgentReleased(Action):
    """The agent put the conversation back in the queue; it stays with the humans."""

    def name(self) -> str:
        return "action_agent_released"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        agent = _entity(tracker, "agent_name") or tracker.get_slot("agent_name") or ""
        dispatcher.utter_message(
            response="utter_agent_released",
            agent_name=agent,
            json_message={"kind": "agent_released", "agent_name": agent},
        )
        return [SlotSet("agent_name", None)]


class ActionHandoffClosed(Action):
    """The agent closed the handoff: the bot is back and asks for a rating."""

    def name(self) -> str:
        return "action_handoff_closed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        agent = _entity(tracker, "agent_name") or tracker.get_slot("agent_name") or ""
        closed = str(_entity(tracker, "handoff_id") or tracker.get_slot("handoff_id") or "")
        dispatcher.utter_message(
            response="utter_agent_left", agent_name=agent, json_message={"kind": "agent_left", "agent_name": agent}
        )
        dispatcher.utter_message(response="utter_ask_rating")
        return [
            SlotSet("handoff_active", False),
            SlotSet("handoff_id", None),
            SlotSet("last_handoff_id", closed or tracker.get_slot("last_handoff_id")),
            SlotSet("awaiting", "rating"),
            SlotSet("kb_tried", []),
            SlotSet("kb_query", None),
            SlotSet("relay_delayed", False),
        ]


RATING_WORDS = {
    **dict.fromkeys(("one", "viens", "один", "одна"), 1),
    **dict.fromkeys(("two", "divi", "два", "две"), 2),
    **dict.fromkeys(("three", "trīs", "три"), 3),
    **dict.fromkeys(("four", "četri", "четыре"), 4),
    **dict.fromkeys(("five", "pieci", "пять"), 5),
}


def parse_rating(text: str) -> int | None:
    """1-5 from a button or what the user typed: "4", "4/5", "5 stars", "★★★", "četri".

    A number outside 1-5 ("10/10", "0") is not read as a digit of it: None, ask again.
    """
    stars = text.count("★") + text.count("⭐")
    if 1 <= stars <= 5:
        return stars
    numbers = re.findall(r"\d+", text)
    if numbers:
        first = int(numbers[0])
        return first if 1 <= first <= 5 else None
    return next((RATING_WORDS[w] for w in re.findall(r"\w+", text.lower()) if w in RATING_WORDS), None)


class ActionSubmitRating(Action):
    """Stores the 1-5 rating; a rule then offers to add a comment."""

    def name(self) -> str:
        return "action_submit_rating"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        rating = parse_rating(str(_entity(tracker, "rating") or tracker.latest_message.get("text") or ""))
        if rating is None:
            dispatcher.utter_message(response="utter_ask_rating")
            return [SlotSet("rating", None)]
        await _store_rating(tracker.get_slot("last_handoff_id"), rating, "")
        return [SlotSet("awaiting", None), SlotSet("rating", str(rating)), SlotSet("rating_comment", None)]


class ValidateRatingCommentForm(FormValidationAction):
    def name(self) -> str:
        return "validate_rating_comment_form"

    def validate_rating_comment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # the form is only starting: ask
            return {"rating_comment": None}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        text = str(value).strip()
        # "No thanks" (the button, or a few words like "nē, paldies"); longer text is a comment,
        # even when it also thanks ("Anna was quick, thanks").
        if not text or text.startswith("/") or (intent in NO_COMMENT_INTENTS and len(text.split()) <= 3):
            return {"rating_comment": NO_COMMENT}
        return {"rating_comment": text[:2000]}


class ActionSubmitRatingComment(Action):
    """Stores the optional comment that follows a rating, and says thank you."""

    def name(self) -> str:
        return "action_submit_rating_comment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        comment = tracker.get_slot("rating_comment")
        rating = tracker.get_slot("rating")
        if comment and comment != NO_COMMENT and rating:
            await _store_rating(tracker.get_slot("last_handoff_id"), int(rating), comment)
        dispatcher.utter_message(response="utter_thanks_for_rating")
        return [SlotSet("rating_comment", None)]


async def _store_rating(handoff_id: str | None, rating: int, comment: str) -> None:
    if not handoff_id:
        return
    # Refused means already purged or never existed; the user's thanks stays true either way.
    with contextlib.suppress(Rejected):
        await send_or_keep("rating", {"handoff_id": handoff_id, "rating": rating, "comment": comment})
