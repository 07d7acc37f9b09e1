"""mart_quarantine: quarantined rows per run date × source × stage × check (隔离统计)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def build(rejected: DataFrame) -> DataFrame:
    """Counts of ``quarantine.rejected_rows``; a row rejected by several checks counts under
    its first (``check_name``)."""
    return (
        rejected.groupBy(F.col("_run_date").alias("run_date"), "source", "stage", "check_name")
        .count()
        .withColumnRenamed("count", "rows")
    )
