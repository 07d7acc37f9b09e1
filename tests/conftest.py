"""Shared fixtures: one Spark session per test run (it takes ~15 s to start), lakes in tmp."""

from __future__ import annotations

import shutil
import socket
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from warehouse.settings import Settings

# A pytest-xdist worker runs under a bare __main__ (no __spec__, no __file__), which
# pyspark.sql.connect takes for its own doctest runner and exits on when Spark Connect's extras
# are missing (GX imports it). Give that module the file it looks for.
if not hasattr(sys.modules["__main__"], "__file__"):
    sys.modules["__main__"].__file__ = "<pytest-xdist worker>"


@pytest.fixture(scope="session")
def spark():
    from warehouse.spark import get_spark

    session = get_spark(Settings(spark_master="local[2]", shuffle_partitions=4, driver_memory="6g"))
    yield session
    session.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_settings(root: Path) -> Settings:
    """Settings for a throw-away lake under ``root`` with a fixed tokenisation key."""
    return Settings(
        lake_root=str(root / "lakehouse"),
        landing_root=str(root / "landing"),
        pii_key="test-key-not-secret",
        secrets_dir=str(root / "secrets"),
    )


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@dataclass
class DeliveredWorld:
    """A simulated world whose every delivery went through land → gates → conform."""

    root: Path  # sim/ (landing, truth, reference) and lakehouse/ live here
    settings: Settings
    sim: Any  # pipelines.simulator.SimulationSummary
    landing: Path
    runs: list  # pipelines.run.DayRun per delivery date, in order


@pytest.fixture(scope="session")
def delivered_world(spark, tmp_path_factory) -> DeliveredWorld:
    """1,500 enterprises × 2 years (seed 11, history + daily increments every 2 days), every
    delivery run through the gated pipeline once for the whole session (the spine, quality and
    BI tests share it; it takes minutes). Tests must leave its content as they found it; to
    build on it, copy ``root`` (see tests/test_bi.py)."""
    from pipelines.run import delivery_dates, run_day
    from pipelines.simulator import SimulationConfig, simulate

    root = tmp_path_factory.mktemp("delivered_world")
    settings = make_settings(root)
    sim = simulate(
        SimulationConfig(enterprises=1_500, years=2, seed=11, increment_days=2), root / "sim"
    )
    landing = root / "sim" / "landing"
    days = delivery_dates(landing)
    runs = [run_day(spark, landing, d, settings, docs=d == days[-1]) for d in days]
    return DeliveredWorld(root, settings, sim, landing, runs)


@pytest.fixture(scope="session")
def downstream_world(spark, delivered_world, tmp_path_factory) -> Settings:
    """A copy of the session's delivered world, then a LightGBM model trained and registered on
    a short schedule, two monthly scorings and insight runs (tiers, plans, lists, warnings,
    inspector consistency) with the first plan's outcomes delivered between them, and the
    marts: everything downstream, built once per session (the BI tests and the personal-data
    scan read it; tests must not change it)."""
    from models.demo import next_month
    from models.retrain import train_and_register
    from models.score import score
    from models.train import data_span, make_schedule
    from pipelines.marts import build_marts
    from risk_insight.cli import deliver_simulated_outcomes
    from risk_insight.insight import run_insight
    from risk_insight.plan import load_roster

    root = tmp_path_factory.mktemp("bi") / "world"
    shutil.copytree(delivered_world.root, root)
    s = make_settings(root).model_copy(update={"outputs_root": str(root / "outputs")})
    load_roster(spark, root / "sim" / "reference" / "inspectors.csv", s)
    first, last = data_span(spark, s)
    schedule = make_schedule(
        first, last, horizon_days=90, n_folds=2, fold_step_months=3, train_step_months=2,
        warmup_months=3,
    )  # fmt: skip
    decision = train_and_register(
        spark, s, num_rounds=20, schedule=schedule,
        truth_dir=str(root / "sim" / "truth"),
    )  # fmt: skip
    this_month = next_month(last)
    previous = date(this_month.year - (this_month.month == 1), (this_month.month - 2) % 12 + 1, 1)
    for as_of in (previous, this_month):  # two runs: a trend, and warnings against the first
        score(spark, as_of, s, decision.challenger)
        insight = run_insight(spark, as_of, s)
        if as_of == previous:  # the inspectors' results of the first plan come back
            deliver_simulated_outcomes(
                spark, s, insight.plan.plan_id, as_of, root / "sim" / "truth"
            )
    build_marts(spark, None, s)
    return s


SHARED_WORLDS = {"delivered_world", "downstream_world"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group tests for ``pytest -n 2 --dist loadgroup`` (``make test TEST_WORKERS=2``): every test
    that reads a session world in one worker, so each world is built once; the others a file
    at a time, so module fixtures are built once too."""
    for item in items:
        group = "worlds" if SHARED_WORLDS & set(item.fixturenames) else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
