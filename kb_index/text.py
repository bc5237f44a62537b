"""Language-aware analysis for the lexical ranking.

spaCy's rule-based tokenizers split the text; English and Russian words are then
reduced by Snowball stemmers (PyStemmer). Snowball has no Latvian stemmer, so a
Latvian word becomes its character 4-grams, which match across its many case
endings (parole / paroli / paroles). Diacritics are folded for Latvian because
people often type without them, and ё is folded to е for Russian.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import cache
from typing import Any

NGRAM = 4
#: Saved with an index's analysed documents; change it whenever `analyze` would give
#: other terms for the same text, so indexes saved before are analysed afresh.
ANALYZER_VERSION = 1

_lock = threading.Lock()


@cache
def _tokenizer(language: str) -> Any:
    import spacy

    with _lock:
        return spacy.blank(language if language in ("en", "lv", "ru") else "xx")


@cache
def _stop_words(language: str) -> frozenset[str]:
    return frozenset(_tokenizer(language).Defaults.stop_words)


@cache
def _stemmer(language: str) -> Any:
    import Stemmer

    name = {"en": "english", "ru": "russian"}.get(language)
    return Stemmer.Stemmer(name) if name else None


def fold_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize(text: str, language: str) -> str:
    """Lowercase, NFKC, control characters removed, language-specific folding."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(c if c.isprintable() else " " for c in text)
    if language == "ru":
        text = text.replace("ё", "е")
    return text


def char_ngrams(word: str, n: int = NGRAM) -> list[str]:
    padded = f"_{word}_"
    if len(padded) <= n:
        return [padded]
    return [padded[i : i + n] for i in range(len(padded) - n + 1)]


def analyze(text: str, language: str) -> list[str]:
    """Turns text into the terms the lexical index stores and matches.

    Args:
        text: any user or article text.
        language: "en", "lv" or "ru"; anything else is tokenized without stemming.

    Returns:
        Terms, possibly empty (a query of only stop words or punctuation).
    """
    normalized = normalize(text, language)
    stop_words = _stop_words(language)
    words = [
        token.text
        for token in _tokenizer(language)(normalized)
        if not (token.is_punct or token.is_space) and token.text not in stop_words
    ]
    words = [w for w in words if any(c.isalnum() for c in w)]
    if language == "lv":
        terms: list[str] = []
        for word in words:
            terms.extend(char_ngrams(fold_diacritics(word)))
        return terms
    stemmer = _stemmer(language)
    if stemmer is None:
        return words
    return list(stemmer.stemWords(words))
