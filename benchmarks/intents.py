"""What the public intent benchmarks (CLINC150, BANKING77) share: the systems they compare.

Each system gets the same training utterances (and the data set's out-of-scope
training questions, where it has them) and, per objective, one answer/none threshold
fitted on the validation split: "accuracy_floor" (the most out-of-scope recall whose
in-scope accuracy is at least 95 % with 95 % confidence), "recall_floor" (the most
in-scope accuracy whose out-of-scope recall is at least 70 % with 95 % confidence) and
"balanced" (in-scope accuracy plus out-of-scope recall). The test split is then scored
once with `kb_index.tuning.evaluate`, so every row uses the same metric definitions.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import percentile, table
from benchmarks.datasets import OUT_OF_SCOPE, IntentDataset
from firstline.config import REPO_ROOT
from kb_index.corpus import Article
from kb_index.embedder import Embedder
from kb_index.encoders import DEFAULT_MODEL
from kb_index.index import SearchIndex
from kb_index.tuning import (
    MIN_IN_SCOPE_ACCURACY,
    MIN_OOS_RECALL,
    LabelledQuery,
    Objective,
    evaluate,
    fit_engine,
    tune,
    wilson_lower,
)

BOT_PYTHON = REPO_ROOT / ".venv-bot" / "bin" / "python"
RASA_SCRIPT = Path(__file__).with_name("rasa_baseline.py")
#: End-to-end latency (embedding the query included) is timed on this many test queries.
LATENCY_SAMPLE = 500
TOP_K = 5


OBJECTIVES: tuple[Objective, ...] = ("accuracy_floor", "recall_floor", "balanced")


@dataclass
class SystemResult:
    name: str
    #: Objective → `kb_index.tuning.evaluate` metrics on the test split.
    test: dict[str, dict[str, Any]]
    #: Objective → the fitted threshold, for reading.
    threshold: dict[str, str]
    #: Median milliseconds per query, end to end; None when not measured.
    p50_ms: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(RASA_TELEMETRY_ENABLED="false", HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    # Rasa's training cache (.rasa/cache, shared with the bot's `make model`) would fill up with
    # benchmark models and evict the bot's entries; the script keeps its own per-key cache instead.
    env["RASA_MAX_CACHE_SIZE"] = "0"
    return env


# -- firstline's engine ------------------------------------------------------
def run_engine(
    dataset: IntentDataset, cache_dir: Path, adapt_epochs: int, full: bool = False, model: str = ""
) -> SystemResult:
    """Adapts the model, fits the index on validation and searches the test queries.

    The index is fitted with the first of `OBJECTIVES`, then re-tuned for the others.

    Args:
        model: the embedding model setting (empty: the default encoder).
        adapt_epochs: epochs of `firstline kb adapt`; the data set's out-of-scope training
            questions, if any, are its negatives.
        full: once the thresholds are fitted, the articles also take the validation
            utterances (`IntentDataset.full_articles`); the adapted model stays the same.
    """
    negatives = dataset.negatives
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    engine = fit_engine(
        dataset.articles,
        dataset.validation,
        Embedder(model, cache_path=cache_dir / "embeddings.sqlite"),
        objective=OBJECTIVES[0],
        clarify=False,
        adapt_epochs=adapt_epochs,
        adapted_dir=cache_dir / "models",
        negatives=negatives,
    )
    fit_seconds = time.monotonic() - started
    embedder = engine.embedder
    calibrations = {OBJECTIVES[0]: engine.index.calibration} | {
        objective: tune(engine.index, embedder.encode_queries, dataset.validation, objective, clarify=False)
        for objective in OBJECTIVES[1:]
    }
    final = engine.index
    if full and dataset.full_articles is not None:
        final = final.updated(dataset.full_articles, [], embedder)
    texts = [q.query for q in dataset.test]
    vectors = embedder.encode_queries(texts)
    row_of = {text: i for i, text in enumerate(texts)}
    # Batch-embedded vectors keep the accuracy run fast; a user's query is embedded alone.
    sample = _sample(dataset.test, LATENCY_SAMPLE)
    embedder.encode_query(sample[0].query)  # the first call loads the model
    load = os.getloadavg()[0]
    tests: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, str] = {}
    timed: dict[str, Any] = {}
    for objective in OBJECTIVES:
        index = final.with_calibration(calibrations[objective])

        def search(query: str, language: str, index: SearchIndex = index) -> tuple[str, list[str]]:
            i = row_of[query]
            found = index.search(query, vectors[i : i + 1], language, top_k=TOP_K)
            return found.decision, [r.article.id for r in found.results]

        def end_to_end(query: str, language: str, index: SearchIndex = index) -> tuple[str, list[str]]:
            found = index.search(query, embedder.encode_query(query), language, top_k=TOP_K)
            return found.decision, [r.article.id for r in found.results]

        tests[objective] = evaluate(search, dataset.test)
        thresholds[objective] = _at_least("confidence", index.calibration.for_language("en").answer_threshold)
        if not timed:
            timed = evaluate(end_to_end, sample)
    calibration = calibrations[OBJECTIVES[0]].for_language("en")
    encoder = (model or DEFAULT_MODEL).removeprefix("bundled:")
    if adapt_epochs:
        name = f"firstline engine ({encoder} adapted for {adapt_epochs} epoch{'s' if adapt_epochs > 1 else ''}"
        name += ", oos_train as negatives, + BM25)" if negatives else ", + BM25)"
    else:
        name = f"firstline engine ({encoder}, not adapted, + BM25)"
    return SystemResult(
        name + (", then all labelled utterances as examples" if final is not engine.index else ""),
        tests,
        thresholds,
        timed["p50_ms"],
        {
            "search_p50_ms": tests[OBJECTIVES[0]]["p50_ms"],
            "dense_weight": calibration.dense_weight,
            "fit_seconds": fit_seconds,
            # The machine is shared: latency is only meaningful next to how busy it was.
            "load": load,
            "single_answer": False,
        },
    )


def _sample(queries: Sequence[LabelledQuery], size: int) -> list[LabelledQuery]:
    step = max(1, len(queries) // size)
    return list(queries[::step][:size])


# -- BM25 baseline -----------------------------------------------------------
class Bm25Baseline:
    """Plain bm25s over each intent's concatenated utterances (English stop words, Snowball stems)."""

    def __init__(self, articles: Sequence[Article], negatives: Sequence[str] = ()) -> None:
        import bm25s
        import Stemmer

        self._bm25s: Any = bm25s
        self._stemmer: Any = Stemmer.Stemmer("english")
        self.ids = [a.id for a in articles]
        corpus = [" ".join(a.questions) for a in articles]
        if negatives:  # one more document, whose best match means "decline"
            self.ids.append(OUT_OF_SCOPE)
            corpus.append(" ".join(negatives))
        self.retriever: Any = bm25s.BM25()
        self.retriever.index(self._tokens(corpus), show_progress=False)

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        tokens: list[list[str]] = self._bm25s.tokenize(
            texts, stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False
        )
        return tokens

    def rank(self, text: str) -> tuple[list[str], float]:
        """The best intents and the top raw BM25 score (0 when no query term is known)."""
        terms = [t for t in self._tokens([text])[0] if t in self.retriever.vocab_dict]
        if not terms:
            return [], 0.0
        scores = np.asarray(self.retriever.get_scores(terms))
        order = np.argsort(-scores)[:TOP_K]
        return [self.ids[int(i)] for i in order], float(scores[order[0]])


