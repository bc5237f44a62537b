"""A durable outbox for what the bot owes the firstline service while it is unreachable.

When the service is down, a handoff request, a relayed user message or a rating is
written to a small SQLite file instead of being lost, and a background thread
delivers it, oldest first, as soon as the service answers again. Handoffs carry
their idempotency key, so a request that did reach the service before a timeout is
still created exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from actions.client import FirstlineClient, Rejected, ServiceUnavailable, get_client

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
POLL_SECONDS = 2.0


def default_path() -> Path:
    configured = os.environ.get("FIRSTLINE_BOT_OUTBOX")
    if configured:
        return Path(configured)
    return Path(os.environ.get("FIRSTLINE_DATA_DIR", "data")) / "bot-outbox.sqlite"


class Outbox:
    def __init__(self, path: Path, autostart: bool = True) -> None:
        self._autostart = autostart
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
            "payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, "
            "last_error TEXT NOT NULL DEFAULT '')"
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def has_pending(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is not None

    def put(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (kind, payload, next_at) VALUES (?, ?, ?)", (kind, json.dumps(payload), time.time())
            )
        if self._autostart:
            self.ensure_running()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, kind, payload, attempts FROM outbox ORDER BY id").fetchall()
        return [{"id": r[0], "kind": r[1], "payload": json.loads(r[2]), "attempts": r[3]} for r in rows]

    async def drain_once(self, client: FirstlineClient) -> int:
        """Delivers what is due, in order; stops at the first failure. Returns how many went out."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, payload, attempts FROM outbox WHERE next_at <= ? ORDER BY id", (time.time(),)
            ).fetchall()
        delivered = 0
        for row_id, kind, payload, attempts in rows:
            try:
                await _SENDERS[kind](client, json.loads(payload))
            except ServiceUnavailable as exc:
                backoff = min(MAX_BACKOFF_SECONDS, 2.0**attempts)
                with self._lock:
                    self._db.execute(
                        "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
                        (time.time() + backoff, str(exc)[:500], row_id),
                    )
                return delivered  # keep the order: nothing overtakes an undelivered item
            except Rejected as exc:
                # The service refused it for good (e.g. the handoff no longer exists): log and drop.
                logger.error("the firstline service refused outbox item %s (%s): %s", row_id, kind, exc)
            with self._lock:
                self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            delivered += 1
        return delivered

    def ensure_running(self) -> None:
        """Starts the delivery thread once per process."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="bot-outbox", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        # Its own client, so the action server's connections stay on the action server's loop.
        client = FirstlineClient(
            os.environ.get("FIRSTLINE_URL", "http://127.0.0.1:8000"),
            os.environ.get("FIRSTLINE_SERVICE_TOKEN", "dev-service-token"),
        )
        while True:
            try:
                await self.drain_once(client)
            except Exception:
                logger.exception("bot outbox delivery failed; retrying")
            await asyncio.sleep(POLL_SECONDS)


async def _send_handoff(client: FirstlineClient, payload: dict[str, Any]) -> None:
    await client.create_handoff(payload)


async def _send_user_message(client: FirstlineClient, payload: dict[str, Any]) -> None:
    await client.user_message(payload["handoff_id"], payload["text"], payload["client_id"], payload["timestamp"])


async def _send_rating(client: FirstlineClient, payload: dict[str, Any]) -> None:
    await client.rate(payload["handoff_id"], payload["rating"], payload.get("comment", ""))


async def _send_feedback(client: FirstlineClient, payload: dict[str, Any]) -> None:
    await client.feedback(payload["query_id"], payload["outcome"])


_SENDERS: dict[str, Callable[[FirstlineClient, dict[str, Any]], Awaitable[None]]] = {
    "handoff": _send_handoff,
    "user_message": _send_user_message,
    "rating": _send_rating,
    "feedback": _send_feedback,
}

_outbox: Outbox | None = None
_outbox_lock = threading.Lock()


def get_outbox() -> Outbox:
    global _outbox
    with _outbox_lock:
        if _outbox is None:
            _outbox = Outbox(default_path())
        return _outbox


def set_outbox(outbox: Outbox | None) -> None:
    """Replaces the shared outbox (tests use one in a temporary directory)."""
    global _outbox
    with _outbox_lock:
        _outbox = outbox


async def send_or_keep(kind: str, payload: dict[str, Any]) -> bool:
    """Sends now if the service answers; otherwise keeps it for later. True if sent now.

    While older items wait, a new one waits behind them, so nothing arrives out of order.
    Raises Rejected when the service refuses the item (it will not be retried).
    """
    outbox = get_outbox()
    if outbox.has_pending():
        outbox.put(kind, payload)
        return False
    try:
        await _SENDERS[kind](get_client(), payload)
        return True
    except ServiceUnavailable:
        outbox.put(kind, payload)
        return False


__all__ = ["Outbox", "get_outbox", "send_or_keep", "set_outbox"]
