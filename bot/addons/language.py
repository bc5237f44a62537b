"""Which of English, Latvian and Russian the user is writing.

lingua is reliable on sentences but guesses Latvian, with low confidence, for short or
borrowed tokens ("ok", "VPN"). So the conversation keeps its language (or the page's)
unless the detector is confident about a message of a few words; Cyrillic text is
Russian for our three languages, whatever its length.
"""

from __future__ import annotations

import re
import threading
from typing import Any

LANGUAGES = ("en", "lv", "ru")
MIN_WORDS = 3
MIN_CONFIDENCE = 0.85
_LATVIAN_LETTERS = re.compile(r"[āčēģīķļņšūž]", re.IGNORECASE)
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)
#: E-mail addresses and links are in no language ("janis@example.lv" read as English).
_ADDRESSES = re.compile(r"\S+@\S+|(?:https?://|www\.)\S+", re.IGNORECASE)

_detector: Any = None
_lock = threading.Lock()


def _get_detector() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            from lingua import Language, LanguageDetectorBuilder

            _detector = LanguageDetectorBuilder.from_languages(
                Language.ENGLISH, Language.LATVIAN, Language.RUSSIAN
            ).build()
    return _detector


def _code(language: Any) -> str:
    return {"ENGLISH": "en", "LATVIAN": "lv", "RUSSIAN": "ru"}[language.name]


def detect(text: str, current: str | None) -> str:
    """The language to answer in.

    Args:
        text: the user's message.
        current: the conversation's language so far (or the page's), if known.
    """
    fallback = current if current in LANGUAGES else "en"
    if text.startswith("/"):  # a button payload, not words
        return fallback
    text = _ADDRESSES.sub(" ", text)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return fallback
    cyrillic = sum(1 for c in letters if _CYRILLIC.match(c))
    if cyrillic / len(letters) > 0.5:
        return "ru"
    if _LATVIAN_LETTERS.search(text) and fallback != "lv":
        # Only Latvian of the three uses these letters.
        return "lv"
    if len(_WORD.findall(text)) < MIN_WORDS:
        return fallback
    values = _get_detector().compute_language_confidence_values(text)
    if not values:
        return fallback
    best = values[0]
    if best.value >= MIN_CONFIDENCE:
        return _code(best.language)
    return fallback


def warm_up() -> None:
    """Loads the detector's models (about 0.4 s) before the first user waits for it."""
    _get_detector().compute_language_confidence_values("warm up")
