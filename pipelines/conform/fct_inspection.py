"""silver.fct_inspection: inspections (双随机抽查 / 定向检查 / 投诉核查) and their outcome.

The source mapping translates the bureau's words: the result into ``outcome`` (found, clean,
unreachable, not_inspected; a word outside the mapping quarantines the row) and the mode into
``mode_code`` (random_draw, targeted, complaint_check, other; an unknown word reads as other
and is recorded as a warning). ``found_problem`` is TRUE or FALSE only when someone inspected:
an enterprise that could not be reached, or was not inspected, has NULL — it is not "clean".
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.conform._common import FactModel, Staging, raw
from pipelines.normalise import clean_code, clean_text
from quality import rules as R
from warehouse import tables


def stage(rows: DataFrame, st: Staging) -> DataFrame:
    """Typed inspection rows with the canonical outcome and mode."""
    outcome = st.word("result")
    return rows.select(
        "*",
        clean_code(raw("inspection_id")).alias("inspection_id"),
        clean_code(raw("uscc")).alias("uscc"),
        st.date("inspected_on").alias("inspected_on"),
        clean_text(raw("mode")).alias("mode"),
        st.word("mode").alias("_mode_known"),
        st.open_word("mode").alias("mode_code"),
        clean_text(raw("result")).alias("result"),
        outcome.alias("outcome"),
        F.when(outcome == "found", True).when(outcome == "clean", False).alias("found_problem"),
        clean_code(raw("inspector_id")).alias("inspector_id"),
        clean_code(raw("plan_id")).alias("plan_id"),
        st.date("reported_on").alias("reported_on"),
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
        R.known_value("result", "outcome"),
        R.known_value("mode", "_mode_known"),
        R.not_future("inspected_on"),
        R.not_future("reported_on"),
        R.known_enterprise(),
        R.not_before_founding("inspected_on"),
    ],
)
