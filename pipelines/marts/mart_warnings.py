"""mart_warnings: the early warnings of each run with the enterprise name and district."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import with_names

TRIGGER_ZH = {
    "tier_rise": "风险等级上升",
    "entered_d": "新进入D类",
    "new_serious_list": "新列入严重违法失信名单",
    "complaint_surge": "投诉举报激增",
}


def build(
    spark: SparkSession, warnings: DataFrame, enterprises: DataFrame, regions: DataFrame
) -> DataFrame:
    """Rows of ``warnings`` with name (current), district name and the trigger in Chinese."""
    names = enterprises.where("is_current").select("uscc", "name")
    zh = F.create_map(*[F.lit(x) for kv in TRIGGER_ZH.items() for x in kv])
    return with_names(warnings.join(names, "uscc", "left"), regions, spark).select(
        "as_of",
        "region_code",
        "region_name",
        "uscc",
        "name",
        "trigger",
        F.element_at(zh, F.col("trigger")).alias("trigger_zh"),
        "tier",
        "previous_tier",
        "evidence_zh",
        "evidence_en",
    )
