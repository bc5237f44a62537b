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
from tests.app_fixtures import FakeRasa, LiveServer
from tests.handoff.test_live import agent_headers, app_for

SENDERS = 8
ROUNDS = 20


@pytest.mark.parametrize("keys", ["one key", "a key per sender"])
def test_simultaneous_creates_make_one_handoff_and_no_error(database_url: str, keys: str) -> None:
    """The bot retrying one request, or two requests for one conversation at once."""
    database = Database(database_url)
    migrate(database.engine)
    outcomes: list[Counter[str]] = [Counter() for _ in range(ROUNDS)]
    ids: list[set[int]] = [set() for _ in range(ROUNDS)]
    lock = threading.Lock()
    start = threading.Barrier(SENDERS)

    def sender(number: int) -> None:
        for round_number in range(ROUNDS):
            body = HandoffCreate(
                conversation_id=f"conversation-{round_number}",
                idempotency_key=f"key-{round_number}" + (f"-{number}" if keys == "a key per sender" else ""),
                language="en",
                priority="high",
                contact="user@example.com",
                summary="The VPN drops",
            )
            start.wait()
            try:
                with database.sessions() as session:
                    handoff, created = queue.create_handoff(session, body, {})
                    session.commit()
                    outcome = "created" if created else "existing"
            except Exception as error:  # what the API would have turned into a 500
                outcome, handoff = type(error).__name__, None
            with lock:
                outcomes[round_number][outcome] += 1
                if handoff is not None:
                    ids[round_number].add(handoff.id)

    threads = [threading.Thread(target=sender, args=(number,)) for number in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
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
        statuses: list[Counter[int]] = [Counter() for _ in range(5)]
        details: set[str] = set()
        lock = threading.Lock()
        start = threading.Barrier(SENDERS)

        def click(round_number: int) -> None:
            start.wait()
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
            with lock:
                statuses[round_number][response.status_code] += 1
                if response.status_code == 409:
                    details.add(response.json()["detail"])

        for round_number in range(len(statuses)):
            threads = [threading.Thread(target=click, args=(round_number,)) for _ in range(SENDERS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
    assert statuses == [Counter({201: 1, 409: SENDERS - 1})] * len(statuses)
    assert all("already exists" in detail for detail in details)
    database = Database(database_url)
    try:
        with database.sessions() as session:
            emails = session.scalars(select(AgentRow.email).where(AgentRow.email.like("new-%"))).all()
        assert sorted(emails) == [f"new-{n}@example.com" for n in range(len(statuses))]
    finally:
        database.dispose()
