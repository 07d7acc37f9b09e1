"""Writing quarantine rows (``quarantine.rejected_rows``), shared by ingest and conform."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession

from warehouse import tables
from warehouse.settings import Settings


def write_quarantine(
    spark: SparkSession, rows: DataFrame, settings: Settings, source: str, **where: Any
) -> None:
    """Replace the quarantine rows of ``source`` that ``where`` selects (column = value, e.g.
    ``stage="ingest", _batch_id=b``) with ``rows``.

    Skipped when the same rows are already there, so a re-run leaves the table as it was.
    """
    where = {"source": source, **where}
    new = rows.select(*tables.REJECTED_ROWS.columns).cache()
    try:
        content = [c for c in tables.REJECTED_ROWS.columns if c != "quarantined_at"]
        selected = tables.predicate(tables.REJECTED_ROWS, where)
        old = tables.read(spark, tables.REJECTED_ROWS, settings).where(selected).select(*content)
        if not tables.same_rows(new.select(*content), old):
            tables.replace(new, tables.REJECTED_ROWS, settings, **where)
    finally:
        new.unpersist()
