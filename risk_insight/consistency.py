"""执法尺度统一 / uniform enforcement standard: is each inspector's finding rate what the
enterprises they visited would lead one to expect?

Under 双随机 the inspector is drawn at random after the enterprises are, so over enough random
draws every inspector meets the same mix of risk. An inspector's findings are compared with the
findings *expected* from the model's calibrated probabilities of the enterprises they visited
(the score in force on the inspection day: the latest as-of date not after it, so nothing the
inspection found is in it). ``ratio`` = findings / expected findings; ``relative_ratio``
divides it by the same ratio of the whole period, so a model that is miscalibrated for
everybody does not make everybody look strict. Its interval is the exact Poisson (Garwood)
interval of the findings; an inspector whose interval lies wholly above 1 is ``stricter``,
wholly below 1 ``more_lenient``. Inspectors are never a ranking feature: this table is for
the bureau's leadership, not for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from scipy.stats import chi2

from pipelines.inspection_results import inspector_ids
from warehouse import tables
from warehouse.contracts.canonical import OBSERVED_RESULTS
from warehouse.settings import Settings, get_settings

PERIODS = ("month", "quarter", "year")
RANDOM_MODES = ("random_draw",)  # modes whose inspector is assigned at random
MIN_INSPECTIONS = 20  # fewer than this in a period: ``too_few`` to judge
# columns consistency() adds to the per-inspector sums
_DERIVED = ("finding_rate", "expected_rate", "ratio", "relative_ratio", "relative_low",
            "relative_high", "flag")  # fmt: skip
FLAGS = tables.CONSISTENCY_FLAGS


def period_of(day: F.Column, period: str) -> F.Column:
    """'2026-03', '2026Q1' or '2026' of a date column."""
    if period == "month":
        return F.date_format(day, "yyyy-MM")
    if period == "quarter":
        return F.concat(F.year(day).cast("string"), F.lit("Q"), F.quarter(day).cast("string"))
    if period == "year":
        return F.year(day).cast("string")
    raise ValueError(f"period must be one of {PERIODS}, not {period!r}")


def scored_inspections(
    inspections: DataFrame, scores: DataFrame, modes: Sequence[str] = RANDOM_MODES
) -> DataFrame:
    """Inspections of ``modes`` that observed the enterprise, one row per inspector on the
    record (a team's ids are separated by ';' or '；': each member answers for the finding),
    each with the calibrated probability of the score in force that day (latest ``as_of`` ≤
    ``inspected_on``); inspections before any score are left out."""
    observed = (
        inspections.where(
            F.col("outcome").isin(*OBSERVED_RESULTS)
            & F.col("mode_code").isin(*modes)
            & F.col("inspector_id").isNotNull()
        )
        .withColumn("inspector_id", F.explode(inspector_ids(F.col("inspector_id"))))
        .select("inspection_id", "uscc", "inspected_on", "inspector_id", "found_problem")
    )
    joined = observed.join(
        scores.select("uscc", "as_of", "probability"),
        (observed["uscc"] == scores["uscc"]) & (scores["as_of"] <= observed["inspected_on"]),
    ).drop(scores["uscc"])
    latest = Window.partitionBy("inspection_id", "inspector_id").orderBy(F.col("as_of").desc())
    return joined.withColumn("_n", F.row_number().over(latest)).where("_n = 1").drop("_n")


def consistency(
    scored: DataFrame,
    period: str = "quarter",
    confidence: float = 0.95,
    min_inspections: int = MIN_INSPECTIONS,
) -> pd.DataFrame:
    """Per period and inspector of :func:`scored_inspections`: inspections, findings, expected
    findings, rates, ``ratio``, ``relative_ratio`` with its ``confidence`` interval and a flag
    (see the module doc). Only the per-inspector sums reach the driver."""
    sums = (
        scored.withColumn("period", period_of(F.col("inspected_on"), period))
        .groupBy("period", "inspector_id")
        .agg(
            F.count("*").alias("inspections"),
            F.sum(F.col("found_problem").cast("long")).alias("findings"),
            F.sum("probability").alias("expected_findings"),
        )
        .toPandas()
    )
    if sums.empty:
        return sums.assign(**{c: [] for c in _DERIVED})
    sums["findings"] = sums["findings"].fillna(0).astype("int64")
    whole = sums.groupby("period")[["findings", "expected_findings"]].transform("sum")
    overall = whole["findings"] / whole["expected_findings"]
    o, e = sums["findings"], sums["expected_findings"]
    alpha = 1 - confidence
    low = pd.Series(chi2.ppf(alpha / 2, 2 * o) / 2, index=sums.index).fillna(0.0)
    high = pd.Series(chi2.ppf(1 - alpha / 2, 2 * (o + 1)) / 2, index=sums.index)
    sums["finding_rate"] = o / sums["inspections"]
    sums["expected_rate"] = e / sums["inspections"]
    sums["ratio"] = (o / e).where(e > 0)
    scale = (e * overall).where((e > 0) & (overall > 0))
    sums["relative_ratio"] = o / scale
    sums["relative_low"] = low / scale
    sums["relative_high"] = high / scale
    sums["flag"] = "consistent"
    sums.loc[sums["relative_low"] > 1, "flag"] = "stricter"
    sums.loc[sums["relative_high"] < 1, "flag"] = "more_lenient"
    sums.loc[(sums["inspections"] < min_inspections) | scale.isna(), "flag"] = "too_few"
    return sums.sort_values(["period", "inspector_id"]).reset_index(drop=True)


def build_consistency(
    spark: SparkSession,
    settings: Settings | None = None,
    period: str = "quarter",
    modes: Sequence[str] = RANDOM_MODES,
    confidence: float = 0.95,
    min_inspections: int = MIN_INSPECTIONS,
) -> pd.DataFrame:
    """Recompute ``audit.inspector_consistency`` from silver.fct_inspection and
    gold.risk_scores (the whole table replaced: it is small) and return it."""
    s = settings or get_settings()
    scored = scored_inspections(
        tables.read(spark, tables.FCT_INSPECTION, s), tables.read(spark, tables.RISK_SCORES, s),
        modes,
    )  # fmt: skip
    out = consistency(scored, period, confidence, min_inspections)
    out["modes"] = ",".join(modes)
    out["computed_at"] = datetime.now()
    target = tables.INSPECTOR_CONSISTENCY
    frame = out.reindex(columns=list(target.columns))
    frame = frame.astype(object).where(frame.notna(), None)  # NaN (no expectation) → NULL
    tables.replace(spark.createDataFrame(frame, target.schema), target, s)
    return out
