"""Airflow DAG tests: the DAG files parse quickly, and real ``dag.test()`` runs on one tiny
simulated world (800 enterprises × 2 years, 3 daily increments) drive the project's steps.

Order matters inside this module (one lake, built up the way operations would): a 3-day
backfill of the land → gates → conform part, a re-run of the middle day, then the retrain,
a full daily run, and last a blocked run. Airflow's metadata DB is SQLite in a tmp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(AIRFLOW_HOME / "logs"),
}
os.environ.update(AIRFLOW_ENV)  # before anything imports airflow
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))

pytestmark = pytest.mark.slow


def test_dag_files_import_quickly_and_without_heavy_imports() -> None:
    code = (
        "import sys, time\n"
        "t = time.monotonic()\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "t_af = time.monotonic()\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r})\n"
        "print('ERRORS', bag.import_errors)\n"
        "print('IDS', sorted(bag.dag_ids))\n"
        "print('TASKS', sorted(bag.dags['supervision_daily'].task_ids))\n"
        "print('RETRAIN', sorted(bag.dags['model_retrain'].task_ids))\n"
        "print('PARSE', round(time.monotonic() - t_af, 2))\n"
        "print('HEAVY', [m for m in ('pyspark', 'great_expectations', 'lightgbm') "
        "if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **AIRFLOW_ENV},
        timeout=120,
        check=True,
    ).stdout
    lines = dict(line.split(" ", 1) for line in out.splitlines() if line[:1].isupper())
    assert lines["ERRORS"] == "{}"
    assert lines["IDS"] == "['model_retrain', 'supervision_daily']"
    from risk_insight import graph  # the daily DAG's tasks are the graph's steps, and its own

    own = ["prepare_world", "resolve_run", "wait_for_delivery"]
    assert lines["TASKS"] == str(sorted(own + [s.name for s in graph.DAILY]))
    assert lines["RETRAIN"] == str(sorted(["resolve_run"] + [s.name for s in graph.RETRAIN]))
    assert float(lines["PARSE"]) < 5.0, out  # both files, after Airflow itself is imported
    assert lines["HEAVY"] == "[]", "DAG files must not import Spark, GX or LightGBM"


def test_delivery_status_reads_the_landing_folder_by_the_mappings(tmp_path) -> None:
    import risk_steps

    day = tmp_path / "2026-10-28"
    day.mkdir()
    (day / "registry.csv").write_text("x", encoding="utf-8")
    (day / "inspection_north.csv").write_text("x", encoding="utf-8")
    (day / "readme.txt").write_text("x", encoding="utf-8")
    status = risk_steps.delivery_status({"landing_root": str(tmp_path)}, "2026-10-28")
    assert status["arrived"] == ["inspection", "registry"] and status["files"] == 3
    assert "penalty" in status["missing"] and "registry" not in status["missing"]
    assert status["wait_hours"] == 12.0  # the demo bureau's mappings


# ---- real DAG runs on a tiny world ----------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_db() -> None:
    from airflow.utils.db import resetdb

    resetdb(skip_init=False)


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors
    return bag.dags


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    from pipelines.run import delivery_dates
    from pipelines.simulator import SimulationConfig, simulate

    root = tmp_path_factory.mktemp("dag_world")
    simulate(SimulationConfig(enterprises=800, years=2, seed=3, increment_days=3), root / "sim")
    landing = root / "sim" / "landing"
    return {
        "root": root,
        "landing": landing,
        "days": delivery_dates(landing),
        "truth": root / "sim" / "truth",
        "conf": {
            "landing_root": str(landing),
            "lake_root": str(root / "lakehouse"),
            "outputs_root": str(root / "outputs"),
        },
    }


def _run(dag, day: date, conf: dict):
    """One ``dag.test()`` run for logical date ``day``; returns {task_id: [states]} and the run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.settings import Session

    dr = dag.test(logical_date=datetime(day.year, day.month, day.day, tzinfo=UTC), run_conf=conf)
    with Session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dr.dag_id, run_id=dr.run_id).all()
        states: dict[str, list] = {}
        for ti in tis:
            states.setdefault(ti.task_id, []).append((ti.state, ti.try_number))
    return dr, states


def _lake_contents(lake: Path) -> dict:
    """Every Delta table under the lake (wall-clock stamps dropped, rows sorted; the
    append-only audit.events left out): warehouse.lakediff, which ``lake diff`` uses."""
    from warehouse import lakediff

    return lakediff.contents(lake)


