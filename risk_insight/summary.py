"""Small summaries of the lake for people: rows per table, quarantine, reconciliation.

Everything here aggregates in Spark and brings back a handful of rows.
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from warehouse import tables
from warehouse.settings import Settings


def rows_per_table(spark: SparkSession, settings: Settings) -> list[tuple[str, int]]:
    """(layer.table, row count) for every registered table."""
    return [(t.qualified, tables.read(spark, t, settings).count()) for t in tables.ALL_TABLES]


def quarantine_by_reason(
    spark: SparkSession, settings: Settings
) -> list[tuple[str, str, str, int]]:
    """(source, check, reason, rows) over the whole quarantine, largest first."""
    q = tables.read(spark, tables.REJECTED_ROWS, settings)
    rows = q.groupBy("source", "check_name", "reason").count().orderBy(F.desc("count")).collect()
    return [(r.source, r.check_name, r.reason, r["count"]) for r in rows]


def reconciliation(spark: SparkSession, settings: Settings) -> list[dict[str, object]]:
    """Per source: rows read = landed + quarantined at ingest, and bronze rows in = quarantined +
    duplicates + conformed at conform; ``balanced`` is True when both hold."""
    ingest = (
        tables.read(spark, tables.INGEST_LOG, settings)
        .where("status = 'landed'")
        .groupBy("source")
        .agg(
            F.sum("rows_read").alias("read"),
            F.sum("rows_landed").alias("landed"),
            F.sum("rows_quarantined").alias("ingest_quarantined"),
            F.count("*").alias("files"),
        )
    )
    conform = (
        tables.read(spark, tables.CONFORM_LOG, settings)
        .groupBy("source")
        .agg(
            F.sum("rows_in").alias("conform_in"),
            F.sum("rows_quarantined").alias("conform_quarantined"),
            F.sum("rows_duplicate").alias("duplicates"),
            F.sum("rows_conformed").alias("conformed"),
        )
    )
    out = []
    for r in ingest.join(conform, "source", "left").orderBy("source").collect():
        d = r.asDict()
        d = {k: (0 if v is None else v) for k, v in d.items()}
        d["balanced"] = (
            d["read"] == d["landed"] + d["ingest_quarantined"]
            and d["landed"] == d["conform_in"]
            and d["conform_in"] == d["conform_quarantined"] + d["duplicates"] + d["conformed"]
        )
        out.append(d)
    return out
