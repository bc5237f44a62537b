"""Fitting the decision to a corpus (`kb tune`) and measuring it (`kb eval`).

A query file has one ``{"query", "language", "expected"}`` object per line, where
``expected`` is an article id, or null for a question the corpus cannot answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kb_index.corpus import LANGUAGES, Article
from kb_index.decision import Calibration, LanguageCalibration
from kb_index.embedder import Embedder
from kb_index.errors import CorpusError, Problem
from kb_index.index import SearchIndex
from kb_index.language_index import ScoredArticle, fused

Objective = Literal["utility", "balanced", "recall_floor", "accuracy_floor"]
OBJECTIVES: tuple[str, ...] = ("utility", "balanced", "recall_floor", "accuracy_floor")
#: The "recall_floor" objective's out-of-scope recall, required of the lower end of
#: its 95 % confidence interval on the validation queries.
MIN_OOS_RECALL = 0.70
#: The "accuracy_floor" objective's in-scope accuracy, required of the lower end of its
#: 95 % confidence interval on the validation queries.
MIN_IN_SCOPE_ACCURACY = 0.95
WEIGHT_GRID = [round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)]
THRESHOLD_GRID = [round(t, 3) for t in np.arange(0.02, 0.981, 0.01)]
#: Fewer labelled queries than this in a language: it uses the pooled fit.
MIN_QUERIES_PER_LANGUAGE = 25


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    language: str
    expected: str | None


def read_queries(path: Path, split: str | None = None) -> list[LabelledQuery]:
    """Reads a query file, or every ``*.jsonl`` in a directory.

    Args:
        path: a .jsonl file or a directory of them.
        split: keep only lines whose "split" field equals this (lines without one are kept).

    Raises:
        CorpusError: naming the file and line of each malformed query.
    """
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise CorpusError([Problem(str(path), "no query file found")])
    queries: list[LabelledQuery] = []
    problems: list[Problem] = []
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{file}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(where, f"invalid JSON: {exc.msg}"))
                continue
            if not isinstance(data, dict) or not isinstance(data.get("query"), str):
                problems.append(Problem(where, 'expected {"query", "language", "expected"}'))
                continue
            if data.get("language") not in LANGUAGES:
                problems.append(Problem(where, f"unknown language {data.get('language')!r}"))
                continue
            expected = data.get("expected")
            if expected is not None and not isinstance(expected, str):
                problems.append(Problem(where, "expected must be an article id or null"))
                continue
            if split is not None and data.get("split", split) != split:
                continue
            queries.append(LabelledQuery(data["query"], data["language"], expected))
    if problems:
        raise CorpusError(problems)
    return queries


@dataclass
class _Observed:
    query: LabelledQuery
    candidates: list[ScoredArticle]


def _observe(
    index: SearchIndex,
    encode: Callable[[list[str]], np.ndarray],
    queries: list[LabelledQuery],
) -> list[_Observed]:
    vectors = encode([q.query for q in queries])
    return [_Observed(q, index.rank(vectors[i : i + 1], q.query, q.language)) for i, q in enumerate(queries)]


def _rerank(candidates: list[ScoredArticle], weight: float) -> list[tuple[float, float, str]]:
    ranked = [(fused(c.dense, c.lexical, weight), c.dense, c.article.id) for c in candidates]
    ranked.sort(key=lambda item: -item[0])
    return ranked


def _features(ranked: list[tuple[float, float, str]]) -> tuple[float, float, float]:
    if not ranked:
        return 0.0, 0.0, 0.0
    runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
    return ranked[0][0], ranked[0][0] - runner_up, ranked[0][1]


def _score(
    outcomes: list[tuple[LabelledQuery, list[str], float]],
    answer: float,
    clarify: float,
    objective: Objective,
) -> float:
    in_scope = oos = correct = rejected = 0
    utility = 0.0
    for query, top_ids, confidence in outcomes:
        decision = "answer" if confidence >= answer else "clarify" if confidence >= clarify else "none"
        if query.expected is None:
            oos += 1
            rejected += decision == "none"
            utility += {"none": 1.0, "clarify": -0.25, "answer": -1.0}[decision]
            continue
        in_scope += 1
        hit = bool(top_ids) and top_ids[0] == query.expected
        correct += hit and decision != "none"
        if decision == "answer":
            utility += 1.0 if hit else -1.0
        elif decision == "clarify":
            utility += 0.5 if query.expected in top_ids[:3] else -0.25
    if objective == "utility":
        return utility / max(1, in_scope + oos)
    accuracy = correct / in_scope if in_scope else 0.0
    recall = rejected / oos if oos else 0.0
    # A threshold that meets its floor beats every one that does not (those score ≤ 2).
    if objective == "recall_floor" and wilson_lower(rejected, oos) >= MIN_OOS_RECALL:
        return 2.0 + accuracy
    if objective == "accuracy_floor" and wilson_lower(correct, in_scope) >= MIN_IN_SCOPE_ACCURACY:
        return 2.0 + recall
    return accuracy + recall


def wilson_lower(successes: int, trials: int, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval: a rate that this many queries can vouch for."""
    if not trials:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float((centre - spread) / (1 + z * z / trials))


