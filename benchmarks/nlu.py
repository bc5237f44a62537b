"""The bot's NLU: intent classification per language, of the one multilingual model.

The product trains one Rasa model on the English, Latvian and Russian examples together
(`config.yml`, `bot/data/nlu/*.yml`). This benchmark does the same in k folds: the
examples are split stratified by intent and language, each fold trains the product's
pipeline unchanged (its intent classifier and seed, the FallbackClassifier) on the
other folds, and every example is predicted once by the model that did not see it.
Metrics are then computed per language on those out-of-fold predictions, twice: on the
classifier's top intent, which is what `rasa test` scores (it undoes the
FallbackClassifier), and on the
intent the bot acts on, where `nlu_fallback` (confidence below the threshold) is a miss
for a dialogue intent: the bot sends such a message to the knowledge base.
"Dialogue intents" are the 17 intents users type (everything in `bot/data/nlu`; not the
`EXTERNAL_*` intents of the firstline service or the button-only `choose_article`).

When `models/firstline.tar.gz` is newer than the bot's data (as `make model` leaves it),
the held-out examples in `tests/bot/nlu_holdout.yml` are scored with it as well.

Rasa runs in the bot env: this file is also the worker script,
``.venv-bot/bin/python benchmarks/nlu.py SPEC.json``, which prints one JSON object.
Results are cached under ``<data_dir>/bench-cache/nlu/<key>/`` where the key hashes the
data, the config, the domain, the Rasa pin and the fold settings; a rerun with the same
data only reads the cache. Each fold is cached on its own, so an interrupted run resumes.
Cost, measured on 2 CPU cores shared with other jobs: 4.5 to 6.5 minutes of training per
fold, 25 to 36 minutes for a first run (two runs, load 2.4 to 5); a cached rerun takes
about a second (it hashes the trained bot model).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firstline.config import Settings

#: Bump when the way folds are built, trained or predicted changes.
SCRIPT_VERSION = "2"
FOLDS = 5
SEED = 42
LANGUAGES = ("en", "lv", "ru")
FALLBACK = "nlu_fallback"
#: The knowledge-base question intent; reported with and without it.
QUESTION_INTENT = "ask_question"
#: Which prediction a metric reads: the intent classifier's top intent (as `rasa test`), or
#: the bot's (after the fallback). The key "diet" predates other classifiers; cached runs use it.
CLASSIFIER, BOT = "diet", "prediction"

ROOT = Path(__file__).resolve().parent.parent
BOT_PYTHON = ROOT / ".venv-bot" / "bin" / "python"
CONFIG = ROOT / "config.yml"
NLU_FILES = {language: ROOT / "bot" / "data" / "nlu" / f"{language}.yml" for language in LANGUAGES}
DOMAIN = ROOT / "bot" / "domain"
HOLDOUT = ROOT / "tests" / "bot" / "nlu_holdout.yml"
PRODUCT_MODEL = ROOT / "models" / "firstline.tar.gz"
RASA_PIN = ROOT / "bot" / "requirements.txt"


# -- app side -----------------------------------------------------------------
def run(settings: Settings) -> str:
    import yaml

    from benchmarks.common import table

    if not BOT_PYTHON.is_file():
        return f"### Bot NLU\n\nskipped: the bot env is missing ({BOT_PYTHON}); run `make install`\n"
    cache = settings.data_dir / "bench-cache" / "nlu"
    key = _cache_key()
    holdout_key = _holdout_key()
    started = time.monotonic()
    result = _load_or_run(cache, key, holdout_key)
    seconds = time.monotonic() - started

    folds = result["folds"]
    cv = [p for fold in folds for p in fold["predictions"]]
    intents = sorted({p["label"] for p in cv})
    out = [
        table(
            f"Bot NLU: {len(folds)}-fold cross-validation of the one multilingual model, per language",
            [
                "language",
                "examples",
                "accuracy",
                f"macro-F1 ({len(intents)} intents)",
                f"macro-F1 without {QUESTION_INTENT}",
                "macro-F1 per fold (min–max)",
                "accuracy with fallback",
                "macro-F1 with fallback",
                f"predicted {FALLBACK}",
            ],
            [_language_row(language, cv, intents, folds) for language in (*LANGUAGES, "all")],
        ),
        table(
            "Bot NLU: F1 per intent and language (cross-validation, the classifier's top intent)",
            ["intent", *LANGUAGES, "examples (en / lv / ru)"],
            [
                [
                    intent,
                    *(
                        f"{_f1_per_intent(_of(cv, language), [intent], CLASSIFIER)[intent]:.3f}"
                        for language in LANGUAGES
                    ),
                    " / ".join(str(sum(p["label"] == intent for p in _of(cv, language))) for language in LANGUAGES),
                ]
                for intent in intents
            ],
        ),
    ]
    holdout = result.get("holdout")
    if holdout:
        rows = holdout["predictions"]
        out.append(
            table(
                "Bot NLU: held-out examples (tests/bot/nlu_holdout.yml) with the trained bot model",
                [
                    "language",
                    "examples",
                    "accuracy",
                    f"macro-F1 ({len(intents)} intents)",
                    f"macro-F1 without {QUESTION_INTENT}",
                    "errors",
                    "accuracy with fallback",
                    "macro-F1 with fallback",
                ],
                [_holdout_row(language, rows, intents) for language in (*LANGUAGES, "all")],
            )
        )
    else:
        out.append(
            "### Bot NLU: held-out examples\n\nskipped: models/firstline.tar.gz is missing or older than the bot's "
            "data; run `make model`\n"
        )
    train_seconds = [float(f["train_seconds"]) for f in folds]
    out.append(
        table(
            "Bot NLU: run",
            [
                "folds",
                "training examples per fold",
                "pipeline",
                "train s per fold (mean)",
                "fold s total",
                "load",
                "this call s",
            ],
            [
                [
                    len(folds),
                    f"{min(f['train_examples'] for f in folds)}–{max(f['train_examples'] for f in folds)}",
                    pipeline_name(yaml.safe_load(CONFIG.read_text())),  # the cache key covers config.yml
                    f"{sum(train_seconds) / len(train_seconds):.0f}",
                    f"{sum(float(f['seconds']) for f in folds):.0f}",
                    f"{result['load']:.1f}",
                    f"{seconds:.1f}" + (" (cached)" if result.get("cached") else ""),
                ]
            ],
        )
    )
    return "\n".join(out)


def _classifier_scores(rows: list[dict[str, Any]], intents: list[str]) -> list[str]:
    """Accuracy, macro-F1, and macro-F1 without the question intent, of the classifier's top intent."""
    return [
        f"{accuracy(rows, CLASSIFIER):.3f}",
        f"{macro_f1(rows, intents, CLASSIFIER):.3f}",
        f"{macro_f1(rows, [i for i in intents if i != QUESTION_INTENT], CLASSIFIER):.3f}",
    ]


