"""The same jobs on a cluster: a standalone Spark master and worker on 127.0.0.1
(warehouse/cluster.py), the deliveries of a tiny world run against it through the CLI with only
``spark_master`` changed, and the lake compared with the one local mode builds
(warehouse/lakediff.py, behind ``risk-insight lake diff``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_settings
from warehouse import lakediff
from warehouse.cluster import local_cluster

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
    env |= {
        "RISK_INSIGHT_LAKE_ROOT": on_cluster.lake_root,
        "RISK_INSIGHT_PII_KEY": on_cluster.pii_key or "",
        "RISK_INSIGHT_SECRETS_DIR": on_cluster.secrets_dir,
        "RISK_INSIGHT_OUTPUTS_ROOT": str(tmp_path / "cluster" / "outputs"),
    }
    with local_cluster(tmp_path / "cluster-work", cores=2, memory="3g") as cluster:
        env["RISK_INSIGHT_SPARK_MASTER"] = cluster.master_url
        for day in days:
            done = subprocess.run(
                [sys.executable, "-m", "risk_insight.cli", "run", "--date", day.isoformat(),
                 "--landing", str(landing)],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        ran = cluster.completed_apps()
    assert ran == ["risk-insight"] * len(days), ran  # every run was an application of the cluster

    result = lakediff.diff(local.lake_root, on_cluster.lake_root)
    assert result.same, result.report()
    assert len(result.equal) > 10  # bronze, silver, quarantine and audit tables were compared


def test_make_cluster_demo_runner_points_a_command_at_the_cluster(
    tmp_path: Path, monkeypatch
) -> None:
    """``python -m warehouse.cluster -- COMMAND`` (behind ``make cluster-demo``): the command
    sees only ``RISK_INSIGHT_SPARK_MASTER`` changed, and its Spark application runs there."""
    from warehouse.cluster import main

    job = tmp_path / "job.py"
    job.write_text(
        "import os\n"
        "from warehouse.spark import get_spark\n"
        "assert os.environ['RISK_INSIGHT_SPARK_MASTER'].startswith('spark://127.0.0.1:')\n"
        "spark = get_spark()\n"
        "assert spark.range(1000).selectExpr('sum(id)').first()[0] == 499500\n"
        "spark.stop()\n"
    )
    command = [sys.executable, str(job)]
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    work = str(tmp_path / "w")
    status = main(["--cores", "1", "--memory", "1g", "--work", work, "--", *command])
    assert status == 0
    with pytest.raises(SystemExit):
        main(["--work", str(tmp_path / "w")])  # no command: a usage error, no cluster started
