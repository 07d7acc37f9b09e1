"""The model stage of the demo: the champion, the as-of date that sees all the data, and the
champion's backtest table (model vs rules vs random vs oracle) for printing. Training is the
retrain graph's (``risk_insight.graph.RETRAIN``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from models import registry
from models.evaluate import backtest_table
from models.train import data_span
from warehouse.settings import Settings


def next_month(d: date) -> date:
    """The first day of the month after ``d``: the as-of date that sees all of ``d``'s data."""
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def model_stage(spark: SparkSession, settings: Settings) -> dict[str, Any]:
    """The champion (``RuntimeError`` if no model is champion), ``as_of`` (the month after
    silver's data span) and ``table`` (the champion's backtest table on random-draw
    inspections, a DataFrame)."""
    champ = registry.champion(spark, settings)
    if champ is None:
        raise RuntimeError("no model is champion: run the retrain (risk-insight train)")
    metrics = json.loads(registry.read_artifact(settings, champ, "metrics.json"))
    table: pd.DataFrame = backtest_table(metrics)
    return {"champion": champ, "as_of": next_month(data_span(spark, settings)[1]),
            "table": table}  # fmt: skip
