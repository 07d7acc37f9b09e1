"""mart_tier_distribution: enterprises per tier at each as-of date, by district × industry ×
size band, with mean probability and credit score (信用风险分类总览)."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import month, with_names
from warehouse import tables


def build(
    spark: SparkSession, tiers: DataFrame, enterprises: DataFrame, regions: DataFrame
) -> DataFrame:
    """Tiered (non-excluded) enterprises of ``tiers`` counted per as_of × district × industry
    × size band × tier; industry is the enterprise's as of that date."""
    t = tiers.where(~F.col("excluded")).alias("t")
    e = enterprises.select("uscc", "industry", "valid_from", "valid_to").alias("e")
    joined = t.join(
        e, (F.col("t.uscc") == F.col("e.uscc")) & tables.known_before(F.col("t.as_of"), e), "left"
    )
    counted = joined.groupBy("t.as_of", "t.region_code", "e.industry", "t.size_band", "t.tier").agg(
        F.count("*").alias("enterprises"),
        F.avg("t.probability").alias("mean_probability"),
        F.avg("t.credit_score").alias("mean_credit_score"),
    )
    return with_names(counted, regions, spark).select(
        "as_of",
        month("as_of").alias("month"),
        "region_code",
        "region_name",
        "city_name",
        "industry",
        "industry_name",
        "size_band",
        "tier",
        "enterprises",
        "mean_probability",
        "mean_credit_score",
    )
