"""What the demo and ``risk-insight run`` print about quality: checks by outcome and
quarantined rows per defect class (small aggregates computed in Spark)."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.conform import region_reference
from quality.recall import check_classes
from warehouse import tables
from warehouse.settings import Settings


def quarantined_per_class(spark: SparkSession, settings: Settings) -> list[tuple[str, str, int]]:
    """(defect class, check, rows) over the whole quarantine, largest first."""
    classes = check_classes([r["region_code"] for r in region_reference()])
    rows = (
        tables.read(spark, tables.REJECTED_ROWS, settings)
        .groupBy("check_name")
        .count()
        .orderBy(F.desc("count"))
        .collect()
    )
    return [(classes.get(r["check_name"], "other"), r["check_name"], r["count"]) for r in rows]
