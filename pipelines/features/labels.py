"""Labels for as-of date T and horizon H (DOMAIN.md): a finding within (T, T+H].

``label`` = an inspection in (T, T+H] found a problem, or a penalty was decided in (T, T+H].
It is computed in hindsight from everything silver holds (labels are judged after the window,
so their known date does not matter; their event date must be inside the window).

Unlabelled enterprises. Only an inspection observes whether an enterprise has a problem; an
enterprise nobody inspected in the window is *unlabelled*, not known to be clean. We

* train on every active enterprise, an uninspected and unpenalised one counting as 0.
  Penalties also come from other channels (tip-offs, campaigns), so the label still carries
  signal outside the inspected set, and the sample is ten times larger. The cost is bias: the
  model partly learns who gets inspected (complaint checks, list follow-ups). Training on the
  inspected only (``only_inspected=True`` in :mod:`models.train`) avoids that bias, but on
  random-draw inspections it ranked worse, so the bias is checked where it matters:
* judge targeting first on the enterprises drawn at random (``drawn``: 双随机抽查 inspections,
  with a plan id): a random sample of the active population, so precision at k there is an
  unbiased estimate of what inspecting the top k would find. Where draws are stratified by
  tier, re-weight by the inverse draw ratio. The ``inspected`` population (biased by past
  targeting) and ``all`` (uninspected = 0: recall of every recorded finding, which
  under-counts problems nobody looked for) are reported beside it.

What counts as an inspection. Only an inspection that took place observes the enterprise: a
result of 无法联系 (unreachable) or 未检查 (not inspected) is no observation, so such a row
makes the enterprise neither ``inspected`` nor ``drawn`` (silver's canonical ``outcome``,
read from the bureau's words by its mapping).

Weights. Tier-stratified plans draw D enterprises far more often than A ones, so a drawn
enterprise stands for ``1 / inclusion probability`` enterprises of its stratum
(``draw_weight``, from ``gold.inspection_plan`` through the inspection's plan id; the
probability is the stratum's drawn / eligible). Random draws without a recorded plan row
(historical draws, other systems' plans) get weight 1. An enterprise drawn more than once in
the window takes the weight of its first draw.

Inspectors. ``inspectors`` lists who inspected the enterprise in the window (a team recorded as
'A;B' counts both), so the model can learn and be judged net of how strict they were
(:mod:`models.inspectors`); an inspector is never a feature.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.inspection_results import FOUND, inspector_ids, took_place
from warehouse import tables
from warehouse.contracts.model_policy import HORIZON_DAYS
from warehouse.settings import Settings, get_settings


def build_labels(
    spark: SparkSession,
    as_of: Iterable[date],
    settings: Settings | None = None,
    horizon_days: int = HORIZON_DAYS,
) -> DataFrame:
    """(as_of, uscc, inspected, drawn, found, penalised, label, draw_weight, inspectors) for
    every enterprise with an inspection that took place or a penalty in (T, T+H]; enterprises
    absent have neither (label 0, unlabelled). ``draw_weight`` is NULL unless ``drawn``;
    ``inspectors`` lists the ids of everyone who inspected it in the window (sorted; NULL when
    only a penalty labels it)."""
    s = settings or get_settings()
    dates = sorted(set(as_of))
    asof = F.broadcast(spark.createDataFrame([(d,) for d in dates], "as_of date"))

    def in_window(col: str):
        return (F.col(col) > F.col("as_of")) & (
            F.col(col) <= F.date_add(F.col("as_of"), horizon_days)
        )

    plan = tables.read(spark, tables.INSPECTION_PLAN, s).select(
        "plan_id", "uscc", F.col("inclusion_prob").alias("_p")
    )
    rows = (
        tables.read(spark, tables.FCT_INSPECTION, s)
        # an inspection labels only when it observed the enterprise (found or clean)
        .where(took_place(F.col("outcome")))
        .join(plan, ["plan_id", "uscc"], "left")
        .withColumn("_random", (F.col("mode_code") == "random_draw") | F.col("plan_id").isNotNull())
        .withColumn("_team", F.coalesce(inspector_ids(F.col("inspector_id")), F.array()))
        .withColumn(
            "_w",
            F.when(
                F.col("_random"),
                F.when(F.col("_p") > 0, 1.0 / F.col("_p")).otherwise(F.lit(1.0)),
            ),
        )
    )
    ins = (
        rows.crossJoin(asof)
        .where(in_window("inspected_on"))
        .groupBy("as_of", "uscc")
        .agg(
            F.lit(True).alias("inspected"),
            F.max(F.coalesce(F.col("_random"), F.lit(False))).alias("drawn"),
            F.max(F.col("outcome") == FOUND).alias("found"),
            # the weight of the first random draw in the window (NULL if none)
            F.min_by(
                F.col("_w"),
                F.when(F.col("_w").isNotNull(), F.col("inspected_on")),
            ).alias("draw_weight"),
            # who observed it: the inspector effect is taken out of learning and judging
            F.array_sort(F.array_distinct(F.flatten(F.collect_list("_team")))).alias("inspectors"),
        )
    )
    pen = (
        tables.read(spark, tables.FCT_PENALTY, s)
        .crossJoin(asof)
        .where(in_window("decided_on"))
        .groupBy("as_of", "uscc")
        .agg(F.lit(True).alias("penalised"))
    )
    out = ins.join(pen, ["as_of", "uscc"], "full").fillna(
        False, subset=["inspected", "drawn", "found", "penalised"]
    )
    return out.withColumn("label", (F.col("found") | F.col("penalised")).cast("int"))
