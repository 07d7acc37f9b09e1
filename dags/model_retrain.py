"""Monthly model retrain: one task per step of ``risk_insight.graph.RETRAIN`` — training
schedule → training features → backtests + fit + registration → promotion gate (decision
recorded in audit.model_decisions) → the decision as stored → re-score with the champion if
promoted (skipped otherwise). The schedule and the decision reach the steps after them as XComs.

Scoring (here and in ``supervision_daily``) always uses the champion, the challenger of the
latest promoted decision, so it switches to a new model only after the gate promoted it.
The default schedule params are the model owners' (``models.train.make_schedule``); small demo
worlds need shorter ones (see the README).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:  # the scheduler may not put dags/ on sys.path
    sys.path.insert(0, str(Path(__file__).parent))

import risk_steps as steps  # noqa: E402
from airflow.sdk import Param, dag, get_current_context, task
from graph_tasks import graph_tasks  # noqa: E402

PARAMS = {
    "lake_root": Param("", type="string", description="lake root ('' = settings)"),
    "landing_root": Param("", type="string", description="landing root ('' = settings)"),
    "quality_policy": Param("", type="string", description="gate policy YAML ('' = reviewed)"),
    "outputs_root": Param("", type="string", description="lists, plans ('' = settings)"),
    "tier_policy": Param("", type="string", description="tier policy YAML ('' = reviewed)"),
    "policy_version": Param("", type="string", description="expected tier policy version"),
    "quality_policy_version": Param("", type="string", description="expected gate policy"),
    "as_of": Param("", type="string", description="re-score date ('' = month after the data)"),
    "truth_dir": Param("", type="string", description="simulator truth, for the oracle baseline"),
    "seed": Param(42, type="integer"),
    # Schedule and gate: None = the model policy's (warehouse/contracts/model_policy.yaml; the
    # schedule then fits the data span); set them all to lay a schedule of your own.
    "horizon_days": Param(None, type=["null", "integer"], minimum=30),
    "n_folds": Param(None, type=["null", "integer"], minimum=1),
    "fold_step_months": Param(None, type=["null", "integer"], minimum=1),
    "train_step_months": Param(None, type=["null", "integer"], minimum=1),
    "warmup_months": Param(None, type=["null", "integer"], minimum=0),
    "margin": Param(
        None,
        type=["null", "number"],
        description="precision@k another recipe must add (None: the policy's)",
    ),
    "tolerance": Param(
        None,
        type=["null", "number"],
        description="how much worse a refresh may be (None: the policy's)",
    ),
    "fairness_bound": Param(
        None,
        type=["null", "number"],
        description="max widening of a fairness gap (None: the policy's)",
    ),
}


@dag(
    schedule="@monthly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    default_args={"retries": 0},
    tags=["supervision", "model"],
    doc_md=__doc__,
)
def model_retrain() -> None:
    @task
    def resolve_run() -> dict:
        """Dates and roots of this run; checks the tier and gate policy versions."""
        context = get_current_context()
        return steps.resolve_run(dict(context["params"]), context["logical_date"])

    run = resolve_run()
    graph_tasks("model_retrain", run, start=run)


model_retrain()
