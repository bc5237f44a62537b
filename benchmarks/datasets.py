"""Public intent data sets as knowledge bases: CLINC150 and BANKING77, read in place.

Every intent becomes one English article whose example questions are the intent's
training utterances; validation and test utterances become labelled queries (an
out-of-scope one expects no article). See ../shared/datasets/README.md for the
protocol: tune on validation only, report test once.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from firstline.config import REPO_ROOT
from kb_index.corpus import Article
from kb_index.tuning import LabelledQuery

#: Where the shared data sets live unless FIRSTLINE_DATASETS_DIR says otherwise.
DEFAULT_ROOT = REPO_ROOT.parent / "shared" / "datasets"
#: The label the baselines learn out-of-scope training questions under (no CLINC150 intent has it).
OUT_OF_SCOPE = "out_of_scope"
#: BANKING77 has no validation split; this seed fixes the one carved out of train.csv.
BANKING77_SEED = 77
BANKING77_VALIDATION_FRACTION = 0.1


@dataclass(frozen=True)
class IntentDataset:
    name: str
    articles: list[Article]
    #: (utterance, intent) pairs the articles were built from, for the classifiers.
    train: list[tuple[str, str]]
    validation: list[LabelledQuery]
    test: list[LabelledQuery]
    #: The articles with the validation utterances added back, for a final fit on all the
    #: labelled data once thresholds are fixed (as the published BANKING77 figures train
    #: on all of train.csv); None when validation is a split of its own.
    full_articles: list[Article] | None = None
    #: Training questions that no intent answers (CLINC150's oos_train), to learn from.
    negatives: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [a.id for a in self.articles]

    def fingerprint(self) -> str:
        """Changes whenever any text or label changes (for caches keyed on the data)."""
        digest = hashlib.sha256(self.name.encode())
        for text, label in self.train:
            digest.update(f"{label}\0{text}\n".encode())
        for split in (self.validation, self.test):
            digest.update(b"\1")
            for query in split:
                digest.update(f"{query.expected}\0{query.query}\n".encode())
        return digest.hexdigest()


def datasets_root() -> Path:
    return Path(os.environ.get("FIRSTLINE_DATASETS_DIR") or DEFAULT_ROOT)


def articles_for(train: list[tuple[str, str]]) -> list[Article]:
    questions: dict[str, list[str]] = {}
    for text, label in train:
        questions.setdefault(label, []).append(text)
    articles = []
    for label in sorted(questions):
        title = label.replace("_", " ")
        articles.append(
            Article(
                id=label,
                language="en",
                title=title,
                body=f"Answer for: {title}.",
                # Duplicate utterances would only add identical units to the index.
                questions=list(dict.fromkeys(questions[label])),
            )
        )
    return articles


def _queries(pairs: list[tuple[str, str | None]]) -> list[LabelledQuery]:
    return [LabelledQuery(text, "en", label) for text, label in pairs]


def load_clinc150(path: Path | None = None) -> IntentDataset:
    """CLINC150 "full": train → articles; oos_train → negatives; val + oos_val → validation; test + oos_test → test.

    The 100 oos_train questions are training data, as in Larson et al.'s oos-train
    setting: the engine's adaptation learns to keep them away from every article, and
    the baselines learn them as an out-of-scope intent. The threshold that decides
    between answering and declining is fitted on validation.
    """
    path = path or datasets_root() / "clinc150" / "data_full.json"
    data: dict[str, list[list[str]]] = json.loads(path.read_text(encoding="utf-8"))
    train = [(text, label) for text, label in data["train"]]
    validation = _queries([(t, label) for t, label in data["val"]] + [(t, None) for t, _ in data["oos_val"]])
    test = _queries([(t, label) for t, label in data["test"]] + [(t, None) for t, _ in data["oos_test"]])
    negatives = [text for text, _ in data["oos_train"]]
    return IntentDataset("clinc150", articles_for(train), train, validation, test, negatives=negatives)


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def split_validation(
    rows: list[tuple[str, str]], fraction: float = BANKING77_VALIDATION_FRACTION, seed: int = BANKING77_SEED
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Holds out `fraction` of every category (at least one), the same rows on every run."""
    rng = random.Random(seed)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    train: list[tuple[str, str]] = []
    validation: list[tuple[str, str]] = []
    # Sorted labels and file order within a label keep the split independent of dict order.
    for label in sorted(by_label):
        items = list(by_label[label])
        rng.shuffle(items)
        held = max(1, round(fraction * len(items)))
        validation += items[:held]
        train += items[held:]
    return train, validation


def load_banking77(folder: Path | None = None) -> IntentDataset:
    """BANKING77: train.csv minus a seeded 10% per category → articles; that 10% → validation."""
    folder = folder or datasets_root() / "banking77"
    train, validation = split_validation(_read_csv(folder / "train.csv"))
    test = _read_csv(folder / "test.csv")
    return IntentDataset(
        "banking77",
        articles_for(train),
        train,
        _queries([(t, label) for t, label in validation]),
        _queries([(t, label) for t, label in test]),
        full_articles=articles_for(train + validation),
    )
