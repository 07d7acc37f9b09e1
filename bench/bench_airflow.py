"""The daily DAG under a real Airflow, with a Spark per task and with the step server.

A small world is simulated and every delivery but the latest is run in-process, then the
model retrain; that lake is copied twice. On each copy ``airflow standalone`` (scheduler,
LocalExecutor, API server; metadata in SQLite) runs ``supervision_daily`` for the latest
delivery date: once as the tasks ran before (each task's process starts its own Spark), once
with ``RISK_INSIGHT_STEP_SERVER`` pointing at a step server started beside it, as ``make
airflow`` does (``dags/step_server.py``: one Spark session for every task). Per task the
seconds Airflow recorded, the whole run's wall time, and the two lakes compared with
``lake diff``'s comparison.

    .venv/bin/python bench/bench_airflow.py [--enterprises 2000 --years 2]

Writes the "Airflow: a Spark per task or the step server" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
AIRFLOW = str(Path(PY).with_name("airflow"))
KEY = "bench-key-not-secret"


def prepare(root: Path, enterprises: int, years: int) -> dict:
    """Simulate, land every delivery but the latest, train; returns the run's facts."""
    from pipelines.run import delivery_dates, run_day
    from pipelines.simulator import SimulationConfig, simulate
    from pipelines.steps import Run, run_steps
    from risk_insight import graph
    from warehouse.settings import Settings
    from warehouse.spark import get_spark

    simulate(SimulationConfig(enterprises=enterprises, years=years, seed=7), root / "sim")
    landing = root / "sim" / "landing"
    settings = Settings(lake_root=str(root / "prepared"), landing_root=str(landing),
                        pii_key=KEY, secrets_dir=str(root / "secrets"))  # fmt: skip
    spark = get_spark(settings)
    days = delivery_dates(landing)
    for day in days[:-1]:
        run_day(spark, landing, day, settings, docs=False)
    retrain = [s for s in graph.RETRAIN if s.name != "rescore_with_champion"]
    done = run_steps(
        retrain, Run(settings, days[-2], options={"truth_dir": str(root / "sim" / "truth")})
    )
    decision = done["record_decision"]
    spark.stop()
    return {
        "landing": str(landing),
        "day": days[-1].isoformat(),
        "model_version": "" if decision["promoted"] else decision["challenger"],
    }


def run_dag(root: Path, variant: str, facts: dict, step_server: bool) -> dict:
    """``supervision_daily`` for the latest day under ``airflow standalone`` on a copy of the
    prepared lake; per task (seconds, state), the run's wall time and its lake."""
    home = root / variant
    lake = home / "lakehouse"
    shutil.copytree(root / "prepared", lake)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_INSIGHT_", "AIRFLOW"))}
    env |= {
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow/airflow.db",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the run triggered below
        "PATH": f"{Path(PY).parent}:{os.environ['PATH']}",
        "RISK_INSIGHT_LAKE_ROOT": str(lake),
        "RISK_INSIGHT_LANDING_ROOT": facts["landing"],
        "RISK_INSIGHT_OUTPUTS_ROOT": str(home / "outputs"),
        "RISK_INSIGHT_PII_KEY": KEY,
        "RISK_INSIGHT_SECRETS_DIR": str(root / "secrets"),
    }
    procs = []
    if step_server:
        env["RISK_INSIGHT_STEP_SERVER"] = f"127.0.0.1:{free_port()}"
        procs.append(_start([PY, str(REPO / "dags" / "step_server.py")], env,
                            home / "step_server.log"))  # fmt: skip
    (home / "airflow").mkdir(parents=True)
    procs.append(_start([AIRFLOW, "standalone"], env, home / "standalone.log"))
    try:
        _wait_for_dag(env)
        conf = {"model_version": facts["model_version"]} if facts["model_version"] else {}
        started = time.monotonic()
        subprocess.run([AIRFLOW, "dags", "unpause", "supervision_daily"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run(
            [AIRFLOW, "dags", "trigger", "supervision_daily", "--logical-date",
             f"{facts['day']}T00:00:00+00:00", "--conf", json.dumps(conf)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        state = _wait_for_run(home)
        wall = time.monotonic() - started
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        tasks = {t: (d or 0.0, s) for t, d, s in db.execute(
            "SELECT task_id, duration, state FROM task_instance")}  # fmt: skip
    return {"state": state, "wall": wall, "tasks": tasks, "lake": lake}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def _wait_for_dag(env: dict, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([AIRFLOW, "dags", "list", "-o", "json"], env=env,
                             capture_output=True, text=True)  # fmt: skip
        if out.returncode == 0 and "supervision_daily" in out.stdout:
            return
        time.sleep(5)
    raise TimeoutError("Airflow did not list supervision_daily")


def _wait_for_run(home: Path, timeout: float = 3600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(10)
        with sqlite3.connect(home / "airflow" / "airflow.db") as db:
            rows = db.execute("SELECT state FROM dag_run").fetchall()
        if rows and rows[0][0] in ("success", "failed"):
            return rows[0][0]
    raise TimeoutError("the DAG run did not finish")


def _cell(task: tuple[float, str] | None) -> str:
    return "-" if task is None else f"{task[0]:,.1f} ({task[1]})"


def report(facts: dict, runs: dict[str, dict], lakes, args) -> str:
    order = list(next(iter(runs.values()))["tasks"])
    order.sort(key=lambda t: -max(r["tasks"].get(t, (0, ""))[0] for r in runs.values()))
    head = " | ".join(runs)
    lines = [
        f"`bench/bench_airflow.py --enterprises {args.enterprises} --years {args.years}`: the",
        f"deliveries before {facts['day']} and the model retrain run in-process, then "
        "`supervision_daily` for",
        f"{facts['day']} under `airflow standalone` (LocalExecutor, SQLite) on two copies of that "
        "lake: each task's process starting its own Spark, and every task handing its step to "
        "the step server (`make airflow`'s default). Seconds per task as Airflow recorded them "
        "(a sensor or skipped task costs its process too).",
        "",
        f"| task | {head} |",
        "|---|" + "---:|" * len(runs),
    ]
    for t in order:
        cells = " | ".join(_cell(r["tasks"].get(t)) for r in runs.values())
        lines.append(f"| {t} | {cells} |")
    sums = " | ".join(f"**{sum(d for d, _ in r['tasks'].values()):,.1f}**" for r in runs.values())
    walls = " | ".join(f"**{r['wall']:,.1f}** ({r['state']})" for r in runs.values())
    lines += [
        f"| sum of task seconds | {sums} |",
        f"| trigger to run's end (wall) | {walls} |",
        "",
        "The two lakes (`risk-insight lake diff`):",
        "",
        "```",
        lakes.report(),
        "```",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_airflow_"))
    try:
        facts = prepare(root, args.enterprises, args.years)
        runs = {
            "a Spark per task": run_dag(root, "per_task", facts, step_server=False),
            "step server": run_dag(root, "step_server", facts, step_server=True),
        }
        from warehouse import lakediff

        lakes = lakediff.diff(*(r["lake"] for r in runs.values()))
        body = report(facts, runs, lakes, args)
        print(body)
        if not args.no_write:
            write_section("Airflow: a Spark per task or the step server", body)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
