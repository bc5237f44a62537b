"""Dependencies injected into routes: settings, sessions, the knowledge base, callers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from firstline.config import Settings
from firstline.db import Database, utcnow
from handoff import auth
from handoff.delivery import OutboxWorker
from handoff.errors import AuthError, Forbidden
from handoff.models import AgentRow
from kb_index.service import KnowledgeBase

SESSION_COOKIE = "firstline_session"
#: How often a request refreshes an agent's last-seen time (at most one write a minute).
PRESENCE_RESOLUTION = timedelta(minutes=1)


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in
# the thread pool, and each such hop costs more than the work it wraps.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session: committed when the route succeeds, rolled back on any error.

    Opening a session does no I/O (it connects on first use), so only the commit and
    the close go to the thread pool.
    """
    db: Database = request.app.state.db
    session = db.sessions()
    try:
        yield session
        await run_in_threadpool(_commit_and_close, session)
    except BaseException:
        await run_in_threadpool(session.close)  # rolls back what was not committed
        raise


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


async def get_kb(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.kb
    return kb


async def get_outbox(request: Request) -> OutboxWorker:
    outbox: OutboxWorker = request.app.state.outbox
    return outbox


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
KnowledgeBaseDep = Annotated[KnowledgeBase, Depends(get_kb)]
OutboxDep = Annotated[OutboxWorker, Depends(get_outbox)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


def is_service(request: Request, settings: Settings) -> bool:
    token = bearer_token(request)
    return token is not None and auth.same_secret(token, settings.service_token.get_secret_value())


async def require_service(request: Request, settings: SettingsDep) -> None:
    """Only the bot (with FIRSTLINE_SERVICE_TOKEN) may call this."""
    if not is_service(request, settings):
        raise AuthError("this endpoint needs the bot's service token")


def current_agent(request: Request, db: DatabaseDep) -> AgentRow:
    """The logged-in account, read in its own short transaction.

    The row comes back detached: holding the request's session open for the whole
    request would hold SQLite's write lock while the route opens sessions of its own.
    """
    token = bearer_token(request)
    if token is None:
        raise AuthError("log in first: POST /api/auth/login")
    with db.session() as session:
        agent = auth.agent_for_token(session, token)
        now = utcnow()
        if agent.last_seen_at is None or now - agent.last_seen_at > PRESENCE_RESOLUTION:
            agent.last_seen_at = now  # presence: "online" goes stale without activity
        return agent


def require_role(*roles: str) -> Callable[[AgentRow], Awaitable[AgentRow]]:
    async def check(agent: Annotated[AgentRow, Depends(current_agent)]) -> AgentRow:
        if agent.role not in roles and agent.role != "admin":
            raise Forbidden(f"this needs the {' or '.join(roles)} role; you are {agent.role}")
        return agent

    return check


ServiceCaller = Depends(require_service)
CurrentAgent = Annotated[AgentRow, Depends(require_role("agent"))]
CurrentEditor = Annotated[AgentRow, Depends(require_role("editor"))]
CurrentAdmin = Annotated[AgentRow, Depends(require_role("admin"))]
AnyStaff = Annotated[AgentRow, Depends(current_agent)]