def _language_row(
    language: str, predictions: list[dict[str, Any]], intents: list[str], folds: list[dict[str, Any]]
) -> list[object]:
    rows = _of(predictions, language)
    per_fold = [macro_f1(_of(f["predictions"], language), intents, CLASSIFIER) for f in folds]
    return [
        language,
        len(rows),
        *_classifier_scores(rows, intents),
        f"{min(per_fold):.3f}–{max(per_fold):.3f}",
        f"{accuracy(rows, BOT):.3f}",
        f"{macro_f1(rows, intents, BOT):.3f}",
        f"{sum(p[BOT] == FALLBACK for p in rows) / max(1, len(rows)):.1%}",
    ]


def _holdout_row(language: str, predictions: list[dict[str, Any]], intents: list[str]) -> list[object]:
    rows = _of(predictions, language)
    return [
        language,
        len(rows),
        *_classifier_scores(rows, intents),
        sum(p["label"] != p[CLASSIFIER] for p in rows),
        f"{accuracy(rows, BOT):.3f}",
        f"{macro_f1(rows, intents, BOT):.3f}",
    ]


def pipeline_name(config: dict[str, Any]) -> str:
    """config.yml's intent classifier, e.g. "config.yml (LogisticRegressionClassifier)"."""
    classifiers = [
        c["name"]
        for c in config["pipeline"]
        if c["name"].endswith("Classifier")
        and c["name"] != "FallbackClassifier"
        and c.get("intent_classification", True)
    ]
    return f"config.yml ({', '.join(classifiers)})"


