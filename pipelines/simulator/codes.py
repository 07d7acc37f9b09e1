"""Identifier generators: USCC, organisation code, resident ID number, phone numbers."""

from __future__ import annotations

import numpy as np

from quality.uscc import ALPHABET, check_char

# GB 11714 organisation code: values of 0-9 and A-Z, weights of the first 8 characters.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Body characters of an organisation code that are also in the USCC alphabet.
_ORG_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# GB 11643 resident ID number.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _org_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def org_check_char(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code body."""
    total = sum(_org_value(ch) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=True))
    c9 = 11 - total % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


def uscc_from(prefix2: str, region: str, org_body: str) -> str:
    """Assemble a valid USCC from its registration prefix, region and organisation body."""
    first17 = prefix2 + region + org_body + org_check_char(org_body)
    return first17 + check_char(first17)


def with_region(code: str, region: str) -> str:
    """``code`` with positions 3-8 replaced by ``region`` and the check character recomputed."""
    first17 = code[:2] + region + code[8:17]
    return first17 + check_char(first17)


def random_org_bodies(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` random organisation code bodies (8 chars, mostly digits as issued in practice)."""
    digits = rng.integers(0, 10, size=(n, 8))
    letters = rng.integers(0, len(_ORG_BODY), size=(n, 8))
    use_letter = rng.random((n, 8)) < 0.12
    chars = np.where(use_letter, letters, digits)
    table = np.array(list(_ORG_BODY))
    return ["".join(row) for row in table[chars]]


def unique_usccs(
    rng: np.random.Generator, prefixes: list[str], regions: list[str], taken: set[str] | None = None
) -> list[str]:
    """One valid USCC per (prefix, region) pair, all distinct and not in ``taken``."""
    seen = set(taken or ())
    out: list[str] = []
    bodies = random_org_bodies(rng, len(prefixes))
    for prefix, region, body in zip(prefixes, regions, bodies, strict=True):
        code = uscc_from(prefix, region, body)
        while code in seen:
            code = uscc_from(prefix, region, random_org_bodies(rng, 1)[0])
        seen.add(code)
        out.append(code)
    return out


def id_check_char(first17: str) -> str:
    """GB 11643 check character of the first 17 digits of a resident ID number."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def resident_ids(
    rng: np.random.Generator, regions: list[str], births: list[str], male: np.ndarray
) -> list[str]:
    """Resident ID numbers: region + birth date (YYYYMMDD) + sequence (odd = male) + check."""
    seq = rng.integers(0, 500, size=len(regions)) * 2 + male.astype(int)
    out = []
    for region, birth, s in zip(regions, births, seq, strict=True):
        first17 = f"{region}{birth}{s:03d}"
        out.append(first17 + id_check_char(first17))
    return out


def mobiles(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` mainland mobile numbers (11 digits)."""
    second = rng.choice(np.array(["3", "5", "7", "8", "9"]), size=n)
    third = rng.integers(0, 10, size=n)
    rest = rng.integers(0, 100_000_000, size=n)
    return [f"1{a}{b}{c:08d}" for a, b, c in zip(second, third, rest, strict=True)]


def landlines(rng: np.random.Generator, area_codes: list[str]) -> list[str]:
    """Landline numbers ``AREA-NNNNNNNN`` for the given area codes."""
    rest = rng.integers(20_000_000, 90_000_000, size=len(area_codes))
    return [f"{a}-{r}" for a, r in zip(area_codes, rest, strict=True)]


def uscc_alphabet() -> str:
    """The 31 characters a USCC may contain."""
    return ALPHABET
