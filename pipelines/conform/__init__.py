"""Conform: bronze → silver. One model per file; this module only wires them in order.

The registry dimension goes first: facts check that their enterprise exists and that events
do not precede its founding.
"""

from __future__ import annotations

import dataclasses
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
    inputs,
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
    if not tables.same_rows(df, current):
        tables.replace(df, tables.DIM_REGION, settings)


def conform_day(
    spark: SparkSession, run_date: date, settings: Settings | None = None, force: bool = False
) -> list[ConformCounts]:
    """Conform everything landed for ``run_date`` into silver; return per-model counts.

    A source already conformed for ``run_date`` from the same inputs (:mod:`inputs`: the same
    landed batches, mapping, gate policy, key) is not conformed again: its logged counts come
    back with ``reused`` set. ``force`` conforms every source anyway (after a release that
    changes how rows conform)."""
    s = settings or get_settings()
    facts = delivered_models(s)
    has_registry = dim_enterprise.SOURCE in contracts.mappings(s)
    sources = [*([dim_enterprise.SOURCE] if has_registry else []), *(m.source for m in facts)]
    fresh = inputs.fingerprints(spark, run_date, sources, s)
    before = {} if force else inputs.conformed_before(spark, run_date, s)

    def reusable(source: str) -> list[ConformCounts]:
        logged, counts = before.get(source, (None, []))
        return counts if logged is not None and logged == fresh[source] else []

    if not all(reusable(source) for source in sources):
        load_dim_region(spark, s)  # else the earlier conform of this date published it
    counts: list[ConformCounts] = []
    checked: list[CheckResult] = []  # the day's GX results on incoming rows: one ledger commit
    enterprises = None
    try:
        if has_registry:
            counts += reusable(dim_enterprise.SOURCE) or [
                dim_enterprise.conform(spark, run_date, s, checked)
            ]
        for m in facts:
            done = [c for c in reusable(m.source) if c.target == m.target.qualified]
            if not done:
                if enterprises is None:
                    enterprises = enterprise_facts(spark, s).cache()
                done = [conform_fact(spark, m, run_date, s, enterprises, checked)]
            counts += done
    finally:  # a model that failed unexpectedly still leaves the results of those before it
        if enterprises is not None:
            enterprises.unpersist()
        ledger.write(spark, checked, s)
    counts = [
        c if c.reused else dataclasses.replace(c, inputs_hash=fresh[c.source]) for c in counts
    ]
    log_counts(spark, run_date, counts, s)
    return counts
