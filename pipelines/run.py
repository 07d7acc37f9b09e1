"""One run date end to end through the lakehouse: land the day's files, conform to silver.

This module only wires steps; each step is a function of its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from pipelines.conform import conform_day
from pipelines.conform._common import ConformCounts
from pipelines.ingest import IngestResult, land_day
from warehouse.settings import Settings, get_settings


@dataclass
class DayRun:
    """What one run date did: files landed (or skipped, rejected) and rows conformed."""

    run_date: date
    ingested: list[IngestResult] = field(default_factory=list)
    conformed: list[ConformCounts] = field(default_factory=list)


def run_day(
    spark: SparkSession,
    landing_root: Path,
    run_date: date,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> DayRun:
    """Land and conform one delivery date. Safe to repeat: a second run changes nothing."""
    s = settings or get_settings()
    say = progress or (lambda _msg: None)
    run = DayRun(run_date)
    say(f"{run_date}: landing files")
    run.ingested = land_day(spark, landing_root, run_date, s)
    say(f"{run_date}: conforming to silver")
    run.conformed = conform_day(spark, run_date, s)
    return run


def delivery_dates(landing_root: Path) -> list[date]:
    """Every delivery folder under the landing root, oldest first."""
    found = []
    for p in Path(landing_root).iterdir():
        try:
            found.append(date.fromisoformat(p.name))
        except ValueError:
            continue
    return sorted(found)
