"""Writing quarantine rows (``quarantine.rejected_rows``), shared by ingest and conform."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from warehouse import tables
from warehouse.settings import Settings


def write_quarantine(
    spark: SparkSession, rows: DataFrame, replace_where: str, settings: Settings, source: str
) -> None:
    """Replace the quarantine rows that ``replace_where`` selects within ``source``.

    Skipped when the same rows are already there, so a re-run leaves the table as it was.
    """
    tables.ensure(spark, tables.REJECTED_ROWS, settings)
    where = f"source = '{source}' AND {replace_where}"
    new = rows.select(*tables.REJECTED_ROWS.columns).cache()
    try:
        content = [c for c in tables.REJECTED_ROWS.columns if c != "quarantined_at"]
        old = tables.read(spark, tables.REJECTED_ROWS, settings).where(where).select(*content)
        if new.isEmpty() and old.isEmpty():
            return
        unchanged = (
            old.exceptAll(new.select(*content)).isEmpty()
            and new.select(*content).exceptAll(old).isEmpty()
        )
        if not unchanged:
            new.write.format("delta").mode("overwrite").option("replaceWhere", where).save(
                tables.REJECTED_ROWS.path(settings)
            )
    finally:
        new.unpersist()
