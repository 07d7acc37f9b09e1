"""Model registry under the lake and the champion/challenger promotion gate.

A model lives in ``<lake_root>/models/<version>/``: ``booster.txt``, ``features.json``
(features, category vocabulary, monotone directions, calibration), ``params.json``,
``inputs.json`` (Delta versions of the training inputs), ``metrics.json``, ``report.md``,
``lift.png`` and ``card.md``. ``audit.model_registry`` has one row per model and
``audit.model_decisions`` one row per gate decision; the champion is the challenger of the
latest promoted decision. Artifacts go through :mod:`warehouse.storage`, so the lake may be
on a local disk or in object storage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import lightgbm as lgb
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from models.evaluate import HEADLINE, backtest_table, report_files
from models.train import Model, model_version
from pipelines.features.build import delta_version, input_versions
from warehouse import storage, tables
from warehouse.settings import Settings

GAP_KEYS = (
    "fairness.region_code.hit_rate_gap",
    "fairness.region_code.fpr_gap",
    "fairness.size_band.hit_rate_gap",
    "fairness.size_band.fpr_gap",
)


@dataclass(frozen=True)
class PromotionPolicy:
    """A challenger must beat the champion's mean precision at the C+D budget (random-draw
    population) by ``margin`` and may widen no fairness gap by more than ``fairness_bound``."""

    margin: float = 0.005
    fairness_bound: float = 0.05
    metric: str = f"{HEADLINE}.model.precision_at_k"


@dataclass
class Decision:
    """The gate's verdict, its reasons and the numbers it compared."""

    challenger: str
    champion_before: str | None
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)


def model_dir(settings: Settings, version: str) -> str:
    """Where a model's artifacts live: ``<lake_root>/models/<version>``."""
    return storage.join(settings.lake_root, "models", version)


def read_artifact(settings: Settings, version: str, name: str) -> str:
    """The text of one artifact of a registered model (e.g. ``metrics.json``)."""
    return storage.read_text(storage.join(model_dir(settings, version), name))


def _write_artifact(settings: Settings, version: str, name: str, data: str | bytes) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    storage.write_bytes(storage.join(model_dir(settings, version), name), raw)


def model_card(version: str, model: Model, metrics: dict[str, Any], inputs: dict) -> str:
    """The Markdown model card: purpose, data, recipe, results, limits."""
    s = metrics["summary"]
    table = backtest_table(metrics)
    rows = "\n".join(
        f"| {r['fold (as-of)']} | {r['model']:.3f} | {r['rules']:.3f} | {r['random']:.3f} | "
        f"{r['oracle']:.3f} | {r['lift']:.2f} | {r['model/oracle']:.2f} |"
        for _, r in table.iterrows()
    )
    sched = metrics.get("schedule", {})
    return f"""# Model card: {version}

**Purpose.** Rank active enterprises by the probability that an inspection within
{sched.get("horizon_days", 365)} days finds a problem (or a penalty is decided), to fill the
C+D tiers (top 20 %) of credit-based supervision. It does not decide tiers or lists.

**Data.** gold.enterprise_features (point-in-time, {len(model.features)} features), labels from
silver inspections and penalties. Training rows: {
        "enterprises inspected in the label window"
        if model.params.get("train_only_inspected")
        else "every active enterprise (uninspected and "
        "unpenalised ones count as 0; judged on random-draw inspections to check the bias)"
    }.
Inputs (Delta versions):
`{json.dumps(inputs, sort_keys=True)}`.

**Recipe.** LightGBM binary, {model.params.get("num_rounds")} rounds, seed
{model.params.get("seed")}, monotone constraints (+1) on
{", ".join(f for f, d in model.spec()["monotone"].items() if d > 0)}. Platt calibration on a
later as-of date. Final model: train {sched.get("final", {}).get("train", ["?"])[0]} …
{sched.get("final", {}).get("train", ["?"])[-1]}, calibration
{sched.get("final", {}).get("calibration", "?")}.

**Backtests** (random-draw inspections, precision at k = 20 %):

| fold | model | rules | random | oracle | lift | model/oracle |
|---|---|---|---|---|---|---|
{rows}

Brier (inspected): {s["brier"]:.4f}. Fairness gaps (mean over folds): region hit rate
{s["fairness.region_code.hit_rate_gap"]:.3f}, region FPR {s["fairness.region_code.fpr_gap"]:.3f},
size hit rate {s["fairness.size_band.hit_rate_gap"]:.3f}, size FPR
{s["fairness.size_band.fpr_gap"]:.3f}.

**Limits.** Trained on past inspections, which were partly targeted (complaints, lists): the
model learns risk as those inspections saw it. Region is an input; its gaps are audited above.
Scores are calibrated on inspected enterprises, i.e. "if inspected, probability of a finding".
"""


