"""Fifty agents claiming the same handoff at the same moment: exactly one wins, every time."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from firstline.db import Database, migrate, utcnow
from handoff import auth, queue
from handoff.errors import Conflict
from handoff.models import AgentRow, HandoffRow

AGENTS = 50
ROUNDS = 1000

pytestmark = pytest.mark.slow


def test_exactly_one_of_fifty_agents_wins_each_claim(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    db = Database(url)
    migrate(db.engine)
    with db.session() as session:
        for number in range(AGENTS):
            auth.create_agent(session, email=f"a{number}@example.com", name=f"Agent {number}", password="x" * 12)
    db.dispose()
    # One connection per agent, so that all fifty really are in flight at once.
    engine = create_engine(url, pool_size=AGENTS, max_overflow=0)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        agents = list(session.query(AgentRow).order_by(AgentRow.id))
    start = threading.Barrier(AGENTS + 1)
    done = threading.Barrier(AGENTS + 1)
    current: dict[str, int] = {}
    outcomes: list[list[str]] = [[] for _ in range(ROUNDS)]
    lock = threading.Lock()

    def agent_loop(agent: AgentRow) -> None:
        for round_number in range(ROUNDS):
            start.wait()
            with sessions() as session:
                try:
                    queue.claim(session, current["id"], agent)
                    session.commit()
                    result = "won"
                except Conflict:
                    session.rollback()
                    result = "lost"
            with lock:
                outcomes[round_number].append(result)
            done.wait()

    threads = [threading.Thread(target=agent_loop, args=(a,)) for a in agents]
    for thread in threads:
        thread.start()
    try:
        for round_number in range(ROUNDS):
            with sessions() as session:
                now = utcnow()
                handoff = HandoffRow(
                    conversation_id=f"race-{round_number}", idempotency_key=f"race-{round_number}",
                    sla_due_at=now + timedelta(hours=1), created_at=now, updated_at=now,
                )  # fmt: skip
                session.add(handoff)
                session.commit()
                current["id"] = handoff.id
            start.wait()
            done.wait()
    finally:
        for thread in threads:
            thread.join(timeout=60)
        engine.dispose()
    winners = [round_outcomes.count("won") for round_outcomes in outcomes]
    assert all(len(o) == AGENTS for o in outcomes)
    assert winners == [1] * ROUNDS
