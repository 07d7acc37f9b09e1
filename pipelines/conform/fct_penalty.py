"""silver.fct_penalty: administrative penalties (行政处罚), amounts in yuan."""

from __future__ import annotations

from pyspark.sql import DataFrame

from pipelines.conform._common import FactModel, Staging, raw
from pipelines.normalise import clean_code, clean_text
from quality import rules as R
from warehouse import tables


def stage(rows: DataFrame, st: Staging) -> DataFrame:
    """Typed penalty rows; raw text kept for the rules."""
    return rows.select(
        "*",
        clean_code(raw("case_no")).alias("case_no"),
        clean_code(raw("uscc")).alias("uscc"),
        st.date("decided_on").alias("decided_on"),
        clean_text(raw("category")).alias("category"),
        st.amount("amount").alias("amount_yuan"),
        clean_text(raw("authority")).alias("authority"),
        st.date("reported_on").alias("reported_on"),
    )


MODEL = FactModel(
    target=tables.FCT_PENALTY,
    source="penalty",
    stage=stage,
    rules=[
        R.required("case_no"),
        R.required("uscc"),
        R.valid_uscc(),
        R.parseable_date("decided_on"),
        R.parseable_date("reported_on"),
        R.required("decided_on"),
        R.parseable_number("amount_yuan", "amount"),
        R.non_negative("amount_yuan"),
        R.not_future("decided_on"),
        R.not_future("reported_on"),
        R.known_enterprise(),
        R.not_before_founding("decided_on"),
    ],
)