def run_bm25(dataset: IntentDataset) -> SystemResult:
    baseline = Bm25Baseline(dataset.articles, dataset.negatives)

    def ranked(text: str) -> tuple[list[str], float]:
        ids, score = baseline.rank(text)
        return ([], 0.0) if ids[:1] == [OUT_OF_SCOPE] else ([i for i in ids if i != OUT_OF_SCOPE], score)

    validation = []
    for query in dataset.validation:
        ids, score = ranked(query.query)
        validation.append((query.expected, ids[0] if ids else None, score))
    tests: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, str] = {}
    for objective in OBJECTIVES:
        threshold = fit_threshold(validation, objective)

        def search(query: str, language: str, threshold: float = threshold) -> tuple[str, list[str]]:
            ids, score = ranked(query)
            return ("answer" if ids and score >= threshold else "none"), ids

        tests[objective] = evaluate(search, dataset.test)
        thresholds[objective] = _at_least("BM25 score", threshold)
    name = "BM25 (bm25s, intent = all its utterances" + (", oos_train as one more)" if dataset.negatives else ")")
    return SystemResult(name, tests, thresholds, tests["balanced"]["p50_ms"])


# -- threshold ---------------------------------------------------------------
def fit_threshold(validation: Sequence[tuple[str | None, str | None, float]], objective: Objective) -> float:
    """The answer threshold on a confidence that is best for `objective` on validation.

    Args:
        validation: (expected id or None for out-of-scope, top prediction, confidence).
        objective: "balanced", "recall_floor" or "accuracy_floor", as in `kb_index.tuning`.

    Returns:
        Answer when confidence ≥ the threshold; halfway between two observed
        confidences, so the test split is not decided by an exact tie. Ties in the
        objective go to the lowest threshold (answering more).
    """
    values = sorted({c for _, _, c in validation})
    if not values:
        return 0.0
    in_scope = [(p == e, c) for e, p, c in validation if e is not None]
    oos = np.array([c for e, _, c in validation if e is None])
    hits = np.array([c for hit, c in in_scope if hit])
    candidates = np.array([-np.inf, *[(a + b) / 2 for a, b in itertools.pairwise(values)], np.inf])
    correct = len(hits) - np.searchsorted(np.sort(hits), candidates, side="left")
    rejected = np.searchsorted(np.sort(oos), candidates, side="left")
    accuracy = correct / max(1, len(in_scope))
    recall = rejected / len(oos) if len(oos) else np.zeros(len(candidates))
    value = accuracy + recall
    # The same rules as kb_index.tuning._score: meeting the floor beats any balanced value.
    if objective == "recall_floor":
        floor = np.array([wilson_lower(int(r), len(oos)) >= MIN_OOS_RECALL for r in rejected])
        value = np.where(floor, 2.0 + accuracy, value)
    if objective == "accuracy_floor":
        floor = np.array([wilson_lower(int(c), len(in_scope)) >= MIN_IN_SCOPE_ACCURACY for c in correct])
        value = np.where(floor, 2.0 + recall, value)
    return float(candidates[int(np.argmax(value))])