def register(
    spark: SparkSession, settings: Settings, model: Model, metrics: dict[str, Any], seed: int
) -> str:
    """Store the model's artifacts and its registry row; returns the new version."""
    now = datetime.now().replace(microsecond=0)
    version = model_version(model, now)
    spec = model.spec()
    params = {k: v for k, v in model.params.items() if k != "monotone_constraints"}
    inputs = dict(input_versions(spark, settings))
    inputs[tables.ENTERPRISE_FEATURES.qualified] = delta_version(
        spark, tables.ENTERPRISE_FEATURES, settings
    )
    files: dict[str, str | bytes] = {
        "booster.txt": model.booster.model_to_string(),
        "features.json": json.dumps(spec, indent=1, ensure_ascii=False),
        "params.json": json.dumps(params, indent=1, default=str),
        "inputs.json": json.dumps(inputs, indent=1, sort_keys=True),
        **report_files(metrics, f"Backtest report: {version}"),
        "card.md": model_card(version, model, metrics, inputs),
    }
    for name, data in files.items():
        _write_artifact(settings, version, name, data)
    row = [
        (
            version,
            now,
            model_dir(settings, version),
            json.dumps(params, default=str),
            json.dumps(spec, ensure_ascii=False),
            json.dumps(inputs, sort_keys=True),
            json.dumps(metrics["summary"]),
            seed,
        )
    ]
    tables.ensure(spark, tables.MODEL_REGISTRY, settings)
    spark.createDataFrame(row, tables.MODEL_REGISTRY.schema).write.format("delta").mode(
        "append"
    ).save(tables.MODEL_REGISTRY.path(settings))
    return version


def champion(spark: SparkSession, settings: Settings) -> str | None:
    """The current champion's version, or None before any promotion."""
    r = (
        tables.read(spark, tables.MODEL_DECISIONS, settings)
        .where("promoted")
        .orderBy(F.desc("decided_at"), F.desc("challenger"))
        .select("challenger")
        .first()
    )
    return r[0] if r else None


def load(settings: Settings, version: str) -> Model:
    """A registered model, ready to predict."""
    spec = json.loads(read_artifact(settings, version, "features.json"))
    params = json.loads(read_artifact(settings, version, "params.json"))
    booster = lgb.Booster(model_str=read_artifact(settings, version, "booster.txt"))
    return Model(booster, spec["features"], spec["vocab"], tuple(spec["calibration"]), params)


def gate(
    challenger: dict[str, Any],
    champion_metrics: dict[str, Any] | None,
    policy: PromotionPolicy | None = None,
) -> tuple[bool, list[str]]:
    """Promote or not, and why, from the two backtest summaries (same folds, same data).

    Without a champion the challenger must beat the random draw on every fold and the rules
    baseline on the mean over folds (a fold of a small world can tie on a few dozen draws).
    """
    p = policy or PromotionPolicy()
    if champion_metrics is None:
        pop = p.metric.split(".")[0]
        model = challenger[p.metric]
        rules = challenger[f"{pop}.rules.precision_at_k"]
        ok = bool(challenger.get("beats_random_every_fold")) and model > rules
        return ok, [
            f"no champion yet; challenger {'beats' if ok else 'does not beat'} the baselines "
            f"(random on every fold: {challenger.get('beats_random_every_fold')}; mean "
            f"precision at k {model:.4f} vs rules {rules:.4f}; rules on every fold: "
            f"{challenger.get('beats_baselines_every_fold')})"
        ]
    reasons, ok = [], True
    new, old = challenger[p.metric], champion_metrics[p.metric]
    if not (new >= old + p.margin):
        ok = False
        reasons.append(f"{p.metric} {new:.4f} does not beat champion {old:.4f} by {p.margin}")
    else:
        reasons.append(f"{p.metric} {new:.4f} beats champion {old:.4f} by >= {p.margin}")
    for key in GAP_KEYS:
        a, b = challenger.get(key, 0.0), champion_metrics.get(key, 0.0)
        if any(isinstance(v, float) and math.isnan(v) for v in (a, b)):
            continue
        if a > b + p.fairness_bound:
            ok = False
            reasons.append(f"{key} widens {b:.3f} -> {a:.3f} (bound {p.fairness_bound})")
    if ok:
        reasons.append(f"no fairness gap widens by more than {p.fairness_bound}")
    return ok, reasons


def promote(
    spark: SparkSession,
    settings: Settings,
    version: str,
    metrics: dict[str, Any],
    champion_backtest: Callable[[dict[str, Any]], dict[str, Any]],
    policy: PromotionPolicy | None = None,
) -> Decision:
    """Run the gate for ``version`` against the champion (its recipe re-backtested on the same
    folds and data) and record the decision in audit.model_decisions."""
    current = champion(spark, settings)
    champ_summary = None
    if current is not None:
        spec = json.loads(read_artifact(settings, current, "features.json"))
        spec["params"] = json.loads(read_artifact(settings, current, "params.json"))
        champ_summary = champion_backtest(spec)["summary"]
    ok, reasons = gate(metrics["summary"], champ_summary, policy)
    decision = Decision(
        challenger=version,
        champion_before=current,
        promoted=ok,
        reasons=reasons,
        comparison={"challenger": metrics["summary"], "champion": champ_summary},
    )
    record(spark, settings, decision)
    return decision


def record(spark: SparkSession, settings: Settings, decision: Decision) -> None:
    """Append a decision to audit.model_decisions and beside the challenger's artifacts."""
    row = [
        (
            datetime.now(),
            decision.challenger,
            decision.champion_before,
            decision.promoted,
            "; ".join(decision.reasons),
            json.dumps(decision.comparison, default=str),
        )
    ]
    tables.ensure(spark, tables.MODEL_DECISIONS, settings)
    spark.createDataFrame(row, tables.MODEL_DECISIONS.schema).write.format("delta").mode(
        "append"
    ).save(tables.MODEL_DECISIONS.path(settings))
    _write_artifact(
        settings,
        decision.challenger,
        "decision.json",
        json.dumps(asdict(decision), indent=1, default=str),
    )
