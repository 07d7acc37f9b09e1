"""mart_target_list: every district's risk-ranked list at an as-of date (检查对象名单), the
rows of gold.target_list (the same rows as the district list files), with the model and
policy versions behind them."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def build(target_list: DataFrame) -> DataFrame:
    """The mart rows of ``target_list`` (gold.target_list, any as-of dates)."""
    return target_list.select(
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
