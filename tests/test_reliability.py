"""Crash safety and one writer at a time, with real processes.

``risk-insight run --date D`` runs in a subprocess (settings through RISK_INSIGHT_* variables)
and is killed with SIGKILL (its whole process group: Python and Spark's JVM) at every step
boundary of ``pipelines.run.run_day``, found by watching its progress output, and once in the
middle of writing a table (data files in the table's folder, its Delta commit not yet there).
Each kill is followed by the next run, and the last run completes: the lake must then hold
exactly what one clean run wrote (``warehouse.lakediff``: every Delta table, wall-clock stamps
and the append-only audit.events aside). Then two runs of the same delivery start together on
an empty lake: one writes, the other refuses naming the holder, and the lake equals a clean
run's.

The world is tiny (300 enterprises; the history delivery of the registry only, 520 rows), so
each run costs little more than Spark's start and run_day's fixed work, which is what is being
tested. Each run's figures are printed (``-s``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import make_settings
from warehouse import lakediff

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("registry",)  # the biggest extract, with personal data; each run stays short
# run_day's progress lines, in order: a kill right after one appears is a crash at the start of
# that step (everything before it done, nothing of it committed yet).
BOUNDARIES = (
    "landing files",
    "bronze quality gate",
    "conforming to silver",
    "rectification reports",
    "silver quality gate",
    "rebuilding data docs",
)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory) -> dict:
    """A 300-enterprise world's history delivery (the registry only), and the lake of one
    clean, uninterrupted run of it (in this process)."""
    from pipelines.run import run_day
    from pipelines.simulator import SimulationConfig, simulate

    root = tmp_path_factory.mktemp("crash_world")
    sim = simulate(
        SimulationConfig(enterprises=300, years=2, seed=5, increment_days=30), root / "sim"
    )
    day = sim.history_date
    landing = root / "landing"
    (landing / day.isoformat()).mkdir(parents=True)
    for name in SOURCES:
        src = next((root / "sim" / "landing" / day.isoformat()).glob(f"{name}.*"))
        shutil.copy(src, landing / day.isoformat() / src.name)
    clean = make_settings(root / "clean").replace(landing_root=str(landing))
    run_day(spark, landing, day, clean)
    return {"root": root, "day": day, "landing": landing, "clean": Path(clean.lake_root)}


def _env(world: dict, name: str, **extra: str) -> dict[str, str]:
    s = make_settings(world["root"] / name)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RISK_INSIGHT_")},
        "RISK_INSIGHT_CONFIG": str(world["root"] / "no-such-config.yaml"),
        "RISK_INSIGHT_LAKE_ROOT": s.lake_root,
        "RISK_INSIGHT_LANDING_ROOT": str(world["landing"]),
        "RISK_INSIGHT_PII_KEY": s.pii_key,
        "RISK_INSIGHT_SPARK_MASTER": "local[2]",
        "RISK_INSIGHT_SHUFFLE_PARTITIONS": "2",
        "RISK_INSIGHT_DRIVER_MEMORY": "1g",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",  # rich wraps progress lines at the terminal width
        **extra,
    }


@dataclass
class Outcome:
    rc: int
    killed: bool
    seconds: float
    pid: int
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def run_cli(env: dict, day: date, kill_after: str | None = None, kill_when=None) -> Outcome:
    """``risk-insight run --date day`` in its own process group; SIGKILL the whole group as
    soon as a progress line containing ``kill_after`` appears or ``kill_when()`` is true."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "risk_insight.cli", "run", "--date", day.isoformat()],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    hit = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if kill_after and kill_after in line:
                hit.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = False
    deadline = started + 900
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if hit.is_set() or (kill_when is not None and kill_when()):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
    finally:  # the test itself failed or was interrupted: leave no run behind
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("run did not finish within 900 s:\n" + "\n".join(lines[-40:]))
    rc = proc.wait()
    reader.join(timeout=30)
    for _ in range(100):  # the JVM goes with the group; wait until the kernel says so
        if not _group_alive(proc.pid):
            break
        time.sleep(0.1)
    assert not _group_alive(proc.pid), "processes of the killed run survived"
    return Outcome(rc, killed, time.monotonic() - started, proc.pid, lines)


