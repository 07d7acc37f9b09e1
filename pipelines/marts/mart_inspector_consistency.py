"""执法尺度统一 (uniform enforcement standard): audit.inspector_consistency with each inspector's
name and district from the roster and the flag in words, for the bureau's leadership.

One row per period and inspector. An inspector missing from the roster keeps the row, with the
id for a name and no district (only the analysts' all-district view shows it).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.marts._common import with_names
from warehouse.tables import CONSISTENCY_FLAGS

COLUMNS = ("period", "region_code", "region_name", "inspector_id", "inspector_name",
           "inspections", "findings", "expected_findings", "finding_rate", "expected_rate",
           "relative_ratio", "relative_low", "relative_high", "flag", "flag_zh")  # fmt: skip
# rounded for reading (the audit table keeps the exact figures)
ROUNDED = ("expected_findings", "finding_rate", "expected_rate", "relative_ratio",
           "relative_low", "relative_high")  # fmt: skip


def build(
    spark: SparkSession, consistency: DataFrame, roster: DataFrame, regions: DataFrame
) -> DataFrame:
    """Per period × inspector: the consistency figures, the inspector's name and district
    (region_code, region_name) and ``flag_zh`` (e.g. 偏严 / stricter than expected); expected
    findings to one decimal, rates and ratios to three."""
    words = F.create_map(
        *[F.lit(x) for k, (zh, en) in CONSISTENCY_FLAGS.items() for x in (k, f"{zh} / {en}")]
    )
    names = roster.select("inspector_id", F.col("name").alias("_name"), "region_code")
    out = (
        consistency.join(names, "inspector_id", "left")
        .withColumn("inspector_name", F.coalesce("_name", "inspector_id"))
        .withColumn("flag_zh", F.element_at(words, F.col("flag")))
    )
    shown = {c: F.round(c, 1 if c == "expected_findings" else 3) for c in ROUNDED}
    return with_names(out, regions, spark).withColumns(shown).select(*COLUMNS)
