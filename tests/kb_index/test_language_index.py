"""Edits served from a delta on top of the built index: what a rebuild would serve, at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import kb_index.language_index as language_index
from kb_index.corpus import Article, read_corpus
from kb_index.embedder import Embedder
from kb_index.index import SearchIndex
from kb_index.language_index import _folded_postings
from kb_index.tuning import read_queries

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def demo() -> list[Article]:
    return read_corpus(REPO / "content" / "kb")


@pytest.fixture
def edits(demo: list[Article]) -> tuple[list[Article], list[str]]:
    """An English article with a new question, a Latvian one retitled, a new article, one removed."""
    by_id = {a.id: a for a in demo}
    asked = dataclasses.replace(
        by_id["password-reset-en"], questions=[*by_id["password-reset-en"].questions, "my badge printer is jammed"]
    )
    retitled = dataclasses.replace(by_id["vpn-connect-lv"], title="Zoomx savienojums ar VPN")
    new = Article(
        id="zoomx-en", language="en", title="Zoomx conferencing",
        body="Install Zoomx from the software portal, then sign in with your work account.",
        questions=["how do I install zoomx", "zoomx crashes when I share my screen"],
    )  # fmt: skip
    return [asked, retitled, new], ["printer-add-en"]


def dense_only(index: SearchIndex, vector: np.ndarray, language: str) -> dict[str, float]:
    """Each candidate's cosine similarity, from the dense ranking alone."""
    background = index.background(language)  # dense scores count from it; an edit keeps the build's
    scored = index._languages[language].score(vector, [], 1.0, background)
    return {s.article.id: s.dense * (1 - background) + background for s in scored}


def test_an_edit_is_served_from_a_delta_as_a_rebuild_would_serve_it(
    demo: list[Article], edits: tuple[list[Article], list[str]], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(language_index, "DELTA_SHARE", 1.0)  # the demo languages have 36 articles
    changed, removed = edits
    built = SearchIndex.build(demo, embedder)
    edited = built.updated(changed, removed, embedder)
    final = [a for a in demo if a.id not in removed and a.id not in {c.id for c in changed}] + changed
    rebuilt = SearchIndex.build(final, embedder)

    assert edited.edits_since_build == 4  # two changed, one added, one removed
    assert sorted(a.id for a in edited.articles) == sorted(a.id for a in rebuilt.articles)
    assert edited.unit_count == rebuilt.unit_count
    assert edited.corpus_hash == rebuilt.corpus_hash
    queries = read_queries(REPO / "content" / "eval", "test")
    texts = [q.query for q in queries] + ["how do I install zoomx", "badge printer jammed", "Zoomx savienojums"]
    languages = [q.language for q in queries] + ["en", "en", "lv"]
    vectors = embedder.encode_queries(texts)
    same_top = 0
    for row, (text, language) in enumerate(zip(texts, languages, strict=True)):
        vector = vectors[row : row + 1]
        # Dense scores are exact: every candidate of the rebuild, with the same score.
        ours_dense, theirs_dense = dense_only(edited, vector, language), dense_only(rebuilt, vector, language)
        assert theirs_dense.keys() <= ours_dense.keys()
        assert {i: ours_dense[i] for i in theirs_dense} == pytest.approx(theirs_dense, abs=1e-5)
        ours, theirs = edited.rank(vector, text, language), rebuilt.rank(vector, text, language)
        same_top += ours[0].article.id == theirs[0].article.id
        assert "printer-add-en" not in {s.article.id for s in ours}
    # Lexical scores use the statistics of the build, which a 36-article language feels.
    assert same_top >= len(texts) - 3
    for text, expected in (("how do I install zoomx", "zoomx-en"), ("zoomx", "zoomx-en")):
        found = edited.search(text, embedder.encode_query(text), "en")
        assert found.results[0].article.id == expected
    assert edited.by_id["vpn-connect-lv"].title == "Zoomx savienojums ar VPN"


def test_a_delta_past_its_limit_is_built_into_the_index(
    demo: list[Article], edits: tuple[list[Article], list[str]], embedder: Embedder
) -> None:
    changed, removed = edits
    built = SearchIndex.build(demo, embedder)

    one = built.updated(changed[:1], [], embedder)
    assert one.edits_since_build == 1  # 1 of 36 English articles
    many = one.updated([dataclasses.replace(a, body=a.body + "\n\nUpdated.") for a in demo[:12]], removed, embedder)
    assert many.edits_since_build < 12  # past an eighth of a language, that language is built afresh
    assert sorted(a.id for a in many.articles) == sorted({a.id for a in demo} - set(removed))
    # Removed articles count too: each one hidden costs every search a few more neighbours.
    english = [a.id for a in demo if a.language == "en"]
    few = built.updated([], english[:4], embedder)
    assert few.edits_since_build == 4
    fewer = few.updated([], english[4:6], embedder)
    assert fewer.edits_since_build == 0
    assert not {a.id for a in fewer.articles} & set(english[:6])


def test_compacting_gives_the_index_a_fresh_build_gives(
    demo: list[Article], edits: tuple[list[Article], list[str]], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(language_index, "DELTA_SHARE", 1.0)
    changed, removed = edits
    edited = SearchIndex.build(demo, embedder).updated(changed, removed, embedder)
    rebuilt = SearchIndex.build([a for a in demo if a.id not in removed] + changed[2:], embedder).updated(
        changed[:2], [], embedder
    )

    compacted = edited.compacted()

    assert compacted.edits_since_build == 0
    fresh = rebuilt.compacted()
    for text, language in (("forgot my password", "en"), ("Zoomx savienojums", "lv"), ("забыл пароль", "ru")):
        vector = embedder.encode_query(text)
        ours = [(s.article.id, round(s.score, 5)) for s in compacted.rank(vector, text, language)[:5]]
        assert ours == [(s.article.id, round(s.score, 5)) for s in fresh.rank(vector, text, language)[:5]]


def test_folded_bm25_weights_are_the_weights_bm25s_gives_a_built_document(
    demo: list[Article], embedder: Embedder
) -> None:
    built = SearchIndex.build(demo, embedder)._languages["ru"]._built
    row = 7
    postings = _folded_postings(built, [built.documents[row]])
    scores = built.lexical.scores

    for term, [(_, weight)] in postings.items():
        column = built.lexical.vocab_dict[term]
        start, end = scores["indptr"][column], scores["indptr"][column + 1]
        documents = list(scores["indices"][start:end])
        assert weight == pytest.approx(float(scores["data"][start:end][documents.index(row)]), rel=1e-5)
