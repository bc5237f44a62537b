"""Sentence embeddings with a content-addressed cache, so rebuilds embed only what changed."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kb_index.encoders import Encoder, Kind, open_encoder

#: Texts embedded between two cache writes (measurements: docs/performance.md).
CHUNK = 2048

T = TypeVar("T")

#: (pid, executor) of the one thread that runs models in this process, and its name.
MODEL_THREAD = "embedder"
_model_thread: tuple[int, ThreadPoolExecutor] | None = None
_model_thread_lock = threading.Lock()


class Embedder:
    """Encodes texts to L2-normalised float32 vectors, caching each by its hash.

    The model is loaded on first use, never at import or construction time, and it
    only ever runs on the process's model thread, which all embedders share. torch
    gives every thread that runs a model its own OpenMP team, and the teams fight over
    the cores, and a web server calls from many threads. Callers on any thread wait
    for their turn, which costs nothing when the cores are busy anyway.

    Queries and passages are embedded with the prefix the model expects of each (e5's
    "query: " and "passage: "); the cache keys the text as the model saw it.
    """

    def __init__(
        self,
        model: str | Encoder = "",
        cache_path: Path | None = None,
        onnx_queries: bool = True,
        model_cache: Path | None = None,
    ) -> None:
        """
        Args:
            model: the model setting (see `kb_index.encoders.open_encoder`) or an encoder.
            cache_path: the vector cache (SQLite); None caches nothing.
            onnx_queries: False runs single queries on torch too, which spares a process that
                asks one question the export (a second or more) that ONNX Runtime needs.
            model_cache: where bundled models are converted to.
        """
        self.encoder: Encoder = (
            open_encoder(model, model_cache, onnx_queries=onnx_queries) if isinstance(model, str) else model
        )
        self.model_name = self.encoder.model_id
        self._prefixes: dict[str, str] = {}
        self.cache_path = cache_path
        self._cache_lock = threading.Lock()
        self._cache: sqlite3.Connection | None = None

    # -- model ----------------------------------------------------------------
    def _on_model_thread(self, work: Callable[[], T]) -> T:
        """Runs work on the process's model thread (shared by every embedder; a fork starts its own)."""
        global _model_thread
        if threading.current_thread().name.startswith(MODEL_THREAD):  # already on it
            return work()
        with _model_thread_lock:
            if _model_thread is None or _model_thread[0] != os.getpid():
                _model_thread = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix=MODEL_THREAD))
            executor = _model_thread[1]
        return executor.submit(work).result()

    @property
    def query_runtime(self) -> str:
        """What embeds single queries ("onnxruntime" or "torch"), for encoders that say."""
        return str(self._on_model_thread(lambda: getattr(self.encoder, "query_runtime", "torch")))

    @property
    def model(self) -> Any:
        """The loaded model, for reading its settings; embed through the methods."""
        return self._on_model_thread(lambda: getattr(self.encoder, "model", None))

    def _prefixed(self, texts: Sequence[str], kind: Kind) -> list[str]:
        # Asked of the model once per kind: a question should not wait for the model thread twice.
        if kind not in self._prefixes:
            self._prefixes[kind] = self._on_model_thread(lambda: self.encoder.prefix(kind))
        prefix = self._prefixes[kind]
        return [prefix + t for t in texts] if prefix else list(texts)

    def _embed(self, texts: Sequence[str], bulk: bool, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeds prefixed texts on the model thread."""
        vectors = self._on_model_thread(lambda: self.encoder.embed(texts, bulk, progress))
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        return self._on_model_thread(lambda: self.encoder.dimension)

    # -- cache ----------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        if self._cache is None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self._cache = sqlite3.connect(self.cache_path, check_same_thread=False)
            self._cache.execute("PRAGMA journal_mode=WAL")
            self._cache.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB)")
        return self._cache

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model_name}\0{text}".encode()).hexdigest()

    def encode(
        self,
        texts: Sequence[str],
        progress: Callable[[int], None] | None = None,
        kind: Kind = "passage",
    ) -> np.ndarray:
        """Embeds texts, using cached vectors where the same text was embedded before.

        Args:
            texts: the texts, in order.
            progress: called with the number of texts just embedded (not cached ones), batch
                by batch, on the model thread.
            kind: "passage" for what articles say, "query" for what users ask.

        Returns:
            An array of shape (len(texts), dimension), rows L2-normalised.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = self._prefixed(texts, kind)
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            connection = self._connection()
            if connection is not None:
                unique = list(dict.fromkeys(keys))
                for start in range(0, len(unique), 500):
                    chunk = unique[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = connection.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk)
                    for key, blob in rows:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
        # In length order across the whole set, so that each chunk holds texts of similar
        # lengths, which an encoder batches best (docs/performance.md).
        missing = sorted(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found), key=len)
        for start in range(0, len(missing), CHUNK):
            batch = missing[start : start + CHUNK]
            vectors = self._embed(batch, bulk=True, progress=progress)
            new = {self._key(t): v for t, v in zip(batch, vectors, strict=True)}
            found.update(new)
            with self._cache_lock:
                connection = self._connection()
                if connection is not None:
                    connection.executemany(
                        "INSERT OR REPLACE INTO embeddings VALUES (?, ?)",
                        [(k, v.tobytes()) for k, v in new.items()],
                    )
                    connection.commit()
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Many labelled queries, cached (tuning and benchmarks ask the same ones again)."""
        return self.encode(texts, kind="query")

    def encode_query(self, text: str) -> np.ndarray:
        """One query, uncached (queries rarely repeat and must not grow the cache)."""
        return self._embed(self._prefixed([text], "query"), bulk=False)

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        """Many queries at once, uncached (for tuning on labelled queries)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._embed(self._prefixed(texts, "query"), bulk=True)

    def count_missing(self, texts: Sequence[str], kind: Kind = "passage") -> int:
        """How many of these texts are not cached yet (for progress bars)."""
        connection = self._connection()
        if connection is None:
            return len(set(texts))
        keys = list(dict.fromkeys(self._key(t) for t in self._prefixed(texts, kind)))
        cached = 0
        with self._cache_lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                (count,) = connection.execute(
                    f"SELECT COUNT(*) FROM embeddings WHERE key IN ({marks})", chunk
                ).fetchone()
                cached += count
        return len(keys) - cached
