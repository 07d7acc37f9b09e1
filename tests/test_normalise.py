"""Each normaliser on the defects DOMAIN.md lists, run as the Spark expressions the jobs use."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from pipelines import normalise as N
from quality.rules import uscc_is_valid
from quality.uscc import is_valid_uscc


def _apply(spark, fn, values: list[str | None]) -> list:
    df = spark.createDataFrame([(v,) for v in values], "v STRING")
    return [r[0] for r in df.select(fn(F.col("v"))).collect()]


def test_half_width(spark) -> None:
    assert _apply(spark, N.half_width, ["９１１１ＡＢ", "Ａ　Ｂ", "中文不变"]) == [
        "9111AB",
        "A B",
        "中文不变",
    ]


def test_clean_text_trims_all_whitespace_and_empties_to_null(spark) -> None:
    assert _apply(spark, N.clean_text, ["  甲公司 ", "\u3000乙\u3000", "\t", "", None]) == [
        "甲公司",
        "乙",
        None,
        None,
        None,
    ]


def test_clean_code_upper_cases_and_removes_inner_spaces(spark) -> None:
    assert _apply(spark, N.clean_code, [" ９１１１ 0105ma ", None]) == ["91110105MA", None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01", dt.date(2024, 3, 1)),
        ("2024/3/1", dt.date(2024, 3, 1)),
        ("20240301", dt.date(2024, 3, 1)),
        ("2024年3月1日", dt.date(2024, 3, 1)),
        ("２０２４－０３－０１", dt.date(2024, 3, 1)),
        (" 2024-3-1 ", dt.date(2024, 3, 1)),
        ("2024.03.01", dt.date(2024, 3, 1)),
        ("2024-13-45", None),
        ("2023-02-29", None),
        ("不详", None),
        ("202403", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(spark, raw: str | None, expected: dt.date | None) -> None:
    assert _apply(spark, N.parse_date, [raw]) == [expected]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12500", Decimal("12500.00")),
        ("12,500.00", Decimal("12500.00")),
        ("12500元", Decimal("12500.00")),
        ("1.25万元", Decimal("12500.00")),
        ("1.25万", Decimal("12500.00")),
        ("500万元", Decimal("5000000.00")),
        ("１２５００", Decimal("12500.00")),
        ("-100", Decimal("-100.00")),
        ("一万", None),
        ("12.5.0", None),
        (None, None),
    ],
)
def test_parse_amount_yuan(spark, raw: str | None, expected: Decimal | None) -> None:
    assert _apply(spark, N.parse_amount_yuan, [raw]) == [expected]


def test_parse_int(spark) -> None:
    assert _apply(spark, N.parse_int, ["12", "1,200", " 7 ", "3.5", "x", None]) == [
        12,
        1200,
        7,
        None,
        None,
        None,
    ]


def test_token_is_keyed_stable_and_ignores_spacing(spark) -> None:
    a = _apply(spark, lambda c: N.token(c, "k1"), ["张三", " 张三 ", "李四", None])
    b = _apply(spark, lambda c: N.token(c, "k2"), ["张三"])
    assert a[0] == a[1] and a[0] != a[2] and a[3] is None
    assert a[0] != b[0]
    assert len(a[0]) == 32 and "张" not in a[0]


def test_spark_uscc_rule_agrees_with_python(spark) -> None:
    codes = [
        "91350100M000100Y43",
        "914403001922038216",
        "91110105MA01ABCD13",
        "91110105MA01ABCD00",
        "91110105MA01ABCDAY",
        "91110105MA01ABCD14",
        "91110105MA01ABCDI3",
        "9111",
        None,
    ]
    assert _apply(spark, uscc_is_valid, codes) == [is_valid_uscc(c) for c in codes]
