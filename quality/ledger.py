"""The quality ledger ``audit.quality_results``: one row per run date × table × source ×
expectation, written idempotently, and read back as summaries and trends."""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from quality.engine import CheckResult
from warehouse import tables
from warehouse.settings import Settings

LEDGER = tables.QUALITY_RESULTS


def write(spark: SparkSession, results: list[CheckResult], settings: Settings) -> None:
    """MERGE ``results`` on the ledger key. A stored row is replaced only when the verdict
    (outcome) changes: a re-run of a date after later dates landed sees bigger tables, but if it
    reaches the same verdict the ledger keeps the entry of the run that first decided it, so a
    re-run or backfill leaves the table as it was, and a fixed-and-replayed problem still shows."""
    if not results:
        return
    now = datetime.now()
    rows = [{**r.__dict__, "validated_at": now} for r in results]
    df = spark.createDataFrame(rows, LEDGER.schema)
    tables.upsert(df, LEDGER, settings, update_when="NOT (t.outcome <=> s.outcome)")


def read(spark: SparkSession, settings: Settings) -> DataFrame:
    """The whole ledger."""
    return tables.read(spark, LEDGER, settings)


def run_summary(spark: SparkSession, run_date: date | None, settings: Settings) -> dict[str, int]:
    """Checks run, passed, warned, quarantined (failed row rules) and blocked, for one run date
    (or all runs when ``run_date`` is None)."""
    df = read(spark, settings)
    if run_date is not None:
        df = df.where(F.col("run_date") == F.lit(run_date))
    counts = {r["outcome"]: r["count"] for r in df.groupBy("outcome").count().collect()}
    return {
        "checks": sum(counts.values()),
        "passed": counts.get("passed", 0),
        "warned": counts.get("warned", 0),
        "quarantined": counts.get("quarantined", 0),
        "blocked": counts.get("blocked", 0),
    }


def trend(spark: SparkSession, settings: Settings) -> DataFrame:
    """Per run date, table and expectation: outcome, unexpected share and rows quarantined —
    the series a dashboard plots (small: one row per check and day)."""
    return (
        read(spark, settings)
        .select(
            "run_date",
            "table_name",
            "source",
            "expectation",
            "gate",
            "outcome",
            "unexpected_percent",
            "unexpected_count",
            "element_count",
            "rows_quarantined",
        )
        .orderBy("run_date", "table_name", "source", "expectation")
    )
