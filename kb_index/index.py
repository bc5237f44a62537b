"""The search index: dense FAISS plus lexical BM25 per language, immutable once built.

An index is built from published articles, searched concurrently, saved as a
versioned directory with a manifest, and replaced (never mutated) when articles
change: `SearchIndex.updated` reuses the vectors of unchanged articles, so
publishing one article re-embeds only that article.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.corpus import LANGUAGES, Article
from kb_index.decision import Calibration, Decision
from kb_index.embedder import Embedder
from kb_index.errors import IndexNotReady
from kb_index.text import analyze

FORMAT_VERSION = 1
#: From this many units per language, an inverted-file index (IVF) scans only the lists
#: nearest the query instead of every unit: at 10,000 articles (51,147 English units)
#: 1.3 ms instead of 2.8 ms per search, and it no longer pushes the model's weights out
#: of the CPU cache before the next question. Over 5,776 labelled CLINC150 and demo
#: questions at that size it answered as well as the exact scan (in-scope 84.92 →
#: 84.90 %, out-of-scope 49.62 → 50.38 %; `python -m benchmarks kb-scale`).
IVF_MIN_UNITS = 20_000
#: Of an IVF index's lists, the share searched per query.
IVF_PROBED = 1 / 8
#: Above this many units per language an HNSW graph replaces the scan. Every edit
#: rebuilds the dense index, and on 2 busy cores an HNSW graph takes ~0.5 s per 1,000
#: units to build, so below this size edits go live within seconds.
HNSW_MIN_UNITS = 200_000
PASSAGE_WEIGHT = 0.92
PASSAGE_WORDS = 80
#: Units retrieved from FAISS to find the candidate articles.
DENSE_CANDIDATES = 256
#: An article's dense score is the mean of its best this-many unit similarities: one
#: lucky wording counts less than several close ones (CLINC150 validation, adapted
#: MiniLM: top-1 95.8 % with the best unit alone, 96.3 % with the best three).
DENSE_TOP_UNITS = 3


@dataclass(frozen=True)
class Unit:
    """One embedded piece of an article: its title, a question or a body passage."""

    article: int  # position in SearchIndex.articles
    kind: str  # title / question / passage
    text: str


@dataclass
class ScoredArticle:
    article: Article
    score: float
    dense: float
    lexical: float


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


def lexical_document(article: Article) -> list[str]:
    # The title and the questions are how users phrase the need: count them twice.
    head = " ".join([article.title, *article.questions])
    return analyze(f"{head}\n{head}\n{article.body}", article.language)


class _LanguageIndex:
    """Dense and lexical structures over the articles of one language."""

    def __init__(
        self,
        positions: list[int],
        units: list[Unit],
        vectors: np.ndarray,
        documents: list[list[str]],
    ) -> None:
        import bm25s
        import faiss

        self.positions = positions  # article positions, in lexical-document order
        self.units = units
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.unit_weight = np.array([PASSAGE_WEIGHT if u.kind == "passage" else 1.0 for u in units], dtype=np.float32)
        by_article: dict[int, list[int]] = {}
        for i, unit in enumerate(units):
            by_article.setdefault(unit.article, []).append(i)
        # An article's units are consecutive (`article_units`, in article order): row r of
        # these arrays is one article, its units row_start[r] : row_start[r] + row_count[r].
        self.row_article = np.array(list(by_article), dtype=np.int64)
        self.row_start = np.array([ids[0] for ids in by_article.values()], dtype=np.int64)
        self.row_count = np.array([len(ids) for ids in by_article.values()], dtype=np.int64)
        if any(ids[-1] - ids[0] + 1 != len(ids) for ids in by_article.values()):
            raise ValueError("an article's units must be consecutive")
        self.unit_row = np.repeat(np.arange(len(by_article), dtype=np.int64), self.row_count)
        dimension = vectors.shape[1]
        self.dense: Any
        if len(units) >= HNSW_MIN_UNITS:
            self.dense = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
            self.dense.hnsw.efSearch = 128
        elif len(units) >= IVF_MIN_UNITS:
            self.dense = _ivf_index(dimension, len(units))
            with _one_thread():
                self.dense.train(self.vectors)
        else:
            # A scan of half-precision copies: half the memory to read (50k units: 1.7 ms
            # instead of 3.9 ms) and the same candidates, whose scores come from the
            # float32 vectors in `_dense_scores`.
            self.dense = faiss.IndexScalarQuantizer(
                dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        if len(units):
            with _one_thread():
                self.dense.add(self.vectors)
        self.lexical = bm25s.BM25()
        self.lexical.index(documents or [[""]], show_progress=False)

    def score(
        self, query_vector: np.ndarray, terms: list[str], dense_weight: float
    ) -> dict[int, tuple[float, float, float]]:
        """Article position → (fused, dense, lexical) for the plausible candidates."""
        dense: dict[int, float] = {}
        if self.dense.ntotal:
            k = min(DENSE_CANDIDATES, self.dense.ntotal)
            with _one_thread():
                _, ids = self.dense.search(query_vector, k)
            dense = self._dense_scores(ids[0][ids[0] >= 0], query_vector[0])
        lexical: dict[int, float] = {}
        if terms and self.positions:
            raw = self.lexical.get_scores(terms)
            best = float(raw.max()) if len(raw) else 0.0
            if best > 0:
                top = np.argsort(-raw)[:DENSE_CANDIDATES]
                for doc in top:
                    if raw[doc] <= 0:
                        break
                    lexical[self.positions[int(doc)]] = float(raw[doc]) / best
        floor = min(dense.values(), default=0.0)
        scored = {}
        for position in set(dense) | set(lexical):
            d = dense.get(position, floor)
            lex = lexical.get(position, 0.0)
            scored[position] = (dense_weight * d + (1 - dense_weight) * lex, d, lex)
        return scored

    def _dense_scores(self, unit_ids: np.ndarray, query_vector: np.ndarray) -> dict[int, float]:
        """Position → mean of the best DENSE_TOP_UNITS weighted unit similarities, for the units' articles."""
        rows = np.unique(self.unit_row[unit_ids])
        counts = self.row_count[rows]
        width = int(counts.max())
        # One row per candidate article, its units' similarities padded with -inf.
        present = np.arange(width) < counts[:, None]
        units = (self.row_start[rows][:, None] + np.arange(width))[present]
        sims = np.full(present.shape, -np.inf, dtype=np.float32)
        sims[present] = (self.vectors[units] @ query_vector) * self.unit_weight[units]
        k = min(DENSE_TOP_UNITS, width)
        best = np.partition(sims, width - k, axis=1)[:, -k:]
        counted = np.isfinite(best)
        means = np.where(counted, best, 0.0).sum(axis=1) / counted.sum(axis=1)
        return dict(zip(self.row_article[rows].tolist(), means.tolist(), strict=True))


