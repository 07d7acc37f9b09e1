"""Row-level domain rules as Spark predicates, shared by conform (quarantine) and the GX suites.

A :class:`RowRule` says, for one conformed row, whether it breaks the rule; the reason text is
in Chinese with English beside it, because it goes back to the source's owners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

from quality.uscc import ALPHABET, WEIGHTS

# The year unified social credit codes were first issued: the region inside one must have been
# in force since then.
USCC_FIRST_YEAR = 2015


def uscc_is_valid(col: Column) -> Column:
    """Spark twin of :func:`quality.uscc.is_valid_uscc`: shape, alphabet and check character."""
    values = [F.instr(F.lit(ALPHABET), F.substring(col, i + 1, 1)) - 1 for i in range(17)]
    total = reduce(lambda a, b: a + b, (v * w for v, w in zip(values, WEIGHTS, strict=True)))
    check = (F.lit(31) - total % 31) % 31
    expected = F.substring(F.lit(ALPHABET), check + 1, 1)
    shape = col.rlike(f"^[{ALPHABET}]{{18}}$")
    return F.coalesce(shape & (F.substring(col, 18, 1) == expected), F.lit(False))


@dataclass(frozen=True)
class RowRule:
    """One blocking check: ``violated(row)`` is TRUE for a row that breaks it (never NULL)."""

    name: str
    field: str
    reason_zh: str
    reason_en: str
    violated: Callable[[], Column]
    defect_class: str  # the simulator's defect class this rule is meant to catch

    @property
    def reason(self) -> str:
        return f"{self.reason_zh} / {self.reason_en}"

    def column(self) -> Column:
        """The rule as a Spark predicate, built once per rule: an expression of column names
        is reusable across DataFrames, and building one (the USCC check is ~100 functions)
        costs a JVM round trip per function."""
        built = self.__dict__.get("_column")
        if built is None:
            built = F.coalesce(self.violated(), F.lit(False))
            self.__dict__["_column"] = built  # frozen dataclass: a cache, not a field
        return built


def required(field: str) -> RowRule:
    return RowRule(
        f"required_{field}",
        field,
        "必填字段为空",
        f"required field {field} is empty",
        lambda: F.col(field).isNull(),
        "missing_key",
    )


def valid_uscc(field: str = "uscc") -> RowRule:
    return RowRule(
        "uscc_check_digit",
        field,
        "统一社会信用代码校验位错误或格式不符",
        "unified social credit code fails its check digit or shape",
        lambda: F.col(field).isNotNull() & ~uscc_is_valid(F.col(field)),
        "bad_check_digit",
    )


def known_region(field: str) -> RowRule:
    """Needs ``_<field>_from`` / ``_<field>_to`` (the code's first year in force and the first
    year it is gone, from the GB/T 2260 list; NULL ``_from`` = not in the list) joined in."""
    return RowRule(
        f"region_known_{field}",
        field,
        "行政区划代码不存在（GB/T 2260）",
        "region code is not a GB/T 2260 code",
        lambda: F.col(field).isNotNull() & F.col(f"_{field}_from").isNull(),
        "unknown_region",
    )


def region_in_force(field: str, date_field: str) -> RowRule:
    """The code exists but was in force neither in the year of ``date_field`` nor in the year
    of the delivery (registries re-code old versions when divisions change, so a version of
    1994 may carry today's code; a code retired before the version and gone today is wrong).
    Needs the columns of :func:`known_region`."""

    def in_force(year: Column) -> Column:
        start, end = F.col(f"_{field}_from"), F.col(f"_{field}_to")
        return (year >= start) & (end.isNull() | (year < end))

    return RowRule(
        f"region_in_force_{field}",
        field,
        "行政区划代码在该日期及报送日均未启用或已撤销",
        f"region code was in force neither on {date_field} nor on the delivery date",
        lambda: (
            F.col(f"_{field}_from").isNotNull()
            & ~F.coalesce(in_force(F.year(F.col(date_field))), F.lit(False))
            & ~in_force(F.year(F.col("_run_date")))
        ),
        "unknown_region",
    )


def uscc_region_in_force(field: str = "uscc_region") -> RowRule:
    """The region inside a USCC (positions 3-8) must be a code in force since USCCs were first
    issued; needs the columns of :func:`known_region`."""
    return RowRule(
        f"region_known_{field}",
        field,
        "统一社会信用代码中的行政区划代码不存在或已撤销",
        "the region inside the unified social credit code is not a GB/T 2260 code in force",
        lambda: (
            F.col(field).isNotNull()
            & (
                F.col(f"_{field}_from").isNull()
                | (F.col(f"_{field}_to").isNotNull() & (F.col(f"_{field}_to") <= USCC_FIRST_YEAR))
            )
        ),
        "unknown_region",
    )


def in_jurisdiction(field: str, prefixes: list[str]) -> RowRule:
    """The code starts with one of the bureau's jurisdiction prefixes (settings)."""
    return RowRule(
        f"in_jurisdiction_{field}",
        field,
        "不在本局管辖范围内",
        f"{field} is outside the bureau's jurisdiction ({', '.join(prefixes)})",
        lambda: (
            F.col(field).isNotNull()
            & ~reduce(lambda a, b: a | b, (F.col(field).startswith(p) for p in prefixes))
        ),
        "outside_jurisdiction",
    )


def known_value(field: str, code: str) -> RowRule:
    """The raw word of ``field`` was present but the source mapping's vocabulary has no
    translation for it (``code`` is the translated column)."""
    return RowRule(
        f"vocabulary_{field}",
        field,
        "取值不在数据源映射的词表中",
        f"the value of {field} is not in the source mapping's vocabulary",
        lambda: F.col(f"{field}__raw").isNotNull() & F.col(code).isNull(),
        "unknown_value",
    )


def parseable_date(field: str) -> RowRule:
    """The raw text was present but no accepted date spelling reads it."""
    return RowRule(
        f"date_parseable_{field}",
        f"{field}",
        "日期无法识别",
        f"date in {field} cannot be read",
        lambda: F.col(f"{field}__raw").isNotNull() & F.col(field).isNull(),
        "unparseable_date",
    )


def parseable_number(field: str, raw: str) -> RowRule:
    return RowRule(
        f"number_parseable_{field}",
        raw,
        "数值无法识别",
        f"number in {raw} cannot be read",
        lambda: F.col(f"{raw}__raw").isNotNull() & F.col(field).isNull(),
        "unparseable_number",
    )


def not_future(field: str) -> RowRule:
    return RowRule(
        f"not_future_{field}",
        field,
        "日期晚于数据报送日",
        f"{field} is after the delivery date",
        lambda: F.col(field) > F.col("_run_date"),
        "future_date",
    )


def not_before_founding(field: str) -> RowRule:
    return RowRule(
        f"not_before_founding_{field}",
        field,
        "事件日期早于企业成立日期",
        f"{field} is before the enterprise was founded",
        lambda: F.col(field) < F.col("_founded_on"),
        "before_founding",
    )


def non_negative(field: str) -> RowRule:
    return RowRule(
        f"non_negative_{field}",
        field,
        "金额为负数",
        f"{field} is negative",
        lambda: F.col(field) < 0,
        "negative_amount",
    )


def removal_after_entry() -> RowRule:
    return RowRule(
        "removal_not_before_entry",
        "removed_on",
        "移出日期早于列入日期",
        "removal date is before the entry date",
        lambda: F.col("removed_on") < F.col("entered_on"),
        "removal_before_entry",
    )


def known_enterprise() -> RowRule:
    """Needs ``_known_enterprise`` (boolean) joined in from the enterprise dimension."""
    return RowRule(
        "enterprise_known",
        "uscc",
        "登记库中无此企业",
        "enterprise not found in the registry",
        lambda: F.col("uscc").isNotNull() & ~F.col("_known_enterprise"),
        "orphan_enterprise",
    )


def first_violation(rules: list[RowRule]) -> tuple[Column, Column]:
    """(array of the names of every rule a row breaks, index of the first one or NULL)."""
    names = F.array_compact(F.array(*(F.when(r.column(), F.lit(r.name)) for r in rules)))
    return names, F.when(F.size(names) > 0, names[0])
