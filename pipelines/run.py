"""One run date end to end through the lakehouse: land the day's files, conform to silver.

This module only wires: the steps and their order are :data:`pipelines.steps.DELIVERY`, run by
:func:`pipelines.steps.run_steps` (the daily DAG makes a task of each). Quality gates run at
every arrow (bronze, rows entering silver, silver tables): a blocking table-level failure raises
:class:`quality.gates.GateBlocked` and the steps after it do not run; the Data Docs are rebuilt
either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from pipelines.conform._common import ConformCounts
from pipelines.ingest import IngestResult
from pipelines.steps import DELIVERY, Run, run_steps
from quality import ledger
from quality.policy import policy_for
from warehouse import audit
from warehouse.lock import lake_lock
from warehouse.settings import Settings, get_settings


@dataclass
class DayRun:
    """What one run date did: files landed (or skipped, rejected) and rows conformed."""

    run_date: date
    ingested: list[IngestResult] = field(default_factory=list)
    conformed: list[ConformCounts] = field(default_factory=list)
    quality: dict[str, int] = field(default_factory=dict)  # checks/passed/warned/… of the day
    docs_index: Path | None = None
    reports: list[str] = field(default_factory=list)  # rectification reports (HTML) written


def run_day(
    spark: SparkSession,
    landing_root: Path,
    run_date: date,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
    docs: bool = True,
    reconform: bool = False,
) -> DayRun:
    """Land, gate and conform one delivery date; rebuild the Data Docs when ``docs``;
    ``reconform`` conforms and checks again what was conformed and checked from the same
    inputs before (conform and the gates otherwise reuse it).

    Safe to repeat: a second run changes nothing, and a run killed at any point is completed
    by running it again. Holds the lake lock throughout (waits for another writer, or raises
    ``LockBusy`` naming it) and records its start and end in ``audit.events``. Raises
    ``GateBlocked`` when a blocking table-level check fails (after its ledger row is written).
    """
    s = settings or get_settings()
    say = progress or (lambda _msg: None)
    day = DayRun(run_date)
    folder = Path(landing_root) / run_date.isoformat()
    run = Run(s, run_date, landing_root=Path(landing_root), say=say, _spark=spark,
              options={"reconform": reconform})  # fmt: skip
    steps = DELIVERY if docs else tuple(st for st in DELIVERY if st.name != "data_docs")
    with (
        lake_lock(s, f"run {run_date}", say=say),
        audit.recorded(
            spark, s, "run", f"delivery {run_date}", run_date=run_date,
            inputs={"landing": str(folder)},
            versions={"quality_policy": policy_for(s).version},
        ) as rec,
    ):  # fmt: skip
        try:
            run_steps(steps, run)
        finally:
            done = run.results
            day.ingested = done.get("land", [])
            rec.inputs["files"] = [
                {"file": r.file, "batch": r.batch_id, "status": r.status} for r in day.ingested
            ]
            day.conformed = done.get("conform", [])
            day.reports = [str(r.html) for r in done.get("rectification_reports", [])]
            day.docs_index = done.get("data_docs")
            day.quality = ledger.run_summary(spark, run_date, s)
            rec.details["quality"] = day.quality
        rec.details["conformed"] = {c.target: c.rows_conformed for c in day.conformed}
    return day


def delivery_dates(landing_root: Path) -> list[date]:
    """Every delivery folder under the landing root, oldest first."""
    found = []
    for p in Path(landing_root).iterdir():
        try:
            found.append(date.fromisoformat(p.name))
        except ValueError:
            continue
    return sorted(found)
