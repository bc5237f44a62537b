"""The human queue: agents, handoffs, live chat relay through Rasa, audit."""

from handoff.errors import AuthError, Conflict, Forbidden, HandoffError, NotFound

__all__ = ["AuthError", "Conflict", "Forbidden", "HandoffError", "NotFound"]
