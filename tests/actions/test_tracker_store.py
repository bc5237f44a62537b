"""The caching tracker store gives Rasa exactly what Rasa's own SQL store would read.

Each check compares `bot.addons.tracker_store.TrackerStore` with a plain
`SQLTrackerStore` on the same database, on SQLite and on a throwaway PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from bot.addons.tracker_store import TrackerStore
from firstline.devservers import PostgresServer
from tests.conftest import throwaway_postgres

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.from_dict({"slots": {"language": {"type": "text", "mappings": [{"type": "custom"}]}}})


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.url()


def stores(url: str) -> tuple[TrackerStore, SQLTrackerStore]:
    return TrackerStore(domain=DOMAIN, host=url), SQLTrackerStore(domain=DOMAIN, host=url)


def events_of(tracker: DialogueStateTracker | None) -> list[dict[str, Any]]:
    assert tracker is not None
    return [event.as_dict() for event in tracker.events]


def turn(tracker: DialogueStateTracker, text: str) -> None:
    tracker.update(UserUttered(text, {"name": "ask_kb", "confidence": 0.9}))
    tracker.update(SlotSet("language", "en"))
    tracker.update(ActionExecuted("action_listen"))


def new_conversation(store: TrackerStore) -> DialogueStateTracker:
    tracker = run(store.get_or_create_tracker(uuid.uuid4().hex))
    turn(tracker, "hello")
    run(store.save(tracker))
    return tracker


def test_the_endpoints_file_loads_this_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rasa falls back to an in-memory store, with only a warning, when it cannot load the class.
    monkeypatch.setenv("RASA_TRACKER_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    for name in ("ACTION_SERVER_URL", "RASA_LOCK_STORE", "RASA_REDIS_HOST", "RASA_REDIS_PORT"):
        monkeypatch.setenv(name, "in_memory" if name == "RASA_LOCK_STORE" else "unused")
    config = read_endpoint_config(str(ROOT / "bot" / "endpoints.yml"), "tracker_store")
    store = create_tracker_store(config, DOMAIN)
    assert isinstance(getattr(store, "_tracker_store", store), TrackerStore)


def test_sqlite_runs_with_a_write_ahead_log(tmp_path: Path) -> None:
    store = TrackerStore(domain=DOMAIN, host=f"sqlite:///{tmp_path / 'tracker.db'}")
    new_conversation(store)
    with sqlite3.connect(tmp_path / "tracker.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_conversation_reads_back_as_rasa_reads_it(url: str) -> None:
    store, rasa = stores(url)
    tracker = new_conversation(store)
    for text in ("reset password", "that did not help", "a person please"):
        tracker = run(store.retrieve(tracker.sender_id))
        turn(tracker, text)
        run(store.save(tracker))
    assert events_of(run(store.retrieve(tracker.sender_id))) == events_of(run(rasa.retrieve(tracker.sender_id)))
    assert len(events_of(run(rasa.retrieve(tracker.sender_id)))) == len(tracker.events)


def test_a_cached_tracker_is_handed_out_again_and_saves_only_its_new_events(url: str) -> None:
    store, rasa = stores(url)
    tracker = new_conversation(store)
    first = run(store.retrieve(tracker.sender_id))
    assert run(store.retrieve(tracker.sender_id)) is first
    turn(first, "one more")
    run(store.save(first))
    stored = events_of(run(rasa.retrieve(tracker.sender_id)))
    assert stored == events_of(first)  # each event once: a repeated one would make it longer


def test_changes_made_in_memory_but_not_saved_are_not_handed_out(url: str) -> None:
    store, rasa = stores(url)
    tracker = new_conversation(store)
    cached = run(store.retrieve(tracker.sender_id))
    turn(cached, "this reply failed half way")  # Rasa raised before saving
    again = run(store.retrieve(tracker.sender_id))
    assert again is not cached
    assert events_of(again) == events_of(run(rasa.retrieve(tracker.sender_id)))


def test_events_saved_by_another_replica_are_seen(url: str) -> None:
    store, rasa = stores(url)
    other = TrackerStore(domain=DOMAIN, host=url)
    tracker = new_conversation(store)
    run(store.retrieve(tracker.sender_id))
    elsewhere = run(other.retrieve(tracker.sender_id))
    turn(elsewhere, "answered by the other replica")
    run(other.save(elsewhere))
    seen = run(store.retrieve(tracker.sender_id))
    assert events_of(seen) == events_of(run(rasa.retrieve(tracker.sender_id)))
    assert seen.latest_message.text == "answered by the other replica"


def test_saving_a_stale_tracker_falls_back_to_rasas_own_save(url: str) -> None:
    store, rasa = stores(url)
    other = TrackerStore(domain=DOMAIN, host=url)
    tracker = new_conversation(store)
    mine = run(store.retrieve(tracker.sender_id))
    theirs = run(other.retrieve(tracker.sender_id))
    turn(theirs, "theirs")
    run(other.save(theirs))
    turn(mine, "mine")
    run(store.save(mine))
    # Rasa's save appends what the database does not have by count, as it always did.
    assert len(events_of(run(rasa.retrieve(tracker.sender_id)))) == len(mine.events)


def test_a_new_session_is_read_as_rasa_reads_it(url: str) -> None:
    store, rasa = stores(url)
    tracker = new_conversation(store)
    tracker = run(store.retrieve(tracker.sender_id))
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    turn(tracker, "back the next day")
    run(store.save(tracker))
    mine = events_of(run(store.retrieve(tracker.sender_id)))
    assert mine == events_of(run(rasa.retrieve(tracker.sender_id)))
    assert len(mine) < len(tracker.events)  # only the latest session, as Rasa reads it


def test_memory_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.addons.tracker_store.CACHED_TRACKERS", 3)
    store = TrackerStore(domain=DOMAIN, host=f"sqlite:///{tmp_path / 'tracker.db'}")
    senders = [new_conversation(store).sender_id for _ in range(5)]
    for sender in senders:
        run(store.retrieve(sender))
    assert list(store._cached) == senders[-3:]
