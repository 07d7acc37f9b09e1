"""Custom Great Expectations (1.x) for this domain, on Spark DataFrames and on pandas ones.

Row rules are defined once, in :mod:`quality.rules`: every row expectation here evaluates the
RowRule's own Spark predicate (looked up by rule name), so conform's quarantine filter and the
GX result can never disagree. On pandas (a small batch, see :mod:`quality.engine`) the
predicate was evaluated by Spark before collecting, into :func:`verdict_column`. The named
subclasses only give each domain check its own expectation type in the suites and the Data
Docs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.core.metric_function_types import MetricPartialFunctionTypes
from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation, ColumnMapExpectation
from great_expectations.expectations.metrics import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_partial, metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider
from pyspark.sql import functions as F

from quality.rules import RowRule

# Rules by name; a rule's name fixes its predicate (same name, same check, in every table).
RULES: dict[str, RowRule] = {}


def register(rule: RowRule) -> RowRule:
    """Make ``rule`` known to the GX metric by its name; return it."""
    RULES[rule.name] = rule
    return rule


def verdict_column(rule: str) -> str:
    """The column holding Spark's verdict on ``rule`` (TRUE = broken) in a collected batch."""
    return f"__broken__{rule}"


class RowRuleHolds(ColumnMapMetricProvider):
    """``row_rule.holds``: TRUE for a row that satisfies the named RowRule."""

    condition_metric_name = "row_rule.holds"
    condition_value_keys = ("rule",)
    filter_column_isnull = False  # a rule decides about NULLs itself (e.g. required fields)

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column, rule: str, **kwargs):  # noqa: N805 (GX metric signature)
        return ~RULES[rule].column()

    @metric_partial(
        engine=PandasExecutionEngine,
        partial_fn_type=MetricPartialFunctionTypes.MAP_CONDITION_SERIES,
        domain_type=MetricDomainTypes.COLUMN,
    )
    def _pandas(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ):
        df, compute_kwargs, accessor_kwargs = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.COLUMN
        )
        broken = df[verdict_column(metric_value_kwargs["rule"])].astype(bool)
        return broken, compute_kwargs, accessor_kwargs


class ExpectRowRule(ColumnMapExpectation):
    """Expect no row of the batch to break the RowRule named ``rule`` (see quality/rules.py)."""

    rule: str
    map_metric = "row_rule.holds"
    success_keys = ("rule", "mostly")
    args_keys = ("column", "rule")


class ExpectUsccCheckDigit(ExpectRowRule):
    """统一社会信用代码校验位 / unified social credit code: alphabet, shape and check digit."""


class ExpectRegionCodeKnown(ExpectRowRule):
    """行政区划代码存在 / region code exists in the GB/T 2260 reference kept in the repo."""


class ExpectRemovalNotBeforeEntry(ExpectRowRule):
    """移出日期不早于列入日期 / list removal date not before the entry date."""


class ExpectDateNotInFuture(ExpectRowRule):
    """日期不晚于报送日 / event date not after the delivery date."""


class ExpectDateNotBeforeFounding(ExpectRowRule):
    """事件不早于成立日期 / event date not before the enterprise was founded."""


class ExpectAmountNonNegative(ExpectRowRule):
    """金额非负 / amounts are not negative."""


class ExpectEnterpriseKnown(ExpectRowRule):
    """企业在登记库中 / enforcement records reference a registered enterprise."""


class ExpectValuePresent(ExpectRowRule):
    """必填字段 / a required field (natural key part) is present."""


class ExpectValueParseable(ExpectRowRule):
    """可识别 / a date or number present in the extract can be read."""


EXPECTATION_FOR_CLASS: dict[str, type[ExpectRowRule]] = {
    "bad_check_digit": ExpectUsccCheckDigit,
    "unknown_region": ExpectRegionCodeKnown,
    "removal_before_entry": ExpectRemovalNotBeforeEntry,
    "future_date": ExpectDateNotInFuture,
    "before_founding": ExpectDateNotBeforeFounding,
    "negative_amount": ExpectAmountNonNegative,
    "orphan_enterprise": ExpectEnterpriseKnown,
    "missing_key": ExpectValuePresent,
    "unparseable_date": ExpectValueParseable,
    "unparseable_number": ExpectValueParseable,
}


