"""HTTP routes of the handoff queue, agent sessions and accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from firstline.db import utcnow
from firstline.deps import (
    SESSION_COOKIE,
    AnyStaff,
    CurrentAdmin,
    CurrentAgent,
    DatabaseDep,
    OutboxDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    bearer_token,
)
from handoff import auth, queue
from handoff.hours import next_opening
from handoff.models import AgentRow, HandoffRow
from handoff.schemas import (
    AgentCreate,
    AgentMessageIn,
    AgentOut,
    AgentRef,
    CloseIn,
    HandoffCreate,
    HandoffCreated,
    HandoffDetail,
    HandoffOut,
    Language,
    LoginIn,
    LoginOut,
    MessageOut,
    RatingIn,
    StatusIn,
    UserMessageIn,
)

router = APIRouter(prefix="/api")


def agent_out(agent: AgentRow) -> AgentOut:
    return AgentOut(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        role=agent.role,
        languages=list(agent.languages),
        status=agent.status,
        max_concurrent=agent.max_concurrent,
    )


def handoff_out(session: Session, handoff: HandoffRow) -> HandoffOut:
    return HandoffOut(
        id=handoff.id,
        conversation_id=handoff.conversation_id,
        status=handoff.status,
        priority=handoff.priority,
        language=handoff.language,
        contact=handoff.contact,
        summary=handoff.summary,
        bot_attempt=handoff.bot_attempt,
        agent=AgentRef(id=handoff.agent.id, name=handoff.agent.name) if handoff.agent else None,
        created_at=handoff.created_at,
        updated_at=handoff.updated_at,
        claimed_at=handoff.claimed_at,
        first_response_at=handoff.first_response_at,
        closed_at=handoff.closed_at,
        sla_due_at=handoff.sla_due_at,
        resolution_note=handoff.resolution_note,
        rating=handoff.rating,
        rating_comment=handoff.rating_comment,
        queue_position=queue.queue_position(session, handoff),
    )


def handoff_detail(session: Session, handoff: HandoffRow) -> HandoffDetail:
    session.refresh(handoff)
    return HandoffDetail(
        **handoff_out(session, handoff).model_dump(),
        messages=[MessageOut.model_validate(m, from_attributes=True) for m in handoff.messages],
    )


# -- sessions -------------------------------------------------------------------
@router.post("/auth/login", response_model=LoginOut, tags=["auth"])
def login(body: LoginIn, response: Response, session: SessionDep, settings: SettingsDep) -> LoginOut:
    """Log in with e-mail and password; returns a bearer token and sets a session cookie."""
    token, row, agent = auth.login(session, body.email, body.password, timedelta(minutes=settings.token_ttl_minutes))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.token_ttl_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=not settings.is_development,
    )
    return LoginOut(token=token, expires_at=row.expires_at, agent=agent_out(agent))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(request: Request, response: Response, session: SessionDep, agent: AnyStaff) -> None:
    """End this session."""
    token = bearer_token(request)
    if token:
        auth.logout(session, token)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=AgentOut, tags=["auth"])
def me(agent: AnyStaff) -> AgentOut:
    """The logged-in account."""
    return agent_out(agent)


@router.put("/me/status", response_model=AgentOut, tags=["auth"])
def set_status(body: StatusIn, agent: AnyStaff, session: SessionDep) -> AgentOut:
    """Set yourself online, away or offline."""
    row = session.get(AgentRow, agent.id)
    assert row is not None
    row.status = body.status
    row.last_seen_at = utcnow()
    queue.audit(session, agent.email, "status", None, status=body.status)
    return agent_out(row)


@router.post("/agents", response_model=AgentOut, status_code=201, tags=["agents"])
def create_agent(body: AgentCreate, admin: CurrentAdmin, session: SessionDep) -> AgentOut:
    """Create an account (admins only)."""
    agent = auth.create_agent(
        session,
        email=body.email,
        name=body.name,
        password=body.password,
        role=body.role,
        languages=list(body.languages),
        max_concurrent=body.max_concurrent,
    )
    queue.audit(session, admin.email, "agent_created", None, email=agent.email, role=agent.role)
    return agent_out(agent)


# -- the bot's side ----------------------------------------------------------------
@router.post(
    "/handoffs",
    response_model=HandoffCreated,
    status_code=201,
    dependencies=[ServiceCaller],
    tags=["handoffs"],
    responses={200: {"description": "This request was already made; the existing handoff"}},
)
def create_handoff(
    body: HandoffCreate, response: Response, session: SessionDep, settings: SettingsDep
) -> HandoffCreated:
    """Open a handoff with the conversation's transcript (idempotent)."""
    handoff, created = queue.create_handoff(session, body, settings.sla_minutes)
    if not created:
        response.status_code = status.HTTP_200_OK
    session.flush()
    online = queue.agents_online(session)
    return HandoffCreated(
        **handoff_out(session, handoff).model_dump(),
        created=created,
        agents_online=online,
        next_opening=None if online else next_opening(settings.business_hours, settings.timezone),
    )