def test_backfill_three_days_then_rerun_middle_day_equals_one_clean_pass(spark, dags, world):
    """Backfill 3 consecutive delivery dates (the land → bronze gate → conform → silver gate
    part: no model exists yet), snapshot the lake, re-run the middle day, compare."""
    subset = dags["supervision_daily"].partial_subset(
        ["silver_gate", "rectification_reports"], include_upstream=True
    )
    days = world["days"][:3]
    assert [(b - a).days for a, b in zip(days, days[1:], strict=False)] == [1, 1]
    for day in days:
        dr, states = _run(subset, day, world["conf"])
        assert dr.state == "success", states
        assert states["wait_for_delivery"][0][0] == states["land"][0][0] == "success"
    clean = _lake_contents(Path(world["conf"]["lake_root"]))
    assert {"bronze/registry", "silver/dim_enterprise", "audit/quality_results"} <= set(clean)
    dr, _ = _run(subset, days[1], world["conf"])
    assert dr.state == "success"
    again = _lake_contents(Path(world["conf"]["lake_root"]))
    assert set(again) == set(clean)
    for name in LEDGER_WHOLE_TABLE_DRIFT_TABLES:
        clean[name], again[name] = _without_whole_table_counts(clean[name], again[name])
    changed = [name for name, df in clean.items() if not df.equals(again[name])]
    assert changed == [], f"changed after re-running {days[1]}: {changed}"


# Known deviation, reported to quality/'s owner: the silver gate (quality.gates.check_tables)
# validates the *whole* silver table, so re-running day D after D+1 rewrites D's ledger rows
# with the row counts of today's table (observed_value "0 of 133 rows", element_count). Only
# those count columns of whole-table checks (source '-') are excused; every other column and
# row of the ledger, and every other table, must be identical.
LEDGER_WHOLE_TABLE_DRIFT_TABLES = ("audit/quality_results",)
WHOLE_TABLE_COUNTS = ["observed_value", "element_count", "unexpected_count", "unexpected_percent"]


def _without_whole_table_counts(a, b):
    def strip(df):
        df = df.copy()
        df.loc[df["source"] == "-", WHOLE_TABLE_COUNTS] = "<whole-table count>"
        return df.sort_values(list(df.columns)).reset_index(drop=True)

    return strip(a), strip(b)


RETRAIN_SMALL = {  # a 2-year world is too short for the default one-year label horizon
    "horizon_days": 90,
    "n_folds": 2,
    "fold_step_months": 3,
    "train_step_months": 2,
    "warmup_months": 3,
}


def test_model_retrain_end_to_end(spark, dags, world):
    from models import registry
    from warehouse import tables
    from warehouse.settings import get_settings

    conf = {**world["conf"], **RETRAIN_SMALL, "truth_dir": str(world["truth"])}
    dr, states = _run(dags["model_retrain"], world["days"][2], conf)
    assert dr.state == "success", states
    s = get_settings().model_copy(update={"lake_root": conf["lake_root"]})
    decisions = tables.read(spark, tables.MODEL_DECISIONS, s).collect()
    assert len(decisions) == 1
    if decisions[0]["promoted"]:
        assert registry.champion(spark, s) == decisions[0]["challenger"]
        assert states["rescore_with_champion"][0][0] == "success"
    else:
        assert registry.champion(spark, s) is None
        assert states["rescore_with_champion"][0][0] == "skipped"


