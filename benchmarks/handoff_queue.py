"""The handoff queue under load, on SQLite and on PostgreSQL, through the HTTP API.

Creations per second with 8 concurrent bot clients, claim latency, and the delay
from a handoff being created to its event reaching an agent's open event stream.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import free_port, percentile, table
from firstline.config import REPO_ROOT, Settings
from firstline.devservers import MissingBinaries, start_postgres

CREATORS = 8
#: Service worker processes measured on PostgreSQL (`firstline serve --workers N`); more
#: processes than cores still help, as each spends much of a request waiting on the database.
WORKERS = (1, 2, 4)
CREATIONS = 2000
CLAIMS = 300
LIVE_SAMPLES = 200
TOKEN = "bench-service-token-0123456789"


def _handoff(number: int) -> dict[str, Any]:
    return {
        "conversation_id": f"bench-{number}-{time.monotonic_ns()}",
        "language": "en",
        "priority": ("urgent", "high", "normal", "low")[number % 4],
        "contact": "user@example.com",
        "summary": "VPN drops every few minutes",
        "transcript": [
            {"role": "user", "text": "my vpn keeps dropping", "timestamp": "2026-11-22T09:00:00Z"},
            {"role": "bot", "text": "Try reconnecting GlobalProtect ...", "timestamp": "2026-11-22T09:00:01Z"},
            {"role": "user", "text": "didn't help", "timestamp": "2026-11-22T09:00:20Z"},
        ],
    }


@contextmanager
def _service(database_url: str, workers: int = 1) -> Iterator[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="firstline-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "FIRSTLINE_DATA_DIR": str(data_dir),
        "FIRSTLINE_DATABASE_URL": database_url,
        "FIRSTLINE_SERVICE_TOKEN": TOKEN,
        "FIRSTLINE_DEMO_CORPUS_DIR": "",
        "FIRSTLINE_DEMO_EVAL_DIR": "",
        "FIRSTLINE_LOGIN_RATE_LIMIT": "100000",
        "FIRSTLINE_RASA_URL": "http://127.0.0.1:9",  # nobody listens: chat events wait in the outbox
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "firstline.cli", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(30)


def _measure(url: str) -> list[str]:
    service = {"Authorization": f"Bearer {TOKEN}"}
    counter = iter(range(10**9))
    lock = threading.Lock()
    errors: list[int] = []

    def creator(count: int) -> None:
        with httpx.Client(base_url=url, headers=service, timeout=30) as client:
            for _ in range(count):
                with lock:
                    number = next(counter)
                response = client.post("/api/handoffs", json=_handoff(number))
                if response.status_code != 201:
                    errors.append(response.status_code)

    creator(50)  # warm up
    threads = [threading.Thread(target=creator, args=(CREATIONS // CREATORS,)) for _ in range(CREATORS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = CREATIONS / (time.perf_counter() - started)

    client = httpx.Client(base_url=url, timeout=30)
    token = client.post("/api/auth/login", json={"email": "agent@example.com", "password": "firstline-dev"})
    agent = {"Authorization": f"Bearer {token.json()['token']}"}
    queued = client.get("/api/handoffs", params={"status": "queued", "limit": CLAIMS}, headers=agent).json()
    claims = []
    for handoff in queued[:CLAIMS]:
        began = time.perf_counter()
        response = client.post(f"/api/handoffs/{handoff['id']}/claim", headers=agent)
        claims.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text

    events: queue.Queue[tuple[int, float]] = queue.Queue()
    stream_client = httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=None))
    stream = stream_client.send(stream_client.build_request("GET", "/api/events", headers=agent), stream=True)

    def read() -> None:
        kind = None
        try:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "handoff.created":
                    events.put((json.loads(line[6:])["handoff_id"], time.perf_counter()))
        except httpx.HTTPError:
            pass

    threading.Thread(target=read, daemon=True).start()
    time.sleep(0.5)
    delays = []
    with httpx.Client(base_url=url, headers=service, timeout=30) as bot:
        for number in range(LIVE_SAMPLES):
            began = time.perf_counter()
            created = bot.post("/api/handoffs", json=_handoff(10**8 + number)).json()["id"]
            while True:
                handoff_id, received = events.get(timeout=10)
                if handoff_id == created:
                    delays.append((received - began) * 1000)
                    break
    stream.close()
    stream_client.close()
    client.close()
    return [
        f"{rate:.0f}",
        f"{percentile(claims, 50):.1f}",
        f"{percentile(claims, 95):.1f}",
        f"{percentile(delays, 50):.1f}",
        f"{percentile(delays, 95):.1f}",
        str(len(errors)),
    ]


def run(settings: Settings) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as directory, _service(f"sqlite:///{directory}/bench.db") as url:
        rows.append(["SQLite", *_measure(url)])
    try:
        postgres = start_postgres()
    except MissingBinaries as exc:
        rows.append(["PostgreSQL", f"not measured: {exc}", "", "", "", "", ""])
    else:
        try:
            for workers in WORKERS:
                with _service(postgres.create_database(f"bench{workers}"), workers) as url:
                    rows.append([f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}", *_measure(url)])
        finally:
            postgres.stop()
    return table(
        f"Handoff queue through the HTTP API ({CREATORS} concurrent bot clients, "
        f"{CREATIONS} creations; {CLAIMS} claims; {LIVE_SAMPLES} live-update samples)",
        [
            "database",
            "creations/s",
            "claim p50 ms",
            "claim p95 ms",
            "live update p50 ms",
            "live update p95 ms",
            "errors",
        ],
        rows,
    )
