"""One language's share of the search index: a dense (FAISS) and a lexical (BM25) ranking.

A `LanguageIndex` is built over all of one language's articles, then edited without
being built again: `revised` returns a new index that shares the built structures,
hides the articles that changed or went, and keeps their new versions in a small
delta, scored exactly (dense) and with the built index's BM25 statistics (lexical).
Building is what takes time at scale (an HNSW graph over 500,000 units takes about two
minutes, BM25 over 100,000 articles half a minute); an edit then costs what its own
article costs. Once the delta outgrows DELTA_LIMIT or DELTA_SHARE, `revised` builds
the language afresh, and `compacted` does the same on request.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from kb_index.corpus import Article

#: From this many units per language, an inverted-file index (IVF) scans only the lists
#: nearest the query instead of every unit: at 10,000 articles (51,147 English units)
#: 1.3 ms instead of 2.8 ms per search, and it no longer pushes the model's weights out
#: of the CPU cache before the next question. Over 5,776 labelled CLINC150 and demo
#: questions at that size it answered as well as the exact scan (in-scope 84.92 →
#: 84.90 %, out-of-scope 49.62 → 50.38 %; `python -m benchmarks kb-scale`).
IVF_MIN_UNITS = 20_000
#: Of an IVF index's lists, the share searched per query.
IVF_PROBED = 1 / 8
#: Above this many units per language an HNSW graph replaces the scan: on 2 busy cores
#: it takes ~0.5 s per 1,000 units to build, and edits no longer rebuild it.
HNSW_MIN_UNITS = 200_000
PASSAGE_WEIGHT = 0.92
#: Units retrieved from FAISS to find the candidate articles.
DENSE_CANDIDATES = 256
#: An article's dense score is the mean of its best this-many unit similarities: one
#: lucky wording counts less than several close ones (CLINC150 validation, adapted
#: MiniLM: top-1 95.8 % with the best unit alone, 96.3 % with the best three).
DENSE_TOP_UNITS = 3
#: Units that estimate a language's background similarity (`background_similarity`).
BACKGROUND_SAMPLE = 1_000
#: A language with fewer built articles takes the whole index's background similarity.
BACKGROUND_MIN_ARTICLES = 10
#: Edited articles (changed, added or removed) a language serves on top of its build
#: before it is built afresh: at most this many, and at most an eighth of the built
#: articles (a small language is quick to build, and its BM25 statistics should not drift).
DELTA_LIMIT = 1_000
DELTA_SHARE = 1 / 8


@dataclass(frozen=True)
class Unit:
    """One embedded piece of an article: its title, a question or a body passage."""

    article: int  # position in the list of articles it was made with
    kind: str  # title / question / passage
    text: str


@dataclass
class ScoredArticle:
    article: Article
    #: The fused ranking score: `fused(dense, lexical, weight)`.
    score: float
    #: Cosine similarity (the mean of the best units'), from the language's background
    #: similarity (0: what unrelated texts score) to identity (1), for any encoder.
    dense: float
    #: BM25 over the query's best BM25 score, in [0, 1].
    lexical: float


def fused(dense: float, lexical: float, dense_weight: float) -> float:
    """The ranking score: the dense and the lexical score, weighted."""
    return dense_weight * dense + (1 - dense_weight) * lexical


def background_similarity(vectors: np.ndarray, unit_row: np.ndarray, sample: int = BACKGROUND_SAMPLE) -> float:
    """The mean cosine between units of different articles: what "unrelated" scores here.

    Encoders place unrelated texts at very different cosines (about 0.1 for MiniLM,
    0.8 for e5, whose cosines all sit in a narrow band), so dense scores count from
    this level up (`LanguageIndex.score`): fusion weights, confidence and thresholds
    then mean the same whatever the encoder. At most `sample` units take part, the
    same ones for the same vectors.

    Args:
        unit_row: each vector's article (units of one article are not compared).
    """
    if len(vectors) < 2:
        return 0.0
    chosen = np.random.default_rng(0).permutation(len(vectors))[:sample]
    similarity = vectors[chosen] @ vectors[chosen].T
    different = unit_row[chosen][:, None] != unit_row[chosen][None, :]
    return float(similarity[different].mean()) if different.any() else 0.0


#: One article as a language index holds it: the article, its units (all at position 0),
#: their vectors and its lexical document.
Entry = tuple[Article, list[Unit], np.ndarray, list[str]]


class _Part:
    """Articles with their units' vectors and lexical documents; row r of every array is article r."""

    def __init__(self, entries: list[Entry], dimension: int) -> None:
        self.articles = [article for article, *_ in entries]
        self.units = [unit for _, units, _, _ in entries for unit in units]
        self.documents = [document for *_, document in entries]
        self.row_count = np.array([len(units) for _, units, _, _ in entries], dtype=np.int64)
        if np.any(self.row_count == 0):
            raise ValueError("every article needs at least one unit (its title)")
        self.row_start = np.cumsum(self.row_count) - self.row_count
        self.unit_row = np.repeat(np.arange(len(entries), dtype=np.int64), self.row_count)
        self.vectors = np.ascontiguousarray(
            np.concatenate([vectors for _, _, vectors, _ in entries]) if entries else np.zeros((0, dimension)),
            dtype=np.float32,
        )
        self.weight = np.array([PASSAGE_WEIGHT if u.kind == "passage" else 1.0 for u in self.units], dtype=np.float32)

    def entry(self, row: int) -> Entry:
        start, end = int(self.row_start[row]), int(self.row_start[row] + self.row_count[row])
        return self.articles[row], self.units[start:end], self.vectors[start:end], self.documents[row]

    def dense_scores(self, rows: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
        """For each row, the mean of its article's best DENSE_TOP_UNITS weighted unit similarities."""
        counts = self.row_count[rows]
        width = int(counts.max())
        # One row per candidate article, its units' similarities padded with -inf.
        present = np.arange(width) < counts[:, None]
        units = (self.row_start[rows][:, None] + np.arange(width))[present]
        sims = np.full(present.shape, -np.inf, dtype=np.float32)
        sims[present] = (self.vectors[units] @ query_vector) * self.weight[units]
        k = min(DENSE_TOP_UNITS, width)
        best = np.partition(sims, width - k, axis=1)[:, -k:]
        counted = np.isfinite(best)
        means: np.ndarray = np.where(counted, best, 0.0).sum(axis=1) / counted.sum(axis=1)
        return means


class _Built(_Part):
    """The part indexed at a build: FAISS over its unit vectors, BM25 over its documents."""

    def __init__(self, entries: list[Entry], dimension: int) -> None:
        import bm25s
        import faiss

        super().__init__(entries, dimension)
        units = len(self.units)
        self.dense: Any
        if units >= HNSW_MIN_UNITS:
            self.dense = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
            self.dense.hnsw.efSearch = 128
        elif units >= IVF_MIN_UNITS:
            self.dense = _ivf_index(dimension, units)
            with _one_thread():
                self.dense.train(self.vectors)
        else:
            # A scan of half-precision copies: half the memory to read (50k units: 1.7 ms
            # instead of 3.9 ms) and the same candidates, whose scores come from the
            # float32 vectors.
            self.dense = faiss.IndexScalarQuantizer(
                dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        if units:
            with _one_thread():
                self.dense.add(self.vectors)
        self.row_of = {article.id: row for row, article in enumerate(self.articles)}
        self.lexical = bm25s.BM25()
        self.lexical.index(self.documents or [[""]], show_progress=False)
        self.average_length = float(np.mean([len(d) for d in self.documents])) if self.documents else 1.0
        #: Documents holding each vocabulary term: every BM25 weight of a term that occurs is positive.
        self.document_frequency = np.diff(self.lexical.scores["indptr"])
        #: What unrelated units score (`background_similarity`), kept until the next build as
        #: BM25's statistics are; None for a language too small to say.
        self.background = (
            background_similarity(self.vectors, self.unit_row)
            if len(self.articles) >= BACKGROUND_MIN_ARTICLES
            else None
        )


class _Delta(_Part):
    """Articles changed since the build: every unit scanned, BM25 weights from the build's statistics."""

    def __init__(self, entries: list[Entry], built: _Built) -> None:
        super().__init__(entries, built.vectors.shape[1])
        self.postings = _folded_postings(built, self.documents)


def _folded_postings(built: _Built, documents: list[list[str]]) -> dict[str, list[tuple[int, float]]]:
    """Term → (delta row, BM25 weight) as the built index weighs its own documents.

    bm25s's own scoring functions, with the built index's document count, average
    length and document frequencies; a term the build never saw counts the delta
    documents that hold it. So an edited article scores as a build would score it, but
    for statistics that moved since the build.
    """
    from bm25s import scoring

    model = built.lexical
    idf = scoring._select_idf_scorer(model.idf_method or model.method)
    tfc = scoring._select_tfc_scorer(model.method)
    total = int(model.scores["num_docs"])
    unseen: Counter[str] = Counter(term for terms in documents for term in set(terms))
    postings: dict[str, list[tuple[int, float]]] = {}
    for row, terms in enumerate(documents):
        for term, count in Counter(terms).items():
            column = model.vocab_dict.get(term)
            frequency = int(built.document_frequency[column]) if column is not None else unseen[term]
            part = tfc(tf_array=np.float32(count), l_d=len(terms), l_avg=built.average_length,
                       k1=model.k1, b=model.b, delta=model.delta)  # fmt: skip
            postings.setdefault(term, []).append((row, float(idf(frequency, N=total)) * float(part)))
    return postings


class LanguageIndex:
    """Ranks one language's articles for a query; immutable, so it is replaced, never changed."""

    def __init__(self, built: _Built, delta: _Delta | None = None, hidden: frozenset[int] = frozenset()) -> None:
        self._built = built
        self._delta = delta
        #: Rows of the built part that were changed or removed since.
        self._hidden = hidden
        self._visible: np.ndarray | None = None
        self._hidden_units = 0
        if hidden:
            self._visible = np.ones(len(built.articles), dtype=np.float32)
            self._visible[sorted(hidden)] = 0.0
            self._hidden_units = int(built.row_count[sorted(hidden)].sum())

    @classmethod
    def build(cls, entries: list[Entry], dimension: int) -> LanguageIndex:
        return cls(_Built(entries, dimension))

    @property
    def dense(self) -> Any:
        """The built FAISS index (for reading its kind and settings)."""
        return self._built.dense

    @property
    def background(self) -> float | None:
        """The built units' background similarity (None: too few articles to say)."""
        return self._built.background

    def built_units(self) -> tuple[np.ndarray, np.ndarray]:
        """The built units' vectors and each one's article row (for a background across languages)."""
        return self._built.vectors, self._built.unit_row

    @property
    def edits_since_build(self) -> int:
        """Articles changed, added or removed since the build (0: nothing to compact)."""
        added = sum(a.id not in self._built.row_of for a in self._delta.articles) if self._delta else 0
        return len(self._hidden) + added

    def articles(self) -> list[Article]:
        """Every article served, built ones first."""
        built = [a for row, a in enumerate(self._built.articles) if row not in self._hidden]
        return built + (self._delta.articles if self._delta else [])

    @property
    def unit_count(self) -> int:
        return len(self._built.units) - self._hidden_units + (len(self._delta.units) if self._delta else 0)

    def entries(self) -> list[Entry]:
        """Every article served, built ones first."""
        built = [self._built.entry(row) for row in range(len(self._built.articles)) if row not in self._hidden]
        delta = [self._delta.entry(row) for row in range(len(self._delta.articles))] if self._delta else []
        return built + delta

    def revised(self, changed: list[Entry], removed: set[str]) -> LanguageIndex:
        """A new index with `changed` articles replaced or added and `removed` ids dropped."""
        gone = removed | {article.id for article, *_ in changed}
        built = self._built
        hidden = self._hidden | {built.row_of[i] for i in gone if i in built.row_of}
        previous = self._delta
        kept = [previous.entry(r) for r, a in enumerate(previous.articles) if a.id not in gone] if previous else []
        delta = kept + changed
        # Hidden articles cost every search a few more neighbours; delta ones a few more dot products.
        if len(hidden) + len(delta) > min(DELTA_LIMIT, len(built.articles) * DELTA_SHARE):
            entries = [e for e in self.entries() if e[0].id not in gone] + changed
            return LanguageIndex.build(sorted(entries, key=lambda e: e[0].id), built.vectors.shape[1])
        return LanguageIndex(built, _Delta(delta, built) if delta else None, frozenset(hidden))

    def compacted(self) -> LanguageIndex:
        """The same articles built afresh: no delta, BM25 statistics up to date."""
        if not self.edits_since_build:
            return self
        entries = sorted(self.entries(), key=lambda e: e[0].id)
        return LanguageIndex.build(entries, self._built.vectors.shape[1])

    def score(
        self, query_vector: np.ndarray, terms: list[str], dense_weight: float, background: float
    ) -> list[ScoredArticle]:
        """The plausible candidates with their fused, dense and lexical scores, unsorted.

        Args:
            background: what unrelated texts score (`background_similarity`); dense scores count from it.
        """
        built, delta = self._built, self._delta
        # Keys: a built row r as r, a delta row r as -1 - r.
        dense: dict[int, float] = {}
        if built.dense.ntotal:
            # Hidden units take places among the nearest; ask for as many more.
            k = min(DENSE_CANDIDATES + self._hidden_units, built.dense.ntotal)
            with _one_thread():
                _, ids = built.dense.search(query_vector, k)
            rows = np.unique(built.unit_row[ids[0][ids[0] >= 0]])
            if self._hidden:
                rows = rows[[int(r) not in self._hidden for r in rows]]
            if len(rows):
                dense = dict(zip(rows.tolist(), built.dense_scores(rows, query_vector[0]).tolist(), strict=True))
        if delta is not None:
            rows = np.arange(len(delta.articles))
            means = delta.dense_scores(rows, query_vector[0]).tolist()
            dense.update({-1 - row: mean for row, mean in enumerate(means)})
        raw: dict[int, float] = {}
        if terms and built.articles:
            scores = built.lexical.get_scores(terms, weight_mask=self._visible)
            top = np.flatnonzero(scores > 0)
            if len(top) > DENSE_CANDIDATES:
                top = top[np.argpartition(-scores[top], DENSE_CANDIDATES)[:DENSE_CANDIDATES]]
            raw = dict(zip(top.tolist(), scores[top].tolist(), strict=True))
        if terms and delta is not None:
            for term in terms:  # a repeated term counts again, as bm25s counts it
                for row, weight in delta.postings.get(term, ()):
                    raw[-1 - row] = raw.get(-1 - row, 0.0) + weight
        dense = {key: (cosine - background) / max(1e-6, 1 - background) for key, cosine in dense.items()}
        best = max(raw.values(), default=0.0)
        floor = min(dense.values(), default=0.0)
        scored = []
        for key in dense.keys() | raw.keys():
            article = built.articles[key] if key >= 0 else delta.articles[-1 - key]  # type: ignore[union-attr]
            d = dense.get(key, floor)
            lexical = raw.get(key, 0.0) / best if best > 0 else 0.0
            scored.append(ScoredArticle(article, fused(d, lexical, dense_weight), d, lexical))
        return scored


def _ivf_index(dimension: int, size: int) -> Any:
    """An untrained IVF index over half-precision codes for `size` vectors.

    About sqrt(size) / 2 lists (a power of two: 128 for 51k units), an eighth of them
    searched. Its k-means runs 10 rounds on at most 64 vectors per list: 0.2 s at 51k
    units rather than 1 s, with the same answers over the labelled questions.
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
