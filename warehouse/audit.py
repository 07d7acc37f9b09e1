"""The audit trail: ``audit.events``, one appended row per thing that happened to the lake.

What is recorded: every run (a ``start`` row when it begins, an ``end`` row with its outcome:
``succeeded``, ``blocked`` or ``failed``; a start without an end is a run that was killed),
every gate decision, model promotion, plan draw, list export, retention pass and erasure.
Each row says what (event, subject, outcome), when, which inputs (files and checksums, Delta
versions of the tables read) and versions (policies, model, code), and who: the OS user, host
and pid, the command line and the Airflow run id when Airflow started it.

Rows are only ever appended; the table differs between two lakes with the same content by
design (each attempt is recorded), so ``lake diff`` leaves it out. Nothing here holds personal
data: an erasure is recorded by the person's token, never by the raw value.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from warehouse import storage, tables
from warehouse.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def actor() -> dict[str, Any]:
    """Who is acting: OS user, host, pid, command line, Airflow run id (when present)."""
    return {
        "os_user": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": " ".join(sys.argv)[:1000],
        "airflow_run_id": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or None,
    }


@lru_cache(maxsize=1)
def code_version() -> str:
    """The engine's code version: the git commit (``+dirty`` with local changes) of this
    checkout, else the installed package version."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"risk-insight {version('risk-insight')}"
        except PackageNotFoundError:
            return "unknown"


@cache
def source_fingerprint(*packages: str) -> str:
    """A hash of every file of the named packages or modules as installed (code, reference
    lists, YAML): equal code, equal hash. Reuse decisions include it, so a release that changes
    how rows are checked or conformed is not mistaken for the run it replaces."""
    import hashlib
    from importlib.util import find_spec

    digest = hashlib.sha256()
    for name in sorted(packages):
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no such package or module: {name}")
        origin = Path(spec.origin)
        root = origin.parent if spec.submodule_search_locations else origin
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                digest.update(f"{name}/{f.relative_to(root.parent)}".encode())
                digest.update(f.read_bytes())
    return digest.hexdigest()


def table_versions(settings: Settings, read: tuple[tables.Table, ...]) -> dict[str, int | None]:
    """The current Delta version of each table in ``read`` (None: not created yet), from the
    names in its ``_delta_log`` (no Spark job)."""
    return {
        t.qualified: _latest_version(storage.join(t.path(settings), "_delta_log")) for t in read
    }


def _latest_version(log: str) -> int | None:
    if storage.is_local(log):
        folder = storage.local_path(log)
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    else:
        from pyarrow import fs

        filesystem, path = storage._remote(log)
        infos = filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
        names = [i.base_name for i in infos]
    versions = [int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()]
    return max(versions) if versions else None


def _json(value: Any) -> str:
    return json.dumps(value or {}, ensure_ascii=False, sort_keys=True, default=str)


