"""Live updates for agents' browsers, across every instance of the service.

Queue operations call `emit(session, ...)` inside their transaction. Nothing is sent
unless the transaction commits. On PostgreSQL the event travels as
``NOTIFY firstline_events`` (delivered at commit to every instance that LISTENs,
this one included); on SQLite, which has one instance, it is handed to the local
bus after the commit. Subscribers are the server-sent-event streams of
``GET /api/events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from firstline.db import Database, utcnow

logger = logging.getLogger(__name__)

CHANNEL = "firstline_events"
PENDING = "firstline_pending_events"
QUEUE_SIZE = 1000


def emit(session: Session, kind: str, **data: Any) -> None:
    """Queues an event to go out when this session's transaction commits."""
    payload = {"type": kind, "at": utcnow().isoformat(), **data}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": json.dumps(payload)}
        )
    else:
        session.info.setdefault(PENDING, []).append(payload)


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    overflowed: bool = False


class EventBus:
    """Fans events out to the subscribers of this process."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        subscription = Subscription(asyncio.get_running_loop(), asyncio.Queue(QUEUE_SIZE))
        with self._lock:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def publish(self, payload: dict[str, Any]) -> None:
        """Thread-safe; a subscriber that cannot keep up is marked and drops out."""
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                subscription.loop.call_soon_threadsafe(_offer, subscription, payload)


def _offer(subscription: Subscription, payload: dict[str, Any]) -> None:
    try:
        subscription.queue.put_nowait(payload)
    except asyncio.QueueFull:
        subscription.overflowed = True


class LiveEvents:
    """Connects a database's commits to a bus; on PostgreSQL, listens for NOTIFY."""

    def __init__(self, db: Database, bus: EventBus, postgres_dsn: str | None = None) -> None:
        self.db = db
        self.bus = bus
        self._dsn = postgres_dsn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        event.listen(db.sessions, "after_commit", self._after_commit)
        event.listen(db.sessions, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        for payload in session.info.pop(PENDING, []):
            self.bus.publish(payload)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(PENDING, None)

    def start(self) -> None:
        if self._dsn is not None:
            ready = threading.Event()
            self._thread = threading.Thread(target=self._listen, args=(ready,), name="pg-listen", daemon=True)
            self._thread.start()
            ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self, ready: threading.Event) -> None:
        import psycopg

        assert self._dsn is not None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    ready.set()
                    while not self._stop.is_set():
                        for notify in connection.notifies(timeout=1.0):
                            self.bus.publish(json.loads(notify.payload))
            except Exception:  # the database restarted: listen again
                logger.exception("lost the PostgreSQL LISTEN connection; reconnecting")
                ready.set()
                self._stop.wait(1.0)
