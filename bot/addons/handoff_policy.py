"""While a human agent has the conversation, the bot only relays.

When the slot ``handoff_active`` is true, every user message, whatever its intent,
is answered by ``action_relay_user_message`` (which appends it to the handoff for
the agent) and then the bot listens. External events from the firstline service
(``EXTERNAL_*`` intents: an agent's reply, the agent joining, the handoff closing)
are left to the rules. One policy instead of one rule per intent means a new
intent can never slip past the handoff and make the bot talk over the agent.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

RELAY_ACTION = "action_relay_user_message"
ACTIVE_SLOT = "handoff_active"
EXTERNAL_PREFIX = "EXTERNAL_"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=False)
class HandoffPolicy(Policy):
    """Predicts the relay with certainty while handed off; abstains otherwise."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # Above RulePolicy (6): on a tie at confidence 1.0 the handoff wins.
        return {"priority": 7}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "HandoffPolicy":
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "HandoffPolicy":
        return cls(config, model_storage, resource, execution_context)

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if not tracker.get_slot(ACTIVE_SLOT):
            return self._prediction(probabilities)
        last_action = _last_action(tracker)
        if last_action == ACTION_LISTEN_NAME:
            intent = tracker.latest_message.intent.get("name") or ""
            if not intent.startswith(EXTERNAL_PREFIX):
                probabilities[domain.index_for_action(RELAY_ACTION)] = 1.0
        elif last_action == RELAY_ACTION:
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
        return self._prediction(probabilities)


def _last_action(tracker: DialogueStateTracker) -> Optional[Text]:
    """The last action run after the latest user message, or action_listen before it."""
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return ACTION_LISTEN_NAME
        if isinstance(event, ActionExecuted) and event.action_name not in (
            "action_extract_slots",
            "action_session_start",
        ):
            return event.action_name
    return None
