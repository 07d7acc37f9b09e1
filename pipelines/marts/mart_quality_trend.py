"""mart_quality_trend: quality-ledger checks per run date × table × source by outcome, and
rows quarantined (数据质量趋势)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

OUTCOMES = ("passed", "warned", "quarantined", "blocked")
TABLE_LEVEL_ZH = "表级检查"  # the ledger's source "-": a check over a whole table


def build(ledger: DataFrame, sources: DataFrame) -> DataFrame:
    """One row per run_date × table_name × source × gate of ``audit.quality_results``, with
    ``run_day`` (the date as text, for a chart axis) and the source's Chinese title
    (``sources``: source, source_zh)."""
    counted = ledger.groupBy("run_date", "table_name", "source", "gate").agg(
        F.count("*").alias("checks"),
        *[F.sum(F.when(F.col("outcome") == o, 1).otherwise(0)).alias(o) for o in OUTCOMES],
        F.sum("rows_quarantined").alias("rows_quarantined"),
    )
    return counted.join(F.broadcast(sources), "source", "left").select(
        "run_date",
        F.date_format("run_date", "yyyy-MM-dd").alias("run_day"),
        "table_name",
        "source",
        F.coalesce(
            "source_zh", F.when(F.col("source") == "-", TABLE_LEVEL_ZH), F.col("source")
        ).alias("source_zh"),
        "gate",
        "checks",
        *OUTCOMES,
        "rows_quarantined",
    )
