"""mart_plan_outcomes: for each random-draw plan, per district × tier, how many enterprises
were drawn, how many inspections came back and how many found a problem (抽查结果)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import with_names


def build(
    spark: SparkSession, plan: DataFrame, inspections: DataFrame, regions: DataFrame
) -> DataFrame:
    """Drawn = plan rows; inspected / found = inspections recorded against that plan id and
    enterprise (the feedback path); hit_rate = found / inspected (null before any came back)."""
    done = (
        inspections.where(F.col("plan_id").isNotNull())
        .groupBy("plan_id", "uscc")
        .agg(
            F.lit(1).alias("_inspected"), F.max(F.col("found_problem").cast("int")).alias("_found")
        )
    )
    counted = (
        plan.join(done, ["plan_id", "uscc"], "left")
        .groupBy("as_of", "plan_id", "region_code", "tier")
        .agg(
            F.count("*").alias("drawn"),
            F.coalesce(F.sum("_inspected"), F.lit(0)).cast("long").alias("inspected"),
            F.coalesce(F.sum("_found"), F.lit(0)).cast("long").alias("found_problem"),
        )
    )
    return with_names(counted, regions, spark).select(
        "as_of",
        "plan_id",
        "region_code",
        "region_name",
        "tier",
        "drawn",
        "inspected",
        "found_problem",
        F.when(F.col("inspected") > 0, F.col("found_problem") / F.col("inspected")).alias(
            "hit_rate"
        ),
    )
