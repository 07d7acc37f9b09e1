"""The steps the Airflow DAGs call, as plain functions (no Airflow import here).

Each step takes the run's params (a dict, as Airflow passes them) and a date, builds the
settings for that run, gets the process's Spark session and calls one project function.
Everything heavy (Spark, GX, LightGBM) is imported inside the functions, so importing this
module (and so parsing the DAG files) stays cheap. Tests can call these without Airflow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from warehouse.settings import Settings


def settings_for(params: dict[str, Any]) -> Settings:
    """The engine settings of one DAG run: the process settings with the run's overrides."""
    from warehouse.settings import get_settings

    update = {
        k: params[k]
        for k in ("lake_root", "landing_root", "outputs_root", "quality_policy", "tier_policy")
        if params.get(k)
    }
    return get_settings().replace(**update)


def spark_for(settings: Settings) -> SparkSession:
    """The process's Spark session (created on first use; shared by tasks in one process)."""
    from warehouse.spark import get_spark

    return get_spark(settings)


def writes_lake(step: Callable[..., Any]) -> Callable[..., Any]:
    """A step that writes the lake: it holds the lake lock while it runs (waiting for another
    writer up to ``lock_wait_seconds``, then failing with the holder named, so Airflow's retry
    tries again) and leaves a ``step`` row in ``audit.events`` with its outcome."""

    @functools.wraps(step)
    def run(params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        from warehouse.lock import lake_lock

        s = settings_for(params)
        subject = " ".join([step.__name__, *(a for a in args if isinstance(a, str))])
        started = datetime.now()
        with lake_lock(s, f"airflow step {subject}"):
            try:
                result = step(params, *args, **kwargs)
            except Exception as exc:
                outcome = getattr(exc, "audit_outcome", "failed")
                with contextlib.suppress(Exception):  # never hide the step's own error
                    _record_step(s, subject, started, outcome, repr(exc)[:2000])
                raise
            _record_step(s, subject, started, "succeeded", None)
            return result

    return run


def _record_step(s: Settings, subject: str, started: datetime, outcome: str, error) -> None:
    from pyspark.sql import SparkSession

    from warehouse import audit

    spark = SparkSession.getActiveSession()
    if spark is None:  # a step that needed no Spark: not worth a session start for its row
        return
    audit.record(spark, s, "step", "end", outcome, subject, started_at=started,
                 details={"error": error} if error else None)  # fmt: skip


def delivery_date(logical_date: datetime | date) -> date:
    """The delivery folder a daily run processes: ``<landing>/<logical date>/``."""
    return logical_date.date() if isinstance(logical_date, datetime) else logical_date


def resolve_run(params: dict[str, Any], logical_date: datetime | date) -> dict[str, str]:
    """Dates and roots of a daily run; fails early if the gate policy is not the expected one.

    ``as_of`` defaults to the day after the delivery date: features at T use records known
    before T, so that day's delivery is included.
    """
    s = settings_for(params)
    run_date = delivery_date(logical_date)
    as_of = date.fromisoformat(params["as_of"]) if params.get("as_of") else run_date + timedelta(1)
    return {
        "run_date": run_date.isoformat(),
        "as_of": as_of.isoformat(),
        "landing_root": str(s.landing_root),
        "lake_root": str(s.lake_root),
        **policy_versions(params, s),
    }


def policy_versions(params: dict[str, Any], s: Settings) -> dict[str, str]:
    """Versions of the tier policy (tiers, plans, lists) and of the gate policy in force;
    raises if the run's params ask for other versions (``policy_version``,
    ``quality_policy_version``)."""
    from quality.policy import policy_for as gate_policy
    from warehouse.contracts.tier_policy import policy_for as tier_policy

    found = {
        "quality_policy_version": gate_policy(s).version,
        "policy_version": tier_policy(s).version,
    }
    for key, version in found.items():
        wanted = params.get(key) or ""
        if wanted and wanted != version:
            raise ValueError(f"{key} in force is {version}, the run asked for {wanted}")
    return found


def prepare_world(params: dict[str, Any]) -> dict[str, Any]:
    """Demo only: with ``enterprises`` > 0, simulate that world into the landing root's parent
    unless the same world is there already. With 0 (production) this does nothing."""
    n = int(params.get("enterprises") or 0)
    if n <= 0:
        return {"simulated": False}
    from pipelines.simulator import SimulationConfig, simulate

    landing = Path(settings_for(params).landing_root)
    out = landing.parent
    config = SimulationConfig(
        enterprises=n, years=int(params.get("years") or 2), seed=int(params.get("seed") or 42)
    )
    wanted = {"enterprises": config.enterprises, "years": config.years, "seed": config.seed}
    stamp = out / "simulation.json"
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return {"simulated": False, **wanted}
    summary = simulate(config, out)
    if summary.out / "landing" != landing:
        raise ValueError(f"landing_root must be <out>/landing, got {landing}")
    stamp.write_text(json.dumps(wanted))
    return {"simulated": True, **wanted}


def delivery_status(params: dict[str, Any], run_date: str) -> dict[str, Any]:
    """Which sources the mappings expect on the delivery date, which of them have a file in
    ``<landing>/<date>/`` so far, and how long to wait for the rest (the longest
    ``delivery.wait_hours`` among the missing). Reads only the landing folder and the
    mapping YAMLs: cheap enough to poke."""
    from pipelines.ingest import delivery_files, match
    from warehouse import contracts

    s = settings_for(params)
    day = date.fromisoformat(run_date)
    found = contracts.mappings(s)
    expected = [n for n, m in found.items() if m.delivery.expects(day)]
    files = delivery_files(Path(s.landing_root) / run_date)
    arrived = {m.source for p in files for m in match(p.name, found)}
    missing = [n for n in expected if n not in arrived]
    wait = max((found[n].delivery.wait_hours for n in missing), default=0.0)
    return {"expected": expected, "arrived": sorted(arrived), "missing": missing,
            "files": len(files), "wait_hours": wait}  # fmt: skip


def run_step(
    params: dict[str, Any],
    name: str,
    run: dict[str, str],
    upstream: dict[str, Any] | None = None,
    graph: str = "supervision_daily",
    say: Callable[[str], None] = print,
) -> Any:
    """Run the step ``name`` of ``graph`` (:func:`run_here`): on the step server when the
    ``step_server`` setting names one (``dags/step_server.py``: this process only waits for
    it), else in this process."""
    from warehouse.settings import get_settings

    settings = get_settings()
    if settings.step_server:
        import step_server

        step = {"params": params, "name": name, "run": run, "upstream": upstream, "graph": graph}
        return step_server.ask(settings, step, say)
    return run_here(params, name, run, upstream, graph, say)


def run_here(
    params: dict[str, Any],
    name: str,
    run: dict[str, str],
    upstream: dict[str, Any] | None = None,
    graph: str = "supervision_daily",
    say: Callable[[str], None] = print,
) -> Any:
    """Run the step ``name`` of ``graph`` (``risk_insight.graph.GRAPHS``) in this process for
    the run ``resolve_run`` described, with the params as the run's options and ``upstream``
    (the XComs of the steps it ``uses``) as the results it reads, its progress told by ``say``.
    A step that writes the lake holds the lake lock and leaves its ``step`` event
    (:func:`writes_lake`). Returns a small JSON-able summary for XCom: a gate's ledger counts
    of the day, else the step's result (``{"skipped": why}`` for a step that did nothing)."""
    from risk_insight.graph import step

    chosen = step(name, graph)
    key = run.get(chosen.key, "") if chosen.key else ""

    def call(params: dict[str, Any], *_key: str) -> Any:
        from pipelines.steps import Run

        s = settings_for(params)
        this = Run(
            s,
            date.fromisoformat(run["run_date"]),
            as_of=date.fromisoformat(run["as_of"]),
            landing_root=Path(run.get("landing_root") or s.landing_root),
            model_version=params.get("model_version") or None,
            options=dict(params),
            say=say,
            results=dict(upstream or {}),
            _spark=spark_for(s),
        )
        result = chosen.run(this)
        if chosen.gate:
            from quality import ledger

            return ledger.run_summary(this.spark, this.run_date, s)
        return _jsonable(result)

    call.__name__ = chosen.name
    wrapped = writes_lake(call) if chosen.writes_lake else call
    return wrapped(params, *([key] if key else []))


def _jsonable(value: Any) -> Any:
    """A small JSON-able summary of a step's result for XCom: dataclasses as dicts of their
    scalar fields (others as text), lists (first 1,000 items) and dicts item by item, dates
    in ISO form, anything else as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: v if isinstance(v := getattr(value, f.name), int | float | bool) else str(v)
            for f in dataclasses.fields(value)
            if f.name not in ("sample",)
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value[:1000]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)[:2000]
