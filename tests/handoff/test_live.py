"""Live updates reach agents within a second, also across instances on one PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def workers_serving(data_dir: Path, database_url: str, count: int, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`firstline serve --workers count` on `port`, once it answers; stopped with SIGTERM after."""
    server = subprocess.Popen(
        serve_command(port, count),
        env=serve_env(data_dir, database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.5)
        yield server
    finally:
        server.terminate()
        server.wait(30)


def workers_of(pid: int) -> list[int]:
    """The worker processes `pid` started (not multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def sockets_on(pid: int, port: int, state: str = "01") -> set[str]:
    """The inodes of the TCP sockets on local `port` that process `pid` holds in `state`
    (01 established, 0A listening)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state and fields[9] in inodes:
                found.add(fields[9])
    return found


def test_workers_of_one_service_share_live_updates(tmp_path: Path, postgres_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with workers_serving(tmp_path, postgres_url, 2, port):
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


def test_workers_share_the_connections_and_are_replaced(tmp_path: Path, postgres_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with workers_serving(tmp_path, postgres_url, 2, port) as server:
        deadline = time.monotonic() + 120
        while len(workers := workers_of(server.pid)) < 2 or not all(sockets_on(w, port, "0A") for w in workers):
            assert time.monotonic() < deadline, "the second worker did not start listening"
            time.sleep(0.2)
        assert len(workers) == 2
        # Each worker listens on a socket of its own, which the kernel balances over.
        listening = [sockets_on(w, port, "0A") for w in workers]
        assert all(len(inodes) == 1 for inodes in listening) and listening[0] != listening[1], listening
        # Sixteen clients connect at once and keep their connections open, like the bot's
        # pool: each worker serves some (all sixteen landing on one worker's socket has
        # a chance of 2 in 65,536). With one socket shared by the workers, the first to
        # wake accepted them all.
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            for client in clients:
                client.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            for client in clients:
                assert client.recv(65536).startswith(b"HTTP/1.1 200 ")
            held = {pid: len(sockets_on(pid, port)) for pid in workers}
            assert sum(held.values()) == 16, held
            assert all(held.values()), held
        finally:
            for client in clients:
                client.close()

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            now = workers_of(server.pid)
            if len(now) == 2 and workers[0] not in now:
                try:
                    # A fresh connection each time: every worker's socket gets asked.
                    if all(httpx.get(f"{url}/healthz").status_code == 200 for _ in range(8)):
                        break
                except httpx.HTTPError:
                    pass
            assert time.monotonic() < deadline, f"no replacement worker: {now}"
            time.sleep(0.5)
        survivors = workers_of(server.pid)
    assert server.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in survivors)


def test_workers_refuse_a_port_in_use(tmp_path: Path, postgres_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_command(port, 2), env=serve_env(tmp_path, postgres_url), capture_output=True, text=True, timeout=120
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