def record(
    spark: SparkSession,
    settings: Settings,
    event: str,
    action: str,
    outcome: str,
    subject: str,
    *,
    run_id: str | None = None,
    run_date: date | None = None,
    started_at: datetime | None = None,
    inputs: dict[str, Any] | None = None,
    versions: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """Append one event to ``audit.events`` (with the acting process and the code version);
    returns its id."""
    event_id = uuid.uuid4().hex
    row = {
        "event_id": event_id,
        "event": event,
        "action": action,
        "outcome": outcome,
        "subject": subject,
        "run_id": run_id or event_id,
        "run_date": run_date,
        "occurred_at": datetime.now(),
        "started_at": started_at,
        "inputs": _json(inputs),
        "versions": _json({"code": code_version(), **(versions or {})}),
        "details": _json(details),
        **actor(),
    }
    tables.append(spark.createDataFrame([row], tables.AUDIT_EVENTS.schema), tables.AUDIT_EVENTS,
                  settings)  # fmt: skip
    return event_id


@dataclass
class Recording:
    """An event in progress: fill ``inputs``, ``versions``, ``details`` (and ``outcome``, else
    ``succeeded``) before the block ends; they go into its end row."""

    run_id: str
    started_at: datetime
    inputs: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None


@contextlib.contextmanager
def recorded(
    spark: SparkSession,
    settings: Settings,
    event: str,
    subject: str,
    *,
    run_date: date | None = None,
    inputs: dict[str, Any] | None = None,
    versions: dict[str, Any] | None = None,
    start: bool = True,
) -> Iterator[Recording]:
    """Record the ``with`` block as one event: a ``start`` row first (unless ``start`` is
    False), then an ``end`` row with the outcome: ``succeeded``, the raised exception's
    ``audit_outcome`` (e.g. ``blocked``) or ``failed``, with the error in its details."""
    rec = Recording(uuid.uuid4().hex, datetime.now(), dict(inputs or {}), dict(versions or {}))
    if start:
        record(spark, settings, event, "start", "started", subject, run_id=rec.run_id,
               run_date=run_date, started_at=rec.started_at, inputs=rec.inputs,
               versions=rec.versions)  # fmt: skip
    try:
        yield rec
    except BaseException as exc:
        outcome = getattr(exc, "audit_outcome", "failed")
        error = f"{type(exc).__name__}: {str(exc)[:2000]}"
        with contextlib.suppress(Exception):  # never hide the run's own error
            record(spark, settings, event, "end", outcome, subject, run_id=rec.run_id,
                   run_date=run_date, started_at=rec.started_at, inputs=rec.inputs,
                   versions=rec.versions, details={**rec.details, "error": error})  # fmt: skip
        raise
    record(spark, settings, event, "end", rec.outcome or "succeeded", subject, run_id=rec.run_id,
           run_date=run_date, started_at=rec.started_at, inputs=rec.inputs,
           versions=rec.versions, details=rec.details)  # fmt: skip


def read(spark: SparkSession, settings: Settings) -> DataFrame:
    """``audit.events`` (created empty if missing)."""
    return tables.read(spark, tables.AUDIT_EVENTS, settings)


# ---- hooks for the steps of other packages (duck-typed: warehouse imports nothing above it) --


PLAN_INPUTS = (tables.CREDIT_TIERS, tables.DIM_INSPECTOR, tables.FCT_INSPECTION,
               tables.INSPECTION_PLAN)  # fmt: skip


def record_plan_draw(spark: SparkSession, settings: Settings, plan: Any, policy: str) -> str:
    """A random-draw plan was drawn (``risk_insight.plan.PlanResult``): what it takes to draw it
    again: as-of date, plan id, seed, policy version, and the Delta versions of its inputs and
    of the plan table as written."""
    return record(
        spark, settings, "plan_draw", "decision", "drawn", f"plan {plan.plan_id}",
        run_date=plan.as_of,
        inputs={"tables": table_versions(settings, PLAN_INPUTS)},
        versions={"tier_policy": policy},
        details={"as_of": plan.as_of, "seed": plan.seed, "drawn": plan.total,
                 "seed_source": getattr(plan, "seed_source", None),
                 "commitment": getattr(plan, "commitment", None),
                 "public_csv": plan.public_csv, "manifest": plan.manifest},
    )  # fmt: skip


def record_list_export(
    spark: SparkSession, settings: Settings, as_of: date, files: list[Any], policy: str
) -> str:
    """District target lists were written (``risk_insight.lists.ListFiles`` each): which
    district, how many rows, which files, from which table versions, by whom."""
    return record(
        spark, settings, "list_export", "export", "written", f"lists {as_of}", run_date=as_of,
        inputs={"tables": table_versions(settings, (tables.CREDIT_TIERS, tables.RISK_SCORES,
                                                    tables.INSPECTION_PLAN))},
        versions={"tier_policy": policy},
        details={f.region_code: {"rows": f.rows, "csv": f.csv, "xlsx": f.xlsx,
                                 "inspectors": getattr(f, "inspectors", {})} for f in files},
    )  # fmt: skip


def record_model_promotion(spark: SparkSession, settings: Settings, decision: Any) -> str:
    """The promotion gate decided on a challenger (``models.registry.Decision``)."""
    return record(
        spark, settings, "model_promotion", "decision",
        "promoted" if decision.promoted else "not_promoted", f"model {decision.challenger}",
        inputs={"tables": table_versions(settings, (tables.MODEL_REGISTRY,
                                                    tables.MODEL_DECISIONS))},
        versions={"challenger": decision.challenger, "champion_before": decision.champion_before},
        details={"reasons": list(decision.reasons)},
    )  # fmt: skip


def champion(spark: SparkSession, settings: Settings) -> str | None:
    """The current champion model's version (the challenger of the latest promoted decision in
    audit.model_decisions), or None before any promotion."""
    r = (
        tables.read(spark, tables.MODEL_DECISIONS, settings)
        .where("promoted")
        .orderBy(F.desc("decided_at"), F.desc("challenger"))
        .select("challenger")
        .first()
    )
    return r[0] if r else None
