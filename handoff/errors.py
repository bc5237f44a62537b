"""Exceptions of the handoff service; `firstline.main` maps each to an HTTP status."""

from __future__ import annotations

__all__ = [
    "AuthError",
    "Conflict",
    "Forbidden",
    "HandoffError",
    "NotFound",
]


class HandoffError(Exception):
    """Base class of every handoff-service error."""


class NotFound(HandoffError, LookupError):
    """No such handoff or agent (404)."""


class Conflict(HandoffError):
    """The handoff is not in a state that allows this (409), e.g. already claimed."""


class AuthError(HandoffError):
    """Missing, wrong or expired credentials (401)."""


class Forbidden(HandoffError):
    """Authenticated, but the role does not allow this (403)."""