def row_expectation(rule: RowRule, column: str, gate: str) -> ExpectRowRule:
    """The GX expectation of ``rule`` on ``column``, tagged with its name, class and gate."""
    cls = EXPECTATION_FOR_CLASS.get(rule.defect_class, ExpectRowRule)
    register(rule)
    return cls(
        column=column,
        rule=rule.name,
        meta={
            "name": rule.name,
            "defect_class": rule.defect_class,
            "gate": gate,
            "reason": rule.reason,
            "threshold": "0 rows",
            "row_level": True,
        },
    )


class DuplicateKeyRows(TableMetricProvider):
    """``table.duplicate_key_rows``: rows whose key (``column_list``) occurs more than once."""

    metric_name = "table.duplicate_key_rows"
    value_keys = ("column_list",)

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: SparkDFExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> int:
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        keys = list(metric_value_kwargs["column_list"])
        dup = df.groupBy(*keys).count().where(F.col("count") > 1)
        return int(dup.agg(F.coalesce(F.sum("count"), F.lit(0))).first()[0])

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> int:
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        sizes = df.groupby(list(metric_value_kwargs["column_list"]), dropna=False).size()
        return int(sizes[sizes > 1].sum())


class ExpectNaturalKeyUnique(BatchExpectation):
    """自然键唯一 / no two rows share the natural key ``column_list`` (one or more columns)."""

    column_list: list[str]
    metric_dependencies = ("table.duplicate_key_rows",)
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")
    success_keys = ("column_list",)
    args_keys = ("column_list",)

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        observed = int(metrics["table.duplicate_key_rows"])
        return {"success": observed == 0, "result": {"observed_value": observed}}


class FilesNotLanded(TableMetricProvider):
    """``files.not_landed``: 'file: reason' of each delivered file (a row of the day's ingest
    log) that was rejected or matched no source mapping."""

    metric_name = "files.not_landed"

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: SparkDFExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> list[str]:
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        bad = df.where(~F.col("status").isin("landed", "skipped")).orderBy("source_file")
        return [r["message"] for r in bad.select("message").collect()]

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> list[str]:
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        bad = df[df["status"].notna() & ~df["status"].isin(["landed", "skipped"])]
        return bad.sort_values("source_file", kind="stable")["message"].tolist()


class ExpectFilesLanded(BatchExpectation):
    """文件均已接入 / every file delivered for the source landed (none rejected or unmatched)."""

    reads: ClassVar[tuple[str, ...]] = ("source_file", "status", "message")
    metric_dependencies = ("files.not_landed",)
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        bad = list(metrics["files.not_landed"])
        return {"success": not bad, "result": {"observed_value": "; ".join(bad) or "0 files"}}


class FilesColumnsUnmapped(TableMetricProvider):
    """``files.columns_unmapped``: landed files with columns their mapping does not name, or
    without optional mapped fields."""

    metric_name = "files.columns_unmapped"

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: SparkDFExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> list[str]:
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        odd = df.where(
            (F.col("status") == "landed")
            & ((F.size("unmapped_columns") > 0) | (F.size("missing_columns") > 0))
        ).orderBy("source_file")
        out = []
        for r in odd.select("source_file", "unmapped_columns", "missing_columns").collect():
            name = r["source_file"].rsplit("/", 1)[-1]
            out.append(
                f"{name}: 未映射列 / unmapped {list(r['unmapped_columns'] or [])}, "
                f"缺少列 / missing {list(r['missing_columns'] or [])}"
            )
        return out

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(  # noqa: N805 (GX metric signature)
        cls,
        execution_engine: PandasExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> list[str]:
        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )

        def values(cell: Any) -> list:
            return (
                []
                if cell is None or (not hasattr(cell, "__len__") and pd.isna(cell))
                else list(cell)
            )

        out = []
        for _, r in (
            df[df["status"] == "landed"].sort_values("source_file", kind="stable").iterrows()
        ):
            unmapped, missing = values(r["unmapped_columns"]), values(r["missing_columns"])
            if unmapped or missing:
                name = r["source_file"].rsplit("/", 1)[-1]
                out.append(f"{name}: 未映射列 / unmapped {unmapped}, 缺少列 / missing {missing}")
        return out


class ExpectColumnsMapped(BatchExpectation):
    """列均已映射 / every column of the source's landed files is named by its mapping, and
    every mapped field has a column."""

    reads: ClassVar[tuple[str, ...]] = (
        "source_file", "status", "unmapped_columns", "missing_columns",
    )  # fmt: skip
    metric_dependencies = ("files.columns_unmapped",)
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        odd = list(metrics["files.columns_unmapped"])
        return {"success": not odd, "result": {"observed_value": "; ".join(odd) or "0 files"}}
