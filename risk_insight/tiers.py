"""A-D credit tiers (信用风险分类): hard rules first, then the model's rank into policy shares.

Order of precedence (DOMAIN.md "Tier policy"):

1. out of scope at T (registry version valid at T with a status the policy excludes —
   deregistered, revoked, moved out, cancelled by default — or closed before T) ->
   ``excluded``: no tier, never drawn, never listed;
2. on the serious-violation list at T -> D (``rule = serious_list``);
3. on the abnormal-operation list at T -> at least C (``rule = abnormal_list`` where it raised
   the model's tier);
4. otherwise the model tier: rank by calibrated probability (highest first, ties by USCC)
   among the non-excluded scored enterprises; the first round(5 % n) are D, up to
   round(20 % n) C, up to round(80 % n) B, the rest A (cumulative shares, rounded half up,
   so the tiers always add up to n).

The rank over the whole scored population is computed without a single-task window
(:func:`global_rank`: a distributed sort, each partition numbered in place and offset by the
partitions before it), so nothing here runs on one task or on the driver.
"""

from __future__ import annotations

import json
import math
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from warehouse import tables
from warehouse.contracts.tier_policy import TIER_ORDER, TierPolicy, policy_for
from warehouse.settings import Settings, get_settings


def round_half_up(x: float) -> int:
    """Rounding used for every share and draw size (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5 + 1e-9))


def enterprises_at(enterprises: DataFrame, as_of: date) -> DataFrame:
    """The SCD2 version of each enterprise valid at ``as_of`` (known before T)."""
    return enterprises.where(tables.known_before(F.lit(as_of)))


def lists_at(list_entries: DataFrame, as_of: date) -> DataFrame:
    """(uscc, on_serious, on_abnormal): list entries in force at ``as_of``."""
    t = F.lit(as_of)
    live = list_entries.where(
        (F.col("entered_on") < t) & (F.col("removed_on").isNull() | (F.col("removed_on") >= t))
    )
    return live.groupBy("uscc").agg(
        F.max(F.col("list_type") == "serious").alias("on_serious"),
        F.max(F.col("list_type") == "abnormal").alias("on_abnormal"),
    )


def _tier_rank(tier: Column) -> Column:
    return F.element_at(F.create_map(*[F.lit(x) for kv in TIER_ORDER.items() for x in kv]), tier)


def global_rank(df: DataFrame, order: list[Column], name: str) -> DataFrame:
    """``df`` with column ``name``: the 1-based rank by ``order`` over the whole frame, exactly
    what ``row_number()`` over an unpartitioned window gives, without that window's single
    task: a distributed sort, each partition numbered in place, offset by the sizes of the
    partitions before it."""
    sorted_ = (
        df.orderBy(*order)
        .withColumn("_part", F.spark_partition_id())
        .withColumn("_id", F.monotonically_increasing_id())  # (partition << 33) + position
        .localCheckpoint()  # pin the partitioning the offsets are computed from
    )
    sizes = sorted(
        (r["_part"], r["n"])
        for r in sorted_.groupBy("_part").agg(F.count("*").alias("n")).collect()
    )
    before, offsets = 0, []
    for part, n in sizes:
        offsets += [F.lit(part), F.lit(before)]
        before += n
    offset = F.element_at(F.create_map(*offsets), F.col("_part")) if offsets else F.lit(0)
    position = F.col("_id") - F.shiftleft(F.col("_part").cast("long"), 33)
    return sorted_.withColumn(name, (offset + position + 1).cast("long")).drop("_part", "_id")


def assign_tiers(
    scores: DataFrame,
    enterprises: DataFrame,
    list_entries: DataFrame,
    as_of: date,
    policy: TierPolicy,
) -> DataFrame:
    """Tier of every enterprise scored at ``as_of``: (uscc, region_code, size_band, tier,
    model_tier, tier_source, rule, excluded, probability, credit_score, risk_rank,
    model_version). Excluded enterprises keep their row with ``tier`` NULL."""
    r = policy.rules
    ent = enterprises_at(enterprises, as_of).select(
        "uscc",
        F.col("status_code").alias("_status"),
        F.col("closed_on").alias("_closed_on"),
    )
    base = (
        scores.where(F.col("as_of") == F.lit(as_of))
        .join(ent, "uscc", "left")
        .join(lists_at(list_entries, as_of), "uscc", "left")
    )
    excluded = F.coalesce(
        F.col("_status").isin(*r.excluded_statuses)
        | (F.col("_closed_on").isNotNull() & (F.col("_closed_on") < F.lit(as_of))),
        F.lit(False),
    )
    base = base.withColumn("excluded", excluded)
    n = base.where(~F.col("excluded")).count()
    # risk order: highest probability first; USCC breaks ties so the rank is deterministic
    ranked = global_rank(
        base.where(~F.col("excluded")), [F.col("probability").desc(), F.col("uscc")], "risk_rank"
    )
    model_tier = None
    for tier, cum in policy.cumulative_shares():
        cut = F.col("risk_rank") <= F.lit(round_half_up(cum * n))
        model_tier = F.when(cut, tier) if model_tier is None else model_tier.when(cut, tier)
    ranked = ranked.withColumn("model_tier", model_tier.otherwise("A"))
    floor = r.abnormal_list_min_tier
    serious = F.coalesce(F.col("on_serious"), F.lit(False))
    abnormal = F.coalesce(F.col("on_abnormal"), F.lit(False)) & (
        _tier_rank(F.col("model_tier")) < F.lit(TIER_ORDER[floor])
    )
    ranked = (
        ranked.withColumn(
            "tier",
            F.when(serious, F.lit(r.serious_list_tier))
            .when(abnormal, F.lit(floor))
            .otherwise(F.col("model_tier")),
        )
        .withColumn(
            "rule",
            F.when(serious, F.lit("serious_list")).when(abnormal, F.lit("abnormal_list")),
        )
        .withColumn("tier_source", F.when(F.col("rule").isNull(), "model").otherwise("rule"))
    )
    out_of_scope = (
        base.where(F.col("excluded"))
        .withColumn("risk_rank", F.lit(None).cast("long"))
        .withColumn("model_tier", F.lit(None).cast("string"))
        .withColumn("tier", F.lit(None).cast("string"))
        .withColumn(
            "rule",
            # the excluded status, or "deregistered" for a version closed before T
            F.when(F.col("_status").isin(*r.excluded_statuses), F.col("_status")).otherwise(
                F.lit("deregistered")
            ),
        )
        .withColumn("tier_source", F.lit("rule"))
    )
    cols = [
        "uscc", "region_code", "size_band", "tier", "model_tier", "tier_source", "rule",
        "excluded", "probability", "credit_score", "risk_rank", "model_version",
    ]  # fmt: skip
    return ranked.select(*cols).unionByName(out_of_scope.select(*cols))


def build_tiers(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> dict[str, int]:
    """Tier the scores of ``as_of`` into gold.credit_tiers (that as-of partition replaced);
    returns the row count per tier (``excluded`` for the excluded)."""
    from pipelines.features.build import delta_version

    s = settings or get_settings()
    pol = policy or policy_for(s)
    scores = tables.read(spark, tables.RISK_SCORES, s)
    if scores.where(F.col("as_of") == F.lit(as_of)).limit(1).count() == 0:
        raise ValueError(f"no risk scores at {as_of}: run `risk-insight score --as-of {as_of}`")
    versions = {
        t.qualified: delta_version(spark, t, s)
        for t in (tables.RISK_SCORES, tables.DIM_ENTERPRISE, tables.FCT_LIST_ENTRY)
    }
    tiers = assign_tiers(
        scores,
        tables.read(spark, tables.DIM_ENTERPRISE, s),
        tables.read(spark, tables.FCT_LIST_ENTRY, s),
        as_of,
        pol,
    )
    target = tables.CREDIT_TIERS
    tables.ensure(spark, target, s)
    out = tiers.select(
        F.lit(as_of).alias("as_of"),
        "*",
        F.lit(pol.version).alias("policy_version"),
        F.lit(json.dumps(versions, sort_keys=True)).alias("_input_versions"),
        F.current_timestamp().alias("_built_at"),  # audit timestamp only
    ).select(*target.columns)
    tables.replace(out, target, s, as_of=as_of)
    return tier_counts(spark, as_of, s)


def tier_counts(spark: SparkSession, as_of: date, settings: Settings) -> dict[str, int]:
    """Rows of gold.credit_tiers at ``as_of`` per tier (``excluded`` for the excluded)."""
    rows = (
        tables.read(spark, tables.CREDIT_TIERS, settings)
        .where(F.col("as_of") == F.lit(as_of))
        .groupBy(F.coalesce("tier", F.lit("excluded")).alias("t"))
        .count()
        .collect()
    )
    got = {r["t"]: r["count"] for r in rows}
    return {t: got.get(t, 0) for t in ("A", "B", "C", "D", "excluded")}
