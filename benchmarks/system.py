"""The whole system: start-up time, idle memory per process, bot reply latency under load."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.common import free_port, percentile, rss_mb, table
from firstline.config import Settings
from firstline.stack import Stack, StackConfig

USERS = 10
QUESTIONS_PER_USER = 20
#: Seconds a user at human pace spends reading the reply and typing the next message.
THINK_SECONDS = (2.0, 4.0)


def run(settings: Settings) -> str:
    data_dir = Path(tempfile.mkdtemp(prefix="firstline-bench-")) / "data"
    shutil.copytree(settings.data_dir, data_dir, ignore=shutil.ignore_patterns("logs", "rasa-tracker.db*"))
    stack = Stack(
        StackConfig(data_dir=data_dir, service_port=free_port(), rasa_port=free_port(), actions_port=free_port())
    )
    started = time.monotonic()
    stack.start()
    ready = time.monotonic() - started
    try:
        time.sleep(5)
        memory = {name: rss_mb(pid) for name, pid in stack.pids().items()}
        load = {
            "1, back to back": _load(stack.config.rasa_url, 1),
            f"{USERS}, back to back": _load(stack.config.rasa_url, USERS),
            f"{USERS}, {THINK_SECONDS[0]:.0f}–{THINK_SECONDS[1]:.0f} s between a reply and the next message": _load(
                stack.config.rasa_url, USERS, THINK_SECONDS
            ),
        }
        busy = os.getloadavg()[0]
    finally:
        stack.stop()
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    out = table(
        "Processes",
        ["process", "idle RSS (MB)"],
        [[name, f"{mb:.0f}"] for name, mb in memory.items()] + [["all three ready after (s)", f"{ready:.0f}"]],
    )
    out += "\n" + table(
        "Bot reply latency through the REST channel, answered question (article text from the knowledge base)",
        ["concurrent users", "requests", "replies/s", "p50 ms", "p95 ms", "max ms"],
        [[users, len(values), f"{rate:.1f}", f"{percentile(values, 50):.0f}", f"{percentile(values, 95):.0f}",
          f"{max(values):.0f}"]
         for users, (values, rate) in load.items()],
    )  # fmt: skip
    out += f"\n1-minute load average after the run: {busy:.1f} on {os.cpu_count()} cores.\n"
    return out


def _load(rasa_url: str, users: int, think: tuple[float, float] | None = None) -> tuple[list[float], float]:
    """Reply latencies (ms) of `users` concurrent conversations of QUESTIONS_PER_USER
    questions, and the replies per second they got.

    Without `think` each user sends the next message as soon as the reply arrives (the
    server's capacity); with it, each waits a random time in that range first, as a
    person reading and typing does.
    """
    latencies: list[float] = []
    lock = threading.Lock()

    def user(think: tuple[float, float] | None = think) -> None:
        sender = uuid.uuid4().hex
        pause = random.Random(sender)
        with httpx.Client(timeout=30) as client:
            for _ in range(QUESTIONS_PER_USER):
                if think is not None:
                    time.sleep(pause.uniform(*think))
                started = time.perf_counter()
                response = client.post(
                    f"{rasa_url}/webhooks/rest/webhook",
                    json={"sender": sender, "message": "How do I reset my password?"},
                )
                took = (time.perf_counter() - started) * 1000
                assert any("Reset a forgotten password" in (m.get("text") or "") for m in response.json())
                with lock:
                    latencies.append(took)

    user(think=None)  # warm up
    latencies.clear()
    threads = [threading.Thread(target=user) for _ in range(users)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, len(latencies) / (time.perf_counter() - started)
