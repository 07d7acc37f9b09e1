"""Normalisers for what is unambiguous in agency extracts, as Spark column expressions.

Each function maps a raw string column to a clean one and returns NULL where the value cannot
be read; callers treat "raw present, clean NULL" as a quarantine reason, never as a silent drop.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

# Full-width ASCII block U+FF01..U+FF5E maps onto U+0021..U+007E; U+3000 is the ideographic space.
_FULL = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " "

# Each accepted date spelling: the shape it must have as a whole, and the Spark pattern reading it.
# The shape check keeps a lenient pattern from reading a string meant for another one.
DATE_FORMATS: dict[str, str] = {
    r"^\d{4}-\d{1,2}-\d{1,2}$": "yyyy-M-d",
    r"^\d{4}/\d{1,2}/\d{1,2}$": "yyyy/M/d",
    r"^\d{8}$": "yyyyMMdd",
    r"^\d{4}年\d{1,2}月\d{1,2}日$": "yyyy年M月d日",
    r"^\d{4}\.\d{1,2}\.\d{1,2}$": "yyyy.M.d",
}


def half_width(col: Column) -> Column:
    """Full-width letters, digits, punctuation and spaces to their ASCII forms."""
    return F.translate(col, _FULL, _HALF)


def clean_text(col: Column) -> Column:
    """Half-width, surrounding whitespace removed, empty string to NULL."""
    trimmed = F.regexp_replace(half_width(col), r"^\s+|\s+$", "")
    return F.when(trimmed == "", None).otherwise(trimmed)


def clean_code(col: Column) -> Column:
    """Identifiers (USCC, region codes, case numbers): clean text, upper case, no inner spaces."""
    return F.upper(F.regexp_replace(clean_text(col), r"\s+", ""))


def parse_date(col: Column) -> Column:
    """Read 2024-03-01, 2024/3/1, 20240301, 2024年3月1日 (and 2024.3.1); NULL if none fits.

    Strict: impossible dates such as 2024-13-45 or 2023-02-29 give NULL.
    """
    text = clean_text(col)
    return F.coalesce(
        *(
            F.when(text.rlike(shape), F.try_to_date(text, pattern))
            for shape, pattern in DATE_FORMATS.items()
        )
    )


def parse_amount_yuan(col: Column) -> Column:
    """Money to yuan as DECIMAL(18,2): "12,500.00", "12500元", "1.25万元", "1.25万" all read.

    NULL when the text is not a number after removing separators and the unit.
    """
    text = F.regexp_replace(clean_text(col), r"[,，\s]", "")
    wan = text.rlike("万元?$")
    number = F.regexp_replace(text, r"(万元|万|元)$", "")
    valid = number.rlike(r"^-?\d+(\.\d+)?$")
    value = F.when(valid, number.cast("decimal(20,4)"))
    scaled = F.when(wan, value * F.lit(10000)).otherwise(value)
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
