"""The step server: one long-running process that runs the DAG tasks' steps, so a DAG run
starts Spark (its JVM, with Delta, Great Expectations and LightGBM loaded) once instead of
once per task.

With ``step_server`` set (``RISK_INSIGHT_STEP_SERVER=127.0.0.1:8797``; ``make airflow`` starts
a server and sets it), :func:`risk_steps.run_step` hands its step here and waits: the task's
process stays a thin client that prints the step's progress and returns its result, or fails
with its error, as if the step had run in it. The server runs one step at a time, each as
:func:`risk_steps.run_here` runs it in a task's own process (under the lake lock, with its
``step`` row in ``audit.events``); after each it forgets what a process keeps for one run
(policies, mappings, the tables it has checked: :mod:`warehouse.caches`) and Spark's cached
frames, so the next step reads them as a fresh process would.

It takes steps only from clients with its code and settings: a request carries a fingerprint
of both, and a server that runs other code (a deploy since it started: restart it) or other
settings refuses the step and says which, rather than run it differently from a fresh process.
Transport: :mod:`multiprocessing.connection` on the configured address, authenticated with
``<secrets_dir>/step_server_key`` (an HMAC challenge; generated once, mode 0600).

    .venv/bin/python dags/step_server.py [--address 127.0.0.1:8797]

Nothing here imports Spark at module level: the client half runs in the task's process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

import risk_steps  # noqa: E402

if TYPE_CHECKING:
    from warehouse.settings import Settings

# the code a step runs: the engine's packages and the DAGs' own step modules
CODE = ("warehouse", "quality", "pipelines", "models", "risk_insight", "risk_steps", "step_server")


class StepFailed(RuntimeError):
    """The step failed on the step server, or the server refused or lost it; the message
    carries the server's error and traceback."""


def address_of(text: str) -> tuple[str, int]:
    """``host:port`` as a socket address."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"step_server must be host:port, got {text!r}")
    return host, int(port)


def fingerprint(settings: Settings) -> dict[str, Any]:
    """What must be equal on both ends: the code (every file of :data:`CODE`) and each
    setting (hashed: no secret travels)."""
    from warehouse.audit import source_fingerprint

    values = settings.model_dump(mode="json", exclude={"step_server"})  # spelt either way
    return {
        "code": source_fingerprint(*CODE),
        "settings": {
            k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()
            for k, v in values.items()
        },
    }


def ask(
    settings: Settings,
    step: dict[str, Any],
    say: Callable[[str], None] = print,
) -> Any:
    """Run ``step`` (the arguments of :func:`risk_steps.run_here`, by name) on the step server
    of ``settings``; print its progress with ``say`` and return its result. Raises
    :class:`StepFailed` when the step failed there or the server refused it."""
    address = settings.step_server or ""
    started = time.monotonic()
    try:
        conn = Client(address_of(address), authkey=settings.step_server_key())
    except OSError as exc:
        raise StepFailed(
            f"no step server at {address} ({exc}): start it (make airflow starts one), or unset "
            "RISK_INSIGHT_STEP_SERVER to run steps in the task's own process"
        ) from exc
    # the Airflow run this task belongs to, for the step's rows in audit.events
    airflow = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_CTX_")}
    with conn:
        conn.send({"fingerprint": fingerprint(settings), "step": step, "airflow": airflow})
        while True:
            try:
                kind, value = conn.recv()
            except EOFError as exc:
                raise StepFailed(f"the step server at {address} closed during the step") from exc
            if kind == "say":
                say(value)
            elif kind == "done":
                say(f"step server {address}: {step['name']} done in "
                    f"{time.monotonic() - started:,.1f} s")  # fmt: skip
                return value
            else:
                raise StepFailed(value)


class StepServer:
    """Accepts clients on ``address`` (a thread each) and runs their steps one at a time in
    this process's Spark session."""

    def __init__(self, settings: Settings, address: tuple[str, int]) -> None:
        self.settings = settings
        self.listener = Listener(address, authkey=settings.step_server_key())
        self.address = self.listener.address
        self.own = fingerprint(settings)  # now: the code this process loaded
        self.one_at_a_time = threading.Lock()

    def serve_forever(self) -> None:
        """Accept clients until the listener is closed."""
        while True:
            try:
                conn = self.listener.accept()
            except OSError:  # closed
                return
            except Exception:  # a client that failed the handshake: not this server's problem
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def refusal(self, theirs: dict[str, Any]) -> str | None:
        """Why a client with fingerprint ``theirs`` is refused (None: it is not)."""
        if theirs.get("code") != self.own["code"]:
            return (
                "the step server runs other code than this task (a deploy since it started?): "
                "restart it"
            )
        differ = sorted(
            k
            for k in set(self.own["settings"]) | set(theirs.get("settings", {}))
            if self.own["settings"].get(k) != theirs.get("settings", {}).get(k)
        )
        if differ:
            return (
                f"the step server runs with other settings ({', '.join(differ)}): start it with "
                "the environment of the Airflow workers"
            )
        return None

    def handle(self, conn: Connection) -> None:
        """One client: check it, run its step, send progress lines, then the result or the
        error."""
        with conn:
            try:
                request = conn.recv()
                why = self.refusal(request.get("fingerprint", {}))
                if why:
                    conn.send(("failed", why))
                    return
                step = request["step"]
                if not self.one_at_a_time.acquire(blocking=False):
                    conn.send(("say", "step server busy: waiting for the step before"))
                    self.one_at_a_time.acquire()
                try:
                    result = self.run(step, request.get("airflow", {}),
                                      lambda m: conn.send(("say", m)))  # fmt: skip
                finally:
                    self.one_at_a_time.release()
                conn.send(("done", result))
            except (EOFError, OSError):  # the client went away; its step (if any) finished
                return
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the task
                text = "".join(traceback.format_exception(exc))
                try:
                    conn.send(("failed", f"{type(exc).__name__}: {exc}\n{text}"))
                except (EOFError, OSError):
                    return

    def run(self, step: dict[str, Any], airflow: dict[str, str], say: Callable[[str], None]) -> Any:
        """One step as the task's own process would run it (with its Airflow context in the
        environment, which the audit trail records), then forget the run."""
        from warehouse import caches
        from warehouse.spark import get_spark

        before = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AIRFLOW_CTX_")}
        os.environ.update(airflow)
        try:
            return risk_steps.run_here(**step, say=say)
        finally:
            for k in airflow:
                os.environ.pop(k, None)
            os.environ.update(before)
            caches.forget()
            get_spark(self.settings).catalog.clearCache()


def start(settings: Settings, address: tuple[str, int]) -> StepServer:
    """A server on ``address`` with Spark started and the heavy libraries imported (so the
    first step pays nothing more than the others)."""
    import great_expectations  # noqa: F401
    import lightgbm  # noqa: F401

    from warehouse.spark import get_spark

    get_spark(settings).range(1).count()
    return StepServer(settings, address)


def main() -> None:
    from warehouse.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="host:port (default: the step_server setting)")
    args = parser.parse_args()
    settings = get_settings()
    if args.address:
        settings = settings.replace(step_server=args.address)
    if not settings.step_server:
        parser.error("no address: pass --address or set RISK_INSIGHT_STEP_SERVER")
    t = time.monotonic()
    server = start(settings, address_of(settings.step_server))
    print(f"step server at {settings.step_server}, Spark ready in {time.monotonic() - t:,.1f} s",
          flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
