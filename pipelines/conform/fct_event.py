"""silver.fct_event: enterprise events of the kinds the event mapping declares (许可准予,
吊销许可证, 行政奖励 …).

The mapping's ``vocabularies.kind`` translates the bureau's word (``kind``) into a declared
kind (``kind_code``); a word outside it quarantines the row, so a
kind the bureau starts sending is reported back to it rather than counted as something else.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from pipelines.conform._common import FactModel, Staging, raw
from pipelines.normalise import clean_code, clean_text
from quality import rules as R
from warehouse import tables


def stage(rows: DataFrame, st: Staging) -> DataFrame:
    """Typed event rows with the declared kind."""
    return rows.select(
        "*",
        clean_code(raw("event_id")).alias("event_id"),
        clean_code(raw("uscc")).alias("uscc"),
        clean_text(raw("kind")).alias("kind"),
        st.word("kind").alias("kind_code"),
        st.date("event_on").alias("event_on"),
        clean_text(raw("detail")).alias("detail"),
        clean_text(raw("authority")).alias("authority"),
        st.date("reported_on").alias("reported_on"),
    )


MODEL = FactModel(
    target=tables.FCT_EVENT,
    source="event",
    stage=stage,
    rules=[
        R.required("event_id"),
        R.required("uscc"),
        R.valid_uscc(),
        R.required("kind"),
        R.known_value("kind", "kind_code"),
        R.parseable_date("event_on"),
        R.parseable_date("reported_on"),
        R.required("event_on"),
        R.not_future("event_on"),
        R.not_future("reported_on"),
        R.known_enterprise(),
        R.not_before_founding("event_on"),
    ],
)
