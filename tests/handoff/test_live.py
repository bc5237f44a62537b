"""Live updates reach agents within a second, also across instances on one PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from firstline.devservers import free_port
from firstline.main import create_app
from handoff.delivery import RasaClient
from kb_index.embedder import Embedder
from tests.app_fixtures import SERVICE, SERVICE_TOKEN, EventStream, FakeRasa, LiveServer, make_settings
from tests.handoff.test_api import new_handoff


def app_for(data_dir: Path, database_url: str, embedder: Embedder, fake_rasa: FakeRasa):  # type: ignore[no-untyped-def]
    rasa = RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(fake_rasa.handler))
    return create_app(make_settings(data_dir, database_url), rasa=rasa, embedder=embedder)


def agent_headers(base_url: str, email: str = "agent@example.com") -> dict[str, str]:
    """Logs a development account in to a running server; its bearer header."""
    token = httpx.post(f"{base_url}/api/auth/login", json={"email": email, "password": "firstline-dev"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_agents_see_new_work_and_messages_within_a_second(
    tmp_path: Path, database_url: str, embedder: Embedder, fake_rasa: FakeRasa
) -> None:
    with LiveServer(app_for(tmp_path / "data", database_url, embedder, fake_rasa)) as server:
        agent = agent_headers(server.url)
        stream = EventStream(f"{server.url}/api/events", agent)
        try:
            sent = time.monotonic()
            created = httpx.post(f"{server.url}/api/handoffs", json=new_handoff(), headers=SERVICE).json()
            event = stream.next_event("handoff.created")
            assert event["handoff_id"] == created["id"]
            assert event["received"] - sent < 1.0
            httpx.post(f"{server.url}/api/handoffs/{created['id']}/claim", headers=agent)
            assert stream.next_event("handoff.updated")["change"] == "claimed"
            httpx.post(
                f"{server.url}/api/handoffs/{created['id']}/user-messages",
                json={"text": "still there?"},
                headers=SERVICE,
            )
            message = stream.next_event("message.created")
            assert (message["handoff_id"], message["role"]) == (created["id"], "user")
        finally:
            stream.close()


def test_events_need_a_login(tmp_path: Path, embedder: Embedder, fake_rasa: FakeRasa) -> None:
    with LiveServer(app_for(tmp_path / "data", f"sqlite:///{tmp_path / 'f.db'}", embedder, fake_rasa)) as server:
        assert httpx.get(f"{server.url}/api/events").status_code == 401


def test_two_instances_on_one_postgresql_share_live_updates(
    tmp_path: Path, postgres_url: str, embedder: Embedder, fake_rasa: FakeRasa
) -> None:
    first = app_for(tmp_path / "one", postgres_url, embedder, fake_rasa)
    second = app_for(tmp_path / "two", postgres_url, embedder, fake_rasa)
    with LiveServer(first) as one, LiveServer(second) as two:
        stream = EventStream(f"{two.url}/api/events", agent_headers(two.url))
        try:
            delays = []
            for number in range(5):
                sent = time.monotonic()
                created = httpx.post(
                    f"{one.url}/api/handoffs", json=new_handoff(f"conv-{number}"), headers=SERVICE
                ).json()
                event = stream.next_event("handoff.created")
                assert event["handoff_id"] == created["id"]
                delays.append(event["received"] - sent)
            assert max(delays) < 1.0, delays
        finally:
            stream.close()


def test_rolled_back_changes_send_no_event(
    tmp_path: Path, database_url: str, embedder: Embedder, fake_rasa: FakeRasa
) -> None:
    with LiveServer(app_for(tmp_path / "data", database_url, embedder, fake_rasa)) as server:
        agent = agent_headers(server.url)
        stream = EventStream(f"{server.url}/api/events", agent)
        try:
            created = httpx.post(f"{server.url}/api/handoffs", json=new_handoff(), headers=SERVICE).json()
            stream.next_event("handoff.created")
            assert httpx.post(f"{server.url}/api/handoffs/{created['id']}/claim", headers=agent).status_code == 200
            stream.next_event("handoff.updated")
            # A second claim fails (409) and must not announce anything.
            assert httpx.post(f"{server.url}/api/handoffs/{created['id']}/claim", headers=agent).status_code == 409
            with pytest.raises(AssertionError, match=r"no handoff\.updated event"):
                stream.next_event("handoff.updated", timeout=1.0)
        finally:
            stream.close()


def serve_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "firstline.cli", "serve", "--port", str(port), "--workers", str(workers)]


def serve_env(data_dir: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "FIRSTLINE_DATA_DIR": str(data_dir),
        "FIRSTLINE_DATABASE_URL": database_url,
        "FIRSTLINE_SERVICE_TOKEN": SERVICE_TOKEN,
        "FIRSTLINE_DEMO_CORPUS_DIR": "",
        "FIRSTLINE_DEMO_EVAL_DIR": "",
        "FIRSTLINE_RASA_URL": "http://127.0.0.1:9",
    }


def test_several_workers_need_postgresql(tmp_path: Path) -> None:
    done = subprocess.run(
        serve_command(free_port(), 2),
        env=serve_env(tmp_path, f"sqlite:///{tmp_path}/one.db"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "--workers above 1 needs PostgreSQL" in done.stderr


def test_workers_of_one_service_share_live_updates(tmp_path: Path, postgres_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        serve_command(port, 2), env=serve_env(tmp_path, postgres_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.5)
        # Each request may land on either worker; the stream is held by one of them.
        stream = EventStream(f"{url}/api/events", agent_headers(url))
        try:
            created = [
                httpx.post(f"{url}/api/handoffs", json=new_handoff(f"worker-{n}"), headers=SERVICE).json()["id"]
                for n in range(12)
            ]
            seen = [stream.next_event("handoff.created")["handoff_id"] for _ in created]
            assert sorted(seen) == sorted(created)
        finally:
            stream.close()
    finally:
        server.terminate()
        server.wait(30)
