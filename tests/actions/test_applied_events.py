"""Continued applied events equal Rasa's own, event by event, for every story and the odd cases."""

from __future__ import annotations

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.addons import applied_events
from tests.actions.test_past_states import domain_and_trackers, grown  # noqa: F401  (a fixture)


def same(tracker: DialogueStateTracker) -> bool:
    ours = tracker.applied_events()
    theirs = applied_events.rasa_applied_events(tracker)
    return [id(e) for e in ours] == [id(e) for e in theirs]


def test_applied_events_equal_rasas_after_every_event_of_every_story(
    domain_and_trackers: tuple[Domain, list[DialogueStateTracker]],  # noqa: F811
) -> None:
    domain, trackers = domain_and_trackers
    compared = 0
    for tracker in trackers:
        for live in grown(tracker, domain):
            assert same(live)
            compared += 1
    assert compared > 2_000


def turn(text: str, action: str) -> list[Event]:
    return [UserUttered(text, {"name": "ask_question", "confidence": 1.0}), ActionExecuted(action)]


def test_reverts_restarts_new_sessions_and_late_form_names() -> None:
    tracker = DialogueStateTracker("someone", [])
    steps: list[list[Event]] = [
        [ActionExecuted("action_listen")],
        turn("vpn", "action_answer_from_kb"),
        [ActionExecuted("action_listen")],
        turn("no", "utter_offer_handoff"),
        [UserUtteranceReverted()],
        turn("printer", "action_answer_from_kb"),
        [ActionReverted()],
        # The form runs before any ActiveLoop names it; naming it later changes how
        # Rasa reads the earlier executions, so the walk must start over.
        [ActionExecuted("handoff_form"), ActionExecuted("action_listen")],
        turn("a@example.com", "handoff_form"),
        [ActiveLoop("handoff_form"), SlotSet("requested_slot", "priority")],
        [ActionExecuted("action_listen")],
        turn("urgent", "handoff_form"),
        [ActiveLoop(None), SlotSet("requested_slot", None)],
        [Restarted()],
        [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")],
        turn("hello", "utter_greet"),
    ]
    for step in steps:
        for event in step:
            tracker.update(event)
            assert same(tracker)


def test_callers_get_their_own_list_and_a_replaced_event_list_starts_over() -> None:
    tracker = DialogueStateTracker("someone", [])
    for event in [ActionExecuted("action_listen"), *turn("vpn", "action_answer_from_kb")]:
        tracker.update(event)
    first = tracker.applied_events()
    first.clear()
    assert same(tracker)
    tracker.events = tracker._create_events([ActionExecuted("action_listen")])
    assert same(tracker)


def test_a_bounded_history_that_dropped_its_oldest_events_starts_over() -> None:
    tracker = DialogueStateTracker("someone", [], max_event_history=4)
    for number in range(6):
        for event in [ActionExecuted("action_listen"), *turn(f"question {number}", "action_answer_from_kb")]:
            tracker.update(event)
            assert same(tracker)
