"""Single queries through ONNX Runtime: a third of torch's time for the same vector.

torch spends most of a one-sentence query on per-operator overhead rather than
arithmetic: all-MiniLM-L6-v2 took 9-10 ms per query on one core of the 2-core
machine, the same graph in ONNX Runtime 3.5 ms, with vectors equal to torch's to a
cosine of 1 - 1e-7. Bulk embedding stays on torch, which batches well and can use
bfloat16 units.

The whole model (transformer, pooling, any dense and normalising layers) is traced
from the loaded weights when the embedder first needs it (under a second for
MiniLM-L6) into a temporary file that ONNX Runtime reads at once, so no exported
model is kept on disk to go stale. An export that fails, or whose vector for a test
sentence differs from torch's, is not used.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Checked through both runtimes after the export; Latvian and Russian take other tokens.
_PROBE = ["Kā nomainīt paroli? Как сменить пароль? How do I change my password?"]


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=False)
    normalised: np.ndarray = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return normalised


class OnnxQueryEncoder:
    """Runs a SentenceTransformer in ONNX Runtime on one thread; tokenisation stays the model's own."""

    def __init__(self, model: Any, session: Any, inputs: list[str]) -> None:
        self._model = model
        self._session = session
        self._inputs = inputs

    @classmethod
    def export(cls, model: Any) -> OnnxQueryEncoder | None:
        """Exports the model, or returns None (and says why) when it cannot be exported faithfully."""
        try:
            import onnxruntime
            import torch

            sample = model.preprocess(_PROBE)
            inputs = [k for k, v in sample.items() if isinstance(v, torch.Tensor)]

            class SentenceEmbedding(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.model = model

                def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                    embedding: torch.Tensor = self.model(dict(zip(inputs, tensors, strict=True)))["sentence_embedding"]
                    return embedding

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            with tempfile.TemporaryDirectory() as directory, warnings.catch_warnings(), torch.inference_mode():
                graph = Path(directory) / "model.onnx"  # a file, so weights over 2 GB go beside it
                warnings.simplefilter("ignore")  # tracer notes about Python control flow in transformers
                torch.onnx.export(
                    SentenceEmbedding().eval(),
                    tuple(sample[name] for name in inputs),
                    graph,
                    input_names=inputs,
                    output_names=["sentence_embedding"],
                    dynamic_axes={name: {0: "batch", 1: "tokens"} for name in inputs}
                    | {"sentence_embedding": {0: "batch"}},
                    opset_version=17,
                    dynamo=False,
                )
                session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            encoder = cls(model, session, inputs)
            expected = model.encode(_PROBE, normalize_embeddings=True, convert_to_numpy=True)
            agreement = float((encoder(_PROBE) * expected).sum())
        except Exception as error:  # any model the export cannot handle still works, on torch
            log.warning("queries embedded with torch: exporting the model to ONNX failed: %s", error)
            return None
        if agreement < 0.9999:
            log.warning("queries embedded with torch: the ONNX export's vector differs (cosine %.5f)", agreement)
            return None
        log.info("queries embedded with ONNX Runtime (the export agrees with torch to a cosine of %.7f)", agreement)
        return encoder

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, as SentenceTransformer.encode(normalize_embeddings=True) gives."""
        features = self._model.preprocess(list(texts))
        (vectors,) = self._session.run(None, {name: features[name].numpy() for name in self._inputs})
        return _normalised(vectors)
