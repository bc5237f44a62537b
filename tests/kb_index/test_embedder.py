"""The embedder: one model thread for every caller, bulk vectors as good as single ones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from kb_index.embedder import Embedder
from kb_index.encoders import open_encoder
from kb_index.encoders.sentence_transformer import SentenceTransformerEncoder

TEXTS = [
    "How do I reset my password?",
    "Kā nomainīt paroli?",
    "Как сменить пароль?",
    "Refunds are paid to the card used for the purchase within five working days. " * 6,
]


def _sharing(embedder: Embedder, onnx_queries: bool = True) -> SentenceTransformerEncoder:
    """A fresh encoder of the default model that shares the loaded weights (no query encoder yet)."""
    encoder = open_encoder("", onnx_queries=onnx_queries)
    assert isinstance(encoder, SentenceTransformerEncoder)
    encoder._model = embedder.model
    return encoder


def test_the_model_runs_on_one_thread_whoever_calls(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    model = embedder.model
    ran_on: set[str] = set()
    original = model.preprocess  # tokenisation: the first step of queries and of bulk work

    def recording(*args: object, **kwargs: object) -> object:
        ran_on.add(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "preprocess", recording)
    with ThreadPoolExecutor(4) as pool:
        vectors = list(pool.map(embedder.encode_query, TEXTS * 3))
    embedder.encode_uncached(TEXTS)
    assert len(ran_on) == 1 and next(iter(ran_on)).startswith("embedder")
    assert threading.current_thread().name not in ran_on
    for i, vector in enumerate(vectors):  # concurrent callers each get their own text's vector
        np.testing.assert_allclose(vector, vectors[i % len(TEXTS)], atol=1e-6)


def test_bulk_vectors_match_query_vectors(embedder: Embedder) -> None:
    # Bulk embedding runs on torch, maybe in bfloat16 (where the CPU has it), queries in
    # ONNX Runtime in float32: the same text must come out the same for search to compare them.
    assert embedder.query_runtime == "onnxruntime"
    bulk = embedder.encode_uncached(TEXTS)
    single = np.vstack([embedder.encode_query(text) for text in TEXTS])
    assert bulk.dtype == np.float32 and bulk.shape == single.shape
    cosines = (bulk * single).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    np.testing.assert_allclose(np.linalg.norm(bulk, axis=1), 1.0, atol=1e-5)


def test_bulk_work_in_many_batches_returns_each_texts_own_vector(tmp_path: Path, embedder: Embedder) -> None:
    # Bulk work is batched by tokens in length order: 40 texts of up to ~250 tokens
    # make several batches, and the vectors must come back in the callers' order.
    cached = Embedder(embedder.encoder, tmp_path / "cache.sqlite")
    lengths = np.random.default_rng(7).permutation(40) * 6
    texts = [f"{TEXTS[n % 3]} {' '.join(f'word{k}' for k in range(n))}" for n in lengths]
    reported: list[int] = []
    bulk = cached.encode(texts, progress=reported.append, kind="query")
    assert sum(reported) == len(texts) and len(reported) > 1  # progress comes batch by batch
    single = np.vstack([embedder.encode_query(text) for text in texts])
    assert (bulk * single).sum(axis=1).min() > 0.999


def test_cached_texts_come_back_in_input_order_and_are_embedded_once(tmp_path: Path, embedder: Embedder) -> None:
    cached = Embedder(embedder.encoder, tmp_path / "cache.sqlite")  # share the loaded weights
    texts = [TEXTS[3], TEXTS[0], TEXTS[3], TEXTS[1]]  # embedded in length order, returned in this one
    first = cached.encode(texts)
    assert cached.count_missing(texts) == 0
    embedded: list[int] = []
    again = cached.encode([*texts, TEXTS[2]], progress=embedded.append)
    assert embedded == [1]  # only the new text
    np.testing.assert_allclose(again[:4], first, atol=1e-6)
    np.testing.assert_allclose(first[0], first[2])
    assert (first[1] * embedder.encode([TEXTS[0]])[0]).sum() > 0.999


def test_every_embedder_shares_the_one_model_thread(tmp_path: Path, embedder: Embedder) -> None:
    other = Embedder(embedder.encoder, tmp_path / "other.sqlite")
    names = {e._on_model_thread(lambda: threading.current_thread().name) for e in (embedder, other)}
    assert len(names) == 1
    # Work already on the model thread may use the embedder again without waiting for itself.
    with ThreadPoolExecutor(1) as pool:
        nested = pool.submit(embedder._on_model_thread, lambda: embedder.dimension)
        assert nested.result(timeout=60) == 384


def test_onnx_queries_equal_the_models_own_vectors(embedder: Embedder) -> None:
    model = embedder.model
    texts = [*TEXTS, "", "x" * 10_000, "Paroles maiņa / смена пароля / password reset"]
    prefix = embedder.encoder.prefix("query")
    reference = embedder._on_model_thread(
        lambda: model.encode(
            [prefix + t for t in texts], normalize_embeddings=True, convert_to_numpy=True, batch_size=1
        )
    )
    queries = np.vstack([embedder.encode_query(text) for text in texts])
    np.testing.assert_allclose(queries, reference, atol=1e-5)


@pytest.mark.parametrize(
    ("breakage", "logged"),
    [
        ("export", "exporting the model to ONNX failed: unsupported operator"),
        ("vectors", "the ONNX export's vector differs"),
    ],
)
def test_a_model_onnx_cannot_take_faithfully_still_embeds_queries_with_torch(
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    breakage: str,
    logged: str,
) -> None:
    import torch

    model = embedder.model
    fallback = Embedder(_sharing(embedder))
    with monkeypatch.context() as patched:
        if breakage == "export":

            def unsupported(*args: object, **kwargs: object) -> None:
                raise torch.onnx.OnnxExporterError("unsupported operator")

            patched.setattr(torch.onnx, "export", unsupported)
        else:  # torch's vector for the probe sentence is not what the exported graph gives
            patched.setattr(model, "encode", lambda texts, **kwargs: np.eye(1, 384, 7, dtype=np.float32))
        assert fallback.query_runtime == "torch"
    assert logged in caplog.text
    vector = fallback.encode_query(TEXTS[0])
    assert (vector * embedder.encode_query(TEXTS[0])).sum() > 0.9999


def test_an_embedder_told_not_to_export_answers_queries_on_torch(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    reference = embedder.encode_query(TEXTS[1])  # the shared embedder's export is done by now
    exports: list[object] = []
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: exports.append(args))
    one_shot = Embedder(_sharing(embedder, onnx_queries=False))
    assert (one_shot.encode_query(TEXTS[1]) * reference).sum() > 0.9999
    assert one_shot.query_runtime == "torch" and exports == []
