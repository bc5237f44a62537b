"""A conversation's applied events, continued from the last call instead of recomputed.

`DialogueStateTracker.applied_events` walks every event of the conversation, dropping
reverted turns and repeated form executions, and Rasa calls it several times per
message (RulePolicy's states, travelling back in time, the tracker store). With ten
users that was 10 % of the Rasa server's CPU (py-spy), growing with the conversation.

The walk looks only at the events before the current one, and at the names of the
forms activated anywhere in the conversation. So each tracker keeps where its last
walk got to and continues from there while its events only grew and named no new
form. Anything else (another event list, an event that is not the one walked, a form
named for the first time) walks from the start, as Rasa does. Callers get their own
list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Set

from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

_WALK = "_firstline_applied_walk"


@dataclass
class _Walk:
    """How far `applied_events` got through one event list."""

    events: Any  # the tracker's deque, by identity
    count: int = 0
    last: Optional[Event] = None
    loop_names: Set[str] = field(default_factory=set)
    applied: List[Event] = field(default_factory=list)


def _loop_names(events: List[Event]) -> Set[str]:
    return {e.name for e in events if isinstance(e, ActiveLoop) and e.name}


def applied_events(self: DialogueStateTracker) -> List[Event]:
    """Rasa 3.6's `DialogueStateTracker.applied_events`, continuing the last walk."""
    events = self.events
    total = len(events)
    walk: Optional[_Walk] = self.__dict__.get(_WALK)
    if (
        walk is None
        or walk.events is not events
        or walk.count > total
        or (walk.count and events[walk.count - 1] is not walk.last)
    ):
        walk = _Walk(events)
    new = [events[i] for i in range(walk.count, total)]
    names = _loop_names(new)
    if walk.count and not names <= walk.loop_names:
        walk = _Walk(events)  # earlier executions of that form were walked as plain actions
        new = list(events)
        names = _loop_names(new)
    walk.loop_names |= names
    applied = walk.applied
    for event in new:  # the loop body of Rasa's own
        if isinstance(event, (Restarted, SessionStarted)):
            applied.clear()
        elif isinstance(event, ActionReverted):
            self._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            self._undo_till_previous(UserUttered, applied)
            self._undo_till_previous(ActionExecuted, applied)
        elif (
            isinstance(event, ActionExecuted)
            and event.action_name in walk.loop_names
            and not self._first_loop_execution_or_unhappy_path(event.action_name, applied)
        ):
            self._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)
    walk.count = total
    walk.last = events[-1] if total else None
    self.__dict__[_WALK] = walk
    return list(applied)


#: Rasa's own, for comparison in tests.
rasa_applied_events = DialogueStateTracker.applied_events
DialogueStateTracker.applied_events = applied_events  # type: ignore[method-assign]