def _ivf_index(dimension: int, size: int) -> Any:
    """An untrained IVF index over half-precision codes for `size` vectors.

    About sqrt(size) / 2 lists (a power of two: 128 for 51k units), an eighth of them
    searched. Its k-means runs 10 rounds on at most 64 vectors per list: 0.2 s at 51k
    units rather than 1 s, so an edit, which rebuilds the index, stays quick, with the
    same answers over the labelled questions.
    """
    import faiss

    lists = 2 ** max(0, round(math.log2(max(1.0, math.sqrt(size) / 2))))
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dimension, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.niter = 10
    index.cp.max_points_per_centroid = 64
    index.nprobe = max(1, round(lists * IVF_PROBED))
    return index


@contextmanager
def _one_thread() -> Iterator[None]:
    """Runs FAISS on the calling thread alone (every FAISS call goes through this).

    FAISS ships its own OpenMP runtime, separate from torch's. Once FAISS had run one
    parallel region, embedding a query took 14 ms instead of 6.5 ms for the rest of
    the process (idle 2-core machine), so FAISS never gets a second thread here.
    Searches lose nothing by it: on 2 shared cores, OpenMP threads wait for each other
    (50k units: ~4 ms on one thread, 15-35 ms on two). The setting is per calling
    thread, and restored afterwards.
    """
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