def _committed_files(table: Path) -> set[str]:
    import json

    files = set()
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                files.add(action["add"]["path"])
            if "remove" in action:
                files.discard(action["remove"]["path"])
    return files


def _data_files(table: Path) -> set[str]:
    return {
        str(p.relative_to(table)) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts
    }


def test_killed_at_every_step_and_mid_write_then_rerun_equals_a_clean_run(world):
    env = _env(world, "crashed")
    lake = Path(env["RISK_INSIGHT_LAKE_ROOT"])
    registry = lake / "bronze" / "registry"
    figures: list[str] = []

    def mid_write() -> bool:  # data files of bronze.registry on disk, its commit not yet
        return registry.is_dir() and bool(_data_files(registry) - _committed_files(registry))

    plan = [("landing files", None), (None, mid_write), *((b, None) for b in BOUNDARIES[1:])]
    previous_killed = False
    for after, when in plan:
        out = run_cli(env, world["day"], kill_after=after, kill_when=when)
        label = after or "mid-write of bronze.registry"
        figures.append(f"{label}: killed={out.killed} after {out.seconds:.1f} s")
        print(figures[-1], flush=True)
        assert out.killed and out.rc == -signal.SIGKILL, (label, out.rc, out.text[-3000:])
        if previous_killed:  # the killed run's lock was left behind and is recovered at once
            assert "recovering a stale lake lock" in out.text, label
        previous_killed = True
        if when is mid_write:
            orphans = _data_files(registry) - _committed_files(registry)
            assert orphans, "the kill came after the commit: not mid-write"
            assert not (registry / "_delta_log" / "00000000000000000001.json").exists()
    final = run_cli(env, world["day"])
    figures.append(f"final run: rc={final.rc} after {final.seconds:.1f} s")
    print("\n".join(figures))
    assert final.rc == 0, final.text[-5000:]
    assert "recovering a stale lake lock" in final.text

    result = lakediff.diff(world["clean"], lake)
    assert result.same, result.report()
    assert len(result.equal) >= 12, result.report()
    assert not (lake / "_writer.lock").exists()

    # the audit trail shows every attempt: 8 starts, one end (the killed runs never ended)
    from deltalake import DeltaTable

    events = DeltaTable(str(lake / "audit" / "events")).to_pandas()
    runs = events[events["event"] == "run"]
    assert (runs["action"] == "start").sum() == len(plan) + 1
    assert runs[runs["action"] == "end"]["outcome"].tolist() == ["succeeded"]


def test_two_runs_started_together_one_writes_the_other_refuses_naming_it(world):
    env = _env(world, "together", RISK_INSIGHT_LOCK_WAIT_SECONDS="0")
    outcomes: list[Outcome] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(run_cli(env, world["day"])))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [o for o in outcomes if o.rc == 0]
    refused = [o for o in outcomes if o.rc == 4]
    assert len(ok) == 1 and len(refused) == 1, [(o.rc, o.text[-2000:]) for o in outcomes]
    message = " ".join(refused[0].text.split())  # rich wraps long lines
    assert "the lake is locked by" in message and "risk-insight run --date" in message
    assert f"pid {ok[0].pid}" in message
    assert refused[0].seconds < ok[0].seconds / 2  # refused before starting Spark
    print(f"writer {ok[0].seconds:.1f} s; refused after {refused[0].seconds:.1f} s: "
          + message[:300])  # fmt: skip
    result = lakediff.diff(world["clean"], Path(env["RISK_INSIGHT_LAKE_ROOT"]))
    assert result.same, result.report()
