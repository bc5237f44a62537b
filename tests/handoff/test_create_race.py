"""The bot retrying a handoff while its first request is still in flight gets that handoff."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func, select

from firstline.db import Database, migrate
from handoff import queue
from handoff.models import HandoffRow
from handoff.schemas import HandoffCreate

SENDERS = 8
ROUNDS = 20


def test_simultaneous_retries_make_one_handoff_and_no_error(database_url: str) -> None:
    database = Database(database_url)
    migrate(database.engine)
    outcomes: list[Counter[str]] = [Counter() for _ in range(ROUNDS)]
    ids: list[set[int]] = [set() for _ in range(ROUNDS)]
    lock = threading.Lock()
    start = threading.Barrier(SENDERS)

    def sender() -> None:
        for round_number in range(ROUNDS):
            body = HandoffCreate(
                conversation_id=f"conversation-{round_number}",
                idempotency_key=f"key-{round_number}",
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

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
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
