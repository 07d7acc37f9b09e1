"""silver → gold: point-in-time enterprise features and labels.

The features themselves are declared in :mod:`warehouse.contracts.features` (the gold schema,
the model and the reasons all read it); the builders are imported lazily (they need Spark).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from warehouse.contracts.features import CATEGORICAL, FEATURE_NAMES, FEATURES, NUMERIC
from warehouse.contracts.model_policy import HORIZON_DAYS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from warehouse.settings import Settings


def build_features(
    spark: SparkSession, as_of: date | Iterable[date], settings: Settings | None = None
) -> list[date]:
    """Write gold.enterprise_features for ``as_of`` (one date or many); idempotent per date."""
    from pipelines.features.build import build_features as _build

    return _build(spark, as_of, settings)


def build_labels(
    spark: SparkSession,
    as_of: Iterable[date],
    settings: Settings | None = None,
    horizon_days: int = HORIZON_DAYS,
) -> DataFrame:
    """Labels per (as_of, uscc): finding or penalty in (T, T+H]; see :mod:`.labels`."""
    from pipelines.features.labels import build_labels as _labels

    return _labels(spark, as_of, settings, horizon_days)


__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "FEATURE_NAMES",
    "NUMERIC",
    "build_features",
    "build_labels",
]
