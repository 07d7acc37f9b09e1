"""Normalisers for what is unambiguous in agency extracts, as Spark column expressions.

Each function maps a raw string column to a clean one and returns NULL where the value cannot
be read; callers treat "raw present, clean NULL" as a quarantine reason, never as a silent drop.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from warehouse.contracts.mapping import DEFAULT_DATE_FORMATS, EXCEL_SERIAL, date_shape

# Full-width ASCII block U+FF01..U+FF5E maps onto U+0021..U+007E; U+3000 is the ideographic space.
_FULL = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_TO_HALF = str.maketrans(_FULL, _HALF)
EXCEL_EPOCH = "1899-12-30"  # Excel's day 0 (its 1900 leap-year bug included)


def half_width(col: Column) -> Column:
    """Full-width letters, digits, punctuation and spaces to their ASCII forms."""
    return F.translate(col, _FULL, _HALF)


def clean_text(col: Column) -> Column:
    """Half-width, surrounding whitespace removed, empty string to NULL."""
    trimmed = F.regexp_replace(half_width(col), r"^\s+|\s+$", "")
    return F.when(trimmed == "", None).otherwise(trimmed)


def clean_word(text: str) -> str | None:
    """Python twin of :func:`clean_text` (for the words of a vocabulary)."""
    cleaned = text.translate(_TO_HALF).strip()
    return cleaned or None


def vocabulary(col: Column, words: dict[str, str]) -> Column:
    """The canonical value of a cleaned word under ``words`` (bureau word → value); NULL for
    an empty cell or a word outside the vocabulary."""
    pairs = {w: v for word, v in words.items() if (w := clean_word(word)) is not None}
    if not pairs:
        return F.lit(None).cast("string")
    lookup = F.create_map(*[F.lit(x) for kv in pairs.items() for x in kv])
    return F.element_at(lookup, clean_text(col))


def clean_code(col: Column) -> Column:
    """Identifiers (USCC, region codes, case numbers): clean text, upper case, no inner spaces."""
    return F.upper(F.regexp_replace(clean_text(col), r"\s+", ""))


def parse_date(col: Column, formats: Sequence[str] = DEFAULT_DATE_FORMATS) -> Column:
    """Read the text with the first of ``formats`` whose whole shape it has (default: 2024-03-01,
    2024/3/1, 20240301, 2024年3月1日, 2024.3.1; ``excel_serial`` reads Excel's day numbers such
    as 45352); NULL if none fits.

    Strict: impossible dates such as 2024-13-45 or 2023-02-29 give NULL.
    """
    text = clean_text(col)
    readers = []
    for pattern in formats:
        if pattern == EXCEL_SERIAL:
            days = F.floor(text.cast("double")).cast("int")
            value = F.date_add(F.lit(EXCEL_EPOCH).cast("date"), days)
        else:
            value = F.try_to_date(text, pattern)
        readers.append(F.when(text.rlike(date_shape(pattern)), value))
    return F.coalesce(*readers) if len(readers) > 1 else readers[0]


def parse_amount_yuan(col: Column, unit: str = "yuan") -> Column:
    """Money to yuan as DECIMAL(18,2): "12,500.00", "12500元", "1.25万元", "1.25万" all read;
    a bare number is in ``unit`` (``yuan`` or ``10k_yuan``, i.e. 万元).

    NULL when the text is not a number after removing separators and the unit.
    """
    text = F.regexp_replace(clean_text(col), r"[,，\s]", "")
    wan = text.rlike("万元?$")
    yuan = text.rlike("元$") & ~wan
    number = F.regexp_replace(text, r"(万元|万|元)$", "")
    valid = number.rlike(r"^-?\d+(\.\d+)?$")
    value = F.when(valid, number.cast("decimal(20,4)"))
    in_wan = wan | (F.lit(unit == "10k_yuan") & ~yuan)
    scaled = F.when(in_wan, value * F.lit(10000)).otherwise(value)
    return F.round(scaled, 2).cast("decimal(18,2)")


def parse_int(col: Column) -> Column:
    """Whole numbers, with thousands separators allowed; NULL otherwise."""
    text = F.regexp_replace(clean_text(col), r"[,，]", "")
    return F.when(text.rlike(r"^-?\d{1,9}$"), text.cast("int"))


def token(col: Column, key: str) -> Column:
    """Keyed hash token for personal data: stable for one key, not reversible without it.

    The value is cleaned first so that "张三 " and "张三" give the same token.
    """
    value = clean_code(col)
    return F.when(value.isNotNull(), F.substring(F.sha2(F.concat(F.lit(key), value), 256), 1, 32))
