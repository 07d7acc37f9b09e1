"""silver.fct_inspection: inspections (双随机抽查 / 定向检查) and whether they found a problem."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.conform._common import FactModel, raw
from pipelines.normalise import clean_code, clean_text, parse_date
from quality import rules as R
from warehouse import tables


def stage(rows: DataFrame, key: str) -> DataFrame:
    """Typed inspection rows; ``found_problem`` read from the result (发现问题 / 未发现问题)."""
    result = clean_text(raw("result"))
    return rows.select(
        "*",
        clean_code(raw("inspection_id")).alias("inspection_id"),
        clean_code(raw("uscc")).alias("uscc"),
        parse_date(raw("inspected_on")).alias("inspected_on"),
        clean_text(raw("mode")).alias("mode"),
        result.alias("result"),
        F.when(result.isNull(), None)
        .when(result.contains("未发现"), False)
        .when(result.contains("发现"), True)
        .alias("found_problem"),
        clean_code(raw("inspector_id")).alias("inspector_id"),
        clean_code(raw("plan_id")).alias("plan_id"),
        parse_date(raw("reported_on")).alias("reported_on"),
    )


MODEL = FactModel(
    target=tables.FCT_INSPECTION,
    source="inspection",
    stage=stage,
    rules=[
        R.required("inspection_id"),
        R.required("uscc"),
        R.valid_uscc(),
        R.parseable_date("inspected_on"),
        R.parseable_date("reported_on"),
        R.required("inspected_on"),
        R.not_future("inspected_on"),
        R.not_future("reported_on"),
        R.known_enterprise(),
        R.not_before_founding("inspected_on"),
    ],
)