def _fit_language(
    observed: list[_Observed], objective: Objective, base: LanguageCalibration
) -> tuple[LanguageCalibration, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression

    in_scope = [o for o in observed if o.query.expected is not None]
    best_weight, best_key = base.dense_weight, (-1.0, -1.0)
    for weight in WEIGHT_GRID:
        hits = rr = 0.0
        for o in in_scope:
            ids = [item[2] for item in _rerank(o.candidates, weight)]
            if ids and ids[0] == o.query.expected:
                hits += 1
            if o.query.expected in ids:
                rr += 1 / (ids.index(o.query.expected) + 1)
        key = (hits, rr)
        if key > best_key:
            best_weight, best_key = weight, key
    reranked = [_rerank(o.candidates, best_weight) for o in observed]
    features = np.array([_features(r) for r in reranked])
    labels = np.array(
        [
            bool(r) and o.query.expected is not None and r[0][2] == o.query.expected
            for o, r in zip(observed, reranked, strict=True)
        ]
    )
    candidates = [LanguageCalibration(best_weight, base.coef, base.intercept)]
    if 0 < labels.sum() < len(labels):
        # Two confidence functions: with the margin to the runner-up, which spots confusions
        # between neighbouring articles, and without it, since a question nothing answers can
        # still have a clear winner. The objective on the validation queries picks one.
        candidates = []
        for used in ((0, 1, 2), (0, 2)):
            model = LogisticRegression(C=10.0, max_iter=1000).fit(features[:, list(used)], labels)
            coef = [0.0, 0.0, 0.0]
            for column, value in zip(used, model.coef_[0], strict=True):
                coef[column] = float(value)
            candidates.append(LanguageCalibration(best_weight, (coef[0], coef[1], coef[2]), float(model.intercept_[0])))
    best: tuple[float, LanguageCalibration] | None = None
    for calibration in candidates:
        outcomes = [
            (o.query, [item[2] for item in r], calibration.confidence(*_features(r)))
            for o, r in zip(observed, reranked, strict=True)
        ]
        value, calibration.answer_threshold, calibration.clarify_threshold = _thresholds(outcomes, objective)
        if best is None or value > best[0] + 1e-12:
            best = (value, calibration)
    assert best is not None
    report = {
        "queries": len(observed),
        "in_scope": len(in_scope),
        "dense_weight": best_weight,
        "uses_margin": best[1].coef[1] != 0.0,
        "objective_value": round(best[0], 4),
    }
    return best[1], report


def _thresholds(
    outcomes: list[tuple[LabelledQuery, list[str], float]], objective: Objective
) -> tuple[float, float, float]:
    """(objective value, answer threshold, clarify threshold) at the best grid point."""
    best = (-1e9, 0.5, 0.3)
    for answer in THRESHOLD_GRID:
        for clarify in [t for t in THRESHOLD_GRID if t <= answer]:
            value = _score(outcomes, answer, clarify, objective)
            # Prefer fewer clarifications on ties: a direct answer is a better experience.
            if value > best[0] + 1e-12 or (abs(value - best[0]) <= 1e-12 and clarify > best[2]):
                best = (value, answer, clarify)
    return best


def tune(
    index: SearchIndex,
    encode: Callable[[list[str]], np.ndarray],
    queries: list[LabelledQuery],
    objective: Objective = "utility",
    clarify: bool = True,
) -> Calibration:
    """Fits fusion weight, confidence and thresholds per language on labelled queries.

    Args:
        index: the index to fit (its articles must contain every expected id).
        encode: embeds a batch of query texts.
        queries: labelled validation queries (never the test split).
        objective: "utility" rewards right answers and penalises wrong ones;
            "balanced" maximises in-scope accuracy plus out-of-scope recall;
            "recall_floor" maximises in-scope accuracy among the thresholds whose
            out-of-scope recall is at least MIN_OOS_RECALL with 95 % confidence;
            "accuracy_floor" maximises out-of-scope recall among the thresholds whose
            in-scope accuracy is at least MIN_IN_SCOPE_ACCURACY with 95 % confidence.
        clarify: False fits a single answer/none threshold (clarify never chosen).

    Raises:
        CorpusError: an expected id is not in the index.
    """
    unknown = sorted({q.expected for q in queries if q.expected and q.expected not in index.by_id})
    if unknown:
        raise CorpusError([Problem(i, "expected article is not in the index") for i in unknown[:20]])
    observed = _observe(index, encode, queries)
    pooled, pooled_report = _fit_language(observed, objective, index.calibration.default)
    if not clarify:
        pooled.clarify_threshold = pooled.answer_threshold
    languages: dict[str, LanguageCalibration] = {}
    reports: dict[str, Any] = {"pooled": pooled_report}
    for language in LANGUAGES:
        subset = [o for o in observed if o.query.language == language]
        if len(subset) >= MIN_QUERIES_PER_LANGUAGE:
            fitted, report = _fit_language(subset, objective, pooled)
            if not clarify:
                fitted.clarify_threshold = fitted.answer_threshold
            languages[language], reports[language] = fitted, report
    return Calibration(
        default=pooled,
        languages=languages,
        fitted={
            "objective": objective,
            "model": index.model,
            "corpus_hash": index.corpus_hash,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "report": reports,
        },
    )


def _metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    in_scope = [r for r in rows if r["expected"] is not None]
    oos = [r for r in rows if r["expected"] is None]
    declined = [r for r in rows if r["decision"] == "none"]
    latencies = sorted(r["ms"] for r in rows)

    def ratio(part: int, whole: int) -> float | None:
        return round(100.0 * part / whole, 2) if whole else None

    def percentile(p: float) -> float | None:
        if not latencies:
            return None
        return round(float(np.percentile(latencies, p)), 2)

    return {
        "n": len(rows),
        "n_in_scope": len(in_scope),
        "n_oos": len(oos),
        "in_scope_accuracy": ratio(
            sum(r["decision"] != "none" and r["top"][:1] == [r["expected"]] for r in in_scope),
            len(in_scope),
        ),
        "top1_accuracy": ratio(sum(r["top"][:1] == [r["expected"]] for r in in_scope), len(in_scope)),
        "top3_accuracy": ratio(sum(r["expected"] in r["top"][:3] for r in in_scope), len(in_scope)),
        "mrr": round(
            sum(1 / (r["top"].index(r["expected"]) + 1) for r in in_scope if r["expected"] in r["top"]) / len(in_scope),
            4,
        )
        if in_scope
        else None,
        "oos_recall": ratio(sum(r["decision"] == "none" for r in oos), len(oos)),
        "oos_precision": ratio(sum(r["expected"] is None for r in declined), len(declined)),
        "decisions": {d: sum(r["decision"] == d for r in rows) for d in ("answer", "clarify", "none")},
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
    }


def evaluate(
    search: Callable[[str, str], tuple[str, list[str]]],
    queries: Iterable[LabelledQuery],
) -> dict[str, Any]:
    """Runs each query through `search` (end to end, timed) and computes the metrics.

    Args:
        search: (query, language) -> (decision, ranked article ids).
        queries: labelled queries.

    Returns:
        The overall metrics plus the same per language under "languages".
    """
    rows = []
    for query in queries:
        start = time.perf_counter()
        decision, top = search(query.query, query.language)
        rows.append(
            {
                "language": query.language,
                "expected": query.expected,
                "decision": decision,
                "top": top,
                "ms": (time.perf_counter() - start) * 1000,
            }
        )
    result = _metrics(rows)
    result["languages"] = {
        lang: _metrics([r for r in rows if r["language"] == lang])
        for lang in LANGUAGES
        if any(r["language"] == lang for r in rows)
    }
    return result


def fit(
    articles: list[Article],
    validation: list[LabelledQuery],
    embedder: Embedder,
    objective: Objective = "utility",
    clarify: bool = True,
) -> SearchIndex:
    """Builds an index of `articles` and tunes it on `validation` (the benchmarks' entry point).

    Search it with ``index.search(text, embedder.encode_query(text), language)``, or
    embed many queries at once with ``embedder.encode_queries`` and pass one row at a time.
    """
    index = SearchIndex.build(articles, embedder)
    return index.with_calibration(tune(index, embedder.encode_queries, validation, objective, clarify))


@dataclass
class Engine:
    """An index with the embedder that made it: what the benchmarks search."""

    index: SearchIndex
    embedder: Embedder


def fit_engine(
    articles: list[Article],
    validation: list[LabelledQuery],
    embedder: Embedder,
    objective: Objective = "utility",
    clarify: bool = True,
    adapt_epochs: int = 0,
    adapted_dir: Path | None = None,
    negatives: Sequence[str] = (),
) -> Engine:
    """Like `fit`, optionally adapting the embedding model to the articles first.

    Args:
        adapt_epochs: 0 keeps the model as it is; otherwise epochs of contrastive
            fine-tuning on the articles' example questions (see `kb_index.adapt`).
        adapted_dir: where adapted models are kept, one folder per corpus
            fingerprint, so a second run reuses the first one's training.
        negatives: questions no article answers, for the adaptation (see `kb_index.adapt`).
    """
    if adapt_epochs:
        from kb_index.adapt import adapt, corpus_fingerprint

        root = adapted_dir or Path("data") / "models"
        folder = root / f"adapted-{corpus_fingerprint(embedder.model_name, articles, adapt_epochs, negatives)}"
        if not (folder / "modules.json").is_file():
            adapt(embedder.model_name, articles, folder, epochs=adapt_epochs, negatives=negatives)
        embedder = Embedder(str(folder), embedder.cache_path)
    return Engine(fit(articles, validation, embedder, objective, clarify), embedder)