@dataclass
class SearchIndex:
    """Everything needed to answer a query; treat as immutable and swap whole."""

    articles: list[Article]
    units: list[Unit]
    vectors: np.ndarray
    model: str
    calibration: Calibration = field(default_factory=Calibration)
    version: str = ""
    built_at: float = field(default_factory=time.time)
    _languages: dict[str, _LanguageIndex] = field(default_factory=dict, repr=False)
    #: Article id → its lexical document and content hash; `updated` hands over those of
    #: unchanged articles, so an edit analyses and hashes only what changed.
    _documents: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _hashes: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Analysing text is most of the work of an update; only new or changed articles need it.
        self._documents = {a.id: self._documents.get(a.id) or lexical_document(a) for a in self.articles}
        self._hashes = {a.id: self._hashes.get(a.id) or a.content_hash() for a in self.articles}
        for language in LANGUAGES:
            positions = [i for i, a in enumerate(self.articles) if a.language == language]
            chosen = {p for p in positions}
            unit_ids = [i for i, u in enumerate(self.units) if u.article in chosen]
            self._languages[language] = _LanguageIndex(
                positions,
                [self.units[i] for i in unit_ids],
                self.vectors[unit_ids] if unit_ids else np.zeros((0, self.vectors.shape[1]), np.float32),
                [self._documents[self.articles[p].id] for p in positions],
            )
        self.by_id = {a.id: a for a in self.articles}
        if not self.version:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.built_at))
            self.version = f"{stamp}-{self.corpus_hash[:8]}-{secrets.token_hex(2)}"

    def content_hash_of(self, article_id: str) -> str:
        """The served article's `Article.content_hash`, computed once per index."""
        return self._hashes[article_id]

    @property
    def corpus_hash(self) -> str:
        """`kb_index.corpus.corpus_hash` of the articles, from their cached content hashes."""
        digest = hashlib.sha256()
        for content in sorted(self._hashes[a.id] for a in self.articles):
            digest.update(content.encode())
        return digest.hexdigest()

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

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
        vectors = embedder.encode([u.text for u in units], progress=progress)
        if not len(units):
            vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        return cls(published, units, vectors, embedder.model_name, calibration or Calibration())

    def updated(
        self,
        changed: Sequence[Article],
        removed: Iterable[str],
        embedder: Embedder,
    ) -> SearchIndex:
        """A new index with some articles replaced, added or removed.

        Vectors, units and lexical documents of untouched articles are reused; only the
        changed ones are embedded and analysed.
        """
        gone = set(removed) | {a.id for a in changed}
        keep = [a for a in self.articles if a.id not in gone]
        new = [a for a in changed if a.status == "published"]
        vectors_by_text: dict[str, np.ndarray] = {}
        kept_units: dict[str, list[Unit]] = {}
        kept_ids = {a.id for a in keep}
        for unit, vector in zip(self.units, self.vectors, strict=True):
            article_id = self.articles[unit.article].id
            if article_id in kept_ids:
                vectors_by_text.setdefault(unit.text, vector)
                kept_units.setdefault(article_id, []).append(unit)
        articles = sorted(keep + new, key=lambda a: a.id)
        units: list[Unit] = []
        for i, a in enumerate(articles):
            old = kept_units.get(a.id)
            units += [Unit(i, u.kind, u.text) for u in old] if old else article_units(a, i)
        missing = [u.text for u in units if u.text not in vectors_by_text]
        if missing:
            for text, vector in zip(missing, embedder.encode(missing), strict=True):
                vectors_by_text[text] = vector
        vectors = (
            np.stack([vectors_by_text[u.text] for u in units])
            if units
            else np.zeros((0, self.dimension), dtype=np.float32)
        )
        return SearchIndex(
            articles,
            units,
            vectors,
            self.model,
            self.calibration,
            _documents={a.id: self._documents[a.id] for a in keep},
            _hashes={a.id: self._hashes[a.id] for a in keep},
        )

    def with_calibration(self, calibration: Calibration) -> SearchIndex:
        return SearchIndex(
            self.articles,
            self.units,
            self.vectors,
            self.model,
            calibration,
            _documents=self._documents,
            _hashes=self._hashes,
        )

    # -- searching ------------------------------------------------------------
    def rank(self, query_vector: np.ndarray, query: str, language: str) -> list[ScoredArticle]:
        """All plausible articles of one language, best first."""
        calibration = self.calibration.for_language(language)
        terms = analyze(query, language)
        scored = self._languages[language].score(query_vector, terms, calibration.dense_weight)
        ranked = sorted(scored.items(), key=lambda item: -item[1][0])
        return [ScoredArticle(self.articles[p], fused, dense, lexical) for p, (fused, dense, lexical) in ranked]

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
        """Searches the query's language first, then the others if nothing fits."""
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
                if other_decision != "none" and other_confidence > confidence:
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
            "units": len(self.units),
            "languages": {lang: sum(1 for a in self.articles if a.language == lang) for lang in LANGUAGES},
            "dense_index": {lang: type(index.dense).__name__ for lang, index in self._languages.items()},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.built_at)),
            "libraries": {
                name: version_of(name)
                for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch", "spacy", "PyStemmer")
            },
            "calibration": self.calibration.to_dict(),
        }

    def save(self, root: Path) -> Path:
        """Writes a new version directory under root and makes it current atomically."""
        root.mkdir(parents=True, exist_ok=True)
        target = root / self.version
        staging = root / f".{self.version}.tmp"
        staging.mkdir(parents=True, exist_ok=True)
        np.save(staging / "vectors.npy", self.vectors)
        (staging / "articles.jsonl").write_text(
            "".join(json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in self.articles),
            encoding="utf-8",
        )
        (staging / "units.jsonl").write_text(
            "".join(json.dumps([u.article, u.kind, u.text], ensure_ascii=False) + "\n" for u in self.units),
            encoding="utf-8",
        )
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
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise IndexNotReady(f"index at {directory} is unreadable ({exc}); rebuild it") from exc
        if len(units) != len(vectors) or (len(vectors) and vectors.shape[1] != manifest["dimension"]):
            raise IndexNotReady(f"index at {directory} is inconsistent; rebuild it")
        return cls(
            articles,
            units,
            vectors.astype(np.float32, copy=False),
            manifest["model"],
            Calibration.from_dict(manifest.get("calibration", {})),
            version=manifest["version"],
        )


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
