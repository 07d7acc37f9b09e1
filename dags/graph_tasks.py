"""Airflow tasks made from a declared run graph (``risk_insight.graph.GRAPHS``): one task per
step, task id = step name, its docstring as the task's doc, dependencies from ``after``, the
results a step ``uses`` handed over as the upstream tasks' XComs. Both DAG files wire their
graph with :func:`graph_tasks`, so a step added to a graph is a task without a DAG edit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import risk_steps as steps
from airflow.sdk import get_current_context, task

OUTSIDE = {  # steps that touch outside systems: retried with exponential backoff
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def graph_tasks(graph: str, run: Any, start: Any) -> dict[str, Any]:
    """Make the tasks of ``graph``; each gets ``run`` (the run's dates and roots, an XCom) and
    the steps with no predecessor follow ``start``. Returns each step's task output by name.

    An ``always`` step runs after every gate whatever happened (trigger rule ``all_done``), not
    after every task: a sole leaf that succeeds would mark a blocked run a success."""
    from risk_insight.graph import GRAPHS

    declared = GRAPHS[graph]
    made: dict[str, Any] = {}
    for s in declared:
        made[s.name] = _task(graph, s)(run, {u: made[u] for u in s.uses})
    for s in declared:
        if s.always:
            [made[o.name] for o in declared if o.gate] >> made[s.name]
        for before in s.after:
            made[before] >> made[s.name]
        if not s.after and not s.always:
            start >> made[s.name]
    return made


def _task(graph: str, step: Any) -> Any:
    """The Airflow task of one step: retried with backoff when it touches an outside system,
    run whatever happened upstream when it is an ``always`` step; a step returning
    ``{"skipped": why}`` is skipped (and so are the tasks after it)."""

    def call(run: dict, upstream: dict) -> Any:
        params = dict(get_current_context()["params"])
        done = steps.run_step(params, step.name, run, upstream, graph)
        if isinstance(done, dict) and set(done) == {"skipped"}:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(done["skipped"])
        return done

    call.__name__ = step.name
    call.__doc__ = step.doc
    options: dict[str, Any] = {**(OUTSIDE if step.outside else {}), "task_id": step.name}
    if step.always:
        options["trigger_rule"] = "all_done"
    return task(**options)(call)
