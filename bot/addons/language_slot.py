"""The conversation's language, set inside Rasa after every user message.

The `language` slot used to be a custom slot mapping filled by the action server's
`action_validate_slot_mappings`. For that, after every user message, Rasa replayed the
whole conversation into a new tracker, serialised it and sent it over HTTP, only for
the action server to detect the language of the latest text. Now Rasa's own
`action_extract_slots`, which runs after every user message and fills the other
slots, runs the same detection in process and adds the slot event itself.

The rules (`bot.addons.language`): a `language` entity ("runā latviski") switches the
language; otherwise the detector decides, with the conversation's language, or for
a first message the page's language from the widget's metadata, as the prior.
Messages injected by the firstline service (`EXTERNAL_...` intents) leave it alone.
"""

from __future__ import annotations

from typing import Any, List, Optional

from rasa.core.actions.action import ActionExtractSlots
from rasa.shared.core.events import Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.addons.language import LANGUAGES, detect, warm_up

SLOT = "language"


def language_of(latest: UserUttered, current: Optional[str]) -> str:
    """The language to answer `latest` in, given the conversation's language so far."""
    for entity in latest.entities or []:
        if entity.get("entity") == SLOT and entity.get("value") in LANGUAGES:
            return str(entity["value"])
    prior = current
    if prior not in LANGUAGES:
        metadata: Any = latest.metadata or {}
        page = metadata.get("language") if isinstance(metadata, dict) else None
        prior = page if page in LANGUAGES else None
    return detect(latest.text or "", prior)


def language_events(tracker: DialogueStateTracker, events: List[Event]) -> List[Event]:
    """A `SlotSet` of the language when the latest user message changes it (else nothing)."""
    latest = tracker.latest_message
    if latest is None or latest.text is None:
        return []
    if str((latest.intent or {}).get("name") or "").startswith("EXTERNAL_"):
        return []
    if any(isinstance(e, SlotSet) and e.key == SLOT for e in events):
        return []  # another mapping of this slot already decided
    current = tracker.get_slot(SLOT)
    language = language_of(latest, current)
    return [SlotSet(SLOT, language)] if language != current else []


_extract_slots = ActionExtractSlots.run


async def _run_with_language(
    self: ActionExtractSlots, output_channel: Any, nlg: Any, tracker: DialogueStateTracker, domain: Any
) -> List[Event]:
    events: List[Event] = await _extract_slots(self, output_channel, nlg, tracker, domain)
    if any(slot.name == SLOT for slot in domain.slots):
        events = events + language_events(tracker, events)
    return events


ActionExtractSlots.run = _run_with_language  # type: ignore[method-assign]
warm_up()  # load the detector's models now, not on the first user's message
