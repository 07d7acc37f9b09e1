"""The model stage of the demo: train if no champion exists, score the latest month, and give
the backtest table (model vs rules vs random vs oracle) for printing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from models import registry
from models.evaluate import backtest_table
from models.retrain import train_and_register
from models.score import score
from models.train import data_span
from warehouse.settings import Settings


def next_month(d: date) -> date:
    """The first day of the month after ``d``: the as-of date that sees all of ``d``'s data."""
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def model_stage(
    spark: SparkSession,
    settings: Settings,
    truth_dir: str | Path | None = None,
    say: Callable[[str], None] = lambda _m: None,
    score_latest: bool = True,
) -> dict[str, Any]:
    """Ensure a champion (training one if none is registered), score the latest month (unless
    not ``score_latest``: the demo's run graph scores it).

    Returns ``decision`` (None if a champion existed), ``as_of`` (the latest month), ``score``
    (what was written; None when not scored) and ``table`` (the champion's backtest table on
    random-draw inspections, a DataFrame).
    """
    decision = None
    if registry.champion(spark, settings) is None:
        truth = str(truth_dir) if truth_dir and Path(truth_dir).exists() else None
        decision = train_and_register(spark, settings, truth_dir=truth, say=say)
        say(("promoted " if decision.promoted else "not promoted ") + decision.challenger)
    champ = registry.champion(spark, settings)
    if champ is None:
        raise RuntimeError(f"no model passed the promotion gate: {decision.reasons}")
    as_of = next_month(data_span(spark, settings)[1])
    written = score(spark, as_of, settings, champ) if score_latest else None
    metrics = json.loads(registry.read_artifact(settings, champ, "metrics.json"))
    table: pd.DataFrame = backtest_table(metrics)
    return {"decision": decision, "as_of": as_of, "score": written, "table": table,
            "champion": champ}  # fmt: skip