def _of(predictions: Iterable[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    return [p for p in predictions if language == "all" or p["language"] == language]


def accuracy(rows: Sequence[dict[str, Any]], key: str) -> float:
    return sum(1 for p in rows if p["label"] == p[key]) / max(1, len(rows))


def _f1_per_intent(rows: Sequence[dict[str, Any]], intents: Sequence[str], key: str) -> dict[str, float]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # true positives, false positives, false negatives
    for p in rows:
        if p["label"] == p[key]:
            counts[p["label"]][0] += 1
        else:
            counts[p[key]][1] += 1
            counts[p["label"]][2] += 1
    scores = {}
    for intent in intents:
        tp, fp, fn = counts[intent]
        scores[intent] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return scores


def macro_f1(rows: Sequence[dict[str, Any]], intents: Sequence[str], key: str) -> float:
    """Unweighted mean of the F1 of `intents`; a prediction outside them (nlu_fallback) is a miss."""
    scores = _f1_per_intent(rows, intents, key)
    return sum(scores.values()) / max(1, len(scores))


def _digest(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def _cache_key() -> str:
    files = [CONFIG, RASA_PIN, *NLU_FILES.values(), *sorted(DOMAIN.glob("*.yml"))]
    settings = f"{SCRIPT_VERSION} {FOLDS} {SEED}".encode()
    return _digest([settings, *(p.read_bytes() for p in files)])


def _bot_sources() -> list[Path]:
    """What `make model` retrains on (the Makefile's BOT_SOURCES)."""
    return [CONFIG, *(p for p in (ROOT / "bot").rglob("*") if p.suffix in (".yml", ".py") and p.is_file())]


def _holdout_key() -> str | None:
    """Identifies the trained bot model and the held-out file; None when the model is stale."""
    if not PRODUCT_MODEL.is_file():
        return None
    if max(p.stat().st_mtime for p in _bot_sources()) > PRODUCT_MODEL.stat().st_mtime:
        return None
    with PRODUCT_MODEL.open("rb") as handle:
        model_digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return _digest([SCRIPT_VERSION.encode(), model_digest.encode(), HOLDOUT.read_bytes()])


def _load_or_run(cache: Path, key: str, holdout_key: str | None) -> dict[str, Any]:
    target = cache / key
    result_file = target / "result.json"
    holdout_file = cache / "holdout" / f"{holdout_key}.json"
    if result_file.is_file() and (holdout_key is None or holdout_file.is_file()):
        result: dict[str, Any] = json.loads(result_file.read_text())
        result["holdout"] = json.loads(holdout_file.read_text()) if holdout_key else None
        result["cached"] = True
        return result
    target.mkdir(parents=True, exist_ok=True)
    holdout_file.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "folds": FOLDS,
        "seed": SEED,
        "config": str(CONFIG),
        "domain": str(DOMAIN),
        "nlu": {language: str(path) for language, path in NLU_FILES.items()},
        "cache_dir": str(target),
        "holdout": {"file": str(HOLDOUT), "model": str(PRODUCT_MODEL), "out": str(holdout_file)}
        if holdout_key
        else None,
    }
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        HF_HUB_OFFLINE="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        # The trained bot model names its own policy (bot.addons.handoff_policy).
        PYTHONPATH=str(ROOT),
        # Keeps benchmark models out of Rasa's training cache, shared with `make model`.
        RASA_MAX_CACHE_SIZE="0",
    )
    log = target / "worker.log"
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="firstline-nlu-spec-") as handle:
        json.dump(spec, handle)
        handle.flush()
        with log.open("a") as stderr:
            done = subprocess.run(
                [str(BOT_PYTHON), str(Path(__file__).resolve()), handle.name],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=ROOT,
                check=False,
            )
    if done.returncode != 0:
        raise RuntimeError(f"the NLU benchmark worker failed with exit code {done.returncode}; see {log}")
    result = json.loads(done.stdout)
    staging = target / "result.json.tmp"
    staging.write_text(json.dumps({k: v for k, v in result.items() if k != "holdout"}))
    staging.replace(result_file)
    return result


