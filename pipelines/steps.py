"""Steps declared once, run by one runner.

A :class:`Step` is a function of one :class:`Run` (its settings, delivery and as-of dates, Spark
session) that reads and writes the tables it declares. Steps are declared in order, each naming
the steps it follows; :func:`run_steps` executes a sequence of them in-process (``run_day``, the
demo) and the Airflow DAGs make one task of each (``dags/supervision_daily.py``), so the run
order is written in one place: :data:`DELIVERY` here, the rest of the daily graph in
``risk_insight/graph.py``.

Nothing heavy is imported at module level: the DAG files read the graph when they are parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from warehouse.settings import Settings


@dataclass
class Run:
    """One run of some steps: what they need to know, and what each returned (``results``)."""

    settings: Settings
    run_date: date
    as_of: date | None = None  # the scoring date; default the day after the delivery date
    landing_root: Path | None = None  # default settings.landing_root
    model_version: str | None = None  # score with this registered model (default the champion)
    options: dict[str, Any] = field(default_factory=dict)  # the run's own choices (seed, ...)
    say: Callable[[str], None] = lambda _msg: None
    results: dict[str, Any] = field(default_factory=dict)
    _spark: SparkSession | None = None

    def __post_init__(self) -> None:
        if self.as_of is None:
            # features at T use records known before T: the day after includes this delivery
            self.as_of = self.run_date + timedelta(days=1)
        if self.landing_root is None:
            self.landing_root = Path(self.settings.landing_root)

    @property
    def spark(self) -> SparkSession:
        """The process's Spark session (started on first use)."""
        if self._spark is None:
            from warehouse.spark import get_spark

            self._spark = get_spark(self.settings)
        return self._spark


@dataclass(frozen=True)
class Step:
    """One step of the graph. ``title`` is its progress line; ``reads``/``writes`` name the
    tables (or table groups) it touches, for people and the graph's own checks."""

    name: str
    run: Callable[[Run], Any]
    title: str
    after: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()  # steps (among ``after``) whose results it reads: run.results
    key: str = "run_date"  # the date a run of it is keyed on: "run_date", "as_of" or ""
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    gate: bool = False  # a quality gate: raises quality.gates.GateBlocked on a blocking failure
    always: bool = False  # runs after the gates even when a step before failed (Data Docs)
    outside: bool = False  # touches a system outside the lake: the DAG retries it with backoff
    writes_lake: bool = True  # as its own task it holds the lake lock and leaves a step event

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or self.title).strip()


def check_graph(steps: Sequence[Step]) -> None:
    """Raise ``ValueError`` unless names are unique, each step follows only steps declared
    before it (so the declared order is an order the runner can execute) and uses the results
    only of steps it follows (in Airflow they reach it as those tasks' XComs)."""
    seen: set[str] = set()
    every = {s.name for s in steps}
    for step in steps:
        if step.name in seen:
            raise ValueError(f"step {step.name!r} declared twice")
        later = [a for a in step.after if a in every and a not in seen]
        if later:
            raise ValueError(f"step {step.name!r} follows {later}, declared after it")
        unfollowed = [u for u in step.uses if u not in step.after]
        if unfollowed:
            raise ValueError(f"step {step.name!r} uses {unfollowed} but does not follow them")
        seen.add(step.name)


def select(steps: Sequence[Step], names: Iterable[str]) -> tuple[Step, ...]:
    """The steps named, in declared order (``KeyError`` for a name not in ``steps``)."""
    wanted = set(names)
    unknown = wanted - {s.name for s in steps}
    if unknown:
        raise KeyError(f"no such steps: {sorted(unknown)}")
    return tuple(s for s in steps if s.name in wanted)


def run_steps(steps: Sequence[Step], run: Run) -> dict[str, Any]:
    """Run ``steps`` in declared order; returns each step's result by name (also kept in
    ``run.results``).

    A step that raises stops the steps after it, except the ``always`` steps, which run at the
    end whatever happened; then the first error is raised (a blocking gate's ``GateBlocked``
    after its ledger rows were written, as the gate itself guarantees).
    """
    check_graph(steps)
    failure: BaseException | None = None
    try:
        for step in (s for s in steps if not s.always):
            run.say(f"{run.run_date}: {step.title}")
            run.results[step.name] = step.run(run)
    except BaseException as exc:
        failure = exc
    for step in (s for s in steps if s.always):
        run.say(f"{run.run_date}: {step.title}")
        try:
            run.results[step.name] = step.run(run)
        except Exception:
            if failure is None:
                raise
    if failure is not None:
        raise failure
    return run.results


# ---- the delivery: land → bronze gate → conform → reports, silver gate; Data Docs always ----


def land(run: Run) -> Any:
    """Land every file of the delivery date (files whose checksum already landed are skipped;
    files no mapping claims are logged as unmatched)."""
    from pipelines.ingest import land_day

    assert run.landing_root is not None
    return land_day(run.spark, run.landing_root, run.run_date, run.settings)


def bronze_gate(run: Run) -> Any:
    """Bronze gate (lineage, row identity, volume, freshness, deliveries expected); a decision
    taken on the same deliveries is reused, unless option ``reconform`` is set."""
    from quality import gates

    force = bool(run.options.get("reconform"))
    return gates.check_bronze(run.spark, run.run_date, run.settings, force=force)


def conform(run: Run) -> Any:
    """Bronze → silver for the delivery date (row rules checked by GX, block rows
    quarantined with their reason); a source already conformed from the same inputs is
    reused, unless option ``reconform`` is set."""
    from pipelines.conform import conform_day

    force = bool(run.options.get("reconform"))
    return conform_day(run.spark, run.run_date, run.settings, force=force)


def rectification_reports(run: Run) -> Any:
    """Rectification reports (CSV + HTML) to each source with rows quarantined that day."""
    from quality.reports import write_run_reports

    return write_run_reports(run.spark, run.run_date, run.settings)


def silver_gate(run: Run) -> Any:
    """Silver gate: keys present and unique in every silver table created so far; a decision
    taken on the same table versions is reused, unless option ``reconform`` is set."""
    from quality import gates

    force = bool(run.options.get("reconform"))
    return gates.check_tables(run.spark, run.run_date, gates.SILVER_TABLES, run.settings,
                              force=force)  # fmt: skip


def data_docs(run: Run) -> Any:
    """Rebuild the Great Expectations Data Docs (even when a gate blocked, so the failure
    can be read there); returns the index page."""
    from quality.engine import build_docs

    index = build_docs(run.settings)
    run.say(f"{run.run_date}: data docs at {index}")
    return index


DELIVERY: tuple[Step, ...] = (
    Step("land", land, "landing files", reads=("landing",), writes=("bronze", "quarantine",
         "audit.ingest_log"), outside=True),
    Step("bronze_gate", bronze_gate, "bronze quality gate", after=("land",), reads=("bronze",),
         writes=("audit.quality_results",), gate=True),
    Step("conform", conform, "conforming to silver (row rules checked by GX, block rows "
         "quarantined)", after=("bronze_gate",), reads=("bronze",),
         writes=("silver", "quarantine", "audit.conform_log")),
    Step("rectification_reports", rectification_reports, "rectification reports",
         after=("conform",), reads=("quarantine",), writes=("reports",)),
    Step("silver_gate", silver_gate, "silver quality gate", after=("conform",),
         reads=("silver",), writes=("audit.quality_results",), gate=True),
    Step("data_docs", data_docs, "rebuilding data docs", key="", always=True,
         reads=("audit.quality_results",), writes=("quality_docs",)),
)  # fmt: skip
