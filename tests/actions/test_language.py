"""Language detection with a prior: confident sentences switch, short tokens do not."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.language import detect
from actions.slots import ValidateSlotMappings
from tests.actions.support import tracker


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


def extract(text: str, slots: dict, metadata: dict | None = None, entities: list | None = None) -> dict:
    current = tracker(text, slots=slots, metadata=metadata, entities=entities)
    return asyncio.run(ValidateSlotMappings().extract_language(CollectingDispatcher(), current, {}))


def test_the_page_language_is_the_prior_for_the_first_message() -> None:
    assert extract("VPN", {"language": None}, metadata={"language": "ru"}) == {"language": "ru"}


def test_asking_for_a_language_switches_it() -> None:
    assert extract("runā latviski", {"language": "en"}, entities=[{"entity": "language", "value": "lv"}]) == {
        "language": "lv"
    }


def test_unchanged_language_sets_nothing() -> None:
    assert extract("How do I connect to the office wifi?", {"language": "en"}) == {}
