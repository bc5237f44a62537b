"""Delivers outbox events to the user's chat through Rasa's external-event API.

``POST /conversations/{id}/trigger_intent?output_channel=...`` makes Rasa run the
intent's rule (relay the agent's text, announce the agent, resume after close) and
send the bot's response on the channel the user is connected to, so Rasa stays the
single owner of the channel and the tracker. Events of one conversation go out in
order; a failed one is retried with exponential backoff (capped at a minute) and
holds back the later events of its conversation until it succeeds.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from urllib.parse import quote

import httpx
from sqlalchemy import select, update

from firstline.db import Database, utcnow
from handoff.models import MessageRow, OutboxRow

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
#: A leased item not confirmed within this time is sent again.
LEASE_SECONDS = 30.0
BATCH = 50


class RasaClient:
    """The slice of Rasa's HTTP API the service uses."""

    def __init__(
        self,
        base_url: str,
        token: str,
        output_channel: str = "latest",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.output_channel = output_channel
        self._token = token
        self._client = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)

    def trigger_intent(self, conversation_id: str, intent: str, entities: dict[str, object]) -> None:
        """Raises httpx.HTTPError when Rasa is unreachable or refuses the event."""
        response = self._client.post(
            f"/conversations/{quote(conversation_id, safe='')}/trigger_intent",
            params={"output_channel": self.output_channel, "token": self._token},
            json={"name": intent, "entities": entities},
        )
        response.raise_for_status()

    def close(self) -> None:
        self._client.close()


class OutboxWorker:
    """A background thread that drains the outbox; `wake` makes it look at once."""

    def __init__(self, db: Database, rasa: RasaClient, poll_interval: float = 1.0) -> None:
        self.db = db
        self.rasa = rasa
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rasa-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            try:
                while self.deliver_due() and not self._stop.is_set():
                    pass
            except Exception:
                logger.exception("outbox delivery failed; will retry")

    def deliver_due(self) -> int:
        """Sends what is due, oldest first; returns how many were delivered.

        Items are leased (status "sending") in a short transaction and sent outside
        it, so a slow Rasa never holds a database lock; a lease that outlives a
        crash simply expires and the item is sent again.
        """
        with self.db.session() as session:
            query = (
                select(OutboxRow)
                .where(OutboxRow.status.in_(("pending", "sending")))
                .order_by(OutboxRow.id)
                .limit(BATCH)
            )
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            now = utcnow()
            due: list[tuple[int, str, str, dict[str, object], int | None]] = []
            blocked: set[str] = set()
            for item in session.scalars(query):
                if item.conversation_id in blocked:
                    continue
                if item.next_attempt_at > now:
                    blocked.add(item.conversation_id)
                    continue
                item.status = "sending"
                item.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
                # One in flight per conversation keeps its events in order.
                blocked.add(item.conversation_id)
                due.append((item.id, item.conversation_id, item.intent, dict(item.entities), item.message_id))
        delivered = 0
        for item_id, conversation_id, intent, entities, message_id in due:
            try:
                self.rasa.trigger_intent(conversation_id, intent, entities)
                error = None
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                logger.warning("could not deliver %s to conversation %s: %s", intent, conversation_id, error)
            with self.db.session() as session:
                leased = session.get(OutboxRow, item_id)
                if leased is None:
                    continue
                item = leased
                item.attempts += 1
                if error is None:
                    item.status = "delivered"
                    delivered += 1
                    if message_id is not None:
                        session.execute(
                            update(MessageRow).where(MessageRow.id == message_id).values(delivery="delivered")
                        )
                else:
                    item.status = "pending"
                    backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2**item.attempts)
                    item.next_attempt_at = utcnow() + timedelta(seconds=backoff)
                    item.last_error = error
        return delivered
