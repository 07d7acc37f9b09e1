"""Plan completion (计划完成情况): for each plan, per district and per inspector, how many
enterprises were drawn, inspected (the inspection took place), found with a problem, could not
be reached (无法联系), were not inspected (未检查) and have no result yet.

Each drawn enterprise has one status, from the inspections recorded against its plan id:
``found`` or ``clean`` if any inspection took place (found wins), else ``unreachable`` or
``not_inspected`` (silver's canonical ``outcome``, read from the bureau's words by its mapping),
else ``not_yet``. An enterprise counts for both of its inspectors; one without inspectors
counts for the pseudo-inspector "未分配 / unassigned".
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.inspection_results import (
    CLEAN,
    FOUND,
    NOT_INSPECTED,
    UNREACHABLE,
)
from pipelines.marts._common import with_names

STATUS_ORDER = {FOUND: 0, CLEAN: 1, UNREACHABLE: 2, NOT_INSPECTED: 3}
COUNTS = ("drawn", "inspected", "found_problem", "unreachable", "not_inspected", "not_yet")
UNASSIGNED = "未分配 / unassigned"


def statuses(plan: DataFrame, inspections: DataFrame) -> DataFrame:
    """Plan rows with ``status`` (found / clean / unreachable / not_inspected / not_yet)."""
    rank = F.create_map(*[F.lit(x) for kv in STATUS_ORDER.items() for x in kv])
    seen = (
        inspections.where(F.col("plan_id").isNotNull())
        .withColumn("_o", F.col("outcome"))
        .where(F.col("_o").isNotNull())
        .groupBy("plan_id", "uscc")
        .agg(F.min(F.element_at(rank, F.col("_o"))).alias("_r"))
    )
    back = F.create_map(*[F.lit(x) for k, v in STATUS_ORDER.items() for x in (v, k)])
    return plan.join(seen, ["plan_id", "uscc"], "left").withColumn(
        "status", F.coalesce(F.element_at(back, F.col("_r")), F.lit("not_yet"))
    )


def _counts() -> list:
    s = F.col("status")
    return [
        F.count("*").alias("drawn"),
        F.sum(s.isin(FOUND, CLEAN).cast("long")).alias("inspected"),
        F.sum((s == FOUND).cast("long")).alias("found_problem"),
        F.sum((s == UNREACHABLE).cast("long")).alias("unreachable"),
        F.sum((s == NOT_INSPECTED).cast("long")).alias("not_inspected"),
        F.sum((s == "not_yet").cast("long")).alias("not_yet"),
    ]


def _rates(df: DataFrame) -> DataFrame:
    return df.withColumn(
        "completion_rate", F.when(F.col("drawn") > 0, F.col("inspected") / F.col("drawn"))
    ).withColumn(
        "hit_rate", F.when(F.col("inspected") > 0, F.col("found_problem") / F.col("inspected"))
    )


def build(
    spark: SparkSession,
    plan: DataFrame,
    inspections: DataFrame,
    regions: DataFrame,
    roster: DataFrame,
) -> tuple[DataFrame, DataFrame]:
    """(per plan x district, per plan x district x inspector) completion counts with the
    completion rate (inspected / drawn) and hit rate (found / inspected)."""
    st = statuses(plan, inspections)
    keys = ["as_of", "plan_id", "region_code"]
    by_district = _rates(st.groupBy(*keys).agg(*_counts()))
    team = st.withColumn(
        "_who",
        F.explode(
            F.when(F.col("inspector_id").isNull(), F.array(F.lit(None).cast("string"))).otherwise(
                F.array_compact(F.array("inspector_id", "inspector_2_id"))
            )
        ),
    )
    names = roster.select(F.col("inspector_id").alias("_who"), F.col("name").alias("_name"))
    by_inspector = _rates(
        team.groupBy(*keys, "_who").agg(*_counts()).join(names, "_who", "left")
    ).select(
        *keys,
        F.coalesce(F.col("_who"), F.lit("-")).alias("inspector_id"),
        F.when(F.col("_who").isNull(), F.lit(UNASSIGNED))
        .otherwise(F.coalesce(F.col("_name"), F.col("_who")))
        .alias("inspector_name"),
        *COUNTS,
        "completion_rate",
        "hit_rate",
    )
    district_cols = [*keys, "region_name", *COUNTS, "completion_rate", "hit_rate"]
    inspector_cols = [*keys, "region_name", "inspector_id", "inspector_name", *COUNTS,
                      "completion_rate", "hit_rate"]  # fmt: skip
    return (
        with_names(by_district, regions, spark).select(*district_cols),
        with_names(by_inspector, regions, spark).select(*inspector_cols),
    )
