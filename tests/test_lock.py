"""The lake lock (warehouse/lock.py) against real processes: a second writer waits or refuses
naming the holder, a killed holder's lock is recovered, and only one of many simultaneous
writers gets it. No Spark here: these run in seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warehouse import lock
from warehouse.settings import Settings

REPO = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from warehouse import lock
from warehouse.settings import Settings
s = Settings(lake_root=sys.argv[1], lock_wait_seconds=float(sys.argv[3]))
try:
    with lock.lake_lock(s, sys.argv[4]):
        print("HELD", flush=True)
        if sys.argv[2] == "kill":
            import os, signal
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(float(sys.argv[2]))
except lock.LockBusy as busy:
    print("BUSY", busy, flush=True)
    sys.exit(4)
"""


def _holder(lake: Path, hold: str, wait: float = 0.0, purpose: str = "test holder"):
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lake), hold, str(wait), purpose],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_held(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.startswith("HELD"), line + proc.stdout.read()


@pytest.fixture()
def lake_settings(tmp_path: Path) -> Settings:
    return Settings(lake_root=str(tmp_path / "lake"), lock_wait_seconds=0)


def test_lock_file_names_its_holder_and_is_removed_on_release(lake_settings):
    path = Path(lock.lock_path(lake_settings))
    assert path == Path(lake_settings.lake_root) / "_writer.lock"
    with lock.lake_lock(lake_settings, "run 2026-10-29") as info:
        stored = json.loads(path.read_text())
        assert stored["pid"] == os.getpid() and stored["host"] == socket.gethostname()
        assert stored["purpose"] == "run 2026-10-29" and stored["owner"]
        assert datetime.fromisoformat(stored["expires"]) > datetime.fromisoformat(stored["started"])
        assert lock.holder(lake_settings) == info
        with lock.lake_lock(lake_settings, "nested step"):  # re-entrant in one process
            assert lock.holder(lake_settings) == info
        assert path.exists()
    assert not path.exists()


def test_second_writer_refuses_naming_the_holder(lake_settings):
    proc = _holder(Path(lake_settings.lake_root), "20", purpose="run 2026-10-29")
    try:
        _wait_held(proc)
        with pytest.raises(lock.LockBusy) as busy, lock.lake_lock(lake_settings, "second run"):
            pass
        text = str(busy.value)
        assert f"pid {proc.pid}" in text and socket.gethostname() in text
        assert "run 2026-10-29" in text and "lock break" in text
        assert busy.value.holder.pid == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_second_writer_waits_until_the_holder_releases(lake_settings):
    proc = _holder(Path(lake_settings.lake_root), "2")
    try:
        _wait_held(proc)
        said: list[str] = []
        t = time.monotonic()
        with lock.lake_lock(lake_settings, "waiting run", wait=60, say=said.append) as info:
            waited = time.monotonic() - t
            assert info.pid == os.getpid()
        assert 0.5 < waited < 30, waited
        assert len(said) == 1 and said[0].startswith("waiting up to 60 s")
        assert f"pid {proc.pid}" in said[0]
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holders_lock_is_recovered_at_once(lake_settings):
    proc = _holder(Path(lake_settings.lake_root), "kill")
    _wait_held(proc)
    assert proc.wait() == -signal.SIGKILL
    left = lock.holder(lake_settings)
    assert left is not None and left.pid == proc.pid and lock.stale(left)
    said: list[str] = []
    with lock.lake_lock(lake_settings, "after the crash", say=said.append) as info:
        assert info.pid == os.getpid()
    assert said and said[0].startswith("recovering a stale lake lock") and str(proc.pid) in said[0]


def _foreign(lake_settings: Settings, expires: datetime, **extra) -> Path:
    info = lock.LockInfo(
        owner="ops", host="other-host.example", pid=1, started="2026-01-01T00:00:00+00:00",
        expires=expires.isoformat(), purpose="backfill", token="t" * 32, **extra,
    )  # fmt: skip
    path = Path(lock.lock_path(lake_settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(info)))
    return path


def test_another_hosts_lock_holds_until_it_expires(lake_settings):
    _foreign(lake_settings, datetime.now(UTC) + timedelta(minutes=5))
    with (
        pytest.raises(lock.LockBusy, match="ops@other-host.example pid 1 \\(backfill"),
        lock.lake_lock(lake_settings, "run"),
    ):
        pass
    _foreign(lake_settings, datetime.now(UTC) - timedelta(seconds=1))
    with lock.lake_lock(lake_settings, "run") as info:
        assert info.host == socket.gethostname()


def test_a_reused_pid_does_not_keep_a_dead_holders_lock(lake_settings):
    # our own pid, but recorded with another process start time: the holder is gone
    info = lock.LockInfo(
        owner="x", host=socket.gethostname(), pid=os.getpid(), started="2026-01-01T00:00:00+00:00",
        expires=(datetime.now(UTC) + timedelta(hours=1)).isoformat(), purpose="old run",
        token="u" * 32, pid_started="1",
    )  # fmt: skip
    assert lock.stale(info)
    assert not lock.stale(
        lock.LockInfo(**{**asdict(info), "pid_started": lock._proc_start(os.getpid())})
    )


def test_unreadable_lock_file_blocks_until_it_is_old(lake_settings):
    path = Path(lock.lock_path(lake_settings))
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    with (
        pytest.raises(lock.LockBusy, match="unreadable lock file"),
        lock.lake_lock(lake_settings, "run"),
    ):
        pass
    old = time.time() - 2 * lake_settings.lock_ttl_seconds
    os.utime(path, (old, old))
    with lock.lake_lock(lake_settings, "run"):
        assert lock.holder(lake_settings).pid == os.getpid()


def test_break_refuses_a_live_holder_and_removes_a_dead_one(lake_settings):
    proc = _holder(Path(lake_settings.lake_root), "20")
    try:
        _wait_held(proc)
        with pytest.raises(lock.LockBusy):
            lock.break_stale(lake_settings)
    finally:
        proc.kill()
        proc.wait()
    assert lock.break_stale(lake_settings).pid == proc.pid
    assert lock.holder(lake_settings) is None


def test_only_one_of_many_simultaneous_writers_gets_the_lock(lake_settings):
    procs = [_holder(Path(lake_settings.lake_root), "3") for _ in range(6)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    held = [o for o in outs if o.startswith("HELD")]
    busy = [o for o in outs if o.startswith("BUSY")]
    assert len(held) == 1 and len(busy) == 5, outs
    assert all("the lake is locked by" in o for o in busy)
    assert lock.holder(lake_settings) is None


def test_object_storage_lake_without_lock_file_says_the_lock_is_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings(lake_root="s3a://bucket/lake", lock_wait_seconds=0)
    assert not lock.shared(s)
    assert Path(lock.lock_path(s)).is_relative_to(tmp_path / ".risk_insight_locks")
    shared = s.replace(lock_file=str(tmp_path / "shared" / "lake.lock"))
    assert lock.shared(shared) and lock.lock_path(shared) == str(tmp_path / "shared/lake.lock")
    with lock.lake_lock(shared, "run") as info:
        assert "local to this machine" not in info.purpose
    with lock.lake_lock(s, "run") as info:
        assert "local to this machine" in info.purpose
