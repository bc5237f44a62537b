"""Language detection with a prior (confident sentences switch, short tokens do not), and the slot Rasa keeps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.core.actions.action import ActionExtractSlots
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

import bot.addons  # noqa: F401  (sets the language in action_extract_slots)
from bot.addons.language import detect


@pytest.mark.parametrize(
    ("text", "current", "expected"),
    [
        ("How do I reset my password?", None, "en"),
        ("Es aizmirsu savu paroli, ko man darīt?", "en", "lv"),
        ("Не могу подключиться к VPN из дома", "en", "ru"),
        ("забыл пароль", "lv", "ru"),  # Cyrillic is Russian among our three
        ("ok", "ru", "ru"),  # too short to switch on
        ("VPN", "lv", "lv"),
        ("/affirm", "lv", "lv"),  # a button payload is not language
        ("paldies, tas palīdzēja", "en", "lv"),
        ("my printer is not printing anything today", "lv", "en"),
        # The contact the handoff form asks for is no language: the conversation keeps its own.
        ("janis.ozols@example.lv", "lv", "lv"),
        ("ivan@example.com", "ru", "ru"),
        ("see https://status.example.com/outage/today", "lv", "lv"),
    ],
)
def test_detect(text: str, current: str | None, expected: str) -> None:
    assert detect(text, current) == expected


DOMAIN = Domain.load(Path(__file__).parents[2] / "bot" / "domain")


def extract(
    text: str,
    language: str | None,
    metadata: dict | None = None,
    entities: list | None = None,
    intent: str = "ask_question",
    form: str | None = None,
) -> list[Event]:
    """What Rasa's `action_extract_slots` returns after this message (no action server exists)."""
    events: list[Event] = [ActionExecuted("action_listen")]
    if language:
        events.append(SlotSet("language", language))
    if form:
        events += [ActiveLoop(form), SlotSet("requested_slot", "contact_email"), ActionExecuted("action_listen")]
    events.append(UserUttered(text, {"name": intent, "confidence": 1.0}, entities or [], metadata=metadata))
    tracker = DialogueStateTracker.from_events("someone", events, slots=DOMAIN.slots)
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    return asyncio.run(ActionExtractSlots(None).run(CollectingOutputChannel(), nlg, tracker, DOMAIN))


def test_a_message_in_another_language_switches_it() -> None:
    assert extract("Es aizmirsu savu paroli, ko man darīt?", "en") == [SlotSet("language", "lv")]


def test_the_page_language_is_the_prior_for_the_first_message() -> None:
    assert extract("VPN", None, metadata={"language": "ru"}) == [SlotSet("language", "ru")]
    assert extract("VPN", None) == [SlotSet("language", "en")]


def test_asking_for_a_language_switches_it() -> None:
    asked = extract("runā latviski", "en", entities=[{"entity": "language", "value": "lv"}], intent="switch_language")
    assert asked == [SlotSet("language", "lv")]


def test_unchanged_language_sets_nothing() -> None:
    assert extract("How do I connect to the office wifi?", "en") == []


def test_messages_from_the_service_leave_the_language_alone() -> None:
    assert extract("Anna joined", "lv", intent="EXTERNAL_handoff_claimed") == []


def test_the_other_slots_are_still_filled_alongside() -> None:
    # The handoff form asks for an e-mail: the address fills its slot and is no language.
    events = extract("janis.ozols@example.lv", "lv", intent="inform_email", form="handoff_form")
    assert events == [SlotSet("contact_email", "janis.ozols@example.lv")]
    events = extract("ivan@example.com, срочно", "en", intent="inform_email", form="handoff_form")
    assert events == [SlotSet("contact_email", "ivan@example.com, срочно"), SlotSet("language", "ru")]
