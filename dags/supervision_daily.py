"""Daily supervision run, keyed on the logical date D: the delivery ``<landing>/<D>/``.

wait for the delivery (a sensor: until every source the mappings expect that day has a file, or
the sources' wait time has passed), then one task per step of ``risk_insight.graph.DAILY``:
land → bronze gate → conform → reports, silver gate → features → score → gold gate →
tiers/plans/lists/warnings → gold gate again → serving marts → BI refresh; Data Docs are
rebuilt whatever happened. The 双随机 plan is per plan period (tier policy ``plan.period``):
the first run of a period commits its seed (unless the previous plan already did) before the
tiers are built and draws the plan; the other runs of the period reuse it; warnings compare
with the previous period. A blocking quality failure raises ``GateBlocked``: the gate task
fails, its ledger rows stay in audit.quality_results, and every task after it ends
``upstream_failed``.
Every step is idempotent (checksum-skipped landing, MERGE / replaceWhere writes), so a
re-run or a backfill of a date leaves the lake as one clean pass would.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:  # the scheduler may not put dags/ on sys.path
    sys.path.insert(0, str(Path(__file__).parent))

import risk_steps as steps  # noqa: E402
from airflow.sdk import Param, PokeReturnValue, dag, get_current_context, task
from graph_tasks import graph_tasks  # noqa: E402

PARAMS = {
    "landing_root": Param("", type="string", description="landing root ('' = settings)"),
    "lake_root": Param("", type="string", description="lake root ('' = settings)"),
    "quality_policy": Param("", type="string", description="gate policy YAML ('' = reviewed)"),
    "outputs_root": Param("", type="string", description="lists, plans ('' = settings)"),
    "tier_policy": Param("", type="string", description="tier policy YAML ('' = reviewed)"),
    "policy_version": Param("", type="string", description="expected tier policy version"),
    "quality_policy_version": Param("", type="string", description="expected gate policy"),
    "as_of": Param("", type="string", description="as-of date YYYY-MM-DD ('' = D + 1 day)"),
    "model_version": Param("", type="string", description="registered model ('' = champion)"),
    "reconform": Param(False, type="boolean", description="conform, gate again: same inputs"),
    "enterprises": Param(0, type="integer", minimum=0, description="demo world size (0 = off)"),
    "years": Param(2, type="integer", minimum=1, description="demo world years"),
    "seed": Param(42, type="integer", description="demo world seed"),
}


def _params() -> dict:
    return dict(get_current_context()["params"])


@dag(
    schedule="@daily",
    start_date=datetime(2026, 10, 1),
    catchup=False,
    max_active_runs=1,  # deliveries are applied in date order
    params=PARAMS,
    default_args={"retries": 0},
    tags=["supervision", "daily"],
    doc_md=__doc__,
)
def supervision_daily() -> None:
    @task
    def prepare_world() -> dict:
        """Demo only: simulate the world named by the params (no-op with enterprises = 0)."""
        return steps.prepare_world(_params())

    @task
    def resolve_run() -> dict:
        """Delivery date, as-of date and roots of this run; checks the gate policy version."""
        return steps.resolve_run(_params(), get_current_context()["logical_date"])

    @task.sensor(poke_interval=300, timeout=60 * 60 * 36, mode="reschedule")
    def wait_for_delivery(run: dict) -> PokeReturnValue:
        """Wait (rescheduled, no worker held) until every expected source has a file, or the
        longest wait of the missing sources has passed since the day ended; then go on
        anyway: the bronze gate records each missing delivery in the ledger and the reports."""
        status = steps.delivery_status(_params(), run["run_date"])
        ctx = get_current_context()
        deadline = ctx["data_interval_end"] + timedelta(hours=status["wait_hours"])
        done = not status["missing"] or datetime.now(deadline.tzinfo) >= deadline
        return PokeReturnValue(is_done=done, xcom_value=status)

    run = resolve_run()
    prepare_world() >> run
    graph_tasks("supervision_daily", run, start=wait_for_delivery(run))


supervision_daily()
