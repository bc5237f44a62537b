"""Sends outbox rows: chat events to Rasa, signed notifications to a webhook.

Chat events use Rasa's ``POST /conversations/{id}/trigger_intent?output_channel=...``,
which runs the intent's rule (relay the agent's text, announce the agent, resume
after close) and sends the bot's response on the channel the user is connected to,
so Rasa stays the single owner of the channel and the tracker.

Rows with the same key (a conversation, or a handoff's webhook stream) go out one at
a time and in order; a failure is retried with exponential backoff (capped at a
minute) and holds back the later rows of its key. Rows are leased in a short
transaction and sent outside it, so a slow receiver never holds a database lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import select, update

from firstline.db import Database, utcnow
from handoff.events import emit
from handoff.models import MessageRow, OutboxRow

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
#: A leased row not confirmed within this time is sent again (the sender crashed).
LEASE_SECONDS = 30.0
#: After this many attempts a row is marked failed and shown to admins.
MAX_ATTEMPTS = {"chat": 500, "webhook": 20}
BATCH = 100
SIGNATURE_HEADER = "X-Firstline-Signature"


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

    def trigger_intent(self, conversation_id: str, intent: str, entities: dict[str, Any]) -> None:
        """Raises httpx.HTTPError when Rasa is unreachable or refuses the event."""
        response = self._client.post(
            f"/conversations/{quote(conversation_id, safe='')}/trigger_intent",
            params={"output_channel": self.output_channel, "token": self._token},
            json={"name": intent, "entities": entities},
        )
        response.raise_for_status()

    def close(self) -> None:
        self._client.close()


def sign(secret: str, body: bytes) -> str:
    """The signature a receiver recomputes: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookClient:
    def __init__(self, url: str, secret: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._secret = secret
        self._client = httpx.Client(transport=transport, timeout=10.0)

    def send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, sort_keys=True).encode()
        response = self._client.post(
            self.url,
            content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)},
        )
        response.raise_for_status()

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class _Due:
    id: int
    kind: str
    payload: dict[str, Any]
    message_id: int | None


class OutboxWorker:
    """A background thread that drains the outbox; `wake` makes it look at once."""

    def __init__(
        self,
        db: Database,
        rasa: RasaClient,
        webhook: WebhookClient | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.db = db
        self.rasa = rasa
        self.webhook = webhook
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
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

    def _lease(self) -> list[_Due]:
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
            due: list[_Due] = []
            blocked: set[str] = set()
            for row in session.scalars(query):
                if row.key in blocked:
                    continue
                # One in flight per key keeps its rows in order.
                blocked.add(row.key)
                if row.next_attempt_at > now:
                    continue
                if row.kind == "webhook" and self.webhook is None:
                    row.status, row.last_error = "failed", "no webhook URL is configured"
                    continue
                row.status = "sending"
                row.next_attempt_at = now + timedelta(seconds=LEASE_SECONDS)
                due.append(_Due(row.id, row.kind, dict(row.payload), row.message_id))
            return due

    def _send(self, item: _Due) -> None:
        if item.kind == "chat":
            payload = item.payload
            self.rasa.trigger_intent(payload["conversation_id"], payload["intent"], payload["entities"])
        else:
            assert self.webhook is not None
            self.webhook.send(item.payload)

    def deliver_due(self) -> int:
        """Sends what is due, oldest first; returns how many were delivered."""
        delivered = 0
        for item in self._lease():
            try:
                self._send(item)
                error = None
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
                logger.warning("could not deliver outbox row %d (%s): %s", item.id, item.kind, error)
            with self.db.session() as session:
                row = session.get(OutboxRow, item.id)
                if row is None:
                    continue
                row.attempts += 1
                if error is None:
                    row.status, row.delivered_at = "delivered", utcnow()
                    delivered += 1
                    if item.message_id is not None:
                        session.execute(
                            update(MessageRow).where(MessageRow.id == item.message_id).values(delivery="delivered")
                        )
                        emit(
                            session, "message.updated", handoff_id=row.handoff_id, message_id=item.message_id,
                            delivery="delivered",
                        )  # fmt: skip
                    continue
                row.last_error = error
                if row.attempts >= MAX_ATTEMPTS.get(row.kind, 20):
                    row.status = "failed"
                    if item.message_id is not None:
                        session.execute(
                            update(MessageRow).where(MessageRow.id == item.message_id).values(delivery="failed")
                        )
                        emit(
                            session, "message.updated", handoff_id=row.handoff_id, message_id=item.message_id,
                            delivery="failed",
                        )  # fmt: skip
                else:
                    row.status = "pending"
                    row.next_attempt_at = utcnow() + timedelta(seconds=min(MAX_BACKOFF_SECONDS, 0.5 * 2**row.attempts))
        return delivered
