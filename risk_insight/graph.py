"""The run graphs, declared once.

:data:`DAILY`: the delivery (``pipelines.steps.DELIVERY``), then features → score → gold gate →
tiers/plans/lists/warnings → the gold gate again over them → serving marts → BI refresh, and
the Data Docs at the end whatever happened. :data:`RETRAIN`: training schedule → training
features → backtests, fit, registration and promotion gate → the decision as stored → re-score
with the champion when it was promoted.

The DAG files make one task of each step (task id = step name, dependencies from ``after``,
the results a step ``uses`` passed as XComs): ``supervision_daily`` from :data:`DAILY`,
``model_retrain`` from :data:`RETRAIN`. ``run_day`` runs :data:`pipelines.steps.DELIVERY`,
``risk-insight demo`` runs :data:`AS_OF` and ``risk-insight train`` :data:`RETRAIN`, all with
the same runner (:func:`pipelines.steps.run_steps`). Nothing heavy is imported here at module
level, so parsing the DAG files stays cheap.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pipelines.steps import DELIVERY, Run, Step, check_graph


def features(run: Run) -> Any:
    """Point-in-time gold features for the as-of date (that partition replaced)."""
    from pipelines.features import build_features

    assert run.as_of is not None
    return build_features(run.spark, run.as_of, run.settings)


def score(run: Run) -> Any:
    """Score every active enterprise at the as-of date with the champion (or with the
    registered ``model_version`` the run names, an operator's explicit choice)."""
    from models.score import score as score_all

    assert run.as_of is not None
    done = score_all(run.spark, run.as_of, run.settings, run.model_version)
    run.say(f"{run.as_of}: {done['rows']:,} scored by {done['model_version']}; reasons "
            f"computed for {done['reasons_computed']:,}, unchanged for the others")  # fmt: skip
    return done


def gold_gate(run: Run) -> Any:
    """Gold gate: key present and unique in every gold table built so far."""
    from quality import gates

    return gates.check_gold(run.spark, run.run_date, run.settings)


def insight(run: Run) -> Any:
    """Tiers, the period's random-draw plan (drawn by the period's first run, reused after),
    district and inspector lists and warnings at the as-of date, then inspector consistency
    (执法尺度统一) over every scored random draw so far."""
    from risk_insight.insight import run_insight

    assert run.as_of is not None
    return run_insight(run.spark, run.as_of, run.settings)


def insight_gate(run: Run) -> Any:
    """The gold gate again, now over risk insight's tiers, plans, target list and warnings."""
    return gold_gate(run)


def marts(run: Run) -> Any:
    """Publish the marts of the as-of date to the serving store (gold → the SQL store BI
    reads, atomically; a PostgreSQL server when configured)."""
    from pipelines.marts import build_marts

    return build_marts(run.spark, run.as_of, run.settings)


def bi_refresh(run: Run) -> Any:
    """Provision Superset on the new marts; ``{"skipped": why}`` when none is configured."""
    from risk_insight.superset import refresh

    return refresh(run.settings)


AS_OF: tuple[Step, ...] = (
    Step("features", features, "gold features", after=("silver_gate",), key="as_of",
         reads=("silver",), writes=("gold.enterprise_features",)),
    Step("score", score, "risk scores", after=("features",), key="as_of",
         reads=("gold.enterprise_features", "audit.model_registry"), writes=("gold.risk_scores",)),
    Step("gold_gate", gold_gate, "gold quality gate", after=("score",), gate=True,
         reads=("gold",), writes=("audit.quality_results",)),
    Step("tiers_plans_lists_warnings", insight, "tiers, plans, lists, warnings",
         after=("gold_gate",), key="as_of", reads=("gold.risk_scores", "silver"),
         writes=("gold.credit_tiers", "gold.inspection_plan", "gold.target_list",
                 "gold.warnings", "audit.plan_commitments", "outputs")),
    Step("insight_gate", insight_gate, "gold quality gate over risk insight",
         after=("tiers_plans_lists_warnings",), gate=True, reads=("gold",),
         writes=("audit.quality_results",)),
    Step("serving_marts", marts, "serving marts", after=("insight_gate",), key="as_of",
         reads=("gold",), writes=("serving",), outside=True),
    Step("bi_refresh", bi_refresh, "BI refresh", after=("serving_marts",), key="",
         reads=("serving",), outside=True, writes_lake=False),
)  # fmt: skip
"""The steps after the delivery, keyed on the as-of date (the gates on the run date)."""

_DELIVERY = tuple(s for s in DELIVERY if not s.always)
DAILY: tuple[Step, ...] = (*_DELIVERY, *AS_OF, *(s for s in DELIVERY if s.always))
"""The daily supervision run, every step in order."""

check_graph(DAILY)


# ---- the model retrain --------------------------------------------------------------------

SCHEDULE_OPTIONS = ("horizon_days", "n_folds", "fold_step_months", "train_step_months",
                    "warmup_months")  # fmt: skip
GATE_OPTIONS = ("margin", "tolerance", "fairness_bound")


def training_schedule(run: Run) -> Any:
    """The backtest folds and final training dates laid on silver's inspection span: the model
    policy's schedule fitted to the span, unless the run's options set every one of
    :data:`SCHEDULE_OPTIONS` (a schedule of their own)."""
    from models.train import data_span, make_schedule, schedule_for_span

    own = {k: int(run.options[k]) for k in SCHEDULE_OPTIONS if run.options.get(k) is not None}
    if own and len(own) < len(SCHEDULE_OPTIONS):
        raise ValueError(f"set all of {SCHEDULE_OPTIONS} or none (the model policy's schedule)")
    first, last = data_span(run.spark, run.settings)
    sched = make_schedule(first, last, **own) if own else schedule_for_span(first, last)
    return {**sched.to_json(), "data_span": [first.isoformat(), last.isoformat()]}


def training_features(run: Run) -> Any:
    """Build the gold feature partitions the schedule needs and that do not exist yet."""
    from models.retrain import ensure_features
    from models.train import Schedule

    dates = Schedule.from_json(run.results["training_schedule"]).all_dates()
    ensure_features(run.spark, dates, run.settings)
    return [d.isoformat() for d in dates]


def backtest_train_and_gate(run: Run) -> Any:
    """Backtest the challenger, fit, register, run the promotion gate (its decision recorded
    in audit.model_decisions); returns the decision. Options: ``seed``, ``truth_dir``
    (simulator truth, for the oracle baseline) and the gate's :data:`GATE_OPTIONS`."""
    from models.registry import PromotionPolicy
    from models.retrain import train_and_register
    from models.train import SEED, Schedule

    truth = run.options.get("truth_dir") or None
    decision = train_and_register(
        run.spark,
        run.settings,
        seed=int(run.options.get("seed") or SEED),
        truth_dir=str(truth) if truth and Path(truth).exists() else None,
        schedule=Schedule.from_json(run.results["training_schedule"]),
        policy=PromotionPolicy.from_policy(**{k: run.options.get(k) for k in GATE_OPTIONS}),
        say=run.say,
    )
    return {
        "challenger": decision.challenger,
        "champion_before": decision.champion_before,
        "promoted": bool(decision.promoted),
        "reasons": list(decision.reasons),
    }


def record_decision(run: Run) -> Any:
    """The gate's decision row of the challenger as stored in audit.model_decisions (an error
    if none is), and the champion after it."""
    from pyspark.sql import functions as F

    from models import registry
    from warehouse import tables

    challenger = run.results["backtest_train_and_gate"]["challenger"]
    rows = (
        tables.read(run.spark, tables.MODEL_DECISIONS, run.settings)
        .where(F.col("challenger") == challenger)
        .collect()
    )
    if not rows:
        raise RuntimeError(f"no decision recorded in audit.model_decisions for {challenger}")
    return {
        "challenger": challenger,
        "promoted": bool(rows[-1]["promoted"]),
        "champion": registry.champion(run.spark, run.settings),
    }


def rescore_with_champion(run: Run) -> Any:
    """Re-score with the new champion when the gate promoted the challenger (else skipped): the
    as-of date of option ``as_of``, else the month after the data span."""
    from models.demo import next_month
    from models.score import score as score_all
    from models.train import data_span

    if not run.results["record_decision"]["promoted"]:
        return {"skipped": "the challenger was not promoted; the champion's scores stand"}
    wanted = run.options.get("as_of")
    as_of = (
        date.fromisoformat(wanted) if wanted else next_month(data_span(run.spark, run.settings)[1])
    )
    return score_all(run.spark, as_of, run.settings)


RETRAIN: tuple[Step, ...] = (
    Step("training_schedule", training_schedule, "training schedule", key="",
         reads=("silver.fct_inspection",), writes_lake=False),
    Step("training_features", training_features, "training features",
         after=("training_schedule",), uses=("training_schedule",), key="",
         reads=("silver",), writes=("gold.enterprise_features",)),
    Step("backtest_train_and_gate", backtest_train_and_gate,
         "backtests, final fit, registration, promotion gate",
         after=("training_schedule", "training_features"), uses=("training_schedule",), key="",
         reads=("gold.enterprise_features", "silver"),
         writes=("models", "audit.model_registry", "audit.model_decisions")),
    Step("record_decision", record_decision, "the decision as stored",
         after=("backtest_train_and_gate",), uses=("backtest_train_and_gate",), key="",
         reads=("audit.model_decisions", "audit.model_registry"), writes_lake=False),
    Step("rescore_with_champion", rescore_with_champion, "re-scoring with the champion",
         after=("record_decision",), uses=("record_decision",), key="",
         reads=("gold.enterprise_features", "audit.model_registry"), writes=("gold.risk_scores",)),
)  # fmt: skip
"""The model retrain: the steps of the monthly ``model_retrain`` DAG and ``risk-insight train``."""

check_graph(RETRAIN)

GRAPHS: dict[str, tuple[Step, ...]] = {"supervision_daily": DAILY, "model_retrain": RETRAIN}
"""Each graph by the name of the DAG made from it."""


def step(name: str, graph: str = "supervision_daily") -> Step:
    """The step called ``name`` of the graph ``graph`` (:data:`GRAPHS`; ``KeyError`` if none)."""
    for s in GRAPHS[graph]:
        if s.name == name:
            return s
    raise KeyError(name)
