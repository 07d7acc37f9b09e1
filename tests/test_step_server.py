"""The step server (``dags/step_server.py``): the DAG tasks' steps run in one long-running
process, started here as ``make airflow`` starts it, on bureau B's hand-made extracts; the
test process is only its client. It reports progress and results back, records the steps in
the audit trail as its own process with the task's Airflow run id, forgets what it cached for
a run (a lake removed under it is built again), and refuses clients with other settings or
other code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, make_settings
from warehouse import caches

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
BUREAU_B = Path(__file__).parent / "fixtures" / "bureau_b"
DAY = "2026-03-02"

if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))


def test_forget_drops_what_the_per_run_caches_hold() -> None:
    calls = []

    @caches.per_run(maxsize=2)
    def read(path: str) -> int:
        calls.append(path)
        return len(calls)

    store = caches.remember({"lake": "checked"})
    assert read("a") == read("a") == 1
    caches.forget()
    assert read("a") == 2 and calls == ["a", "a"]
    assert store == {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A step server process for a lake of bureau B's extracts, and the client's settings."""
    root = tmp_path_factory.mktemp("step_server")
    settings = make_settings(root).replace(
        sources_dir=str(BUREAU_B / "mappings"),
        landing_root=str(BUREAU_B / "landing"),
        outputs_root=str(root / "outputs"),
        step_server=f"127.0.0.1:{free_port()}",
    )
    fixed = ("lake_root", "landing_root", "sources_dir", "outputs_root", "pii_key",
             "secrets_dir", "step_server")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_INSIGHT_")}
    env |= {f"RISK_INSIGHT_{k.upper()}": str(getattr(settings, k)) for k in fixed}
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(DAGS / "step_server.py")],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
    host, port = settings.step_server.split(":")
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no step server:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError:
            time.sleep(1)
    yield settings, proc
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def _step(settings, name: str) -> dict:
    import risk_steps

    params = {"lake_root": settings.lake_root, "landing_root": settings.landing_root,
              "outputs_root": settings.outputs_root}  # fmt: skip
    return {"params": params, "name": name, "run": risk_steps.resolve_run(params, _day()),
            "upstream": {}, "graph": "supervision_daily"}  # fmt: skip


def _day():
    from datetime import date

    return date.fromisoformat(DAY)


def test_steps_run_on_the_server_and_report_back(spark, server, monkeypatch) -> None:
    import step_server
    from pyspark.sql import functions as F

    from warehouse import tables

    settings, proc = server
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__step-server-test")
    said: list[str] = []
    landed = step_server.ask(settings, _step(settings, "land"), said.append)
    assert len(landed) == 6 and {f["status"] for f in landed} == {"landed"}, landed
    assert sum(f["rows_landed"] for f in landed) > 0
    assert said[-1].startswith(f"step server {settings.step_server}: land done in"), said
    gate = step_server.ask(settings, _step(settings, "bronze_gate"), said.append)
    assert gate["checks"] > 0 and gate["blocked"] == 0, gate
    events = tables.read(spark, tables.AUDIT_EVENTS, settings).where(F.col("event") == "step")
    rows = {r.subject: r for r in events.collect()}
    assert {f"land {DAY}", f"bronze_gate {DAY}"} <= set(rows), rows
    for subject in (f"land {DAY}", f"bronze_gate {DAY}"):
        row = rows[subject]
        assert (row.outcome, row.pid) == ("succeeded", proc.pid), row
        assert "step_server.py" in row.command and row.airflow_run_id == "manual__step-server-test"


def test_a_lake_removed_under_the_server_is_built_again(server) -> None:
    import shutil

    import step_server

    settings, _ = server
    shutil.rmtree(settings.lake_root)
    again = step_server.ask(settings, _step(settings, "land"), lambda _m: None)
    assert {f["status"] for f in again} == {"landed"}, again  # not skipped: a new lake
    assert (Path(settings.lake_root) / "bronze" / "registry" / "_delta_log").is_dir()


def test_the_server_refuses_other_settings_other_code_and_reports_failures(
    server, monkeypatch
) -> None:
    import step_server

    settings, _ = server
    with pytest.raises(step_server.StepFailed, match="other settings \\(lock_wait_seconds\\)"):
        step_server.ask(settings.replace(lock_wait_seconds=1), _step(settings, "land"))
    with pytest.raises(step_server.StepFailed, match="KeyError.*no_such_step"):
        step_server.ask(settings, {**_step(settings, "land"), "name": "no_such_step"})
    with pytest.raises(step_server.StepFailed, match="no step server at 127.0.0.1"):
        step_server.ask(settings.replace(step_server=f"127.0.0.1:{free_port()}"), {})
    own = step_server.fingerprint(settings)
    monkeypatch.setattr(step_server, "fingerprint", lambda _s: {**own, "code": "another"})
    with pytest.raises(step_server.StepFailed, match="other code"):
        step_server.ask(settings, _step(settings, "land"))


def test_run_step_hands_the_step_to_the_server_when_one_is_set(monkeypatch) -> None:
    import risk_steps
    import step_server

    seen = {}
    monkeypatch.setattr(step_server, "ask", lambda s, step, say: seen.update(step) or "remote")
    monkeypatch.setenv("RISK_INSIGHT_STEP_SERVER", "127.0.0.1:1")
    from warehouse.settings import get_settings

    get_settings.cache_clear()
    try:
        assert risk_steps.run_step({}, "land", {"run_date": DAY}) == "remote"
    finally:
        monkeypatch.delenv("RISK_INSIGHT_STEP_SERVER")
        get_settings.cache_clear()
    assert seen["name"] == "land" and seen["graph"] == "supervision_daily"
