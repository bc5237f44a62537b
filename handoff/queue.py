"""Queue operations: every state change of a handoff happens here, in one transaction.

Claims are a conditional UPDATE (``... WHERE status = 'queued'``), so exactly one
agent wins on any database; "take next" locks candidate rows with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so agents never wait on each other. Each
change writes an audit row, a live event for the agents' consoles and, when the
user's chat or a ticketing system must hear of it, an outbox row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, lazyload

from firstline.db import utcnow
from handoff.errors import Conflict, Forbidden, NotFound
from handoff.events import emit
from handoff.models import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    AgentRow,
    AuditRow,
    HandoffRow,
    MessageRow,
    OutboxRow,
)
from handoff.privacy import mask
from handoff.schemas import HandoffCreate

EXTERNAL_CLAIMED = "EXTERNAL_handoff_claimed"
EXTERNAL_MESSAGE = "EXTERNAL_agent_message"
EXTERNAL_RELEASED = "EXTERNAL_handoff_released"
EXTERNAL_CLOSED = "EXTERNAL_handoff_closed"
#: An agent marked online who has not been seen for this long counts as away.
ONLINE_WITHIN = timedelta(minutes=15)


_AUDIT = insert(AuditRow.metadata.tables[AuditRow.__tablename__])


def audit(session: Session, actor: str, action: str, handoff_id: int | None, **detail: Any) -> None:
    # A plain INSERT: audit rows are never read back in the same transaction.
    session.execute(_AUDIT, {"actor": actor, "action": action, "handoff_id": handoff_id, "detail": detail})


def _to_chat(
    session: Session, handoff: HandoffRow, intent: str, entities: dict[str, Any], message_id: int | None = None
) -> None:
    session.add(
        OutboxRow(
            kind="chat",
            key=f"chat:{handoff.conversation_id}",
            handoff_id=handoff.id,
            message_id=message_id,
            payload={"conversation_id": handoff.conversation_id, "intent": intent, "entities": entities},
        )
    )


def _to_webhook(session: Session, handoff: HandoffRow, event: str, enabled: bool) -> None:
    if not enabled:
        return
    session.add(
        OutboxRow(
            kind="webhook",
            key=f"webhook:{handoff.id}",
            handoff_id=handoff.id,
            payload={
                "event": event,
                "handoff": {
                    "id": handoff.id,
                    "conversation_id": handoff.conversation_id,
                    "status": handoff.status,
                    "priority": handoff.priority,
                    "language": handoff.language,
                    "contact": handoff.contact,
                    "summary": handoff.summary,
                    "agent": handoff.agent.name if handoff.agent else None,
                    "created_at": handoff.created_at.isoformat(),
                    "closed_at": handoff.closed_at.isoformat() if handoff.closed_at else None,
                    "resolution_note": handoff.resolution_note,
                },
            },
        )
    )


def _changed(session: Session, handoff: HandoffRow, change: str) -> None:
    handoff.updated_at = utcnow()
    emit(session, "handoff.updated", handoff_id=handoff.id, status=handoff.status, change=change)


def get_handoff(session: Session, handoff_id: int, lock: bool = False) -> HandoffRow:
    query = select(HandoffRow).where(HandoffRow.id == handoff_id)
    if lock:
        query = query.with_for_update(of=HandoffRow)
    handoff = session.scalars(query).unique().first()
    if handoff is None:
        raise NotFound(f"no handoff {handoff_id}")
    return handoff


#: How many queued handoffs an agent would take before one of priority :rank created at :created.
_AHEAD = select(func.count()).where(
    HandoffRow.status == "queued",
    (HandoffRow.priority_rank < bindparam("rank"))
    | ((HandoffRow.priority_rank == bindparam("rank")) & (HandoffRow.created_at < bindparam("created"))),
)
#: Agents who said they are online and were seen since :since.
_ONLINE = select(func.count()).where(
    AgentRow.status == "online",
    AgentRow.active.is_(True),
    AgentRow.role.in_(("agent", "admin")),
    AgentRow.last_seen_at >= bindparam("since"),
)
_STANDING = select(_AHEAD.scalar_subquery(), _ONLINE.scalar_subquery())


def queue_position(session: Session, handoff: HandoffRow) -> int | None:
    """1 for the next handoff an agent would take; None once it is no longer queued."""
    if handoff.status != "queued":
        return None
    return int(session.scalar(_AHEAD, {"rank": handoff.priority_rank, "created": handoff.created_at}) or 0) + 1


def queue_positions(session: Session, handoffs: list[HandoffRow]) -> dict[int, int]:
    """`queue_position` of each queued handoff in the list, in one query."""
    queued = [h.id for h in handoffs if h.status == "queued"]
    if not queued:
        return {}
    ranked = (
        select(
            HandoffRow.id,
            func.rank().over(order_by=(HandoffRow.priority_rank, HandoffRow.created_at)).label("position"),
        )
        .where(HandoffRow.status == "queued")
        .subquery()
    )
    rows = session.execute(select(ranked.c.id, ranked.c.position).where(ranked.c.id.in_(queued)))
    return {handoff_id: int(position) for handoff_id, position in rows}


#: Inserts a handoff unless a unique index already holds its idempotency key or an open
#: handoff of its conversation; either way one statement, with no error to recover from.
#: A new handoff has no messages yet: its transcript is loaded only if read.
_NEW_HANDOFF = {
    name: dialect.insert(HandoffRow)
    .on_conflict_do_nothing()
    .returning(HandoffRow)
    .options(lazyload(HandoffRow.messages))
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
# Core inserts of the tables: no ORM objects are needed back for these rows.
_NEW_MESSAGES = insert(MessageRow.metadata.tables[MessageRow.__tablename__])
#: Inserts that found the conversation's handoff gone again (closed in between) before
#: the request gives up with a conflict.
CREATE_ATTEMPTS = 3


def create_handoff(
    session: Session, data: HandoffCreate, sla_minutes: dict[str, int], webhooks: bool = False
) -> tuple[HandoffRow, bool]:
    """Opens a handoff, or returns the one this request already opened.

    A retry with the same idempotency key, or a second request while the
    conversation still has an open handoff, returns the existing handoff. The INSERT
    does nothing when a unique index already holds the key or the open conversation;
    that includes a retry sent while the first request is still in flight
    (PostgreSQL waits for the first transaction to commit), whose handoff is then
    read and returned.

    Returns:
        The handoff and whether it was created now.

    Raises:
        Conflict: the conversation's open handoff kept closing between the INSERT and
            the read (a retry succeeds).
    """
    now = utcnow()
    key = data.idempotency_key or f"{data.conversation_id}:{now.isoformat()}"
    keep = [data.contact]
    values = {
        "conversation_id": data.conversation_id,
        "idempotency_key": key,
        "status": "queued",
        "priority": data.priority,
        "priority_rank": PRIORITY_RANK[data.priority],
        "language": data.language,
        "contact": data.contact,
        "summary": mask(data.summary, keep),
        "bot_attempt": {"articles_tried": [a.model_dump() for a in data.articles_tried], "feedback": data.feedback},
        "created_at": now,
        "updated_at": now,
        "sla_due_at": now + timedelta(minutes=sla_minutes.get(data.priority, 240)),
    }
    statement = _NEW_HANDOFF[session.get_bind().dialect.name]
    for _ in range(CREATE_ATTEMPTS):
        handoff = session.scalars(statement, [values]).first()
        if handoff is not None:
            break
        found = session.scalars(
            select(HandoffRow)
            .where(
                (HandoffRow.idempotency_key == key)
                | ((HandoffRow.conversation_id == data.conversation_id) & HandoffRow.status.in_(OPEN_STATUSES))
            )
            .options(lazyload(HandoffRow.messages))
        ).first()
        if found is not None:
            return found, False
    else:
        raise Conflict(f"conversation {data.conversation_id}'s handoff changed while this one was opened; retry")
    if data.transcript:
        session.execute(
            _NEW_MESSAGES,
            [
                {
                    "handoff_id": handoff.id,
                    "role": line.role,
                    "author": "user" if line.role == "user" else "bot",
                    # Only what users typed is masked: the bot's articles carry the desk's own numbers.
                    "text": mask(line.text, keep) if line.role == "user" else line.text,
                    "created_at": line.timestamp,
                }
                for line in data.transcript
            ],
        )
    audit(session, "bot", "created", handoff.id, priority=data.priority, language=data.language)
    emit(session, "handoff.created", handoff_id=handoff.id, status="queued", priority=data.priority)
    _to_webhook(session, handoff, "handoff.created", webhooks)
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


def claim(session: Session, handoff_id: int, agent: AgentRow) -> HandoffRow:
    """Assigns a queued handoff to the agent; exactly one of several callers wins.

    Raises:
        NotFound: no such handoff.
        Conflict: it is not queued any more (someone else claimed or closed it).
    """
    handoff = session.scalars(
        update(HandoffRow)
        .where(HandoffRow.id == handoff_id, HandoffRow.status == "queued")
        # A handoff released back to the queue keeps the time it was first claimed.
        .values(status="assigned", agent_id=agent.id, claimed_at=func.coalesce(HandoffRow.claimed_at, utcnow()))
        .returning(HandoffRow)
        .options(lazyload(HandoffRow.messages))
    ).first()
    if handoff is None:
        current = get_handoff(session, handoff_id)
        holder = current.agent.name if current.agent else "nobody"
        raise Conflict(f"handoff {handoff_id} is {current.status} (assigned to {holder})")
    audit(session, agent.email, "claimed", handoff.id)
    _to_chat(session, handoff, EXTERNAL_CLAIMED, {"agent_name": agent.name, "handoff_id": str(handoff.id)})
    _changed(session, handoff, "claimed")
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
    if handoff.status != "assigned":
        raise Conflict(f"handoff {handoff.id} is {handoff.status}; claim it first")
    if handoff.agent_id != agent.id and agent.role != "admin":
        raise Forbidden(f"handoff {handoff.id} is assigned to someone else")


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
    _to_chat(session, handoff, EXTERNAL_MESSAGE, {"message": text, "agent_name": agent.name}, message.id)
    audit(session, agent.email, "replied", handoff.id, message_id=message.id)
    emit(session, "message.created", handoff_id=handoff.id, message_id=message.id, role="agent")
    _changed(session, handoff, "replied")
    return message


def user_message(
    session: Session, handoff_id: int, text: str, client_id: str | None, at: datetime | None
) -> tuple[MessageRow, bool]:
    """Appends what the user wrote while handed off; a retried client_id is stored once."""
    handoff = get_handoff(session, handoff_id, lock=True)
    client_id = client_id or None
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
        text=mask(text, [handoff.contact]),
        client_id=client_id,
        created_at=at or utcnow(),
    )
    session.add(message)
    session.flush()
    emit(session, "message.created", handoff_id=handoff.id, message_id=message.id, role="user")
    _changed(session, handoff, "user_message")
    return message, True


def transfer(session: Session, handoff_id: int, agent: AgentRow, to: AgentRow, note: str) -> HandoffRow:
    """Hands an assigned conversation to another agent, who is announced in the chat."""
    handoff = get_handoff(session, handoff_id, lock=True)
    _require_assignee(handoff, agent)
    if not to.active or to.role not in ("agent", "admin"):
        raise Conflict(f"{to.name} cannot take conversations")
    if to.id == handoff.agent_id:
        raise Conflict(f"handoff {handoff_id} is already with {to.name}")
    handoff.agent = to
    session.add(
        MessageRow(
            handoff_id=handoff.id, role="system", author=agent.name, text=f"Transferred to {to.name}. {note}".strip()
        )
    )
    audit(session, agent.email, "transferred", handoff.id, to=to.email, note=note)
    _to_chat(session, handoff, EXTERNAL_CLAIMED, {"agent_name": to.name, "handoff_id": str(handoff.id)})
    _changed(session, handoff, "transferred")
    return handoff


def release(session: Session, handoff_id: int, agent: AgentRow) -> HandoffRow:
    """Puts an assigned conversation back in the queue for any agent to take."""
    handoff = get_handoff(session, handoff_id, lock=True)
    _require_assignee(handoff, agent)
    handoff.status = "queued"
    handoff.agent = None
    session.add(MessageRow(handoff_id=handoff.id, role="system", author=agent.name, text="Released to the queue."))
    audit(session, agent.email, "released", handoff.id)
    _to_chat(session, handoff, EXTERNAL_RELEASED, {"agent_name": agent.name})
    _changed(session, handoff, "released")
    return handoff


def close(session: Session, handoff_id: int, agent: AgentRow, note: str, webhooks: bool = False) -> HandoffRow:
    """Closes the handoff; the bot then takes the conversation back and asks for a rating."""
    handoff = get_handoff(session, handoff_id, lock=True)
    _require_assignee(handoff, agent)
    now = utcnow()
    handoff.status = "closed"
    handoff.closed_at = now
    handoff.resolution_note = note
    audit(session, agent.email, "closed", handoff.id, note=note)
    _to_chat(session, handoff, EXTERNAL_CLOSED, {"agent_name": agent.name, "handoff_id": str(handoff.id)})
    _changed(session, handoff, "closed")
    _to_webhook(session, handoff, "handoff.closed", webhooks)
    return handoff


def rate(session: Session, handoff_id: int, rating: int, comment: str) -> HandoffRow:
    """Stores the user's 1–5 rating of a closed handoff (again to change it)."""
    handoff = get_handoff(session, handoff_id, lock=True)
    if handoff.status != "closed":
        raise Conflict(f"handoff {handoff_id} is {handoff.status}; rate it after it is closed")
    handoff.rating = rating
    handoff.rating_comment = mask(comment, [handoff.contact]) if comment else handoff.rating_comment
    handoff.rated_at = utcnow()
    audit(session, "bot", "rated", handoff.id, rating=rating)
    _changed(session, handoff, "rated")
    return handoff


def agents_online(session: Session, within: timedelta = ONLINE_WITHIN) -> int:
    """Agents who said they are online and were seen recently (a closed laptop goes stale)."""
    return int(session.scalar(_ONLINE, {"since": utcnow() - within}) or 0)


def standing(session: Session, handoff: HandoffRow, within: timedelta = ONLINE_WITHIN) -> tuple[int | None, int]:
    """A new handoff's queue position and the number of agents online, in one query."""
    if handoff.status != "queued":
        return None, agents_online(session, within)
    ahead, online = session.execute(
        _STANDING, {"rank": handoff.priority_rank, "created": handoff.created_at, "since": utcnow() - within}
    ).one()
    return int(ahead or 0) + 1, int(online or 0)
