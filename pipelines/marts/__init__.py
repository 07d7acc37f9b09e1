"""Serving marts: gold (and the quality ledger) → the SQL store the BI dashboards read.

``build_marts(spark, as_of, settings)`` builds every mart of ``warehouse.serving.MARTS`` and
publishes them in one atomic step. The as-of marts (tiers, target list, warnings) are
incremental: only the run's as-of date is rebuilt and replaced; on a local lake Spark writes
them as Parquet that the store reads itself (``serving.ParquetFrame``), so a province's target
list never passes whole through the driver. The others are small aggregates rebuilt whole.
Each mart is one module here, a pure function of DataFrames.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts import (
    mart_enforcement_stats,
    mart_inspector_consistency,
    mart_model_performance,
    mart_plan_completion,
    mart_plan_outcomes,
    mart_quality_trend,
    mart_quarantine,
    mart_target_list,
    mart_tier_distribution,
    mart_warnings,
)
from warehouse import audit, contracts, serving, storage, tables
from warehouse.settings import Settings, get_settings


@dataclass
class MartsSummary:
    """What one publish wrote: the store and the rows of each mart in this run."""

    url: str
    as_of: list[date]
    rows: dict[str, int] = field(default_factory=dict)


def tiered_dates(spark: SparkSession, settings: Settings) -> list[date]:
    """As-of dates with tiers in gold."""
    rows = tables.read(spark, tables.CREDIT_TIERS, settings).select("as_of").distinct().collect()
    return sorted(r[0] for r in rows)


def build_marts(
    spark: SparkSession, as_of: date | None = None, settings: Settings | None = None
) -> MartsSummary:
    """Build every mart and publish them to the serving store. ``as_of`` names the run's
    as-of date (the incremental marts replace that date only); None rebuilds every as-of
    date in gold. Idempotent: the same inputs publish the same rows."""
    s = settings or get_settings()

    def read(t: tables.Table) -> DataFrame:
        return tables.read(spark, t, s)

    regions = read(tables.DIM_REGION)
    enterprises = read(tables.DIM_ENTERPRISE)
    dates = [as_of] if as_of is not None else tiered_dates(spark, s)

    per_date: dict[serving.Mart, list[DataFrame]] = {
        serving.MART_TIER_DISTRIBUTION: [],
        serving.MART_TARGET_LIST: [],
        serving.MART_WARNINGS: [],
    }
    for d in dates:
        at = F.col("as_of") == F.lit(d)
        tiers = read(tables.CREDIT_TIERS).where(at)
        per_date[serving.MART_TIER_DISTRIBUTION].append(
            mart_tier_distribution.build(spark, tiers, enterprises, regions)
        )
        per_date[serving.MART_TARGET_LIST].append(
            mart_target_list.build(read(tables.TARGET_LIST).where(at))
        )
        per_date[serving.MART_WARNINGS].append(
            mart_warnings.build(spark, read(tables.WARNINGS).where(at), enterprises, regions)
        )
    staging = _staging_folder(s)
    try:
        frames: dict[serving.Mart, serving.Frame] = {
            m: _staged(reduce(DataFrame.unionByName, parts), m, staging)
            for m, parts in per_date.items()
            if parts
        }
        frames.update(_whole_marts(spark, s, read, regions, enterprises))
        url = serving.publish(frames, s)
        rows = {m.name: len(df) for m, df in frames.items()}
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return MartsSummary(url=url, as_of=dates, rows=rows)


def _staging_folder(settings: Settings) -> Path | None:
    """Where Spark writes the as-of marts for the store to read: a fresh folder beside the
    serving file in a local lake (executors and driver share that file system), None
    elsewhere (the rows are then collected to the driver)."""
    if not storage.is_local(settings.lake_root):
        return None
    return storage.local_path(settings.lake_root) / "serving" / f"_staging-{uuid.uuid4().hex}"


def _staged(df: DataFrame, mart: serving.Mart, folder: Path | None) -> serving.Frame:
    """``df`` as :func:`serving.publish` takes it: Parquet under ``folder``, else pandas."""
    if folder is None:
        return df.toPandas()
    path = folder / mart.name
    df.write.mode("overwrite").parquet(str(path))
    return serving.ParquetFrame(path)


def _whole_marts(
    spark: SparkSession,
    s: Settings,
    read: Callable[[tables.Table], DataFrame],
    regions: DataFrame,
    enterprises: DataFrame,
) -> dict[serving.Mart, serving.Frame]:
    """The marts rebuilt whole each run (small aggregates, collected)."""
    frames: dict[serving.Mart, serving.Frame] = {}
    frames[serving.MART_ENFORCEMENT_STATS] = mart_enforcement_stats.build(
        spark,
        read(tables.FCT_PENALTY),
        read(tables.FCT_INSPECTION),
        read(tables.FCT_COMPLAINT),
        read(tables.FCT_LIST_ENTRY),
        enterprises,
        regions,
    ).toPandas()
    frames[serving.MART_PLAN_OUTCOMES] = mart_plan_outcomes.build(
        spark, read(tables.INSPECTION_PLAN), read(tables.FCT_INSPECTION), regions
    ).toPandas()
    _, by_inspector = mart_plan_completion.build(
        spark,
        read(tables.INSPECTION_PLAN),
        read(tables.FCT_INSPECTION),
        regions,
        read(tables.DIM_INSPECTOR),
    )
    frames[serving.MART_PLAN_INSPECTORS] = by_inspector.toPandas()
    frames[serving.MART_INSPECTOR_CONSISTENCY] = mart_inspector_consistency.build(
        spark, read(tables.INSPECTOR_CONSISTENCY), read(tables.DIM_INSPECTOR), regions
    ).toPandas()
    sources = spark.createDataFrame(
        [(name, m.title_zh) for name, m in contracts.mappings(s).items()],
        "source string, source_zh string",
    )
    frames[serving.MART_QUALITY_TREND] = mart_quality_trend.build(
        read(tables.QUALITY_RESULTS), sources
    ).toPandas()
    frames[serving.MART_QUARANTINE] = mart_quarantine.build(
        read(tables.REJECTED_ROWS), sources
    ).toPandas()
    registry = (
        read(tables.MODEL_REGISTRY)
        .select("model_version", "registered_at", "artifact_path")
        .toPandas()
    )
    # the registry row keeps the summary; every fold's numbers are in the model's metrics.json
    registry["metrics"] = [_fold_metrics(p) for p in registry["artifact_path"]]
    backtest, calibration = mart_model_performance.build(
        registry, audit.champion(spark, s), _current_model(spark, s)
    )
    frames[serving.MART_MODEL_BACKTEST] = backtest
    frames[serving.MART_MODEL_CALIBRATION] = calibration
    return frames


def _current_model(spark: SparkSession, settings: Settings) -> str | None:
    """The model version behind the newest scores."""
    scores = tables.read(spark, tables.RISK_SCORES, settings)
    row = scores.orderBy(F.desc("as_of")).select("model_version").first()
    return row[0] if row else None


def _fold_metrics(model_dir: str) -> str:
    """The backtest metrics JSON a registered model keeps beside its booster ('{}' if gone)."""
    path = storage.join(model_dir, "metrics.json")
    return storage.read_text(path) if storage.exists(path) else "{}"
