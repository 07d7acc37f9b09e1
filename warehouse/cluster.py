"""A standalone Spark cluster on this machine: one master and one worker, started from the
pyspark package's own ``bin/spark-class`` (no separate Spark install).

It exists to prove that the jobs run unchanged against a cluster master: ``make cluster-demo``
and ``tests/test_cluster.py`` point ``spark_master`` at it and nothing else. A real cluster
(YARN, Kubernetes, a managed Spark) is reached the same way, through settings (README, "Running
on a cluster").
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyspark


def spark_home() -> Path:
    """``SPARK_HOME`` when set, else the pyspark package (its pip wheel carries bin/ and jars/)."""
    return Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LocalCluster:
    """A running standalone cluster: the URL drivers connect to, and the master's web UI."""

    master_url: str  # spark://127.0.0.1:<port>, for settings.spark_master
    ui_url: str  # http://127.0.0.1:<port>

    def state(self) -> dict:
        """The master's own account (``/json/``): workers, cores, running and completed apps."""
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=5) as reply:
            return json.load(reply)

    def applications(self, wait_s: float = 30.0) -> list[str]:
        """Names of the applications that ran on this cluster, oldest first, once none is still
        active (waiting up to ``wait_s``: a driver that has just exited may not have been
        unregistered yet; one still active after that is listed last)."""
        deadline = time.monotonic() + wait_s
        state = self.state()
        while state.get("activeapps") and time.monotonic() < deadline:
            time.sleep(0.5)
            state = self.state()
        done = [app["name"] for app in reversed(state.get("completedapps", []))]
        return done + [app["name"] for app in state.get("activeapps", [])]


def _alive_workers(cluster: LocalCluster) -> int:
    try:
        return int(cluster.state().get("aliveworkers", 0))
    except OSError:
        return 0


def _stop(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def local_cluster(
    work_dir: str | Path, cores: int = 2, memory: str = "6g", timeout_s: float = 180.0
) -> Iterator[LocalCluster]:
    """Start a standalone master and one worker (``cores``, ``memory``) on 127.0.0.1 and
    yield it once the worker has registered (``.master_url`` is ``spark://127.0.0.1:<port>``).

    Both are stopped on exit, also when the body raises. Their logs and the executors' work
    folders are under ``work_dir``. Raises ``RuntimeError`` (with the logs' tail) when the
    worker has not registered within ``timeout_s``.
    """
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    port, ui_port, worker_ui = _free_port(), _free_port(), _free_port()
    cluster = LocalCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}")
    home = spark_home()
    spark_class = str(home / "bin" / "spark-class")
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",  # never bind the machine's other interfaces
    }
    procs: list[subprocess.Popen] = []
    logs = {name: work / f"{name}.log" for name in ("master", "worker")}
    commands = {
        "master": [spark_class, "org.apache.spark.deploy.master.Master",
                   "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)],
        "worker": [spark_class, "org.apache.spark.deploy.worker.Worker",
                   "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                   "--webui-port", str(worker_ui), "--work-dir", str(work / "worker"),
                   cluster.master_url],
    }  # fmt: skip
    try:
        for name, command in commands.items():
            with logs[name].open("w") as log:
                procs.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + timeout_s
        while _alive_workers(cluster) < 1:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                tails = {n: logs[n].read_text(errors="replace")[-2000:] for n in logs}
                raise RuntimeError(f"the local Spark cluster did not come up: {tails}")
            time.sleep(1)
        yield cluster
    finally:
        for proc in reversed(procs):
            _stop(proc)


@dataclass
class ClusterRun:
    """What :func:`run_on_local_cluster` saw: the command's exit status and the names of the
    applications that ran on the cluster, oldest first."""

    status: int
    apps: list[str]


def run_on_local_cluster(
    command: list[str],
    work_dir: str | Path,
    cores: int = 2,
    memory: str = "6g",
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> ClusterRun:
    """Run ``command`` (in ``env``, default this process's) with ``RISK_INSIGHT_SPARK_MASTER``
    pointing at a fresh local cluster; return once it and the cluster are done (raises
    ``subprocess.TimeoutExpired`` after ``timeout_s``, the cluster stopped)."""
    with local_cluster(work_dir, cores=cores, memory=memory) as cluster:
        env = {
            **(os.environ if env is None else env),
            "RISK_INSIGHT_SPARK_MASTER": cluster.master_url,
        }
        print(f"local cluster up at {cluster.master_url} (UI {cluster.ui_url})", flush=True)
        status = subprocess.run(command, env=env, check=False, timeout=timeout_s).returncode
        ran = cluster.applications()
    print(f"applications that ran on the cluster: {ran or 'none'}", flush=True)
    return ClusterRun(status, ran)


def main(argv: list[str] | None = None) -> int:
    """``python -m warehouse.cluster [--cores N] [--memory 6g] [--work DIR] -- COMMAND…``
    (``make cluster-demo``): the command's exit status, or 3 when no application of it ran
    on the cluster."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m warehouse.cluster",
        description="run a command against a standalone Spark cluster started on this machine",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--memory", default="6g", help="the worker's memory, e.g. 6g")
    parser.add_argument("--work", default="cluster/work", help="master, worker and executor logs")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    done = run_on_local_cluster(command, args.work, args.cores, args.memory)
    # a command that exited 0 but ran nothing on the cluster (it fell back to local mode)
    # proves nothing: status 3
    return 3 if done.status == 0 and not done.apps else done.status


if __name__ == "__main__":
    raise SystemExit(main())
