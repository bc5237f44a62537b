"""Agent accounts, passwords (argon2) and expiring bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from firstline.db import utcnow
from handoff.errors import AuthError, Conflict
from handoff.models import AgentRow, AuthTokenRow

_hasher = PasswordHasher()
#: Verified against when the e-mail is unknown, so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_agent(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: str = "agent",
    languages: list[str] | None = None,
    max_concurrent: int = 5,
) -> AgentRow:
    """Creates an account.

    Raises:
        Conflict: an account with this e-mail exists, or is being created at this moment
            (an admin's double click: the e-mail's unique constraint refuses the second).
    """
    email = email.strip().lower()
    exists = Conflict(f"an account for {email} already exists")
    if session.scalar(select(func.count()).where(AgentRow.email == email)):
        raise exists
    agent = AgentRow(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        role=role,
        languages=languages or ["en"],
        max_concurrent=max_concurrent,
    )
    try:
        with session.begin_nested():  # a refused INSERT undoes only itself
            session.add(agent)
            session.flush()
    except IntegrityError:
        raise exists from None
    return agent


def login(session: Session, email: str, password: str, ttl: timedelta) -> tuple[str, AuthTokenRow, AgentRow]:
    """Checks the password and opens a session.

    Raises:
        AuthError: unknown e-mail or wrong password (the same message for both).
    """
    agent = session.scalar(select(AgentRow).where(AgentRow.email == email.strip().lower()))
    try:
        _hasher.verify(agent.password_hash if agent else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise AuthError("wrong e-mail or password") from None
    if agent is None or not agent.active:
        raise AuthError("wrong e-mail or password")
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    row = AuthTokenRow(token_hash=_token_hash(token), agent_id=agent.id, expires_at=utcnow() + ttl)
    session.add(row)
    agent.last_seen_at = utcnow()
    # Expired sessions are useless; drop them while we are here.
    session.execute(delete(AuthTokenRow).where(AuthTokenRow.expires_at < utcnow()))
    return token, row, agent


def agent_for_token(session: Session, token: str) -> AgentRow:
    """The agent a bearer token belongs to.

    Raises:
        AuthError: unknown or expired token, or a deactivated account.
    """
    row = session.get(AuthTokenRow, _token_hash(token))
    if row is None or row.expires_at <= utcnow():
        raise AuthError("session expired or invalid; log in again")
    agent = session.get(AgentRow, row.agent_id)
    if agent is None or not agent.active:
        raise AuthError("account disabled")
    return agent


def logout(session: Session, token: str) -> None:
    session.execute(delete(AuthTokenRow).where(AuthTokenRow.token_hash == _token_hash(token)))


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
