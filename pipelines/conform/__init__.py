"""Conform: bronze → silver. One model per file; this module only wires them in order.

The registry dimension goes first: facts check that their enterprise exists and that events
do not precede its founding.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession

from pipelines.conform import (
    dim_enterprise,
    fct_annual_report,
    fct_complaint,
    fct_event,
    fct_inspection,
    fct_list_entry,
    fct_penalty,
)
from pipelines.conform._common import (
    ConformCounts,
    FactModel,
    conform_fact,
    enterprise_facts,
    log_counts,
)
from quality import ledger
from quality.engine import CheckResult
from quality.regions import regions
from warehouse import contracts, tables
from warehouse.settings import Settings, get_settings

FACT_MODELS: tuple[FactModel, ...] = (
    fct_annual_report.MODEL,
    fct_penalty.MODEL,
    fct_list_entry.ABNORMAL,
    fct_list_entry.SERIOUS,
    fct_inspection.MODEL,
    fct_complaint.MODEL,
    fct_event.MODEL,
)


def delivered_models(settings: Settings) -> list[FactModel]:
    """The fact models of the sources the mappings in force deliver (a source the bureau does
    not deliver is neither conformed nor read: reading a missing table would create it)."""
    delivered = contracts.mappings(settings)
    return [m for m in FACT_MODELS if m.source in delivered]


def region_rows() -> list[tuple]:
    """silver.dim_region's rows: every GB/T 2260 code of the national list."""
    cols = tables.DIM_REGION.columns
    return [tuple(getattr(r, c) for c in cols) for r in regions().values()]


def load_dim_region(spark: SparkSession, settings: Settings) -> None:
    """Publish the region reference as silver.dim_region (overwritten; it is small)."""
    tables.ensure(spark, tables.DIM_REGION, settings)
    df = spark.createDataFrame(region_rows(), tables.DIM_REGION.schema)
    current = tables.read(spark, tables.DIM_REGION, settings)
    if current.exceptAll(df).isEmpty() and df.exceptAll(current).isEmpty():
        return  # unchanged: keep the table version as it is
    tables.replace(df, tables.DIM_REGION, settings)


def conform_day(
    spark: SparkSession, run_date: date, settings: Settings | None = None
) -> list[ConformCounts]:
    """Conform everything landed for ``run_date`` into silver; return per-model counts."""
    s = settings or get_settings()
    load_dim_region(spark, s)
    counts = []
    checked: list[CheckResult] = []  # the day's GX results on incoming rows: one ledger commit
    enterprises = None
    try:
        if dim_enterprise.SOURCE in contracts.mappings(s):
            counts.append(dim_enterprise.conform(spark, run_date, s, checked))
        enterprises = enterprise_facts(spark, s).cache()
        counts += [
            conform_fact(spark, m, run_date, s, enterprises, checked) for m in delivered_models(s)
        ]
    finally:  # a model that failed unexpectedly still leaves the results of those before it
        if enterprises is not None:
            enterprises.unpersist()
        ledger.write(spark, checked, s)
    log_counts(spark, run_date, counts, s)
    return counts
