"""Rasa's dialogue states of a conversation, computed once per event instead of once per prediction.

Before every prediction RulePolicy turns the whole conversation into states
(`Domain.states_for_tracker_history`): it replays every event into a fresh tracker
and describes the tracker before each action. With ten users chatting that took
~15 % of the Rasa server's CPU (py-spy), and it grows with the conversation.

The states of a conversation's first N applied events do not depend on what comes
after them, so this keeps, per conversation and option set, where the last
computation got to (the replayed tracker, the states so far and the loop's running
values) and continues from there while the conversation only grew. Anything else
(another domain, a reverted turn or a restart that changes the applied events, a
tracker rebuilt from the database whose events are other objects) starts over,
exactly as Rasa does. Callers get their own copies of the states, which they edit.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.shared.core import constants
from rasa.shared.core.domain import Domain, State, SubState
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker

#: Conversations whose progress is kept (least recently used ones are forgotten).
KEPT = 1000


@dataclass
class _Progress:
    """How far `states_for_tracker_history` got through one conversation's applied events."""

    domain: Domain
    rule_only_data: Optional[Dict[Text, Any]]
    replayed: DialogueStateTracker
    applied: List[Event] = field(default_factory=list)
    states: List[State] = field(default_factory=list)
    last_ml_action_sub_state: Optional[SubState] = None
    turn_was_hidden: bool = False


_kept: "OrderedDict[Tuple[Any, ...], _Progress]" = OrderedDict()
_lock = threading.Lock()


def _visit(
    domain: Domain,
    progress: _Progress,
    states: List[State],
    hide_rule_turn: bool,
    omit_unset_slots: bool,
    ignore_rule_only_turns: bool,
) -> Tuple[Optional[SubState], bool]:
    """The loop body of Rasa 3.6's `Domain.states_for_tracker_history`, for one prior tracker.

    Appends the state (unless the turn is hidden) and returns the new running values.
    """
    tr = progress.replayed
    last_ml_action_sub_state = progress.last_ml_action_sub_state
    turn_was_hidden = progress.turn_was_hidden
    if ignore_rule_only_turns:
        if not turn_was_hidden:
            last_ml_action_sub_state = domain._get_prev_action_sub_state(tr)
        if not tr.followup_action and tr.latest_action_name != tr.active_loop_name:
            turn_was_hidden = hide_rule_turn
        if turn_was_hidden:
            return last_ml_action_sub_state, turn_was_hidden
    state = domain.get_active_state(tr, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, progress.rule_only_data)
        if states:
            domain._substitute_rule_only_user_input(state, states[-1])
        if last_ml_action_sub_state:
            state[constants.PREVIOUS_ACTION] = last_ml_action_sub_state
    states.append(domain._clean_state(state))
    return last_ml_action_sub_state, turn_was_hidden


def _copy(states: List[State]) -> List[State]:
    # Two levels: callers edit states and their sub-states (e.g. the last user input).
    return [{name: dict(sub_state) for name, sub_state in state.items()} for state in states]


def states_for_tracker_history(
    self: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: Optional[Dict[Text, Any]] = None,
) -> List[State]:
    """`Domain.states_for_tracker_history`, continuing from the conversation's last computation."""
    applied = tracker.applied_events()
    key = (
        tracker.sender_id,
        tracker.is_rule_tracker,
        tracker._max_event_history,
        omit_unset_slots,
        ignore_rule_only_turns,
    )
    with _lock:
        progress = _kept.pop(key, None)
    if (
        progress is None
        or progress.domain is not self
        or progress.rule_only_data != rule_only_data
        or len(progress.applied) > len(applied)
        or any(old is not new for old, new in zip(progress.applied, applied, strict=False))
    ):
        progress = _Progress(self, copy.deepcopy(rule_only_data), tracker.init_copy())
    for event in applied[len(progress.applied) :]:
        if isinstance(event, ActionExecuted):  # a prior tracker: the one before each action
            progress.last_ml_action_sub_state, progress.turn_was_hidden = _visit(
                self, progress, progress.states, event.hide_rule_turn, omit_unset_slots, ignore_rule_only_turns
            )
        progress.replayed.update(event)
    progress.applied = applied
    # The tracker after the last event is a prior tracker too, but only for this call.
    states = list(progress.states)
    _visit(self, progress, states, False, omit_unset_slots, ignore_rule_only_turns)
    with _lock:
        _kept[key] = progress
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return _copy(states)


#: Rasa's own, for comparison in tests.
rasa_states_for_tracker_history = Domain.states_for_tracker_history
Domain.states_for_tracker_history = states_for_tracker_history  # type: ignore[method-assign]