@router.post(
    "/handoffs/{handoff_id}/user-messages",
    response_model=MessageOut,
    status_code=201,
    dependencies=[ServiceCaller],
    tags=["handoffs"],
)
def add_user_message(handoff_id: int, body: UserMessageIn, response: Response, session: SessionDep) -> MessageOut:
    """Append what the user wrote while the conversation is with an agent."""
    message, created = queue.user_message(session, handoff_id, body.text, body.client_id, body.timestamp)
    if not created:
        response.status_code = status.HTTP_200_OK
    return MessageOut.model_validate(message, from_attributes=True)


@router.post(
    "/handoffs/{handoff_id}/rating",
    response_model=HandoffOut,
    dependencies=[ServiceCaller],
    tags=["handoffs"],
)
def rate_handoff(handoff_id: int, body: RatingIn, session: SessionDep) -> HandoffOut:
    """Store the user's 1–5 satisfaction rating after the handoff was closed."""
    return handoff_out(session, queue.rate(session, handoff_id, body.rating, body.comment))


# -- the agents' side ----------------------------------------------------------------
@router.get("/handoffs", response_model=list[HandoffOut], tags=["handoffs"])
def list_handoffs(
    session: SessionDep,
    agent: CurrentAgent,
    status_filter: Annotated[Literal["queued", "assigned", "closed"] | None, Query(alias="status")] = "queued",
    language: Language | None = None,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[HandoffOut]:
    """The queue, most urgent first, then longest waiting."""
    rows = queue.list_queue(session, status_filter, language, agent.id if mine else None, limit)
    return [handoff_out(session, h) for h in rows]


@router.get("/handoffs/{handoff_id}", response_model=HandoffDetail, tags=["handoffs"])
def get_handoff(handoff_id: int, session: SessionDep, agent: CurrentAgent) -> HandoffDetail:
    """One handoff with its whole transcript."""
    return handoff_detail(session, queue.get_handoff(session, handoff_id))


@router.post("/handoffs/{handoff_id}/claim", response_model=HandoffDetail, tags=["handoffs"])
def claim(handoff_id: int, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep) -> HandoffDetail:
    """Take a queued handoff; exactly one agent wins, the others get 409."""
    handoff = queue.claim(session, handoff_id, agent)
    session.commit()
    outbox.wake()
    return handoff_detail(session, handoff)


@router.post(
    "/handoffs/next",
    response_model=HandoffDetail,
    tags=["handoffs"],
    responses={204: {"description": "Nothing waiting in your languages"}},
)
def take_next(session: SessionDep, agent: CurrentAgent, outbox: OutboxDep, db: DatabaseDep) -> HandoffDetail | Response:
    """Claim the most urgent waiting handoff in one of your languages."""
    handoff = queue.take_next(session, agent, db.is_postgres)
    if handoff is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    session.commit()
    outbox.wake()
    return handoff_detail(session, handoff)


@router.post("/handoffs/{handoff_id}/messages", response_model=MessageOut, status_code=201, tags=["handoffs"])
def agent_message(
    handoff_id: int, body: AgentMessageIn, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep
) -> MessageOut:
    """Reply to the user; the text reaches their chat through Rasa."""
    message = queue.agent_message(session, handoff_id, agent, body.text)
    session.commit()
    outbox.wake()
    return MessageOut.model_validate(message, from_attributes=True)


@router.post("/handoffs/{handoff_id}/close", response_model=HandoffOut, tags=["handoffs"])
def close(handoff_id: int, body: CloseIn, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep) -> HandoffOut:
    """Close with a resolution note; the bot takes over and asks the user for a rating."""
    handoff = queue.close(session, handoff_id, agent, body.note)
    session.commit()
    outbox.wake()
    return handoff_out(session, handoff)
