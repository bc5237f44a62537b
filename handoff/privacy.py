"""Masking personal data in what users write before it is stored.

Masked: e-mail addresses, phone numbers, payment card numbers (Luhn-checked), IBANs
(mod-97-checked) and Latvian personal codes. The contact address the user gave on
purpose is kept. Checksums keep ordinary numbers (ticket ids, order numbers) intact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
#: DDMMYY-XNNNN (old format, X is the century digit 0-2) or 32NNNN-NNNNN (since 2017).
PERSONAL_CODE = re.compile(r"(?<!\d)(?:[0-3]\d[01]\d\d\d-?[0-2]\d{4}|32\d{4}-?\d{5})(?!\d)")
PHONE = re.compile(r"(?<![\w+.])\+?\d[\d ()/-]{5,}\d(?![\w.])")
DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}")


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _replace(pattern: re.Pattern[str], label: str, check: Callable[[str], bool] | None = None) -> Callable[[str], str]:
    def apply(text: str) -> str:
        return pattern.sub(lambda m: f"[{label}]" if check is None or check(m.group(0)) else m.group(0), text)

    return apply


def _card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _phone(candidate: str) -> bool:
    # E.164 numbers have at most 15 digits; 8 keeps short codes and years out.
    return 8 <= len(re.sub(r"\D", "", candidate)) <= 15 and not DATE.fullmatch(candidate.strip())


def _mask_iban(text: str) -> str:
    """The longest prefix of each candidate that checks out: "LV80BANK… ok" keeps " ok"."""

    def replace(match: re.Match[str]) -> str:
        candidate = match.group(0)
        for end in range(len(candidate), 14, -1):
            if candidate[end - 1] != " " and _iban_valid(candidate[:end]):
                return "[IBAN]" + candidate[end:]
        return candidate

    return IBAN.sub(replace, text)


_STEPS = [
    _mask_iban,
    _replace(CARD, "card number", _card),
    _replace(PERSONAL_CODE, "personal code"),
    _replace(PHONE, "phone", _phone),
]


def mask(text: str, keep: Iterable[str] = ()) -> str:
    """Returns text with personal data replaced by ``[e-mail]``, ``[phone]`` and the like.

    Args:
        text: what the user wrote.
        keep: values to leave as they are (the contact address given on purpose).
    """
    kept = {k.strip().lower() for k in keep if k and k.strip()}
    masked = EMAIL.sub(lambda m: m.group(0) if m.group(0).lower() in kept else "[e-mail]", text)
    for step in _STEPS:
        masked = step(masked)
    return masked
