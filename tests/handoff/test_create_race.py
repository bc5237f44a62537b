"""Simultaneous creates: the bot retrying a handoff, an admin double-clicking "create account"."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from firstline.db import Database, migrate
from handoff import queue
from handoff.models import AgentRow, HandoffRow
from handoff.schemas import HandoffCreate
from kb_index.embedder import Embedder
from tests.app_fixtures import FakeRasa, LiveServer, simultaneously
from tests.handoff.test_live import agent_headers, app_for

SENDERS = 8
ROUNDS = 20


@pytest.mark.parametrize("keys", ["one key", "a key per sender"])
def test_simultaneous_creates_make_one_handoff_and_no_error(database_url: str, keys: str) -> None:
    """The bot retrying one request, or two requests for one conversation at once."""
    database = Database(database_url)
    migrate(database.engine)
    ids: list[set[int]] = [set() for _ in range(ROUNDS)]
    lock = threading.Lock()

    def sender(number: int, round_number: int) -> str:
        body = HandoffCreate(
            conversation_id=f"conversation-{round_number}",
            idempotency_key=f"key-{round_number}" + (f"-{number}" if keys == "a key per sender" else ""),
            language="en",
            priority="high",
            contact="user@example.com",
            summary="The VPN drops",
        )
        with database.sessions() as session:
            handoff, created = queue.create_handoff(session, body, {})
            session.commit()
        with lock:
            ids[round_number].add(handoff.id)
        return "created" if created else "existing"

    outcomes = simultaneously(SENDERS, ROUNDS, sender, timeout=120)
    try:
        assert outcomes == [Counter(created=1, existing=SENDERS - 1)] * ROUNDS
        assert all(len(round_ids) == 1 for round_ids in ids)
        with database.sessions() as session:
            assert session.scalar(select(func.count()).select_from(HandoffRow)) == ROUNDS
    finally:
        database.dispose()


def test_simultaneous_account_creations_give_one_account_and_clear_conflicts(
    tmp_path: Path, database_url: str, embedder: Embedder, fake_rasa: FakeRasa
) -> None:
    with LiveServer(app_for(tmp_path / "data", database_url, embedder, fake_rasa)) as server:
        admin = agent_headers(server.url, "admin@example.com")
        details: set[str] = set()
        lock = threading.Lock()

        def click(number: int, round_number: int) -> str:
            response = httpx.post(
                f"{server.url}/api/agents",
                json={
                    "email": f"new-{round_number}@example.com",
                    "name": "Inga",
                    "password": "a-long-password-1",
                    "languages": ["lv"],
                },
                headers=admin,
                timeout=60,
            )
            if response.status_code == 409:
                with lock:
                    details.add(response.json()["detail"])
            return str(response.status_code)

        statuses = simultaneously(SENDERS, 5, click, timeout=120)
    assert statuses == [Counter({"201": 1, "409": SENDERS - 1})] * len(statuses)
    assert all("already exists" in detail for detail in details)
    database = Database(database_url)
    try:
        with database.sessions() as session:
            emails = session.scalars(select(AgentRow.email).where(AgentRow.email.like("new-%"))).all()
        assert sorted(emails) == [f"new-{n}@example.com" for n in range(len(statuses))]
    finally:
        database.dispose()
