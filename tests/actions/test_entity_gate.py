"""DIET's entities are looked for only in messages of the intents that carry them.

DIET's network is replaced by a recorder here; the trained gate runs in `rasa test`
(e-mail, urgency, rating and language-switch turns in three languages).
"""

from __future__ import annotations

import pytest
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.nlu.training_data.message import Message

from bot.addons.entity_gate import IntentGatedDIET


def message(text: str, intent: str | None) -> Message:
    data = {"text": text}
    if intent:
        data["intent"] = {"name": intent, "confidence": 0.9}
    return Message(data=data)


def test_only_messages_of_the_entity_intents_reach_diet(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def diet_process(self: DIETClassifier, messages: list[Message]) -> list[Message]:
        for m in messages:
            seen.append(m.get("text"))
            m.set("entities", [{"entity": "rating", "value": "4"}], add_to_output=True)
        return messages

    monkeypatch.setattr(DIETClassifier, "process", diet_process)
    gate = object.__new__(IntentGatedDIET)  # the gate itself; DIET's network is stubbed above
    gate.component_config = {**IntentGatedDIET.get_default_config(), "entity_intents": ["rate", "inform_email"]}
    messages = [
        message("How do I reset my password?", "ask_question"),
        message("four stars", "rate"),
        message("anna@example.com", "inform_email"),
        message("", None),
    ]

    returned = gate.process(messages)

    assert returned is messages
    assert seen == ["four stars", "anna@example.com"]
    stamped = [{"entity": "rating", "value": "4"}]
    assert [m.get("entities") for m in messages] == [None, stamped, stamped, None]
