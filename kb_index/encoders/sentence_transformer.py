"""A sentence-transformers model as an encoder: bfloat16 bulk batches, single queries on ONNX Runtime."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.encoders import Kind
from kb_index.encoders.onnx_query import OnnxQueryEncoder

#: Tokens per batch of bulk work, padding included, in bfloat16 and in float32
#: (measurements: docs/performance.md).
BF16_TOKENS_PER_BATCH = 2048
FP32_TOKENS_PER_BATCH = 1024


@functools.cache
def bfloat16_is_native() -> bool:
    """Whether this CPU computes bfloat16 matrix products in hardware (oneDNN's check)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False


def load_sentence_transformer(path: str) -> Any:
    """Loads a sentence-transformers folder offline, with a bundled model's 4-bit word embedding if it has one."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    from kb_index.encoders import bundled_e5

    model = SentenceTransformer(path, device="cpu")
    if (Path(path) / bundled_e5.Q4_FILE).is_file():
        bundled_e5.attach_word_embeddings(model, Path(path))
    return model


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


class SentenceTransformerEncoder:
    """Any sentence-transformers model, loaded on first use.

    Bulk work runs on torch, on every core, in a bfloat16 copy of the model where the
    CPU computes bfloat16 natively (its vectors differ from float32 ones by a cosine of
    at most 2e-4), batched by tokens. Single queries go through ONNX Runtime on one
    core (see `onnx_query`); torch, when the model cannot be exported, also runs them
    on one core, leaving the other to the bot and other requests.
    """

    def __init__(self, model_id: str, locate: Callable[[], str], onnx_queries: bool = True) -> None:
        """
        Args:
            model_id: the setting that names the model (recorded in indexes and cache keys).
            locate: returns the folder or name to load, preparing it if need be (called once).
            onnx_queries: False runs single queries on torch too, which spares a process that
                asks one question the export (a second or more) that ONNX Runtime needs.
        """
        self._model_id = model_id
        self._locate = locate
        self._path = ""
        self._model: Any = None
        self._bulk_model: Any = None
        self._query_encoder: OnnxQueryEncoder | None = None
        self._query_encoder_tried = not onnx_queries

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def path(self) -> str:
        """The folder (or model name) the model is loaded from."""
        if not self._path:
            self._path = self._locate()
        return self._path

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer."""
        if self._model is None:
            self._model = load_sentence_transformer(self.path)
        return self._model

    @property
    def dimension(self) -> int:
        # Renamed in sentence-transformers 5; keep working with both.
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def prefix(self, kind: Kind) -> str:
        prompts: dict[str, str] = getattr(self.model, "prompts", None) or {}
        return prompts.get(kind, "")

    @property
    def query_runtime(self) -> str:
        """What embeds single queries: "onnxruntime", or "torch" when the model could not be exported."""
        return "torch" if self._load_query_encoder() is None else "onnxruntime"

    def _load_bulk(self) -> Any:
        if self._bulk_model is None:
            import copy

            import torch

            # The copy shares what bfloat16 leaves as it is: the tokenizer (e5's holds a
            # 250,000-piece vocabulary) and integer buffers (its 4-bit word embedding).
            model = self.model
            shared = [model.tokenizer, *(b for b in model.buffers() if not b.is_floating_point())]
            self._bulk_model = copy.deepcopy(model, memo={id(item): item for item in shared}).to(torch.bfloat16)
        return self._bulk_model

    def _load_query_encoder(self) -> OnnxQueryEncoder | None:
        if not self._query_encoder_tried:
            self._query_encoder = OnnxQueryEncoder.export(self.model)
            self._query_encoder_tried = True
        return self._query_encoder

    def embed(self, texts: Sequence[str], bulk: bool, progress: Callable[[int], None] | None = None) -> np.ndarray:
        import torch

        if not bulk and (query_encoder := self._load_query_encoder()) is not None:
            return query_encoder(texts)
        fast = bulk and bfloat16_is_native()
        model = self._load_bulk() if fast else self.model
        threads = (os.cpu_count() or 1) if bulk else 1
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        order, batches = _batches(model, texts, BF16_TOKENS_PER_BATCH if fast else FP32_TOKENS_PER_BATCH)
        embedded = []
        for batch in batches:
            embedded.append(model.encode(batch, batch_size=len(batch), convert_to_tensor=True, show_progress_bar=False))
            if progress is not None:
                progress(len(batch))
        vectors = torch.cat(embedded)
        # Normalised in float32: a bfloat16 norm is only good to ~3 digits.
        found = torch.nn.functional.normalize(vectors.float(), dim=-1).numpy()
        unsorted = np.empty_like(found)
        unsorted[order] = found
        return np.asarray(unsorted, dtype=np.float32)
