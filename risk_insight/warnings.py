"""Early warnings (风险预警) at as-of T against the previous plan period: T' is the last run
before the period of T began (the latest as-of in gold.credit_tiers before the period's first
day), so every daily run of a period compares with the same picture, not with yesterday:

* ``tier_rise``: the tier rose at least ``policy.warnings.tier_rise`` steps since T';
* ``entered_d``: tier D at T, not D at T' (an enterprise new at T that starts in D counts);
* ``new_serious_list``: a serious-violation list entry dated in [T', T) (without a previous run,
  the ``serious_lookback_days`` before T);
* ``complaint_surge``: at least ``complaint_min_recent`` complaints in the ``complaint_recent_days``
  before T and at least ``complaint_surge_ratio`` x the enterprise's own rate per window over
  the ``complaint_history_days`` before that (a history of zero counts as one complaint per
  history, so a sudden burst from a quiet enterprise is caught but a single complaint is not).

Excluded enterprises (deregistered or revoked) raise no warning.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from warehouse import tables
from warehouse.contracts.tier_policy import TIER_ORDER, TierPolicy, policy_for
from warehouse.settings import Settings, get_settings

TRIGGERS = ("tier_rise", "entered_d", "new_serious_list", "complaint_surge")


def _order(col: str):
    order = F.create_map(*[F.lit(x) for kv in TIER_ORDER.items() for x in kv])
    return F.element_at(order, F.col(col))


def compute_warnings(
    tiers_now: DataFrame,
    tiers_prev: DataFrame | None,
    list_entries: DataFrame,
    complaints: DataFrame,
    as_of: date,
    previous_as_of: date | None,
    policy: TierPolicy,
) -> DataFrame:
    """(uscc, trigger, region_code, tier, previous_tier, previous_as_of, evidence_zh,
    evidence_en, evidence) for every warning at ``as_of``; tier frames are one as-of each."""
    w = policy.warnings
    now = tiers_now.where(~F.col("excluded")).select("uscc", "region_code", "tier", "probability")
    prev_d = F.lit(previous_as_of).cast("date")
    out: list[DataFrame] = []

    if tiers_prev is not None:
        prev = tiers_prev.select(
            "uscc",
            F.col("tier").alias("previous_tier"),
            F.col("probability").alias("previous_probability"),
        )
        both = now.join(prev, "uscc", "left")
        rise = _order("tier") - _order("previous_tier")
        ev = F.create_map(
            F.lit("previous_tier"), F.col("previous_tier"),
            F.lit("tier"), F.col("tier"),
            F.lit("previous_probability"), F.format_number("previous_probability", 4),
            F.lit("probability"), F.format_number("probability", 4),
        )  # fmt: skip
        move_zh = F.concat(
            F.coalesce(F.col("previous_tier"), F.lit("（新）")), F.lit("→"), F.col("tier")
        )
        move_en = F.concat(
            F.coalesce(F.col("previous_tier"), F.lit("(new)")), F.lit(" -> "), F.col("tier")
        )
        out.append(
            both.where(F.col("previous_tier").isNotNull() & (rise >= F.lit(w.tier_rise))).select(
                "uscc",
                F.lit("tier_rise").alias("trigger"),
                "region_code",
                "tier",
                "previous_tier",
                F.concat(F.lit("风险等级上升"), rise.cast("string"), F.lit("级："), move_zh).alias(
                    "evidence_zh"
                ),
                F.concat(
                    F.lit("tier rose "), rise.cast("string"), F.lit(" steps: "), move_en
                ).alias("evidence_en"),
                ev.alias("evidence"),
            )  # fmt: skip
        )
        out.append(
            both.where(
                (F.col("tier") == "D")
                & (F.col("previous_tier").isNull() | (F.col("previous_tier") != "D"))
            ).select(
                "uscc",
                F.lit("entered_d").alias("trigger"),
                "region_code",
                "tier",
                "previous_tier",
                F.concat(F.lit("新进入D类（高风险）："), move_zh).alias("evidence_zh"),
                F.concat(F.lit("entered tier D: "), move_en).alias("evidence_en"),
                ev.alias("evidence"),
            )  # fmt: skip
        )

    since = previous_as_of or as_of - timedelta(days=w.serious_lookback_days)
    serious = (
        list_entries.where(
            (F.col("list_type") == "serious")
            & (F.col("entered_on") >= F.lit(since))
            & (F.col("entered_on") < F.lit(as_of))
        )
        .groupBy("uscc")
        .agg(F.min("entered_on").alias("entered_on"), F.first("entry_reason").alias("reason"))
        .join(now, "uscc")
    )
    out.append(
        serious.select(
            "uscc",
            F.lit("new_serious_list").alias("trigger"),
            "region_code",
            "tier",
            F.lit(None).cast("string").alias("previous_tier"),
            F.concat(
                F.lit("新列入严重违法失信名单（"),
                F.col("entered_on").cast("string"),
                F.lit("）："),
                F.coalesce("reason", F.lit("")),
            ).alias("evidence_zh"),
            F.concat(
                F.lit("new serious-violation list entry on "), F.col("entered_on").cast("string")
            ).alias("evidence_en"),
            F.create_map(
                F.lit("entered_on"),
                F.col("entered_on").cast("string"),
                F.lit("entry_reason"),
                F.col("reason"),
            ).alias("evidence"),
        )  # fmt: skip
    )

    recent_from = as_of - timedelta(days=w.complaint_recent_days)
    hist_from = recent_from - timedelta(days=w.complaint_history_days)
    windows = w.complaint_history_days / w.complaint_recent_days
    counts = (
        complaints.where(
            (F.col("received_on") >= F.lit(hist_from)) & (F.col("received_on") < F.lit(as_of))
        )
        .groupBy("uscc")
        .agg(
            F.sum((F.col("received_on") >= F.lit(recent_from)).cast("int")).alias("recent"),
            F.sum((F.col("received_on") < F.lit(recent_from)).cast("int")).alias("history"),
        )
    )
    baseline = F.greatest(F.col("history"), F.lit(1)) / F.lit(windows)
    surge = counts.where(
        (F.col("recent") >= F.lit(w.complaint_min_recent))
        & (F.col("recent") >= F.lit(w.complaint_surge_ratio) * baseline)
    ).join(now, "uscc")
    out.append(
        surge.select(
            "uscc",
            F.lit("complaint_surge").alias("trigger"),
            "region_code",
            "tier",
            F.lit(None).cast("string").alias("previous_tier"),
            F.concat(
                F.lit(f"近{w.complaint_recent_days}天投诉"),
                F.col("recent").cast("string"),
                F.lit(f"件，此前{w.complaint_history_days}天共"),
                F.col("history").cast("string"),
                F.lit("件"),
            ).alias("evidence_zh"),
            F.concat(
                F.col("recent").cast("string"),
                F.lit(f" complaints in the last {w.complaint_recent_days} days vs "),
                F.col("history").cast("string"),
                F.lit(f" in the {w.complaint_history_days} days before"),
            ).alias("evidence_en"),
            F.create_map(
                F.lit("recent"),
                F.col("recent").cast("string"),
                F.lit("history"),
                F.col("history").cast("string"),
                F.lit("ratio_to_baseline"),
                F.format_number(F.col("recent") / baseline, 2),
            ).alias("evidence"),
        )  # fmt: skip
    )
    result = out[0]
    for df in out[1:]:
        result = result.unionByName(df)
    return result.withColumn("previous_as_of", prev_d)


def previous_as_of(
    spark: SparkSession, as_of: date, settings: Settings, policy: TierPolicy | None = None
) -> date | None:
    """The previous period's last run: the latest as-of date in gold.credit_tiers before the
    first day of the plan period of ``as_of`` (None if there is none)."""
    from risk_insight.calendar import period_of

    pol = policy or policy_for(settings)
    start = period_of(as_of, pol.plan.period).start
    row = (
        tables.read(spark, tables.CREDIT_TIERS, settings)
        .where(F.col("as_of") < F.lit(start))
        .agg(F.max("as_of"))
        .first()
    )
    return row[0] if row else None


def build_warnings(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> dict[str, int]:
    """Warnings at ``as_of`` into gold.warnings (that as-of partition replaced); returns the
    count per trigger."""
    s = settings or get_settings()
    pol = policy or policy_for(s)
    tiers = tables.read(spark, tables.CREDIT_TIERS, s)
    prev = previous_as_of(spark, as_of, s, pol)
    df = compute_warnings(
        tiers.where(F.col("as_of") == F.lit(as_of)),
        tiers.where(F.col("as_of") == F.lit(prev)) if prev else None,
        tables.read(spark, tables.FCT_LIST_ENTRY, s),
        tables.read(spark, tables.FCT_COMPLAINT, s),
        as_of,
        prev,
        pol,
    )
    target = tables.WARNINGS
    tables.ensure(spark, target, s)
    out = df.select(
        F.lit(as_of).alias("as_of"),
        "*",
        F.lit(pol.version).alias("policy_version"),
        F.current_timestamp().alias("_built_at"),  # audit timestamp only
    ).select(*target.columns)
    tables.replace(out, target, s, as_of=as_of)
    return warning_counts(spark, as_of, s)


def warning_counts(spark: SparkSession, as_of: date, settings: Settings) -> dict[str, int]:
    """Rows of gold.warnings at ``as_of`` per trigger (every trigger named, zeros included)."""
    got = {
        r["trigger"]: r["count"]
        for r in tables.read(spark, tables.WARNINGS, settings)
        .where(F.col("as_of") == F.lit(as_of))
        .groupBy("trigger")
        .count()
        .collect()
    }
    return {t: got.get(t, 0) for t in TRIGGERS}
