"""Fixtures of the app environment: a real embedding model, SQLite and PostgreSQL, the app."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from firstline.config import REPO_ROOT, Settings
from firstline.devservers import PostgresServer, free_port
from firstline.main import create_app
from handoff.delivery import RasaClient
from kb_index.corpus import Article
from kb_index.embedder import Embedder
from tests.conftest import throwaway_postgres

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SERVICE_TOKEN = "test-service-token"


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The real default model, loaded once, with an embedding cache for the session."""
    return Embedder("", tmp_path_factory.mktemp("embeddings") / "cache.sqlite")


# -- PostgreSQL ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'firstline.db'}"
    return str(request.getfixturevalue("postgres_url"))


# -- the service -----------------------------------------------------------------------
@dataclass
class FakeRasa:
    """Stands in for Rasa's HTTP API (outside the service); records what it was sent."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            return httpx.Response(503, json={"status": "failure"})
        self.calls.append(
            {
                "path": request.url.path,
                "params": dict(request.url.params),
                "body": json.loads(request.content or b"{}"),
            }
        )
        return httpx.Response(200, json={"tracker": {}, "messages": []})

    def intents(self) -> list[str]:
        return [c["body"]["name"] for c in self.calls]

    def wait_for(self, intent: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls:
                if call["body"]["name"] == intent:
                    return call
            time.sleep(0.05)
        raise AssertionError(f"Rasa never received {intent}; got {self.intents()}")


@pytest.fixture
def fake_rasa() -> FakeRasa:
    return FakeRasa()


SAMPLE_ARTICLES = [
    Article(
        id="password-reset-en", language="en", translation_group="password-reset",
        title="Reset a forgotten password",
        body="Go to https://id.example.com and choose **Forgot password**. Confirm with your phone.",
        questions=["I forgot my password", "how do I reset my password", "password reset"],
        tags=["account"],
    ),
    Article(
        id="vpn-connect-en", language="en", translation_group="vpn-connect",
        title="Connect to the VPN from home",
        body="Open GlobalProtect, enter vpn.example.com as the portal and sign in with your company account.",
        questions=["how do I connect to the vpn", "vpn from home", "set up globalprotect"],
        tags=["vpn"],
    ),
    Article(
        id="printer-add-en", language="en", translation_group="printer-add",
        title="Add the office printer",
        body="Install the FollowMe printer from Company Portal, print, then release the job with your badge.",
        questions=["how do I add a printer", "printer setup", "install the office printer"],
        tags=["printer"],
    ),
    Article(
        id="password-reset-lv", language="lv", translation_group="password-reset",
        title="Aizmirstas paroles atiestatīšana",
        body="Atveriet https://id.example.com un izvēlieties **Aizmirsu paroli**. Apstipriniet ar tālruni.",
        questions=["aizmirsu paroli", "kā atiestatīt paroli", "paroles maiņa"],
        tags=["account"],
    ),
    Article(
        id="password-reset-ru", language="ru", translation_group="password-reset",
        title="Сброс забытого пароля",
        body="Откройте https://id.example.com и выберите **Забыли пароль**. Подтвердите телефоном.",
        questions=["забыл пароль", "как сбросить пароль", "восстановить пароль"],
        tags=["account"],
    ),
]  # fmt: skip


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "service_token": SERVICE_TOKEN,
        "demo_corpus_dir": None,
        "demo_eval_dir": None,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
def client(settings: Settings, embedder: Embedder, fake_rasa: FakeRasa) -> Iterator[TestClient]:
    """The real app (real database, real model) with sample articles; Rasa is faked."""
    rasa = RasaClient("http://rasa.test", "rasa-token", transport=httpx.MockTransport(fake_rasa.handler))
    app = create_app(settings, rasa=rasa, embedder=embedder)
    with TestClient(app) as test_client:
        app.state.kb.import_articles(SAMPLE_ARTICLES, "test")
        app.state.kb.refresh()
        yield test_client


def login(client: TestClient, email: str = "agent@example.com", password: str = "firstline-dev") -> dict[str, str]:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
REPO = REPO_ROOT


# -- the whole system ----------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_data_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the demo corpus imported, indexed and tuned, made once per session."""
    directory = tmp_path_factory.mktemp("demo-data")
    env = {**os.environ, "FIRSTLINE_DATA_DIR": str(directory)}
    firstline = str(REPO_ROOT / ".venv" / "bin" / "firstline")
    for command in (
        [firstline, "kb", "import", "content/kb"],
        [firstline, "kb", "tune", "content/eval", "--split", "validation"],
    ):
        subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    return directory


@pytest.fixture(scope="session")
def running_stack(demo_data_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The three real processes on free ports, on a copy of the demo data dir."""
    from firstline.stack import Stack, StackConfig

    model = REPO_ROOT / "models" / "firstline.tar.gz"
    if not model.is_file():
        pytest.fail("no trained Rasa model; `make test` trains it (or run `make model`)", pytrace=False)
    data_dir = tmp_path_factory.mktemp("stack") / "data"
    shutil.copytree(demo_data_template, data_dir)
    stack = Stack(
        StackConfig(
            data_dir=data_dir,
            service_port=free_port(),
            rasa_port=free_port(),
            actions_port=free_port(),
            service_token="system-test-service-token",
            rasa_token="system-test-rasa-token",
            model=model,
        )
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


class LiveServer:
    """A real uvicorn server for an app, in a thread, on a free port."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class EventStream:
    """Reads a server-sent-event stream in a thread; `next_event` waits for one."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        import queue
        import threading

        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._response = self._client.send(self._client.build_request("GET", url, headers=headers), stream=True)
        assert self._response.status_code == 200, self._response.read()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind = None
        try:
            for line in self._response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    self.events.put({**json.loads(line[6:]), "received": time.monotonic()})
        except httpx.HTTPError:
            pass

    def next_event(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        import queue

        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind} event within {timeout}s") from None
            if event["type"] == kind:
                return event

    def close(self) -> None:
        self._response.close()
        self._client.close()


def simultaneously(
    threads: int, rounds: int, attempt: Callable[[int, int], str], timeout: float = 300
) -> list[Counter[str]]:
    """Each round, `threads` threads call ``attempt(thread, round)`` at the same moment.

    Returns:
        Per round, how often each outcome came back; an exception counts as its type
        name (what the API would have turned into a 500).
    """
    outcomes: list[Counter[str]] = [Counter() for _ in range(rounds)]
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(number: int) -> None:
        for round_number in range(rounds):
            start.wait()
            try:
                outcome = attempt(number, round_number)
            except Exception as error:
                outcome = type(error).__name__
            with lock:
                outcomes[round_number][outcome] += 1

    workers = [threading.Thread(target=run, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    return outcomes
