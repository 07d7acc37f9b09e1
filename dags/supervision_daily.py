"""Daily supervision run, keyed on the logical date D: the delivery ``<landing>/<D>/``.

wait for the delivery (a sensor: until every source the mappings expect that day has a file, or
the sources' wait time has passed) → land → bronze gate → conform → silver gate → features →
score → gold gate →
tiers/plans/lists/warnings → serving marts → BI refresh; Data Docs are rebuilt whatever
happened. The 双随机 plan is per plan period (tier policy ``plan.period``): the first run of a
period commits its seed (unless the previous plan already did) before the tiers are built and
draws the plan; the other runs of the period reuse it; warnings compare with the previous
period. A blocking quality failure raises ``GateBlocked``: the gate task fails, its ledger
rows stay in audit.quality_results, and every task after it ends ``upstream_failed``.
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

OUTSIDE = {  # steps that touch outside systems: retried with exponential backoff
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}

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

    @task(**OUTSIDE)
    def land(run: dict) -> list:
        """Land every file of the day (reads the agencies' landing zone)."""
        return steps.land(_params(), run["run_date"])

    @task
    def bronze_gate(run: dict) -> dict:
        return steps.bronze_gate(_params(), run["run_date"])

    @task
    def conform(run: dict) -> list:
        return steps.conform(_params(), run["run_date"])

    @task
    def rectification_reports(run: dict) -> list:
        return steps.rectification_reports(_params(), run["run_date"])

    @task
    def silver_gate(run: dict) -> dict:
        return steps.silver_gate(_params(), run["run_date"])

    @task
    def features(run: dict) -> list:
        return steps.features(_params(), run["as_of"])

    @task
    def gold_gate(run: dict) -> dict:
        return steps.gold_gate(_params(), run["run_date"])

    @task
    def score(run: dict) -> dict:
        return steps.score(_params(), run["as_of"])

    @task
    def tiers_plans_lists_warnings(run: dict):
        return steps.insight(_params(), run["as_of"])

    @task
    def insight_gate(run: dict) -> dict:
        """The gold gate again, now over risk insight's tiers, plans, target list and warnings."""
        return steps.gold_gate(_params(), run["run_date"])

    @task(**OUTSIDE)
    def serving_marts(run: dict):
        """Publish the marts to the serving store (a PostgreSQL server when configured)."""
        return steps.marts(_params(), run["as_of"])

    @task(**OUTSIDE)
    def bi_refresh():
        """Provision Superset on the new marts; skipped when no Superset is configured."""
        from airflow.sdk.exceptions import AirflowSkipException

        done = steps.bi_refresh(_params())
        if "skipped" in done:
            raise AirflowSkipException(done["skipped"])
        return done

    @task(trigger_rule="all_done")
    def data_docs() -> str:
        """Rebuild the Data Docs even when a gate blocked, so the failure can be read there."""
        return steps.data_docs(_params())

    run = resolve_run()
    prepare_world() >> run
    waited = wait_for_delivery(run)
    landed = land(run)
    waited >> landed
    bronze = bronze_gate(run)
    landed >> bronze
    conformed = conform(run)
    bronze >> conformed
    reports = rectification_reports(run)
    silver = silver_gate(run)
    conformed >> [reports, silver]
    built = features(run)
    silver >> built
    scored = score(run)
    built >> scored
    gold = gold_gate(run)
    scored >> gold
    lists = tiers_plans_lists_warnings(run)
    gold >> lists
    insight_checked = insight_gate(run)
    lists >> insight_checked
    served = serving_marts(run)
    insight_checked >> served
    served >> bi_refresh()
    gold >> data_docs()


supervision_daily()