def _at_least(what: str, threshold: float) -> str:
    # -inf: validation had no out-of-scope queries, so declining could only lose answers.
    return "none (answers all)" if threshold == -np.inf else f"{what} ≥ {threshold:.2f}"


# -- Rasa --------------------------------------------------------------------
@dataclass
class RasaRun:
    config: str
    epochs: int
    train_examples: int
    train_seconds: float
    predict_seconds: float
    predictions: dict[str, list[dict[str, Any]]]


def train_rasa(
    dataset: IntentDataset,
    config: str,
    epochs: int,
    cache_dir: Path,
    max_per_intent: int | None = None,
) -> RasaRun:
    """Trains (or reads from the cache) one Rasa NLU model in the bot env and predicts both splits.

    Raises:
        RuntimeError: the bot env is missing or the script failed (its log is named).
    """
    if not BOT_PYTHON.is_file():
        raise RuntimeError(f"the bot env is missing ({BOT_PYTHON}); run `make install`")
    train = subsample(dataset.train, max_per_intent) + [(text, OUT_OF_SCOPE) for text in dataset.negatives]
    spec = {
        "name": dataset.name,
        "config": config,
        "epochs": epochs,
        "train": train,
        "evaluate": {
            split: [[q.query, q.expected] for q in queries]
            for split, queries in (("validation", dataset.validation), ("test", dataset.test))
        },
    }
    rasa_dir = cache_dir / "rasa"
    rasa_dir.mkdir(parents=True, exist_ok=True)
    log = rasa_dir / f"{dataset.name}-{config}.log"
    with tempfile.TemporaryDirectory(prefix="firstline-rasa-") as work:
        spec_file, output = Path(work) / "spec.json", Path(work) / "result.json"
        spec_file.write_text(json.dumps(spec))
        with log.open("w") as stderr:
            done = subprocess.run(
                [str(BOT_PYTHON), str(RASA_SCRIPT), str(spec_file), str(rasa_dir), str(output)],
                stdout=stderr,
                stderr=stderr,
                env=_environment(),
                cwd=REPO_ROOT,
                check=False,
            )
        if done.returncode != 0 or not output.is_file():
            raise RuntimeError(f"Rasa {config} failed with exit code {done.returncode}; see {log}")
        result = json.loads(output.read_text())
    return RasaRun(
        config,
        int(result["epochs"]),
        int(result["train_examples"]),
        float(result["train_seconds"]),
        float(result["predict_seconds"]),
        result["predictions"],
    )


