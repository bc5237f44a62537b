"""HTTP routes of the handoff queue, agent sessions and accounts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
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
    is_service,
)
from firstline.errors import documented
from handoff import auth, metrics, queue
from handoff.errors import AuthError, NotFound
from handoff.events import EventBus
from handoff.hours import next_opening
from handoff.models import AgentRow, AuditRow, HandoffRow, OutboxRow
from handoff.schemas import (
    AgentCreate,
    AgentMessageIn,
    AgentOut,
    AgentRef,
    AgentRefStatus,
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
    TransferIn,
    UserMessageIn,
)

router = APIRouter(prefix="/api", responses=documented(401, 403, 404, 409, 422, 429))
KEEPALIVE_SECONDS = 15.0
HandoffId = Annotated[int, Path(ge=1, le=2_147_483_647)]
RowPath = Annotated[int, Path(ge=1, le=2_147_483_647)]


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


def handoff_out(session: Session, handoff: HandoffRow, positions: Mapping[int, int] | None = None) -> HandoffOut:
    """The API's view of a handoff; `positions` (from `queue.queue_positions`) when the caller has them."""
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
        queue_position=queue.queue_position(session, handoff) if positions is None else positions.get(handoff.id),
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
    handoff, created = queue.create_handoff(session, body, settings.sla_minutes, webhooks=bool(settings.webhook_url))
    if not created:
        response.status_code = status.HTTP_200_OK
    session.flush()
    position, online = queue.standing(session, handoff)
    return HandoffCreated(
        **handoff_out(session, handoff, {} if position is None else {handoff.id: position}).model_dump(),
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
    responses={200: {"model": MessageOut, "description": "This client_id was stored before; the stored message"}},
)
def add_user_message(handoff_id: HandoffId, body: UserMessageIn, response: Response, session: SessionDep) -> MessageOut:
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
def rate_handoff(handoff_id: HandoffId, body: RatingIn, session: SessionDep) -> HandoffOut:
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
    positions = queue.queue_positions(session, rows)
    return [handoff_out(session, h, positions) for h in rows]


@router.get("/handoffs/{handoff_id}", response_model=HandoffDetail, tags=["handoffs"])
def get_handoff(handoff_id: HandoffId, session: SessionDep, agent: CurrentAgent) -> HandoffDetail:
    """One handoff with its whole transcript."""
    return handoff_detail(session, queue.get_handoff(session, handoff_id))


@router.post("/handoffs/{handoff_id}/claim", response_model=HandoffDetail, tags=["handoffs"])
def claim(handoff_id: HandoffId, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep) -> HandoffDetail:
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
    handoff_id: HandoffId, body: AgentMessageIn, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep
) -> MessageOut:
    """Reply to the user; the text reaches their chat through Rasa."""
    message = queue.agent_message(session, handoff_id, agent, body.text)
    session.commit()
    outbox.wake()
    return MessageOut.model_validate(message, from_attributes=True)


@router.post("/handoffs/{handoff_id}/close", response_model=HandoffOut, tags=["handoffs"])
def close(
    handoff_id: HandoffId,
    body: CloseIn,
    session: SessionDep,
    agent: CurrentAgent,
    outbox: OutboxDep,
    settings: SettingsDep,
) -> HandoffOut:
    """Close with a resolution note; the bot takes over and asks the user for a rating."""
    handoff = queue.close(session, handoff_id, agent, body.note, webhooks=bool(settings.webhook_url))
    session.commit()
    outbox.wake()
    return handoff_out(session, handoff)


@router.post("/handoffs/{handoff_id}/transfer", response_model=HandoffOut, tags=["handoffs"])
def transfer(
    handoff_id: HandoffId, body: TransferIn, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep
) -> HandoffOut:
    """Hand the conversation to another agent; the user is told who joined."""
    target = session.get(AgentRow, body.agent_id)
    if target is None:
        raise NotFound(f"no agent {body.agent_id}")
    handoff = queue.transfer(session, handoff_id, agent, target, body.note)
    session.commit()
    outbox.wake()
    return handoff_out(session, handoff)


@router.post("/handoffs/{handoff_id}/release", response_model=HandoffOut, tags=["handoffs"])
def release(handoff_id: HandoffId, session: SessionDep, agent: CurrentAgent, outbox: OutboxDep) -> HandoffOut:
    """Put the conversation back in the queue for another agent."""
    handoff = queue.release(session, handoff_id, agent)
    session.commit()
    outbox.wake()
    return handoff_out(session, handoff)


