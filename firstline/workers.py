"""Several service processes on one port, each with its own listening socket.

uvicorn's ``--workers`` shares one listening socket between its processes, and the
process that wakes first accepts every connection waiting (asyncio accepts up to
the backlog at once). Clients that keep their connections open, as the bot and the
consoles do, then stay with that one process: in the handoff benchmark one worker
served all eight clients while three idled, and creations per second varied from
run to run between 217 and 299. Here every worker binds the port itself with
SO_REUSEPORT, so the kernel spreads new connections over the workers' sockets.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any

logger = logging.getLogger("firstline.workers")

#: How long stopping workers get to finish their requests before they are killed.
STOP_TIMEOUT_S = 10.0


class WorkerError(RuntimeError):
    """The workers could not be started."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that other processes of this user may bind too.

    Raises:
        OSError: the address is taken by a socket without SO_REUSEPORT, or invalid.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int) -> None:
    """Fails early when the workers could not listen on (host, port).

    A socket that other processes of this user bound with SO_REUSEPORT too (another
    `firstline serve --workers` on the same port) is not detected: the kernel would
    share the connections between both services.

    Raises:
        WorkerError: port 0 (each worker would get a port of its own), or the address
            is taken or invalid.
    """
    if not port:
        raise WorkerError("several workers need a fixed port")
    try:
        listening_socket(host, port).close()
    except OSError as exc:
        raise WorkerError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _worker(options: dict[str, Any], ready: EventType) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready.set()

    config = uvicorn.Config("firstline.main:create_app", factory=True, **options)
    Server(config).run(sockets=[listening_socket(config.host, config.port)])


def run(options: dict[str, Any], workers: int) -> None:
    """Runs `workers` service processes on options["host"]:options["port"] until SIGINT or SIGTERM.

    A worker that dies is replaced; one that dies before it was serving stops them all.
    Call `check_port` first.

    Args:
        options: keyword arguments for `uvicorn.Config` (host, port, log level, ...).

    Raises:
        WorkerError: a worker failed to start.
    """
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started: dict[BaseProcess, EventType] = {}

    def start() -> None:
        ready = context.Event()
        process = context.Process(target=_worker, args=(options, ready), name="firstline-worker")
        process.start()
        started[process] = ready

    failure: str | None = None
    try:
        for _ in range(workers):
            start()
        while not stop.wait(0.5):
            for process, ready in list(started.items()):
                if process.is_alive():
                    continue
                del started[process]
                if not ready.is_set():
                    failure = f"worker {process.pid} exited with code {process.exitcode} before it was serving"
                    stop.set()
                    break
                logger.warning("worker %s exited with code %s; starting another", process.pid, process.exitcode)
                start()
    finally:
        for process in started:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in started:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure:
        raise WorkerError(failure)
