"""silver.fct_complaint: complaints and tip-offs (投诉举报, 12315); complainant tokenised."""

from __future__ import annotations

from pyspark.sql import DataFrame

from pipelines.conform._common import FactModel, Staging, raw
from pipelines.normalise import clean_code, clean_text, token
from quality import rules as R
from warehouse import tables


def stage(rows: DataFrame, st: Staging) -> DataFrame:
    """Typed complaint rows; the complainant's phone becomes a keyed token."""
    return rows.select(
        "*",
        clean_code(raw("complaint_id")).alias("complaint_id"),
        clean_code(raw("uscc")).alias("uscc"),
        st.date("received_on").alias("received_on"),
        clean_text(raw("category")).alias("category"),
        clean_text(raw("channel")).alias("channel"),
        token(raw("complainant_phone"), st.key).alias("complainant_token"),
    )


MODEL = FactModel(
    target=tables.FCT_COMPLAINT,
    source="complaint",
    stage=stage,
    rules=[
        R.required("complaint_id"),
        R.required("uscc"),
        R.valid_uscc(),
        R.parseable_date("received_on"),
        R.required("received_on"),
        R.not_future("received_on"),
        R.known_enterprise(),
        R.not_before_founding("received_on"),
    ],
)
