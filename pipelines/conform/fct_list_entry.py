"""silver.fct_list_entry: abnormal-operation (经营异常名录) and serious-violation
(严重违法失信名单) list entries, one table with ``list_type``."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.conform._common import FactModel, Staging, raw
from pipelines.normalise import clean_code, clean_text
from quality import rules as R
from warehouse import tables


def _stage(list_type: str, has_removal_reason: bool):
    def stage(rows: DataFrame, st: Staging) -> DataFrame:
        """Typed list-entry rows of one list."""
        return rows.select(
            "*",
            F.lit(list_type).alias("list_type"),
            clean_code(raw("uscc")).alias("uscc"),
            st.date("entered_on").alias("entered_on"),
            clean_text(raw("entry_reason")).alias("entry_reason"),
            st.date("removed_on").alias("removed_on"),
            (
                clean_text(raw("removal_reason"))
                if has_removal_reason
                else F.lit(None).cast("string")
            ).alias("removal_reason"),
            clean_text(raw("authority")).alias("authority"),
            st.date("reported_on").alias("reported_on"),
        )

    return stage


def _rules() -> list[R.RowRule]:
    return [
        R.required("uscc"),
        R.valid_uscc(),
        R.parseable_date("entered_on"),
        R.parseable_date("removed_on"),
        R.parseable_date("reported_on"),
        R.required("entered_on"),
        R.removal_after_entry(),
        R.not_future("entered_on"),
        R.not_future("removed_on"),
        R.known_enterprise(),
        R.not_before_founding("entered_on"),
    ]


ABNORMAL = FactModel(tables.FCT_LIST_ENTRY, "abnormal_list", _stage("abnormal", True), _rules())
SERIOUS = FactModel(tables.FCT_LIST_ENTRY, "serious_list", _stage("serious", False), _rules())