@router.get(
    "/handoffs/{handoff_id}/transcript",
    tags=["handoffs"],
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
def transcript(
    handoff_id: HandoffId,
    session: SessionDep,
    agent: CurrentAgent,
    format: Annotated[Literal["json", "text"], Query()] = "json",
) -> Response:
    """The conversation as JSON, or as readable text for a ticket or an e-mail."""
    detail = handoff_detail(session, queue.get_handoff(session, handoff_id))
    if format == "json":
        return Response(detail.model_dump_json(indent=2), media_type="application/json")
    lines = [
        f"Handoff {detail.id} - {detail.status}, {detail.priority} priority, language {detail.language}",
        f"Contact: {detail.contact or '-'}",
        f"Summary: {detail.summary or '-'}",
        f"Opened: {detail.created_at:%Y-%m-%d %H:%M} UTC"
        + (f", closed {detail.closed_at:%Y-%m-%d %H:%M} UTC: {detail.resolution_note}" if detail.closed_at else ""),
        "",
    ]
    for message in detail.messages:
        who = {"user": "User", "bot": "Bot", "system": "System"}.get(message.role, message.author or "Agent")
        lines.append(f"[{message.created_at:%Y-%m-%d %H:%M:%S}] {who}: {message.text}")
    return Response(
        "\n".join(lines) + "\n",
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="handoff-{detail.id}.txt"'},
    )


@router.get("/agents", response_model=list[AgentRefStatus], tags=["agents"])
def list_agents(session: SessionDep, agent: AnyStaff) -> list[AgentRefStatus]:
    """Everyone who can take conversations, for transfers."""
    rows = session.scalars(
        select(AgentRow).where(AgentRow.active.is_(True), AgentRow.role.in_(("agent", "admin"))).order_by(AgentRow.name)
    )
    return [AgentRefStatus(id=a.id, name=a.name, status=a.status, languages=list(a.languages)) for a in rows]


@router.get("/metrics", tags=["metrics"])
def metrics_json(
    session: SessionDep, agent: AnyStaff, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> dict[str, Any]:
    """Queue length, waits, response and resolution times, SLA breaches, CSAT, bot resolution."""
    return metrics.compute(session, days)


@router.get("/audit", tags=["admin"])
def audit_log(
    session: SessionDep,
    admin: CurrentAdmin,
    handoff_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Who did what, newest first."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if handoff_id is not None:
        query = query.where(AuditRow.handoff_id == handoff_id)
    return [
        {"at": r.at, "actor": r.actor, "action": r.action, "handoff_id": r.handoff_id, "detail": r.detail}
        for r in session.scalars(query)
    ]


@router.get("/outbox", tags=["admin"])
def outbox_rows(
    session: SessionDep,
    admin: CurrentAdmin,
    kind: Literal["chat", "webhook"] | None = None,
    status_filter: Annotated[Literal["pending", "sending", "delivered", "failed"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Deliveries to the chat and to the webhook, with attempts and the last error."""
    query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if kind:
        query = query.where(OutboxRow.kind == kind)
    if status_filter:
        query = query.where(OutboxRow.status == status_filter)
    return [
        {
            "id": r.id, "kind": r.kind, "handoff_id": r.handoff_id, "status": r.status, "attempts": r.attempts,
            "last_error": r.last_error, "created_at": r.created_at, "delivered_at": r.delivered_at,
            "next_attempt_at": r.next_attempt_at,
        }
        for r in session.scalars(query)
    ]  # fmt: skip


@router.post("/outbox/{row_id}/retry", status_code=status.HTTP_204_NO_CONTENT, tags=["admin"])
def retry_outbox(row_id: RowPath, session: SessionDep, admin: CurrentAdmin, outbox: OutboxDep) -> None:
    """Send a failed delivery again."""
    row = session.get(OutboxRow, row_id)
    if row is None:
        raise NotFound(f"no outbox row {row_id}")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    queue.audit(session, admin.email, "outbox_retry", row.handoff_id, row=row_id)
    session.commit()
    outbox.wake()


@router.get(
    "/events",
    tags=["handoffs"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def live_events(request: Request, agent: AnyStaff) -> StreamingResponse:
    """Server-sent events: handoff.created, handoff.updated, message.created (log in first)."""
    bus: EventBus = request.app.state.bus
    subscription = bus.subscribe()

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            idle = 0.0
            while not subscription.overflowed:
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), timeout=1.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    idle += 1.0
                    if idle >= KEEPALIVE_SECONDS:  # keeps proxies from closing an idle stream
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                idle = 0.0
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        finally:
            bus.unsubscribe(subscription)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


prometheus_router = APIRouter(responses=documented(401))


@prometheus_router.get("/metrics", tags=["metrics"], response_class=Response)
def prometheus_metrics(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The metrics in Prometheus text format (bearer: the service token or a staff login)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if not is_service(request, settings):
        token = bearer_token(request)
        if token is None:
            raise AuthError("send the service token or a staff token as a bearer token")
        auth.agent_for_token(session, token)
    snapshot = metrics.compute(session)

    class Snapshot:
        def collect(self) -> Any:
            return metrics.prometheus_families(snapshot)

    registry = CollectorRegistry()
    registry.register(Snapshot())
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
