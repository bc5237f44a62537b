"""Slots filled on every user turn: the conversation's language."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from actions.language import LANGUAGES, detect


class ValidateSlotMappings(ValidationAction):
    """Runs after every user message (``action_validate_slot_mappings``)."""

    async def extract_language(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        latest = tracker.latest_message
        intent = (latest.get("intent") or {}).get("name") or ""
        if intent.startswith("EXTERNAL_"):
            return {}
        for entity in latest.get("entities") or []:
            if entity.get("entity") == "language" and entity.get("value") in LANGUAGES:
                return {"language": entity["value"]}
        metadata = latest.get("metadata") or {}
        current = tracker.get_slot("language")
        if current not in LANGUAGES:
            page = metadata.get("language") if isinstance(metadata, dict) else None
            current = page if page in LANGUAGES else None
        language = detect(latest.get("text") or "", current)
        return {"language": language} if language != tracker.get_slot("language") else {}
