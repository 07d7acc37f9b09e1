"""The expectation suites, in code: one per bronze table, per silver/gold table, per source's
rows entering silver, and the freshness of every source. Thresholds that depend on history
(volume) are computed from earlier runs and written into the suite of the run."""

from __future__ import annotations

import math
from typing import Any

import great_expectations as gx
from pyspark.sql import DataFrame

from quality.expectations import (
    ExpectColumnsMapped,
    ExpectFilesLanded,
    ExpectNaturalKeyUnique,
    row_expectation,
)
from quality.policy import Policy
from quality.rules import RowRule
from warehouse import tables

LINEAGE_REQUIRED = ("_source_file", "_source_row", "_batch_id", "_record_hash")


def _meta(name: str, gate: str, threshold: str, defect_class: str | None = None) -> dict:
    return {"name": name, "gate": gate, "threshold": threshold, "defect_class": defect_class}


def rule_column(rule: RowRule, df: DataFrame) -> str:
    """The column a rule's expectation reports on: its field, else the field's raw text."""
    for c in (rule.field, f"{rule.field}__raw"):
        if c in df.columns:
            return c
    return "_source_row"


def incoming_expectations(
    table: str, rules: list[RowRule], df: DataFrame, policy: Policy
) -> list[Any]:
    """One expectation per row rule, with the gate the policy gives it on ``table``."""
    return [row_expectation(r, rule_column(r, df), policy.gate(table, r.name)) for r in rules]


def volume_range(previous: list[int], policy: Policy) -> tuple[int, int | None, str]:
    """(min, max, threshold text) of today's rows from earlier runs' landed rows."""
    if len(previous) < int(policy.param("volume", "min_history_runs", 2)):
        return 0, None, f"no baseline ({len(previous)} earlier runs)"
    factor = float(policy.param("volume", "factor", 10.0))
    low, high = math.floor(min(previous) / factor), math.ceil(max(previous) * factor)
    return low, high, f"[{low}, {high}] from {len(previous)} earlier runs × {factor:g}"


def bronze_expectations(source: str, previous: list[int], policy: Policy) -> list[Any]:
    """Lineage present, (batch, row) unique, and today's volume within the recent range."""
    table = tables.BRONZE[source].qualified
    out: list[Any] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(
            column=c,
            meta=_meta(f"lineage_not_null:{c}", policy.gate(table, "lineage_not_null"), "0 rows"),
        )
        for c in LINEAGE_REQUIRED
    ]
    out.append(
        ExpectNaturalKeyUnique(
            column_list=["_batch_id", "_source_row"],
            meta=_meta("source_row_unique", policy.gate(table, "source_row_unique"), "0 rows"),
        )
    )
    low, high, text = volume_range(previous, policy)
    out.append(
        gx.expectations.ExpectTableRowCountToBeBetween(
            min_value=low, max_value=high, meta=_meta("volume", policy.gate(table, "volume"), text)
        )
    )
    return out


def table_expectations(table: tables.Table, policy: Policy) -> list[Any]:
    """Natural key present and unique over the whole table (silver and gold)."""
    name = table.qualified
    out: list[Any] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(
            column=k, meta=_meta(f"key_not_null:{k}", policy.gate(name, "key_not_null"), "0 rows")
        )
        for k in table.keys
    ]
    out.append(
        ExpectNaturalKeyUnique(
            column_list=list(table.keys),
            meta=_meta("key_unique", policy.gate(name, "key_unique"), "0 duplicate rows"),
        )
    )
    return out


def freshness_expectations(policy: Policy) -> list[Any]:
    """Every source's latest landed delivery at most ``max_age_days`` old."""
    max_age = int(policy.param("freshness", "max_age_days", 7))
    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="age_days",
            min_value=0,
            max_value=max_age,
            meta=_meta("freshness", policy.gate("audit.ingest_log", "freshness"), f"≤ {max_age} d"),
        )
    ]


def file_expectations(table: str, policy: Policy) -> list[Any]:
    """Over one source's ingest-log rows of the day: every file landed (none rejected or
    unmatched), and every column of its landed files mapped."""
    return [
        ExpectFilesLanded(
            meta=_meta("file_accepted", policy.gate(table, "file_accepted"), "0 files")
        ),
        ExpectColumnsMapped(
            meta=_meta("columns_mapped", policy.gate(table, "columns_mapped"), "0 files")
        ),
    ]


def delivery_expectations(policy: Policy) -> list[Any]:
    """Every source whose mapping expects a delivery that day delivered a file."""
    return [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="delivered",
            value_set=[True],
            meta=_meta(
                "delivery_expected",
                policy.gate("landing", "delivery_expected"),
                "every expected source",
            ),
        )
    ]
