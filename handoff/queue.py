"""Queue operations: every state change of a handoff happens here, in one transaction.

Claims are a conditional UPDATE (``... WHERE status = 'queued'``), so exactly one
agent wins on any database; "take next" locks candidate rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so agents never wait on each other.
Each change writes an audit row and, when the user's chat must hear of it, an
outbox row that `handoff.delivery` hands to Rasa.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from firstline.db import utcnow
from handoff.errors import Conflict, Forbidden, NotFound
from handoff.models import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    AgentRow,
    AuditRow,
    HandoffRow,
    MessageRow,
    OutboxRow,
)
from handoff.schemas import HandoffCreate

EXTERNAL_CLAIMED = "EXTERNAL_handoff_claimed"
EXTERNAL_MESSAGE = "EXTERNAL_agent_message"
EXTERNAL_CLOSED = "EXTERNAL_handoff_closed"


def audit(session: Session, actor: str, action: str, handoff_id: int | None, **detail: Any) -> None:
    session.add(AuditRow(actor=actor, action=action, handoff_id=handoff_id, detail=detail))


def _to_chat(
    session: Session,
    handoff: HandoffRow,
    intent: str,
    entities: dict[str, Any],
    message_id: int | None = None,
) -> None:
    session.add(
        OutboxRow(
            conversation_id=handoff.conversation_id,
            handoff_id=handoff.id,
            message_id=message_id,
            intent=intent,
            entities=entities,
        )
    )


def get_handoff(session: Session, handoff_id: int, lock: bool = False) -> HandoffRow:
    query = select(HandoffRow).where(HandoffRow.id == handoff_id)
    if lock:
        query = query.with_for_update(of=HandoffRow)
    handoff = session.scalars(query).unique().first()
    if handoff is None:
        raise NotFound(f"no handoff {handoff_id}")
    return handoff


def queue_position(session: Session, handoff: HandoffRow) -> int | None:
    """1 for the next handoff an agent would take; None once it is no longer queued."""
    if handoff.status != "queued":
        return None
    ahead = session.scalar(
        select(func.count()).where(
            HandoffRow.status == "queued",
            (HandoffRow.priority_rank < handoff.priority_rank)
            | ((HandoffRow.priority_rank == handoff.priority_rank) & (HandoffRow.created_at < handoff.created_at)),
        )
    )
    return int(ahead or 0) + 1


def create_handoff(
    session: Session, data: HandoffCreate, sla_minutes: dict[str, int], actor: str = "bot"
) -> tuple[HandoffRow, bool]:
    """Opens a handoff, or returns the one this request already opened.

    A retry with the same idempotency key, or a second request while the
    conversation still has an open handoff, returns the existing handoff.

    Returns:
        The handoff and whether it was created now.
    """
    key = data.idempotency_key or f"{data.conversation_id}:{utcnow().isoformat()}"
    existing = session.scalars(
        select(HandoffRow).where(
            (HandoffRow.idempotency_key == key)
            | ((HandoffRow.conversation_id == data.conversation_id) & HandoffRow.status.in_(OPEN_STATUSES))
        )
    ).first()
    if existing is not None:
        return existing, False
    now = utcnow()
    handoff = HandoffRow(
        conversation_id=data.conversation_id,
        idempotency_key=key,
        status="queued",
        priority=data.priority,
        priority_rank=PRIORITY_RANK[data.priority],
        language=data.language,
        contact=data.contact,
        summary=data.summary,
        bot_attempt={
            "articles_tried": [a.model_dump() for a in data.articles_tried],
            "feedback": data.feedback,
        },
        created_at=now,
        updated_at=now,
        sla_due_at=now + timedelta(minutes=sla_minutes.get(data.priority, 240)),
    )
    session.add(handoff)
    session.flush()
    for line in data.transcript:
        session.add(
            MessageRow(
                handoff_id=handoff.id,
                role=line.role,
                author="user" if line.role == "user" else "bot",
                text=line.text,
                created_at=line.timestamp,
            )
        )
    audit(session, actor, "created", handoff.id, priority=data.priority, language=data.language)
    return handoff, True


def list_queue(
    session: Session,
    status: str | None = "queued",
    language: str | None = None,
    agent_id: int | None = None,
    limit: int = 200,
) -> list[HandoffRow]:
    """Handoffs by priority, then by how long they have waited."""
    query = select(HandoffRow)
    if status:
        query = query.where(HandoffRow.status == status)
    if language:
        query = query.where(HandoffRow.language == language)
    if agent_id is not None:
        query = query.where(HandoffRow.agent_id == agent_id)
    query = query.order_by(HandoffRow.priority_rank, HandoffRow.created_at, HandoffRow.id).limit(limit)
    return list(session.scalars(query).unique())


def _assign(session: Session, handoff: HandoffRow, agent: AgentRow, action: str) -> None:
    now = utcnow()
    handoff.claimed_at = handoff.claimed_at or now
    handoff.updated_at = now
    audit(session, agent.email, action, handoff.id)
    _to_chat(session, handoff, EXTERNAL_CLAIMED, {"agent_name": agent.name})


def claim(session: Session, handoff_id: int, agent: AgentRow) -> HandoffRow:
    """Assigns a queued handoff to the agent; exactly one of several callers wins.

    Raises:
        NotFound: no such handoff.
        Conflict: it is not queued any more (someone else claimed or closed it).
    """
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(HandoffRow)
        .where(HandoffRow.id == handoff_id, HandoffRow.status == "queued")
        .values(status="assigned", agent_id=agent.id)
        .execution_options(synchronize_session=False)
    )
    won = result.rowcount
    if not won:
        handoff = get_handoff(session, handoff_id)
        holder = handoff.agent.name if handoff.agent else "nobody"
        raise Conflict(f"handoff {handoff_id} is {handoff.status} (assigned to {holder})")
    handoff = get_handoff(session, handoff_id)
    session.refresh(handoff)
    _assign(session, handoff, agent, "claimed")
    return handoff


def take_next(session: Session, agent: AgentRow, postgres: bool) -> HandoffRow | None:
    """Claims the most urgent, longest-waiting handoff in one of the agent's languages."""
    open_count = session.scalar(
        select(func.count()).where(HandoffRow.agent_id == agent.id, HandoffRow.status == "assigned")
    )
    if (open_count or 0) >= agent.max_concurrent:
        raise Conflict(f"you already have {open_count} open conversations (limit {agent.max_concurrent})")
    query = (
        select(HandoffRow.id)
        .where(HandoffRow.status == "queued", HandoffRow.language.in_(agent.languages))
        .order_by(HandoffRow.priority_rank, HandoffRow.created_at, HandoffRow.id)
        .limit(1)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    handoff_id = session.scalar(query)
    if handoff_id is None:
        return None
    return claim(session, handoff_id, agent)


def _require_assignee(handoff: HandoffRow, agent: AgentRow) -> None:
    if handoff.status == "closed":
        raise Conflict(f"handoff {handoff.id} is closed")
    if handoff.agent_id != agent.id and agent.role != "admin":
        raise Forbidden(f"handoff {handoff.id} is not assigned to you; claim it first")


def agent_message(session: Session, handoff_id: int, agent: AgentRow, text: str) -> MessageRow:
    """Stores an agent's reply and queues it for the user's chat."""
    handoff = get_handoff(session, handoff_id, lock=True)
    _require_assignee(handoff, agent)
    now = utcnow()
    message = MessageRow(
        handoff_id=handoff.id, role="agent", author=agent.name, text=text, created_at=now, delivery="pending"
    )
    session.add(message)
    session.flush()
    handoff.first_response_at = handoff.first_response_at or now
    handoff.updated_at = now
    _to_chat(session, handoff, EXTERNAL_MESSAGE, {"message": text, "agent_name": agent.name}, message.id)
    audit(session, agent.email, "replied", handoff.id, message_id=message.id)
    return message


def user_message(
    session: Session, handoff_id: int, text: str, client_id: str | None, at: datetime | None
) -> tuple[MessageRow, bool]:
    """Appends what the user wrote while handed off; a retried client_id is stored once."""
    handoff = get_handoff(session, handoff_id, lock=True)
    if client_id:
        existing = session.scalar(
            select(MessageRow).where(MessageRow.handoff_id == handoff_id, MessageRow.client_id == client_id)
        )
        if existing is not None:
            return existing, False
    message = MessageRow(
        handoff_id=handoff.id,
        role="user",
        author="user",
        text=text,
        client_id=client_id,
        created_at=at or utcnow(),
    )
    session.add(message)
    handoff.updated_at = utcnow()
    session.flush()
    return message, True


def close(session: Session, handoff_id: int, agent: AgentRow, note: str) -> HandoffRow:
    """Closes the handoff; the bot then takes the conversation back and asks for a rating."""
    handoff = get_handoff(session, handoff_id, lock=True)
    _require_assignee(handoff, agent)
    now = utcnow()
    handoff.status = "closed"
    handoff.closed_at = now
    handoff.updated_at = now
    handoff.resolution_note = note
    audit(session, agent.email, "closed", handoff.id, note=note)
    _to_chat(session, handoff, EXTERNAL_CLOSED, {"agent_name": agent.name, "handoff_id": str(handoff.id)})
    return handoff


def rate(session: Session, handoff_id: int, rating: int, comment: str) -> HandoffRow:
    """Stores the user's 1–5 rating of a closed handoff (again to change it)."""
    handoff = get_handoff(session, handoff_id, lock=True)
    if handoff.status != "closed":
        raise Conflict(f"handoff {handoff_id} is {handoff.status}; rate it after it is closed")
    handoff.rating = rating
    handoff.rating_comment = comment or handoff.rating_comment
    handoff.rated_at = utcnow()
    audit(session, "bot", "rated", handoff.id, rating=rating)
    return handoff


def agents_online(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(AgentRow.status == "online", AgentRow.active.is_(True))) or 0)
