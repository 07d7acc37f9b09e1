"""mart_enforcement_stats: penalties (count, amount), inspections (and those that found a
problem), complaints and list entries per month × district × industry (执法统计)."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import month, with_names

MEASURES = (
    "penalties",
    "penalty_amount_yuan",
    "inspections",
    "inspections_found",
    "complaints",
    "abnormal_entries",
    "serious_entries",
)


def _events(df: DataFrame, on: str, **measures: F.Column) -> DataFrame:
    values = {m: measures.get(m, F.lit(0)).cast("double") for m in MEASURES}
    return df.select("uscc", month(on).alias("month"), *[v.alias(m) for m, v in values.items()])


def build(
    spark: SparkSession,
    penalties: DataFrame,
    inspections: DataFrame,
    complaints: DataFrame,
    list_entries: DataFrame,
    enterprises: DataFrame,
    regions: DataFrame,
) -> DataFrame:
    """Events counted by the month they happened, placed by the enterprise's current
    district and industry."""
    one = F.lit(1)
    events = reduce(
        DataFrame.unionByName,
        [
            _events(penalties, "decided_on", penalties=one, penalty_amount_yuan=F.coalesce(
                F.col("amount_yuan"), F.lit(0))),
            _events(inspections, "inspected_on", inspections=one,
                    inspections_found=F.col("found_problem").cast("int")),
            _events(complaints, "received_on", complaints=one),
            _events(list_entries.where("list_type = 'abnormal'"), "entered_on",
                    abnormal_entries=one),
            _events(list_entries.where("list_type = 'serious'"), "entered_on",
                    serious_entries=one),
        ],
    )  # fmt: skip
    current = enterprises.where("is_current").select("uscc", "region_code", "industry")
    counted = (
        events.join(current, "uscc", "left")
        .groupBy("month", "region_code", "industry")
        .agg(*[F.coalesce(F.sum(m), F.lit(0.0)).alias(m) for m in MEASURES])
    )
    out = with_names(counted, regions, spark)
    return out.select(
        "month",
        "region_code",
        "region_name",
        "city_name",
        "industry",
        "industry_name",
        *[F.col(m).cast("long" if m != "penalty_amount_yuan" else "double").alias(m)
          for m in MEASURES],
    )  # fmt: skip
