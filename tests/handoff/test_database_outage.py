"""PostgreSQL restarts under the running service: a clear 503, nothing half-written, then service again.

These tests restart their own server, so they do not share the session's one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import firstline.db
from firstline.devservers import PostgresServer
from firstline.main import create_app
from handoff.delivery import RasaClient
from kb_index.embedder import Embedder
from tests.app_fixtures import SERVICE, FakeRasa, login, make_settings
from tests.conftest import throwaway_postgres
from tests.handoff.test_api import new_handoff


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def service(own_postgres: PostgresServer, tmp_path: Path, embedder: Embedder) -> Iterator[TestClient]:
    settings = make_settings(tmp_path / "data", own_postgres.create_database("outage"))
    rasa = RasaClient("http://rasa.test", "rasa-token", transport=httpx.MockTransport(FakeRasa().handler))
    with TestClient(create_app(settings, rasa=rasa, embedder=embedder)) as client:
        yield client


def test_idle_connections_are_checked_before_use(
    service: TestClient, own_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pooled connection dies with the restart; pinging it first means no request notices."""
    agent = login(service)
    assert service.post("/api/handoffs", json=new_handoff("before"), headers=SERVICE).status_code == 201
    monkeypatch.setattr(firstline.db, "PING_AFTER_IDLE_S", 0.0)
    own_postgres.restart()

    after = service.post("/api/handoffs", json=new_handoff("after"), headers=SERVICE)

    assert after.status_code == 201, after.text
    queued = service.get("/api/handoffs", headers=agent).json()
    assert sorted(h["conversation_id"] for h in queued) == ["after", "before"]


def test_a_dropped_connection_is_a_503_and_the_retry_creates_exactly_one(
    service: TestClient, own_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the ping (a connection used a moment ago) the request fails cleanly and may be retried."""
    agent = login(service)
    monkeypatch.setattr(firstline.db, "PING_AFTER_IDLE_S", 3600.0)
    own_postgres.restart()

    statuses = []
    for _ in range(3):  # the first use of each dead connection fails; the pool then starts afresh
        response = service.post("/api/handoffs", json=new_handoff("retried"), headers=SERVICE)
        statuses.append(response.status_code)
        if response.status_code != 503:
            break
        assert response.json() == {"detail": "the database is unavailable; nothing was saved, try again"}
        assert response.headers["retry-after"] == "1"

    assert statuses[-1] == 201, statuses
    assert set(statuses[:-1]) <= {503}, statuses
    queued = service.get("/api/handoffs", headers=agent).json()
    assert [h["conversation_id"] for h in queued] == ["retried"]
