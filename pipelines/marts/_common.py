"""Joins every mart needs: the enterprise's attributes as of a date, district and industry
names."""

from __future__ import annotations

import csv
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

INDUSTRIES_CSV = Path(__file__).resolve().parents[2] / "quality" / "reference" / "industries.csv"


def industries(spark: SparkSession) -> DataFrame:
    """GB/T 4754-2017 sections: industry (letter), industry_name (Chinese)."""
    with INDUSTRIES_CSV.open(encoding="utf-8") as fh:
        rows = [(r["industry"], r["industry_name"]) for r in csv.DictReader(fh)]
    return spark.createDataFrame(rows, "industry string, industry_name string")


def with_names(df: DataFrame, regions: DataFrame, spark: SparkSession) -> DataFrame:
    """``df`` with region_name and city_name (by region_code) and industry_name (by industry,
    when ``df`` has it); unknown codes keep a null name rather than losing the row."""
    out = df.join(regions.select("region_code", "region_name", "city_name"), "region_code", "left")
    if "industry" in df.columns:
        out = out.join(F.broadcast(industries(spark)), "industry", "left")
    return out


def month(col: str) -> Column:
    """'YYYY-MM' of a date column."""
    return F.date_format(F.col(col), "yyyy-MM")
