"""The table registry's helpers that decide whether a write would change anything."""

from __future__ import annotations

from pyspark.sql import SparkSession

from warehouse import tables

SCHEMA = "k string, n long, tags array<string>"


def test_same_rows_counts_duplicates_and_nulls(spark: SparkSession) -> None:
    def df(*rows: tuple):
        return spark.createDataFrame(list(rows), SCHEMA)

    a = df(("x", 1, ["p"]), ("y", None, None), ("x", 1, ["p"]))
    assert tables.same_rows(a, df(("y", None, None), ("x", 1, ["p"]), ("x", 1, ["p"])))
    assert not tables.same_rows(a, df(("x", 1, ["p"]), ("y", None, None)))  # one duplicate less
    assert not tables.same_rows(a, df(("x", 1, ["p"]), ("y", 0, None), ("x", 1, ["p"])))
    assert not tables.same_rows(a, df(("x", 1, ["q"]), ("y", None, None), ("x", 1, ["p"])))
    assert not tables.same_rows(a, df())
    assert tables.same_rows(df(), df())
    # columns are matched by name, not position
    assert tables.same_rows(a.select("tags", "n", "k"), a)
