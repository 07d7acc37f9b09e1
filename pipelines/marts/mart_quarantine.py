"""mart_quarantine: quarantined rows per run date × source × stage × check (隔离统计), named
in Chinese as the source's owners read them (企业年度报告, 登记库中无此企业)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

STAGE_ZH = {"ingest": "接入", "conform": "清洗"}


def build(rejected: DataFrame, sources: DataFrame) -> DataFrame:
    """Counts of ``quarantine.rejected_rows``; a row rejected by several checks counts under
    its first (``check_name``). ``check_zh`` is the Chinese half of the rule's reason;
    ``sources`` (source, source_zh) names the source systems."""
    stage_zh = F.create_map(*[F.lit(x) for kv in STAGE_ZH.items() for x in kv])
    counted = rejected.groupBy(
        F.col("_run_date").alias("run_date"), "source", "stage", "check_name"
    ).agg(
        F.count("*").alias("rows"),
        F.min(F.split("reason", " / ").getItem(0)).alias("check_zh"),
    )
    return counted.join(F.broadcast(sources), "source", "left").select(
        "run_date",
        F.date_format("run_date", "yyyy-MM-dd").alias("run_day"),
        "source",
        F.coalesce("source_zh", "source").alias("source_zh"),
        "stage",
        F.coalesce(F.element_at(stage_zh, F.col("stage")), F.col("stage")).alias("stage_zh"),
        "check_name",
        "check_zh",
        "rows",
    )
