"""Trains and runs a Rasa 3.6 NLU baseline; run with the bot env's Python, not imported by the app.

Usage: ``.venv-bot/bin/python benchmarks/rasa_baseline.py INPUT.json CACHE_DIR OUTPUT.json``

INPUT.json holds ``{"name", "config": "diet" | "response_selector", "epochs",
"train": [[text, label], ...], "evaluate": {split: [[text, label or null], ...]}}``.
The script writes one JSON object to OUTPUT.json: ``{"key", "epochs", "train_seconds",
"predict_seconds", "predictions": {split: [{"label", "prediction", "confidence", "ms"}, ...]}}``.
Trained models and predictions are kept under CACHE_DIR/<key>/, where the key hashes
the data, the pipeline and the Rasa version, so a second run only reads the cache.
Thresholds are not applied here: the caller fits them on the validation predictions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Bump when the way models are trained or predictions are made changes.
SCRIPT_VERSION = "2"
RETRIEVAL_INTENT = "faq"
SEED = 42

FEATURIZERS = """\
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
"""


def pipeline_config(kind: str, epochs: int) -> str:
    if kind == "diet":
        # No entities in these data sets: skipping the CRF head only saves time.
        head = f"""\
  - name: DIETClassifier
    epochs: {epochs}
    entity_recognition: false
    constrain_similarities: true
    random_seed: {SEED}
"""
    elif kind == "response_selector":
        head = f"""\
  - name: ResponseSelector
    retrieval_intent: {RETRIEVAL_INTENT}
    epochs: {epochs}
    constrain_similarities: true
    random_seed: {SEED}
"""
    else:
        raise SystemExit(f"unknown config {kind!r}")
    return f"recipe: default.v1\nlanguage: en\npipeline:\n{FEATURIZERS}{head}policies: []\n"


def _clean(text: str) -> str:
    # One line per example in Rasa's YAML; a leading "/" would be parsed as an intent payload.
    return " ".join(text.split()).lstrip("/") or "empty"


def nlu_yaml(kind: str, train: list[list[str]]) -> str:
    by_label: dict[str, list[str]] = {}
    for text, label in train:
        by_label.setdefault(label, []).append(_clean(text))
    lines = ['version: "3.1"', "nlu:"]
    for label, texts in sorted(by_label.items()):
        intent = f"{RETRIEVAL_INTENT}/{label}" if kind == "response_selector" else label
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in dict.fromkeys(texts)]
    if kind == "response_selector":
        # One response per intent, so selecting the response is answering with the article.
        lines.append("responses:")
        for label in sorted(by_label):
            lines += [f"  utter_{RETRIEVAL_INTENT}/{label}:", f'  - text: "Answer for {label}."']
    return "\n".join(lines) + "\n"


def domain_yaml(kind: str) -> str:
    if kind == "response_selector":
        return f'version: "3.1"\nintents:\n  - {RETRIEVAL_INTENT}\n'
    return 'version: "3.1"\n'


def cache_key(spec: dict[str, Any], config: str, nlu: str) -> str:
    from importlib import metadata

    digest = hashlib.sha256()
    for part in (SCRIPT_VERSION, metadata.version("rasa"), config, nlu, json.dumps(spec["evaluate"], sort_keys=True)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def _top(parsed: dict[str, Any], kind: str) -> tuple[str | None, float]:
    if kind == "response_selector":
        selector = parsed.get("response_selector", {}).get(RETRIEVAL_INTENT, {}).get("response", {})
        key = selector.get("intent_response_key") or ""
        label = key.split("/", 1)[1] if "/" in key else None
        return label, float(selector.get("confidence") or 0.0)
    intent = parsed.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


async def _predict(model: Path, kind: str, evaluate: dict[str, list[list[Any]]]) -> dict[str, list[dict[str, Any]]]:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    out: dict[str, list[dict[str, Any]]] = {}
    for split, examples in evaluate.items():
        rows = []
        for text, label in examples:
            started = time.perf_counter()
            parsed = await agent.parse_message(_clean(text))
            ms = (time.perf_counter() - started) * 1000
            prediction, confidence = _top(parsed, kind)
            rows.append({"label": label, "prediction": prediction, "confidence": confidence, "ms": round(ms, 3)})
        out[split] = rows
    return out


def run(spec: dict[str, Any], cache_dir: Path) -> dict[str, Any]:
    kind, epochs = str(spec["config"]), int(spec["epochs"])
    config, nlu = pipeline_config(kind, epochs), nlu_yaml(kind, spec["train"])
    key = cache_key(spec, config, nlu)
    target = cache_dir / key
    result_file = target / "predictions.json"
    if result_file.is_file():
        cached: dict[str, Any] = json.loads(result_file.read_text())
        return cached
    target.mkdir(parents=True, exist_ok=True)
    model = target / "model.tar.gz"
    train_seconds = 0.0
    # Rasa prints progress and notices on stdout, which the caller sends to the log.
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs every parsed message at debug level; thousands of them only cost time.
    configure_structlog(logging.WARNING)
    if not model.is_file():
        from rasa.model_training import train_nlu

        with tempfile.TemporaryDirectory(prefix="firstline-rasa-") as work:
            folder = Path(work)
            (folder / "config.yml").write_text(config)
            (folder / "nlu.yml").write_text(nlu)
            (folder / "domain.yml").write_text(domain_yaml(kind))
            started = time.monotonic()
            trained = train_nlu(
                str(folder / "config.yml"),
                str(folder / "nlu.yml"),
                str(folder / "out"),
                fixed_model_name="model",
                domain=str(folder / "domain.yml"),
            )
            train_seconds = time.monotonic() - started
            if not trained:
                raise SystemExit("rasa training produced no model")
            # The temporary directory may be on another file system than the cache.
            shutil.move(trained, model)
            (target / "train_seconds").write_text(f"{train_seconds:.1f}")
    else:
        train_seconds = float((target / "train_seconds").read_text())
    (target / "config.yml").write_text(config)
    started = time.monotonic()
    predictions = asyncio.run(_predict(model, kind, spec["evaluate"]))
    predict_seconds = time.monotonic() - started
    result = {
        "key": key,
        "name": spec.get("name", ""),
        "config": kind,
        "epochs": epochs,
        "train_examples": len(spec["train"]),
        "train_seconds": round(train_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "predictions": predictions,
    }
    staging = target / "predictions.json.tmp"
    staging.write_text(json.dumps(result))
    staging.replace(result_file)
    return result


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    spec = json.loads(Path(argv[0]).read_text())
    # A file, not stdout: TensorFlow's C++ side writes to the process's stdout directly, and
    # once put a line into the middle of the printed result.
    Path(argv[2]).write_text(json.dumps(run(spec, Path(argv[1]))))


if __name__ == "__main__":
    main(sys.argv[1:])