def test_supervision_daily_end_to_end(spark, dags, world):
    from pyspark.sql import functions as F

    from models import registry
    from warehouse import serving, tables
    from warehouse.settings import get_settings

    s = get_settings().model_copy(update={"lake_root": world["conf"]["lake_root"]})
    conf = dict(world["conf"])
    version = registry.champion(spark, s)
    if version is None:
        # The tiny world has too few random-draw findings for the gate to promote anything
        # (precision at k 0 for model and rules alike), so no champion exists: score with the
        # registered challenger by naming it, as an operator would for a shadow run.
        version = tables.read(spark, tables.MODEL_DECISIONS, s).first()["challenger"]
        conf["model_version"] = version
    day = world["days"][3]
    dr, states = _run(dags["supervision_daily"], day, conf)
    assert dr.state == "success", states
    as_of = date.fromordinal(day.toordinal() + 1)
    feats = tables.read(spark, tables.ENTERPRISE_FEATURES, s).where(F.col("as_of") == as_of)
    scores = tables.read(spark, tables.RISK_SCORES, s).where(F.col("as_of") == as_of)
    assert feats.count() > 0 and scores.count() == feats.count()
    assert {r[0] for r in scores.select("model_version").distinct().collect()} == {version}
    assert states["tiers_plans_lists_warnings"][0][0] == "success"
    for table in (tables.CREDIT_TIERS, tables.INSPECTION_PLAN):
        rows = tables.read(spark, table, s).where(F.col("as_of") == as_of)
        assert rows.limit(1).count() == 1, table.qualified
    assert (Path(s.lake_root) / "gold" / "warnings" / "_delta_log").is_dir()
    assert list((world["root"] / "outputs").rglob("*")), "no list files written"
    # the marts of the run's as-of date are in the serving store; no Superset configured here
    assert states["insight_gate"][0][0] == "success"
    assert states["serving_marts"][0][0] == "success"
    served = serving.query(
        f"SELECT COUNT(*) FROM {serving.MART_TARGET_LIST.name} WHERE as_of = DATE '{as_of}'", s
    ).iat[0, 0]
    assert (
        served
        == tables.read(spark, tables.CREDIT_TIERS, s)
        .where((F.col("as_of") == as_of) & ~F.col("excluded"))
        .count()
    )
    assert states["bi_refresh"][0][0] == "skipped"
    # each writing step held the lake lock and left its row in the audit trail
    steps = tables.read(spark, tables.AUDIT_EVENTS, s).where(F.col("event") == "step")
    done = {r.subject for r in steps.where(F.col("outcome") == "succeeded").collect()}
    assert {f"conform {day}", f"land {day}", f"tiers_plans_lists_warnings {as_of}"} <= done, done


def test_blocking_gate_stops_downstream_and_leaves_its_ledger_row(spark, dags, world):
    """Injected defect: the registry re-sends its whole history extract three times in one
    daily delivery (a volume outlier); under a policy where volume blocks, the bronze gate
    fails and nothing after it runs, but the Data Docs are rebuilt."""
    from pyspark.sql import functions as F

    from quality import ledger
    from warehouse import tables
    from warehouse.settings import get_settings

    day = date(2026, 11, 1)
    landing = world["root"] / "injected"
    folder = landing / day.isoformat()
    folder.mkdir(parents=True)
    header, *rows = (world["landing"] / world["days"][0].isoformat() / "registry.csv").read_bytes(
    ).splitlines(keepends=True)  # fmt: skip
    (folder / "registry.csv").write_bytes(header + b"".join(rows * 3))
    policy = world["root"] / "strict_policy.yaml"
    policy.write_text(
        "version: strict-test\ndefault: block\nexpectations:\n  volume: block\n"
        "  freshness: warn\n  delivery_expected: warn\n"
        "params:\n  volume:\n    min_history_runs: 1\n    factor: 2.0\n"
        "    exclude_cutover: false\n",
        encoding="utf-8",
    )
    conf = {**world["conf"], "landing_root": str(landing), "quality_policy": str(policy)}
    dr, states = _run(dags["supervision_daily"], day, conf)
    assert dr.state == "failed"
    assert states["bronze_gate"][0][0] == "failed"
    downstream = ["conform", "rectification_reports", "silver_gate", "features", "score",
                  "gold_gate", "tiers_plans_lists_warnings", "insight_gate", "serving_marts",
                  "bi_refresh"]  # fmt: skip
    for task_id in downstream:
        ((state, tries),) = states[task_id]
        assert state == "upstream_failed" and tries == 0, (task_id, state, tries)
    assert states["data_docs"][0][0] == "success"
    s = get_settings().model_copy(update={"lake_root": conf["lake_root"]})
    conform_log = tables.read(spark, tables.CONFORM_LOG, s)
    assert conform_log.where(F.col("run_date") == F.lit(day)).count() == 0  # conform never ran
    led = ledger.read(spark, s).where(F.col("run_date") == F.lit(day))
    blocked = led.where("outcome = 'blocked'").collect()
    assert [(r.table_name, r.expectation, r.policy_version) for r in blocked] == [
        ("bronze.registry", "volume", "strict-test")
    ]
    events = tables.read(spark, tables.AUDIT_EVENTS, s).where(F.col("run_date") == F.lit(day))
    gate = events.where("event = 'gate'").collect()
    assert [(g.subject, g.outcome) for g in gate] == [(f"bronze gate {day}", "blocked")]
    step = tables.read(spark, tables.AUDIT_EVENTS, s).where(
        (F.col("event") == "step") & (F.col("subject") == f"bronze_gate {day}")
    )
    assert [r.outcome for r in step.collect()] == ["blocked"]
