"""Continued dialogue states equal Rasa's own, event by event, for every story of the bot."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Restarted, UserUtteranceReverted, UserUttered
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.importers.importer import TrainingDataImporter

from bot.addons import past_states

REPO = Path(__file__).resolve().parents[2]
#: RulePolicy's rule-only data has this shape; the states must drop what it names.
RULE_ONLY = {"rule_only_slots": ["requested_slot"], "rule_only_loops": ["rating_comment_form"]}
OPTIONS = [
    {"omit_unset_slots": False, "ignore_rule_only_turns": False, "rule_only_data": None},
    {"omit_unset_slots": True, "ignore_rule_only_turns": True, "rule_only_data": RULE_ONLY},
]


@pytest.fixture(scope="module")
def domain_and_trackers() -> tuple[Domain, list[DialogueStateTracker]]:
    importer = TrainingDataImporter.load_from_dict(
        domain_path=str(REPO / "bot" / "domain"),
        training_data_paths=[str(REPO / "bot" / "data"), str(REPO / "tests" / "bot")],
    )
    domain = importer.get_domain()
    trackers = TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()
    return domain, trackers


def grown(tracker: DialogueStateTracker, domain: Domain) -> Any:
    """One live tracker with the story's events added one at a time, as a conversation grows."""
    live = DialogueStateTracker(f"live-{id(tracker)}", domain.slots, is_rule_tracker=tracker.is_rule_tracker)
    for event in tracker.events:
        live.update(event)
        yield live


def test_states_equal_rasas_after_every_event_of_every_story(
    domain_and_trackers: tuple[Domain, list[DialogueStateTracker]],
) -> None:
    domain, trackers = domain_and_trackers
    assert len(trackers) > 100
    compared = 0
    for tracker in trackers:
        for live in grown(tracker, domain):
            for options in OPTIONS:
                ours = domain.states_for_tracker_history(live, **options)
                assert ours == past_states.rasa_states_for_tracker_history(domain, live, **options)
                compared += 1
    assert compared > 4_000


def test_a_revert_or_restart_starts_over_and_callers_cannot_spoil_what_is_kept(
    domain_and_trackers: tuple[Domain, list[DialogueStateTracker]],
) -> None:
    domain, trackers = domain_and_trackers
    story = max(trackers, key=lambda t: sum(isinstance(e, UserUttered) for e in t.events))
    live = DialogueStateTracker("reverted", domain.slots)
    for event in story.events:
        live.update(event)
    options = OPTIONS[1]
    before = copy.deepcopy(domain.states_for_tracker_history(live, **options))
    # Callers edit what they get (RulePolicy drops the last user input's intent or text).
    for state in domain.states_for_tracker_history(live, **options):
        for sub_state in state.values():
            sub_state.clear()
    assert domain.states_for_tracker_history(live, **options) == before
    for event in (UserUtteranceReverted(), ActionExecuted("action_listen"), Restarted()):
        live.update(event)
        assert domain.states_for_tracker_history(live, **options) == past_states.rasa_states_for_tracker_history(
            domain, live, **options
        )
    # A tracker rebuilt from stored events (other objects, same content) gets the same states.
    rebuilt = DialogueStateTracker.from_events("reverted", [copy.deepcopy(e) for e in live.events], domain.slots)
    assert domain.states_for_tracker_history(rebuilt, **options) == past_states.rasa_states_for_tracker_history(
        domain, rebuilt, **options
    )
    # Another conversation under the same sender id (as in training, where every story is
    # "default") shares none of the kept events, though it is longer.
    by_length = sorted(trackers, key=lambda t: len(t.applied_events()))
    for other in (by_length[len(by_length) // 2], by_length[-1]):
        same_id = DialogueStateTracker.from_events("same-id", list(other.events), domain.slots)
        assert domain.states_for_tracker_history(same_id, **options) == past_states.rasa_states_for_tracker_history(
            domain, same_id, **options
        )
