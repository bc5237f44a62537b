"""The demo knowledge base on its held-out test queries through the HTTP API, per encoder and corpus.

Each setup gets a data directory of its own, set up as a user would with the command
line (`kb import`, optionally `kb adapt`, `kb tune` on the validation split), then a
`firstline serve` that every test query is asked through. The corpus comes as written
(title, example questions, body) and without its example questions (title and body
only, as a help centre's FAQ is imported), which is how most editors write.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import free_port, percentile, table
from firstline.config import REPO_ROOT, Settings
from kb_index.corpus import LANGUAGES, read_corpus, write_corpus
from kb_index.encoders import BUNDLED_E5, BUNDLED_MINILM
from kb_index.tuning import LabelledQuery, read_queries

CORPUS = REPO_ROOT / "content" / "kb"
EVAL = REPO_ROOT / "content" / "eval"
#: Epochs of `kb adapt` for the adapted setup (`make kb` uses the same; chosen on validation).
ADAPT_EPOCHS = 3


@dataclass(frozen=True)
class Setup:
    name: str
    model: str  # FIRSTLINE_EMBEDDING_MODEL; empty with adapt_epochs: the adapted default
    questions: bool
    adapt_epochs: int = 0


SETUPS = [
    Setup("multilingual-e5-small, adapted", "", True, ADAPT_EPOCHS),
    Setup("multilingual-e5-small", BUNDLED_E5, True),
    Setup("all-MiniLM-L6-v2", BUNDLED_MINILM, True),
    Setup("multilingual-e5-small", BUNDLED_E5, False),
    Setup("all-MiniLM-L6-v2", BUNDLED_MINILM, False),
]
Row = tuple[str, list[str], str | None, float]


def run(settings: Settings) -> str:
    queries = read_queries(EVAL, "test")
    root = settings.data_dir / "bench-cache" / "kb-demo"
    body = []
    for setup in SETUPS:
        rows = _measure(setup, queries, root / _slug(setup))
        for language, results in [("all", [r for rs in rows.values() for r in rs]), *sorted(rows.items())]:
            body.append([setup.name, "yes" if setup.questions else "no", language, *_metrics(results)])
    out = table(
        "Demo knowledge base, test split, through the HTTP API; tuned on the validation split",
        ["encoder", "example questions", "language", "queries", "in-scope acc %", "top-3 %", "OOS recall %",
         "p50 ms", "p95 ms"],
        body,
    )  # fmt: skip
    return out + "\n" + _cross_lingual(root)


def _cross_lingual(root: Path) -> str:
    """Questions whose article lost its version in their language: is another language's found?

    A sixth of the translation groups lose their Latvian version and another sixth their
    Russian one; the index is tuned on what is left of the validation split and asked
    every labelled question (both splits) whose article went.
    """
    from kb_index.embedder import Embedder
    from kb_index.tuning import fit

    articles = read_corpus(CORPUS)
    groups = sorted({a.translation_group for a in articles})
    dropped = {("lv", g) for g in groups[0::6]} | {("ru", g) for g in groups[3::6]}
    kept = [a for a in articles if (a.language, a.translation_group) not in dropped]
    ids = {a.id for a in kept}
    group_of = {a.id: a.translation_group for a in articles}
    validation = [q for q in read_queries(EVAL, "validation") if q.expected is None or q.expected in ids]
    everything = read_queries(EVAL)
    orphaned = [(q, group_of[q.expected]) for q in everything if q.expected and q.expected not in ids]
    others = [q for q in everything if q.expected is None or q.expected in ids]
    rows = []
    for model in (BUNDLED_E5, BUNDLED_MINILM):
        embedder = Embedder(model, root / "cross-lingual.sqlite")
        index = fit(kept, validation, embedder)
        found = declined = 0
        for query, group in orphaned:
            result = index.search(query.query, embedder.encode_query(query.query), query.language)
            top = result.results[0].article if result.results else None
            declined += result.decision == "none"
            found += result.decision != "none" and top is not None and top.translation_group == group
        stray = sum(index.search(q.query, embedder.encode_query(q.query), q.language).cross_language for q in others)
        rows.append([model.removeprefix("bundled:"), len(orphaned), found, declined, len(orphaned) - found - declined,
                     f"{stray} of {len(others)}"])  # fmt: skip
    return table(
        "Questions whose article has no version in their language (6 groups without Latvian, 6 without Russian)",
        ["encoder", "questions", "answered with another language's version", "declined", "answered wrongly",
         "other questions answered in another language"],
        rows,
    )  # fmt: skip


def _slug(setup: Setup) -> str:
    name = setup.name.replace(",", "").replace(" ", "-")
    return f"{name}-{'questions' if setup.questions else 'no-questions'}"


def _measure(setup: Setup, queries: list[LabelledQuery], data_dir: Path) -> dict[str, list[Row]]:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    corpus = data_dir / "corpus.jsonl"
    articles = read_corpus(CORPUS)
    write_corpus(articles if setup.questions else [dataclasses.replace(a, questions=[]) for a in articles], corpus)
    env = {
        **os.environ,
        "FIRSTLINE_DATA_DIR": str(data_dir),
        "FIRSTLINE_EMBEDDING_MODEL": setup.model,
        # Set up below as a user would; the service must not import or tune on its own.
        "FIRSTLINE_DEMO_CORPUS_DIR": "",
        "FIRSTLINE_DEMO_EVAL_DIR": "",
        # The public search limit (per client address) protects production, not this benchmark.
        "FIRSTLINE_PUBLIC_RATE_LIMIT": "1000000",
    }
    cli = [sys.executable, "-m", "firstline.cli"]
    log = (data_dir / "setup.log").open("w")
    steps = [["kb", "import", str(corpus)]]
    if setup.adapt_epochs:
        steps.append(["kb", "adapt", "--epochs", str(setup.adapt_epochs)])
    steps.append(["kb", "tune", str(EVAL), "--split", "validation"])
    for step in steps:
        subprocess.run([*cli, *step], env=env, cwd=REPO_ROOT, stdout=log, stderr=log, check=True)
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=REPO_ROOT, stdout=log, stderr=log)
    rows: dict[str, list[Row]] = {}
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        _wait(client)
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
        log.close()
    return {language: rows[language] for language in LANGUAGES if language in rows}


def _metrics(results: list[Row]) -> list[str]:
    in_scope = [r for r in results if r[2] is not None]
    oos = [r for r in results if r[2] is None]
    accuracy = sum(d != "none" and ids[:1] == [e] for d, ids, e, _ in in_scope) / len(in_scope)
    top3 = sum(e in ids[:3] for _, ids, e, _ in in_scope) / len(in_scope)
    recall = sum(d == "none" for d, *_ in oos) / len(oos) if oos else float("nan")
    latencies = [r[3] for r in results]
    return [
        str(len(results)), f"{100 * accuracy:.1f}", f"{100 * top3:.1f}", f"{100 * recall:.1f}",
        f"{percentile(latencies, 50):.1f}", f"{percentile(latencies, 95):.1f}",
    ]  # fmt: skip


def _wait(client: httpx.Client, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").json().get("kb_ready"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the service did not become ready")
