"""Answering from the knowledge base, and what the user says about the answer."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.client import Rejected, ServiceUnavailable, get_client
from actions.common import label, language_of
from actions.outbox import send_or_keep

MAX_TRIED = 10


def _article_message(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": f"**{result['title']}**\n\n{result['body']}",
        "json_message": {
            "kind": "article",
            "article_id": result["article_id"],
            "language": result.get("language"),
        },
    }


def _suggestion_buttons(suggestions: list[dict[str, Any]], language: str) -> list[dict[str, str]]:
    buttons = [
        {
            "title": s["title"],
            "payload": "/choose_article" + json.dumps({"article_id": s["article_id"]}),
        }
        for s in suggestions
    ]
    buttons.append({"title": label("none_of_these", language), "payload": "/not_helpful"})
    return buttons


def _tried(tracker: Tracker, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tried = list(tracker.get_slot("kb_tried") or [])
    seen = {t.get("article_id") for t in tried}
    for r in results:
        if r["article_id"] not in seen:
            tried.append({"article_id": r["article_id"], "title": r["title"], "score": r["score"]})
    return tried[-MAX_TRIED:]


async def _feedback(tracker: Tracker, outcome: str) -> None:
    query_id = tracker.get_slot("kb_query_id")
    if query_id is None:
        return
    # Feedback is for reports: kept for later if the service is down, dropped if refused.
    with contextlib.suppress(Rejected, ValueError):
        await send_or_keep("feedback", {"query_id": int(query_id), "outcome": outcome})


class ActionAnswerFromKb(Action):
    def name(self) -> str:
        return "action_answer_from_kb"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        query = (tracker.latest_message.get("text") or "").strip()
        language = language_of(tracker)
        if not query or query.startswith("/"):
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        try:
            found = await get_client().search(query, language, tracker.sender_id)
        except ServiceUnavailable:
            dispatcher.utter_message(
                response="utter_service_unavailable",
                buttons=[{"title": label("talk_to_person", language), "payload": "/request_human"}],
            )
            return [SlotSet("awaiting", "offer_human")]
        except Rejected:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        results = found.get("results") or []
        events: list[EventType] = [
            SlotSet("kb_query", query[:1000]),
            SlotSet("kb_query_id", found.get("query_id")),
            SlotSet("kb_tried", _tried(tracker, results[:3] if found["decision"] != "none" else [])),
        ]
        decision = found["decision"]
        if decision == "answer" and results:
            top = results[0]
            if found.get("cross_language"):
                dispatcher.utter_message(response="utter_other_language_answer")
            dispatcher.utter_message(**_article_message(top))
            dispatcher.utter_message(response="utter_ask_feedback")
            return [
                *events,
                SlotSet("kb_article_id", top["article_id"]),
                SlotSet("kb_suggestions", [{"article_id": r["article_id"], "title": r["title"]} for r in results[1:3]]),
                SlotSet("awaiting", "feedback"),
            ]
        if decision == "clarify" and results:
            suggestions = [{"article_id": r["article_id"], "title": r["title"]} for r in results[:3]]
            dispatcher.utter_message(response="utter_clarify", buttons=_suggestion_buttons(suggestions, language))
            return [
                *events,
                SlotSet("kb_article_id", None),
                SlotSet("kb_suggestions", suggestions),
                SlotSet("awaiting", "clarify"),
            ]
        failed = (tracker.get_slot("failed_attempts") or 0) + 1
        dispatcher.utter_message(response="utter_no_answer")
        return [
            *events,
            SlotSet("kb_article_id", None),
            SlotSet("kb_suggestions", []),
            SlotSet("failed_attempts", failed),
            SlotSet("awaiting", "offer_human"),
        ]


class ActionShowArticle(Action):
    """The user picked one of the suggested articles."""

    def name(self) -> str:
        return "action_show_article"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        article_id = next(
            (
                str(e.get("value"))
                for e in tracker.latest_message.get("entities", [])
                if e.get("entity") == "article_id"
            ),
            None,
        )
        if not article_id:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        try:
            article = await get_client().article(article_id)
        except (ServiceUnavailable, Rejected):
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        dispatcher.utter_message(**_article_message(article))
        dispatcher.utter_message(response="utter_ask_feedback")
        remaining = [s for s in tracker.get_slot("kb_suggestions") or [] if s.get("article_id") != article_id]
        return [
            SlotSet("kb_article_id", article_id),
            SlotSet("kb_suggestions", remaining),
            SlotSet("awaiting", "feedback"),
        ]


class ActionFeedback(Action):
    """Yes / no / "that didn't help", read against what the bot last asked.

    When the answer is a handoff it sets ``escalate``, and a rule starts the handoff.
    """

    def name(self) -> str:
        return "action_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        awaiting: str | None = tracker.get_slot("awaiting")
        language = language_of(tracker)
        if intent == "affirm":
            if awaiting == "feedback":
                await _feedback(tracker, "helped")
                dispatcher.utter_message(response="utter_glad_it_helped")
                return [SlotSet("awaiting", None), SlotSet("failed_attempts", 0), SlotSet("escalate", False)]
            if awaiting == "offer_human":
                return [SlotSet("awaiting", None), SlotSet("escalate", True)]
            dispatcher.utter_message(response="utter_anything_else")
            return [SlotSet("escalate", False)]
        if intent == "deny" and awaiting in ("offer_human", None):
            dispatcher.utter_message(response="utter_ask_rephrase")
            return [SlotSet("awaiting", None), SlotSet("escalate", False)]
        # "No" to "did this help?", "none of these", or "that didn't help".
        if awaiting in ("feedback", "clarify"):
            await _feedback(tracker, "not_helped")
        failed = (tracker.get_slot("failed_attempts") or 0) + 1
        suggestions = [
            s
            for s in tracker.get_slot("kb_suggestions") or []
            if s.get("article_id") != tracker.get_slot("kb_article_id")
        ]
        if awaiting == "feedback" and suggestions and failed < 2:
            buttons = _suggestion_buttons(suggestions, language)
            buttons[-1] = {"title": label("talk_to_person", language), "payload": "/request_human"}
            dispatcher.utter_message(response="utter_offer_alternatives", buttons=buttons)
            return [SlotSet("failed_attempts", failed), SlotSet("awaiting", "clarify"), SlotSet("escalate", False)]
        return [SlotSet("failed_attempts", failed), SlotSet("awaiting", None), SlotSet("escalate", True)]