def subsample(train: Sequence[tuple[str, str]], per_intent: int | None) -> list[tuple[str, str]]:
    """The first `per_intent` utterances of every intent, in file order (all when None)."""
    if per_intent is None:
        return list(train)
    kept: dict[str, int] = {}
    chosen = []
    for text, label in train:
        if kept.get(label, 0) < per_intent:
            kept[label] = kept.get(label, 0) + 1
            chosen.append((text, label))
    return chosen


def score_rasa(dataset: IntentDataset, run: RasaRun, name: str) -> SystemResult:
    """Applies FallbackClassifier's rule (confidence < threshold → fallback) with a fitted threshold.

    A prediction of the out-of-scope intent (learnt from `IntentDataset.negatives`) declines.
    """

    def predicted(p: dict[str, Any]) -> tuple[str | None, float]:
        return (None, 0.0) if p["prediction"] == OUT_OF_SCOPE else (p["prediction"], float(p["confidence"]))

    validation = [(p["label"], *predicted(p)) for p in run.predictions["validation"]]
    # A prediction depends only on the text, so a repeated test text maps to the same one.
    by_text = {q.query: predicted(p) for q, p in zip(dataset.test, run.predictions["test"], strict=True)}
    tests: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, str] = {}
    for objective in OBJECTIVES:
        threshold = fit_threshold(validation, objective)

        def search(query: str, language: str, threshold: float = threshold) -> tuple[str, list[str]]:
            prediction, confidence = by_text[query]
            top = [prediction] if prediction else []
            return ("answer" if top and confidence >= threshold else "none"), top

        tests[objective] = evaluate(search, dataset.test)
        thresholds[objective] = _at_least("confidence", threshold)
    latencies = [float(p["ms"]) for p in run.predictions["test"] if "ms" in p]
    return SystemResult(
        name,
        tests,
        thresholds,
        percentile(latencies, 50) if latencies else None,
        {
            "train_seconds": run.train_seconds,
            "epochs": run.epochs,
            "train_examples": run.train_examples,
            # Only the top prediction is recorded, so top-3 says nothing.
            "single_answer": True,
        },
    )


RASA_SYSTEMS = (
    ("diet", "Rasa 3.6 DIETClassifier + FallbackClassifier"),
    ("response_selector", "Rasa 3.6 ResponseSelector"),
)


def run_rasa(
    dataset: IntentDataset, cache_dir: Path, epochs: dict[str, int], max_per_intent: int | None = None
) -> tuple[list[SystemResult], list[str]]:
    """Both Rasa baselines, and a line for each that could not run."""
    sample = "" if max_per_intent is None else f", first {max_per_intent} utterances per intent"
    results: list[SystemResult] = []
    failures: list[str] = []
    for config, label in RASA_SYSTEMS:
        try:
            trained = train_rasa(dataset, config, epochs[config], cache_dir, max_per_intent)
        except RuntimeError as exc:
            failures.append(f"{label}: not run ({exc})")
            continue
        results.append(score_rasa(dataset, trained, f"{label} ({epochs[config]} epochs{sample})"))
    return results, failures


def rasa_training_table(results: Sequence[SystemResult]) -> str:
    """How the Rasa rows were trained; empty when none ran."""
    rasa = [r for r in results if "epochs" in r.notes]
    if not rasa:
        return ""
    return "\n" + table(
        "Rasa training (bot env, 2 CPU cores; cached under data/bench-cache/rasa/)",
        ["system", "training utterances", "epochs", "training s"],
        [[r.name, r.notes["train_examples"], r.notes["epochs"], f"{r.notes['train_seconds']:.0f}"] for r in rasa],
    )
