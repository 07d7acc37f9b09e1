"""The daily run graph, declared once: the delivery (``pipelines.steps.DELIVERY``), then
features → score → gold gate → tiers/plans/lists/warnings → the gold gate again over them →
serving marts → BI refresh, and the Data Docs at the end whatever happened.

``dags/supervision_daily.py`` makes one task of each step (task id = step name, dependencies
from ``after``); ``run_day`` runs :data:`pipelines.steps.DELIVERY` and ``risk-insight demo``
runs :data:`AS_OF` with the same runner (:func:`pipelines.steps.run_steps`). Nothing heavy is
imported here at module level, so parsing the DAG files stays cheap.
"""

from __future__ import annotations

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
    return score_all(run.spark, run.as_of, run.settings, run.model_version)


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


def step(name: str) -> Step:
    """The daily graph's step called ``name`` (``KeyError`` if none)."""
    for s in DAILY:
        if s.name == name:
            return s
    raise KeyError(name)
