"""Monthly model retrain: training features → backtests + fit + registration → promotion gate
(decision recorded in audit.model_decisions) → re-score with the champion if promoted.

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


def _params() -> dict:
    return dict(get_current_context()["params"])


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
    def training_schedule() -> dict:
        """Backtest folds and final training dates over silver's inspection span."""
        return steps.training_schedule(_params())

    @task
    def training_features(plan: dict) -> list:
        return steps.training_features(_params(), plan)

    @task
    def backtest_train_and_gate(plan: dict) -> dict:
        """Backtests, final fit, registration and the promotion gate (decision recorded)."""
        return steps.train_and_gate(_params(), plan)

    @task
    def record_decision(decision: dict) -> dict:
        """Check the decision row is stored and log the champion after it."""
        return steps.recorded_decision(_params(), decision["challenger"])

    @task.short_circuit
    def promoted(recorded: dict) -> bool:
        return bool(recorded["promoted"])

    @task
    def rescore_with_champion() -> dict:
        return steps.rescore_with_champion(_params())

    plan = training_schedule()
    built = training_features(plan)
    decision = backtest_train_and_gate(plan)
    built >> decision
    recorded = record_decision(decision)
    promoted(recorded) >> rescore_with_champion()


model_retrain()