# -- worker side (bot env, Python 3.10) ------------------------------------------
def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import numpy as np
    import yaml
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from rasa.utils.log_utils import configure_structlog
    from sklearn.model_selection import StratifiedKFold

    # Rasa logs every parsed message at debug level; thousands of them only cost time.
    configure_structlog(logging.WARNING)
    cache = Path(spec["cache_dir"])
    loaded = {language: load_data(path) for language, path in spec["nlu"].items()}
    examples = [(m, language) for language, data in loaded.items() for m in data.intent_examples]
    synonyms: dict[str, str] = {}
    regexes: list[dict[str, str]] = []
    lookups: list[dict[str, Any]] = []
    for data in loaded.values():
        synonyms.update(data.entity_synonyms)
        regexes += [r for r in data.regex_features if r not in regexes]
        lookups += data.lookup_tables
    # The product's pipeline as it is; policies do not take part in NLU training.
    config = yaml.safe_load(Path(spec["config"]).read_text())
    config["policies"] = []
    strata = [f"{m.get('intent')}|{language}" for m, language in examples]
    splitter = StratifiedKFold(n_splits=int(spec["folds"]), shuffle=True, random_state=int(spec["seed"]))
    load = os.getloadavg()[0]
    folds = []
    for index, (train_rows, test_rows) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        fold_file = cache / f"fold-{index}.json"
        if fold_file.is_file():
            folds.append(json.loads(fold_file.read_text()))
            continue
        started = time.monotonic()
        train = TrainingData(
            training_examples=[examples[i][0] for i in train_rows],
            entity_synonyms=synonyms,
            regex_features=regexes,
            lookup_tables=lookups,
        )
        with tempfile.TemporaryDirectory(prefix="firstline-nlu-fold-") as work:
            folder = Path(work)
            (folder / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
            (folder / "nlu.yml").write_text(RasaYAMLWriter().dumps(train))
            trained_at = time.monotonic()
            model = train_nlu(
                str(folder / "config.yml"),
                str(folder / "nlu.yml"),
                str(folder / "out"),
                fixed_model_name=f"fold-{index}",
                domain=spec["domain"],
            )
            train_seconds = time.monotonic() - trained_at
            if not model:
                raise SystemExit(f"fold {index}: rasa training produced no model")
            tests = [(examples[i][0].get("text"), examples[i][0].get("intent"), examples[i][1]) for i in test_rows]
            predictions = asyncio.run(_predict(Path(model), tests))
        fold = {
            "fold": index,
            "train_examples": len(train_rows),
            "train_seconds": round(train_seconds, 1),
            "seconds": round(time.monotonic() - started, 1),
            "predictions": predictions,
        }
        staging = cache / f"fold-{index}.json.tmp"
        staging.write_text(json.dumps(fold))
        staging.replace(fold_file)
        folds.append(fold)
    result: dict[str, Any] = {
        "load": load,
        "folds": folds,
        "holdout": None,
    }
    if spec.get("holdout"):
        holdout = spec["holdout"]
        out = Path(holdout["out"])
        if not out.is_file():
            tests = _holdout_examples(load_data(holdout["file"]).intent_examples)
            staging = out.with_suffix(".tmp")
            staging.write_text(json.dumps({"predictions": asyncio.run(_predict(Path(holdout["model"]), tests))}))
            staging.replace(out)
        result["holdout"] = json.loads(out.read_text())
    return result


def _holdout_examples(messages: Sequence[Any]) -> list[tuple[str, str, str]]:
    """(text, intent, language): each intent lists its English, then Latvian, then Russian thirds."""
    by_intent: dict[str, list[str]] = {}
    for m in messages:
        by_intent.setdefault(m.get("intent"), []).append(m.get("text"))
    rows = []
    for intent, texts in by_intent.items():
        if len(texts) % len(LANGUAGES):
            raise SystemExit(f"holdout intent {intent}: {len(texts)} examples are not three equal language parts")
        third = len(texts) // len(LANGUAGES)
        rows += [(text, intent, LANGUAGES[i // third]) for i, text in enumerate(texts)]
    return rows


async def _predict(model: Path, tests: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    rows = []
    for text, label, language in tests:
        parsed = await agent.parse_message(text)
        intent = parsed.get("intent") or {}
        # Below the threshold the FallbackClassifier puts nlu_fallback first; the classifier's intent follows.
        top = next((r for r in parsed.get("intent_ranking") or [] if r.get("name") != FALLBACK), intent)
        rows.append(
            {
                "text": text,
                "language": language,
                "label": label,
                BOT: intent.get("name"),
                CLASSIFIER: top.get("name"),
                "confidence": round(float(top.get("confidence") or 0.0), 4),
            }
        )
    return rows


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    spec = json.loads(Path(argv[0]).read_text())
    # Rasa prints progress on stdout; stdout is reserved for the JSON result.
    with contextlib.redirect_stdout(sys.stderr):
        result = _worker(spec)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
