"""The demo knowledge base on its held-out test queries, and search latency over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from benchmarks.common import free_port, percentile, table
from firstline.config import REPO_ROOT, Settings
from kb_index.tuning import read_queries


def run(settings: Settings) -> str:
    queries = read_queries(REPO_ROOT / "content" / "eval", "test")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "firstline.cli", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        # The public search limit (per client address) protects production, not this benchmark.
        env={**os.environ, "FIRSTLINE_PUBLIC_RATE_LIMIT": "1000000"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        _wait(client)
        rows: dict[str, list[tuple[str, list[str], str | None, float]]] = {}
        for query in queries:
            started = time.perf_counter()
            response = client.get("/api/kb/search", params={"q": query.query, "lang": query.language})
            response.raise_for_status()
            found = response.json()
            took = (time.perf_counter() - started) * 1000
            ids = [r["article_id"] for r in found["results"]]
            rows.setdefault(query.language, []).append((found["decision"], ids, query.expected, took))
    finally:
        server.terminate()
        server.wait(30)
    body = []
    for language, results in [("all", [r for rs in rows.values() for r in rs]), *sorted(rows.items())]:
        in_scope = [r for r in results if r[2] is not None]
        oos = [r for r in results if r[2] is None]
        accuracy = sum(d != "none" and ids[:1] == [e] for d, ids, e, _ in in_scope) / len(in_scope)
        top3 = sum(e in ids[:3] for _, ids, e, _ in in_scope) / len(in_scope)
        recall = sum(d == "none" for d, *_ in oos) / len(oos) if oos else float("nan")
        latencies = [r[3] for r in results]
        body.append(
            [
                language, len(results), f"{100 * accuracy:.1f}", f"{100 * top3:.1f}", f"{100 * recall:.1f}",
                f"{percentile(latencies, 50):.1f}", f"{percentile(latencies, 95):.1f}",
            ]
        )  # fmt: skip
    return table(
        "Demo knowledge base, test split (tuned on the validation split), through the HTTP API",
        ["language", "queries", "in-scope acc %", "top-3 %", "OOS recall %", "p50 ms", "p95 ms"],
        body,
    )


def _wait(client: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").json().get("kb_ready"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the service did not become ready")
