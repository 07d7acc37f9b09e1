"""mart_target_list: every district's risk-ranked list at an as-of date (检查对象名单), the
same rows as the district list files, with the model and policy versions behind them."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import with_names
from risk_insight.lists import list_frame
from risk_insight.policy import TierPolicy


def build(
    spark: SparkSession,
    tiers: DataFrame,
    scores: DataFrame,
    enterprises: DataFrame,
    plan: DataFrame,
    roster: DataFrame,
    regions: DataFrame,
    policy: TierPolicy,
) -> DataFrame:
    """Each district's list (``risk_insight.lists.list_frame``) for the one as-of date the
    inputs hold (``plan``: the plan in force then), with as_of, district name and versions."""
    stamp = tiers.select("as_of", "model_version", "policy_version").limit(1)
    rows = list_frame(tiers, scores, enterprises, plan, roster, None, policy).drop("region_name")
    return with_names(rows.crossJoin(stamp), regions, spark).select(
        "as_of",
        "region_code",
        "region_name",
        "rank",
        "uscc",
        "name",
        "tier",
        "credit_score",
        F.round("probability", 4).alias("probability"),
        "basis",
        "reasons",
        "reasons_en",
        "drawn",
        "inspector",
        "plan_id",
        "address",
        "model_version",
        "policy_version",
    )
