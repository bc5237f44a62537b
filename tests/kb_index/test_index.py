"""Index versions on disk: saved whole, loaded without analysing text, refused when damaged."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

import kb_index.index as index_module
from firstline.db import Database, migrate
from kb_index.corpus import Article, read_corpus
from kb_index.embedder import Embedder
from kb_index.errors import IndexNotReady
from kb_index.index import SearchIndex
from kb_index.service import KnowledgeBase

REPO = Path(__file__).parents[2]
QUESTIONS = [("forgot my password", "en"), ("aizmirsu paroli", "lv"), ("не работает принтер", "ru")]


@pytest.fixture(scope="module")
def demo() -> list[Article]:
    return read_corpus(REPO / "content" / "kb")


def rankings(index: SearchIndex, embedder: Embedder) -> list[list[tuple[str, float]]]:
    return [
        [(s.article.id, round(s.score, 6)) for s in index.rank(embedder.encode_query(text), text, language)[:5]]
        for text, language in QUESTIONS
    ]


def test_a_saved_index_loads_as_it_was_without_analysing_its_articles(
    tmp_path: Path, demo: list[Article], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edit in a delta is saved like any other article.
    index = SearchIndex.build(demo[1:], embedder).updated(demo[:1], [], embedder)
    assert index.edits_since_build == 1
    index.save(tmp_path)

    def no_analysis(article: Article) -> list[str]:
        raise AssertionError(f"{article.id} was analysed again")

    monkeypatch.setattr(index_module, "lexical_document", no_analysis)
    loaded = SearchIndex.load(tmp_path)

    assert loaded.version == index.version
    assert loaded.corpus_hash == index.corpus_hash
    assert loaded.edits_since_build == 0
    assert rankings(loaded, embedder) == rankings(index.compacted(), embedder)
    manifest = json.loads((tmp_path / index.version / "manifest.json").read_text())
    assert manifest["articles"] == len(demo) and manifest["units"] == index.unit_count


def test_an_index_saved_by_another_analyser_is_analysed_afresh(
    tmp_path: Path, demo: list[Article], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = SearchIndex.build(demo, embedder)
    index.save(tmp_path)
    monkeypatch.setattr(index_module, "ANALYZER_VERSION", index_module.ANALYZER_VERSION + 1)
    analysed: list[str] = []
    analyse = index_module.lexical_document

    def counted(article: Article) -> list[str]:
        analysed.append(article.id)
        return analyse(article)

    monkeypatch.setattr(index_module, "lexical_document", counted)
    loaded = SearchIndex.load(tmp_path)

    assert len(analysed) == len(demo)
    assert rankings(loaded, embedder) == rankings(index, embedder)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "vectors.npy").write_bytes(b"not numpy"), "unreadable"),
        (lambda d: (d / "vectors.npy").unlink(), "unreadable"),
        (lambda d: (d / "units.jsonl").write_text("[0, 1\n"), "unreadable"),
        (lambda d: (d / "terms.jsonl").write_text('["a"]\n'), "unreadable"),
        (lambda d: np.save(d / "vectors.npy", np.zeros((3, 384), np.float32)), "inconsistent"),
        (lambda d: (d / "manifest.json").write_text("{"), "unreadable"),
        (
            lambda d: (d / "articles.jsonl").write_text((d / "articles.jsonl").read_text().replace('"en"', '"xx"')),
            "unreadable",
        ),
        (
            lambda d: (d / "units.jsonl").write_text((d / "units.jsonl").read_text().replace("[0,", "[99,")),
            "unreadable",
        ),
    ],
)
def test_a_damaged_index_is_refused_with_a_reason(
    tmp_path: Path, demo: list[Article], embedder: Embedder, damage: object, message: str
) -> None:
    index = SearchIndex.build(demo[:6], embedder)
    directory = index.save(tmp_path)
    damage(directory)  # type: ignore[operator]

    with pytest.raises(IndexNotReady, match=message):
        SearchIndex.load(tmp_path)


def test_the_service_serves_from_the_database_when_its_saved_index_is_damaged(
    tmp_path: Path, demo: list[Article], embedder: Embedder
) -> None:
    db = Database(f"sqlite:///{tmp_path}/kb.db")
    migrate(db.engine)
    kb = KnowledgeBase(db, embedder, tmp_path / "index")
    kb.import_articles(demo, "test")
    kb.start(watch_interval=None)
    kb.flush()
    kb.stop()
    current = (tmp_path / "index" / "CURRENT").read_text()
    (tmp_path / "index" / current / "vectors.npy").write_bytes(b"\0" * 100)

    again = KnowledgeBase(db, embedder, tmp_path / "index")
    again.start(watch_interval=None)

    assert again.search("forgot my password", "en").results[0].article.id == "password-reset-en"
    again.flush()
    assert SearchIndex.load(tmp_path / "index").corpus_hash == again.index.corpus_hash  # saved whole again
    again.stop()
    db.dispose()


def test_edits_in_deltas_are_compacted_while_searches_go_on(
    tmp_path: Path, demo: list[Article], embedder: Embedder
) -> None:
    db = Database(f"sqlite:///{tmp_path}/kb.db")
    migrate(db.engine)
    kb = KnowledgeBase(db, embedder, tmp_path / "index")
    kb.import_articles(demo, "test")
    kb.start(watch_interval=None)
    article = kb.index.by_id["printer-add-en"]
    kb.save_article(dataclasses.replace(article, questions=[*article.questions, "zoomx label printer"]), "editor")
    edited = kb.index
    assert edited.edits_since_build == 1
    assert kb.search("zoomx label printer", "en").results[0].article.id == "printer-add-en"

    assert kb.compact()

    assert kb.index is not edited and kb.index.edits_since_build == 0
    assert kb.search("zoomx label printer", "en").results[0].article.id == "printer-add-en"
    assert not kb.compact()  # nothing left to compact
    kb.stop()
    db.dispose()


def test_the_watcher_compacts_once_edits_stop(
    tmp_path: Path, demo: list[Article], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kb_index.service as service_module

    monkeypatch.setattr(service_module, "COMPACT_AFTER", 1.0)
    db = Database(f"sqlite:///{tmp_path}/kb.db")
    migrate(db.engine)
    kb = KnowledgeBase(db, embedder, tmp_path / "index")
    kb.import_articles(demo, "test")
    kb.start(watch_interval=0.1)
    article = kb.index.by_id["vpn-connect-en"]
    kb.save_article(dataclasses.replace(article, title="Connect to the VPN with GlobalProtect"), "editor")
    assert kb.index.edits_since_build == 1

    deadline = time.monotonic() + 20
    while kb.index.edits_since_build and time.monotonic() < deadline:
        time.sleep(0.1)

    assert kb.index.edits_since_build == 0
    assert kb.index.by_id["vpn-connect-en"].title == "Connect to the VPN with GlobalProtect"
    kb.stop()
    db.dispose()


def test_an_index_built_by_another_encoder_is_never_searched_with_this_one(
    tmp_path: Path, demo: list[Article], embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    from kb_index.encoders import BUNDLED_MINILM

    db = Database(f"sqlite:///{tmp_path}/kb.db")
    migrate(db.engine)
    english = KnowledgeBase(db, Embedder(BUNDLED_MINILM, tmp_path / "minilm.sqlite"), tmp_path / "index")
    english.import_articles(demo, "test")
    english.start(watch_interval=None, warm_up=False)
    english.flush()
    english.stop()
    assert SearchIndex.load(tmp_path / "index").model == BUNDLED_MINILM

    multilingual = KnowledgeBase(db, embedder, tmp_path / "index")
    multilingual.start(watch_interval=None, warm_up=False)

    assert "index was built with bundled:all-MiniLM-L6-v2; rebuilding for" in caplog.text
    assert multilingual.index.model == embedder.model_name
    found = multilingual.search("как подключиться к VPN из дома", "ru")
    assert found.results[0].article.id == "vpn-connect-ru"
    multilingual.flush()
    assert SearchIndex.load(tmp_path / "index").model == embedder.model_name
    multilingual.stop()
    db.dispose()


def test_odd_queries_get_a_sensible_answer(demo: list[Article], embedder: Embedder) -> None:
    english_only = SearchIndex.build([a for a in demo if a.language == "en"], embedder)
    for query, language in [
        ("VPN не работает после update, helps?", "ru"),  # mixed scripts and languages
        ("Kā pieslēgties VPN no mājām?", "lv"),  # a language with no articles at all
        ("🙂🙂🙂", "en"),
        ("a" * 2000, "en"),
    ]:
        found = english_only.search(query, embedder.encode_query(query), language)
        assert found.decision in {"answer", "clarify", "none"}
        assert all(r.article.language == "en" for r in found.results)
    # Through the multilingual space a Latvian question can still find the English article.
    found = english_only.search(
        "Kā pieslēgties VPN no mājām?", embedder.encode_query("Kā pieslēgties VPN no mājām?"), "lv"
    )
    assert found.results[0].article.id == "vpn-connect-en"
