"""mart_plan_outcomes: for each random-draw plan, per district × tier, how many enterprises
were drawn, inspected (the inspection took place), found with a problem, could not be reached,
were not inspected, and have no result yet (抽查结果; statuses as in
:mod:`pipelines.marts.mart_plan_completion`)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import with_names
from pipelines.marts.mart_plan_completion import COUNTS, _counts, _rates, statuses


def build(
    spark: SparkSession, plan: DataFrame, inspections: DataFrame, regions: DataFrame
) -> DataFrame:
    """Drawn = plan rows; the other counts from inspections recorded against that plan id and
    enterprise (the outcome import); hit_rate = found / inspected (null before any came back).
    Unreachable and not-inspected enterprises are not inspected."""
    counted = _rates(
        statuses(plan, inspections)
        .groupBy("as_of", "plan_id", "region_code", "tier")
        .agg(*_counts())
    )
    return with_names(counted, regions, spark).select(
        "as_of", "plan_id", "region_code", "region_name", "tier", *COUNTS, "completion_rate",
        F.col("hit_rate"),
    )  # fmt: skip
