"""mart_quality_trend: quality-ledger checks per run date × table × source by outcome, and
rows quarantined (数据质量趋势)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

OUTCOMES = ("passed", "warned", "quarantined", "blocked")


def build(ledger: DataFrame) -> DataFrame:
    """One row per run_date × table_name × source × gate of ``audit.quality_results``."""
    return ledger.groupBy("run_date", "table_name", "source", "gate").agg(
        F.count("*").alias("checks"),
        *[F.sum(F.when(F.col("outcome") == o, 1).otherwise(0)).alias(o) for o in OUTCOMES],
        F.sum("rows_quarantined").alias("rows_quarantined"),
    )
