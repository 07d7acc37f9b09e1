"""silver.fct_annual_report: annual reports (企业年度报告), due 30 June of the next year."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.conform._common import FactModel, Staging, raw
from pipelines.normalise import clean_code, clean_text, parse_int
from quality import rules as R
from warehouse import tables


def stage(rows: DataFrame, st: Staging) -> DataFrame:
    """Typed report rows with the legal due date (30 June of year + 1) and lateness."""
    year = parse_int(raw("report_year"))
    filed = st.date("filed_on")
    due = F.make_date(year + 1, F.lit(6), F.lit(30))
    return rows.select(
        "*",
        clean_code(raw("uscc")).alias("uscc"),
        year.alias("report_year"),
        filed.alias("filed_on"),
        due.alias("due_on"),
        (filed > due).alias("is_late"),
        parse_int(raw("employees")).alias("employees"),
        clean_text(raw("revenue_band")).alias("revenue_band"),
        parse_int(raw("insured_staff")).alias("insured_staff"),
    )


MODEL = FactModel(
    target=tables.FCT_ANNUAL_REPORT,
    source="annual_report",
    stage=stage,
    rules=[
        R.required("uscc"),
        R.parseable_number("report_year", "report_year"),
        R.required("report_year"),
        R.valid_uscc(),
        R.parseable_date("filed_on"),
        R.parseable_number("employees", "employees"),
        R.parseable_number("insured_staff", "insured_staff"),
        R.not_future("filed_on"),
        R.known_enterprise(),
        R.not_before_founding("filed_on"),
    ],
)
