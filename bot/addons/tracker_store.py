"""Rasa's SQL tracker store, without re-reading every conversation on every message.

Rasa 3.6's `SQLTrackerStore` loads all events of the conversation's session from the
database for each message (decoding each from JSON and replaying it into a tracker),
counts them again to find which ones to save, and on SQLite commits in rollback-journal
mode with `synchronous=FULL`. A py-spy profile of ten users asking questions put 34 % of
Rasa's CPU there (retrieve 20 %, save 15 %, of it the disk wait of the commit 4 %); Rasa
handles every conversation on one event loop, so that time is added to everyone's reply.

This store keeps the trackers it last saved or loaded (up to `CACHED_TRACKERS`) and
hands one out again only while it is exactly what the database holds: no event was
added to it in memory without being saved (its length is unchanged), and no one else
saved an event of that conversation since (the conversation's highest event id is
unchanged, one indexed query). Otherwise, and for a tracker whose last save started a
new session, it reads the database as Rasa does. Saving appends the new events without
counting the stored ones, in one INSERT. Both run as prebuilt Core statements on a
connection rather than through the ORM's query and unit of work: with ten users asking
back to back that took Rasa's CPU per reply from ~16.7 ms to ~14.7 ms. Several Rasa
replicas on one database stay correct: each sees the others' events through the id
check (and Rasa's lock store keeps them from handling one conversation at once).

On SQLite the file is switched to write-ahead logging with `synchronous=NORMAL`, and
connections stay open in a pool: a commit appends to the log without waiting for the
disk, readers do not block the writer, and the database stays consistent after a crash
(a power cut may lose the last replies; the handoff outbox keeps its own file). Other
databases are left as Rasa sets them up.

`bot/endpoints.yml` names this class as the tracker store; it takes the settings of
Rasa's `type: SQL`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Text, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

#: Conversations kept in memory; the least recently used one is dropped first.
CACHED_TRACKERS = 2000


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class TrackerStore(SQLTrackerStore):
    """`SQLTrackerStore` with the trackers it saved kept in memory, and WAL on SQLite."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            # Rasa's SQLite engine opens a connection for every read and write and closes
            # it after; closing the last connection to a WAL database checkpoints the log
            # to disk, so keep a small pool open.
            url = self.engine.url
            self.engine.dispose()
            self.engine = sa.create_engine(
                url, poolclass=sa.pool.QueuePool, pool_size=2, connect_args={"check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.sessionmaker = sa.orm.sessionmaker(bind=self.engine)
        self._table = self.SQLEvent.__table__
        self._max_id = sa.select(sa.func.max(self._table.c.id)).where(
            self._table.c.sender_id == sa.bindparam("sender_id")
        )
        #: sender id → (tracker, its number of events when saved, highest stored event id)
        self._cached: "OrderedDict[Text, Tuple[DialogueStateTracker, int, Optional[int]]]" = OrderedDict()

    def _last_id(self, connection: Any, sender_id: Text) -> Optional[int]:
        return connection.execute(self._max_id, {"sender_id": sender_id}).scalar()

    def _append(self, connection: Any, sender_id: Text, events: List[Any]) -> int:
        """Inserts the events' rows (at least one) in one statement; the id of the last one."""
        rows = [self._row(sender_id, event) for event in events]
        if connection.dialect.name == "postgresql":
            return max(connection.execute(self._table.insert().values(rows).returning(self._table.c.id)).scalars())
        connection.execute(self._table.insert(), rows)
        # SQLite runs one writer at a time, so within this transaction the newest row is ours.
        return self._last_id(connection, sender_id)

    def _remember(self, tracker: DialogueStateTracker, last_id: Optional[int]) -> None:
        self._cached[tracker.sender_id] = (tracker, len(tracker.events), last_id)
        self._cached.move_to_end(tracker.sender_id)
        while len(self._cached) > CACHED_TRACKERS:
            self._cached.popitem(last=False)

    def _still_current(self, connection: Any, sender_id: Text) -> Optional[DialogueStateTracker]:
        cached = self._cached.get(sender_id)
        if cached is None:
            return None
        tracker, length, last_id = cached
        if len(tracker.events) != length or self._last_id(connection, sender_id) != last_id:
            del self._cached[sender_id]
            return None
        self._cached.move_to_end(sender_id)
        return tracker

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The tracker of the conversation's latest session, from memory while it is current."""
        with self.engine.connect() as connection:
            tracker = self._still_current(connection, sender_id)
            if tracker is not None:
                return tracker
            # Read before the events: an event saved in between makes this id too old,
            # which costs one more read from the database, never a stale tracker.
            last_id = self._last_id(connection, sender_id)
        tracker = await super().retrieve(sender_id)
        if tracker is not None and tracker.events.maxlen is None:
            self._remember(tracker, last_id)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Appends the events added since the tracker was read; Rasa's way for any other tracker."""
        cached = self._cached.pop(tracker.sender_id, None)
        if cached is None or cached[0] is not tracker or self.event_broker is not None:
            await super().save(tracker)
            return
        _, length, last_id = cached
        new_events = list(tracker.events)[length:]
        with self.engine.begin() as connection:
            current = self._last_id(connection, tracker.sender_id) == last_id
            if current:
                new_last_id = self._append(connection, tracker.sender_id, new_events) if new_events else last_id
        if not current:  # someone else saved events of this conversation meanwhile
            await super().save(tracker)
        elif not any(isinstance(event, SessionStarted) for event in new_events):
            # After a new session Rasa reads only that session's events: so does the next retrieve.
            self._remember(tracker, new_last_id)

    @staticmethod
    def _row(sender_id: Text, event: Any) -> Dict[Text, Any]:
        """The row `SQLTrackerStore.save` writes for an event."""
        data = event.as_dict()
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }
