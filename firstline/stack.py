"""Starts and stops the three processes of a firstline system on one machine.

Used by `firstline up` (what `make run` calls) and by the system and browser tests,
so that what the tests exercise is exactly what users run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from firstline.config import REPO_ROOT


class StackError(RuntimeError):
    """A process did not start or did not become ready; the message names its log."""


@dataclass
class StackConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    service_port: int = 8000
    rasa_port: int = 5005
    actions_port: int = 5055
    model: Path = REPO_ROOT / "models" / "firstline.tar.gz"
    service_token: str = "dev-service-token"
    rasa_token: str = "dev-rasa-token"
    app_python: Path = REPO_ROOT / ".venv" / "bin" / "python"
    bot_bin: Path = REPO_ROOT / ".venv-bot" / "bin"
    #: Extra environment for all three processes (e.g. FIRSTLINE_DATABASE_URL).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def service_url(self) -> str:
        return f"http://{self.host}:{self.service_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://{self.host}:{self.actions_port}"


@dataclass
class _Process:
    name: str
    command: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


class Stack:
    """The firstline service, the Rasa action server and the Rasa server."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        c = config
        logs = c.data_dir / "logs"
        base = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "FIRSTLINE_DATA_DIR": str(c.data_dir),
            "FIRSTLINE_SERVICE_TOKEN": c.service_token,
            "FIRSTLINE_RASA_TOKEN": c.rasa_token,
            "PYTHONUNBUFFERED": "1",
            **c.env,
        }
        service_env = {
            **base,
            "FIRSTLINE_RASA_URL": c.rasa_url,
            "FIRSTLINE_PUBLIC_SOCKET_URL": c.rasa_url,
        }
        actions_env = {**base, "FIRSTLINE_URL": c.service_url}
        rasa_env = {
            **base,
            "ACTION_SERVER_URL": f"{c.actions_url}/webhook",
            "RASA_TRACKER_URL": base.get("RASA_TRACKER_URL") or f"sqlite:///{c.data_dir / 'rasa-tracker.db'}",
            "RASA_LOCK_STORE": base.get("RASA_LOCK_STORE") or "in_memory",
            "RASA_REDIS_HOST": base.get("RASA_REDIS_HOST") or "localhost",
            "RASA_REDIS_PORT": base.get("RASA_REDIS_PORT") or "6379",
            "FIRSTLINE_WIDGET_ORIGINS": base.get("FIRSTLINE_WIDGET_ORIGINS") or "*",
            # Rasa phones home for telemetry by default; this machine has no internet.
            "RASA_TELEMETRY_ENABLED": "false",
        }
        rasa = str(c.bot_bin / "rasa")
        self.processes = [
            _Process(
                "service",
                [str(c.app_python), "-m", "firstline.cli", "serve", "--host", c.host, "--port", str(c.service_port)],
                service_env,
                lambda: _ok(f"{c.service_url}/healthz", lambda r: r.json().get("kb_ready") is True),
                logs / "service.log",
            ),
            _Process(
                "actions",
                [rasa, "run", "actions", "--actions", "actions", "--port", str(c.actions_port)],
                actions_env,
                lambda: _ok(f"{c.actions_url}/health"),
                logs / "actions.log",
            ),
            _Process(
                "rasa",
                [
                    rasa, "run", "--enable-api", "--auth-token", c.rasa_token,
                    "--interface", c.host, "--port", str(c.rasa_port),
                    "--model", str(c.model),
                    "--credentials", "bot/credentials.yml",
                    "--endpoints", "bot/endpoints.yml",
                    "--cors", "*",
                ],
                rasa_env,
                lambda: _ok(f"{c.rasa_url}/status?token={c.rasa_token}", lambda r: bool(r.json().get("model_id"))),
                logs / "rasa.log",
            ),
        ]  # fmt: skip

    def _launch(self, process: _Process) -> None:
        process.log.parent.mkdir(parents=True, exist_ok=True)
        with process.log.open("ab") as log:
            process.popen = subprocess.Popen(
                process.command,
                cwd=REPO_ROOT,
                env=process.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop them in order
            )

    def start(self, timeout: float = 240.0) -> None:
        """Starts all three and waits until each answers its health check.

        Raises:
            StackError: a process exited or was not ready within the timeout.
        """
        if not self.config.model.is_file():
            raise StackError(f"no trained Rasa model at {self.config.model}; run `make model`")
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        for process in self.processes:
            self._launch(process)
        self._wait_ready(list(self.processes), timeout)

    def _process(self, name: str) -> _Process:
        return next(p for p in self.processes if p.name == name)

    def stop_process(self, name: str, timeout: float = 20.0) -> None:
        """Stops one process (to see how the others cope without it)."""
        process = self._process(name)
        if process.popen is not None and process.popen.poll() is None:
            os.killpg(process.popen.pid, signal.SIGTERM)
            try:
                process.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()

    def start_process(self, name: str, timeout: float = 240.0) -> None:
        """Starts one stopped process again and waits until it is ready."""
        process = self._process(name)
        self._launch(process)
        self._wait_ready([process], timeout)

    def _wait_ready(self, pending: list[_Process], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while pending:
            for process in list(pending):
                assert process.popen is not None
                if process.popen.poll() is not None:
                    self.stop()
                    raise StackError(f"{process.name} exited with {process.popen.returncode}; see {process.log}")
                if process.ready():
                    pending.remove(process)
            if pending and time.monotonic() > deadline:
                self.stop()
                names = ", ".join(p.name for p in pending)
                raise StackError(f"{names} not ready after {timeout:.0f}s; see {self.config.data_dir / 'logs'}")
            time.sleep(0.5)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to each process group, then SIGKILL whatever is still alive."""
        for process in reversed(self.processes):
            if process.popen is not None and process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            if process.popen is None:
                continue
            try:
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()

    def poll(self) -> str | None:
        """The name of a process that has exited, if any."""
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is not None:
                return process.name
        return None

    def pids(self) -> dict[str, int]:
        return {p.name: p.popen.pid for p in self.processes if p.popen is not None}


def _ok(url: str, check: Callable[[httpx.Response], bool] | None = None) -> bool:
    try:
        response = httpx.get(url, timeout=2.0)
        return response.status_code == 200 and (check is None or check(response))
    except (httpx.HTTPError, ValueError):
        return False
