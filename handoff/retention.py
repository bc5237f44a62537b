"""Deleting what the retention setting says may no longer be kept."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import delete, select, update

from firstline.db import Database, utcnow
from handoff.models import AuditRow, HandoffRow, MessageRow
from kb_index.models import QueryLogRow

logger = logging.getLogger(__name__)


def purge(db: Database, days: int) -> dict[str, int]:
    """Removes transcripts and contacts of handoffs closed more than `days` ago, and old search logs.

    The handoff rows stay (without personal data) so that the metrics still add up.
    """
    cutoff = utcnow() - timedelta(days=days)
    with db.session() as session:
        expired = list(
            session.scalars(
                select(HandoffRow.id).where(
                    HandoffRow.status == "closed", HandoffRow.closed_at < cutoff, HandoffRow.purged_at.is_(None)
                )
            )
        )
        for start in range(0, len(expired), 500):
            chunk = expired[start : start + 500]
            session.execute(delete(MessageRow).where(MessageRow.handoff_id.in_(chunk)))
            session.execute(
                update(HandoffRow)
                .where(HandoffRow.id.in_(chunk))
                .values(contact="", summary="", rating_comment="", bot_attempt={}, purged_at=utcnow())
            )
        logs = session.execute(delete(QueryLogRow).where(QueryLogRow.created_at < cutoff)).rowcount  # type: ignore[attr-defined]
        if expired or logs:
            session.add(AuditRow(actor="retention", action="purged", detail={"handoffs": len(expired), "days": days}))
    return {"handoffs": len(expired), "search_logs": int(logs or 0)}


class RetentionJob:
    """Runs `purge` at start and then every `interval` seconds, when retention is set."""

    def __init__(self, db: Database, days: int, interval: float = 3600.0) -> None:
        self.db, self.days, self.interval = db, days, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.days > 0:
            self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                removed = purge(self.db, self.days)
                if any(removed.values()):
                    logger.info("retention removed %s", removed)
            except Exception:
                logger.exception("retention run failed; will try again")
            if self._stop.wait(self.interval):
                return
