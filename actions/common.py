"""Small helpers shared by the actions: the user's language, labels, the transcript."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Tracker

LANGUAGES = ("en", "lv", "ru")

#: Labels of buttons that actions build on the fly; fixed texts live in the domain.
LABELS: dict[str, dict[str, str]] = {
    "none_of_these": {"en": "None of these", "lv": "Neviens no šiem", "ru": "Ничего из этого"},
    "talk_to_person": {"en": "Talk to a person", "lv": "Runāt ar cilvēku", "ru": "Связаться с человеком"},
    "use_this": {"en": "Use", "lv": "Izmantot", "ru": "Использовать"},
}


def language_of(tracker: Tracker) -> str:
    language = tracker.get_slot("language")
    return language if language in LANGUAGES else "en"


def label(name: str, language: str) -> str:
    return LABELS[name].get(language, LABELS[name]["en"])


def user_text(event: dict[str, Any]) -> str | None:
    """What the user saw themselves send: a button's title rather than its payload."""
    text = event.get("text") or ""
    metadata = event.get("metadata") or {}
    if text.startswith("/"):
        shown = metadata.get("display_text") if isinstance(metadata, dict) else None
        if isinstance(shown, str) and shown.strip():
            return shown.strip()
        intent = (event.get("parse_data") or {}).get("intent", {}).get("name") or text[1:]
        if intent.startswith("EXTERNAL_"):
            return None
        return f"[{intent.split('{')[0]}]"
    return text or None


def iso(timestamp: float | None) -> str:
    moment = datetime.fromtimestamp(timestamp or 0, tz=timezone.utc)
    return moment.isoformat()


def transcript(tracker: Tracker) -> list[dict[str, str]]:
    """Every user and bot turn of the conversation so far, with timestamps."""
    lines: list[dict[str, str]] = []
    for event in tracker.events:
        kind = event.get("event")
        if kind == "user":
            text = user_text(event)
            if text:
                lines.append({"role": "user", "text": text, "timestamp": iso(event.get("timestamp"))})
        elif kind == "bot":
            text = event.get("text")
            if text:
                lines.append({"role": "bot", "text": text, "timestamp": iso(event.get("timestamp"))})
    return lines


def last_user_question(tracker: Tracker) -> str | None:
    """The newest user message that was a real question rather than a button or a yes/no."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        text = event.get("text") or ""
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if text and not text.startswith("/") and intent in ("ask_question", "nlu_fallback", None):
            return text
    return None
