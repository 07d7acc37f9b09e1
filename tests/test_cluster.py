"""The same jobs on a cluster: a standalone Spark master and worker on 127.0.0.1
(warehouse/cluster.py), the deliveries of a tiny world run against it through the CLI with only
``spark_master`` changed, and the lake compared with the one local mode builds
(warehouse/lakediff.py, behind ``risk-insight lake diff``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import make_settings
from warehouse import lakediff
from warehouse.cluster import run_on_local_cluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def test_deliveries_on_a_standalone_cluster_build_the_local_lake(spark, tmp_path: Path) -> None:
    from pipelines.run import delivery_dates, run_day
    from pipelines.simulator import SimulationConfig, simulate

    # The history delivery alone: it lands, gates, conforms (MERGE into silver), quarantines
    # and reports like any day; a second delivery would double the cost (each CLI run starts
    # a driver JVM and the cluster's executors) without exercising another operation.
    sim = simulate(SimulationConfig(enterprises=300, years=1, seed=23, increment_days=1), tmp_path)
    landing = tmp_path / "landing"
    days = delivery_dates(landing)[:1]
    assert days == [sim.history_date]

    local = make_settings(tmp_path / "local")
    for day in days:
        run_day(spark, landing, day, local, docs=False)

    on_cluster = make_settings(tmp_path / "cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_INSIGHT_")}
    env["PYTHONPATH"] = str(REPO)
    env |= {
        "RISK_INSIGHT_LAKE_ROOT": on_cluster.lake_root,
        "RISK_INSIGHT_PII_KEY": on_cluster.pii_key or "",
        "RISK_INSIGHT_SECRETS_DIR": on_cluster.secrets_dir,
        "RISK_INSIGHT_OUTPUTS_ROOT": str(tmp_path / "cluster" / "outputs"),
    }
    # what `make cluster-demo` runs its command with (python -m warehouse.cluster)
    (day,) = days
    done = run_on_local_cluster(
        [sys.executable, "-m", "risk_insight.cli", "run", "--date", day.isoformat(),
         "--landing", str(landing)],
        tmp_path / "cluster-work", cores=2, memory="3g", env=env, timeout_s=900,
    )  # fmt: skip
    assert done.status == 0
    assert done.apps == ["risk-insight"], done.apps  # the run was an application of the cluster

    result = lakediff.diff(local.lake_root, on_cluster.lake_root)
    assert result.same, result.report()
    assert len(result.equal) > 10  # bronze, silver, quarantine and audit tables were compared


def test_the_cluster_runner_wants_a_command() -> None:
    from warehouse.cluster import main

    with pytest.raises(SystemExit):
        main(["--cores", "1"])  # no command after --: a usage error, no cluster started
