"""From ranked candidates to one confidence in [0, 1] and a decision.

The ranking score of an article fuses its dense similarity with its lexical score
(`kb_index.language_index.fused`): ``fused = w * dense + (1 - w) * lexical``, where
``dense`` is the cosine measured from the language's background similarity (what
unrelated texts score with this encoder) up to 1, and ``lexical`` is the BM25 score
divided by the best BM25 score for the query. Confidence is a logistic function of
three features of the ranking (the top fused score, its margin over the runner-up
and the top dense score); its coefficients, the weight ``w`` and both thresholds are
fitted per language by `kb_index.tuning` on labelled validation queries.

An untuned index uses `LanguageCalibration`'s defaults: the pooled fit (objective
"utility") of the default encoder on the demo knowledge base's validation split.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Decision = Literal["answer", "clarify", "none"]


@dataclass
class LanguageCalibration:
    dense_weight: float = 0.85
    #: Logistic coefficients for (top fused, margin, top dense).
    coef: tuple[float, float, float] = (5.9, 9.4, 3.7)
    intercept: float = -3.8
    answer_threshold: float = 0.74
    clarify_threshold: float = 0.46

    def confidence(self, top: float, margin: float, dense: float) -> float:
        z = self.intercept + self.coef[0] * top + self.coef[1] * margin + self.coef[2] * dense
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def decide(self, confidence: float) -> Decision:
        if confidence >= self.answer_threshold:
            return "answer"
        if confidence >= self.clarify_threshold:
            return "clarify"
        return "none"


@dataclass
class Calibration:
    """Per-language calibrations; a language without its own uses ``default``."""

    default: LanguageCalibration = field(default_factory=LanguageCalibration)
    languages: dict[str, LanguageCalibration] = field(default_factory=dict)
    #: How it was fitted: query counts, objective, the corpus hash it was fitted on.
    fitted: dict[str, Any] = field(default_factory=dict)

    def for_language(self, language: str) -> LanguageCalibration:
        return self.languages.get(language, self.default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": asdict(self.default),
            "languages": {k: asdict(v) for k, v in self.languages.items()},
            "fitted": self.fitted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        def one(item: dict[str, Any]) -> LanguageCalibration:
            values = dict(item)
            values["coef"] = tuple(values.get("coef", LanguageCalibration.coef))
            return LanguageCalibration(**values)

        return cls(
            default=one(data.get("default", {})),
            languages={k: one(v) for k, v in data.get("languages", {}).items()},
            fitted=dict(data.get("fitted", {})),
        )
