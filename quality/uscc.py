"""Unified social credit code (统一社会信用代码, GB 32100-2015) check-digit rule.

18 characters over a 31-symbol alphabet (no I, O, Z, S, V). Positions 3-8 carry the GB/T 2260
region code. The 18th character is a check character computed from the first 17.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


def check_char(first17: str) -> str:
    """Return the check character for the first 17 characters of a code.

    Raises ValueError if ``first17`` is not 17 characters of the USCC alphabet.
    """
    if len(first17) != 17 or any(ch not in _VALUE for ch in first17):
        raise ValueError(f"not 17 USCC characters: {first17!r}")
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    value = 31 - total % 31
    return ALPHABET[0 if value == 31 else value]


def is_valid_uscc(code: str | None) -> bool:
    """True when ``code`` is 18 alphabet characters whose last one is the right check character."""
    if code is None or len(code) != 18 or any(ch not in _VALUE for ch in code):
        return False
    return check_char(code[:17]) == code[17]


def region_of(code: str) -> str:
    """Positions 3-8 of a code: its GB/T 2260 administrative region."""
    return code[2:8]
