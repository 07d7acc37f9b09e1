"""Model registry under the lake and the champion/challenger promotion gate.

A model lives in ``<lake_root>/models/<version>/``: ``booster.txt``, ``features.json``
(features, category vocabulary, monotone directions, calibration), ``params.json``,
``inputs.json`` (Delta versions of the training inputs), ``metrics.json``, ``report.md``,
``lift.png`` and ``card.md``. ``audit.model_registry`` has one row per model and
``audit.model_decisions`` one row per gate decision; the champion is the challenger of the
latest promoted decision. Artifacts go through :mod:`warehouse.storage`, so the lake may be
on a local disk or in object storage.

The gate (``warehouse/contracts/model_policy.yaml``, promotion). A challenger of the champion's
recipe (the same features and parameters: a scheduled retrain on newer data) is compared with
the champion *as deployed* — its frozen booster and calibration, loaded from its artifacts — on
the newest labelled folds the champion did not train on (test as-of after its last training and
calibration date); the challenger's figures on those folds are its backtest's (its recipe
trained only on data before each fold). It is promoted when it is not worse than the champion
by more than ``tolerance`` (weighted precision at the C+D budget on random draws) and no
fairness gap widens by more than ``fairness_bound``; with no such fold there is nothing new to
judge on and the champion stays. A challenger of another recipe must beat the champion's recipe
re-backtested on the same folds and data by ``margin``, under the same fairness bound.
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

from models.evaluate import BUDGET_SHARE, HEADLINE, backtest_table, report_files
from models.train import Model, model_version
from pipelines.features.build import delta_version, input_versions
from warehouse import storage, tables
from warehouse.audit import champion
from warehouse.contracts import ATTRIBUTE_PREFIX, EVENT_PREFIX
from warehouse.contracts.features import BY_NAME
from warehouse.contracts.model_policy import HORIZON_DAYS
from warehouse.settings import Settings

GAP_KEYS = (
    "fairness.region_code.hit_rate_gap",
    "fairness.region_code.fpr_gap",
    "fairness.size_band.hit_rate_gap",
    "fairness.size_band.fpr_gap",
)


@dataclass(frozen=True)
class PromotionPolicy:
    """Another recipe must beat the champion's recipe (mean weighted precision at the C+D
    budget on random draws) by ``margin``; a same-recipe refresh may be at most ``tolerance``
    worse than the deployed champion on the newest folds; neither may widen a fairness gap by
    more than ``fairness_bound``."""

    margin: float = 0.005
    fairness_bound: float = 0.05
    tolerance: float = 0.01
    metric: str = f"{HEADLINE}.model.precision_at_k"

    @classmethod
    def from_policy(cls, **overrides: float | None) -> PromotionPolicy:
        """The promotion section of the model policy, with explicit ``overrides``
        (None: the policy's value); judged on inspector-adjusted outcomes when the policy
        adjusts for inspectors."""
        from warehouse.contracts.model_policy import load_model_policy

        policy = load_model_policy()
        p = policy.promotion
        metric = f"{HEADLINE}.model.precision_at_k" + (
            "_adjusted" if policy.inspectors.adjust else ""
        )
        values = {"margin": p.margin, "fairness_bound": p.fairness_bound, "tolerance": p.tolerance,
                  "metric": metric}  # fmt: skip
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


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
    horizon = sched.get("horizon_days", HORIZON_DAYS)
    return f"""# Model card: {version}

**Purpose.** Rank active enterprises by the probability that an inspection within
{horizon} days finds a problem (or a penalty is decided), to fill the
C+D tiers (top {BUDGET_SHARE:.0%}) of credit-based supervision. It does not decide tiers or lists.

**Data.** gold.enterprise_features (point-in-time, {len(model.features)} features:
{_families_note(model)}), labels from silver inspections and penalties. Training rows: {
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
{sched.get("final", {}).get("calibration", "?")}. {_inspectors_note(model, s)}

**Backtests** (random-draw inspections, precision at k = 20 % of the population they stand
for; each draw weighted by 1 / its stratum's inclusion probability, recorded in
gold.inspection_plan through its plan id — {_weights_note(metrics)}):

| fold | model | rules | random | oracle | lift | model/oracle |
|---|---|---|---|---|---|---|
{rows}

{_comparison_table(metrics)}Brier (random draws, weighted): {s["brier"]:.4f}; on all inspected
(unweighted): {s.get("brier_inspected", float("nan")):.4f}. Fairness gaps on random draws,
weighted (mean over folds): region hit rate
{s["fairness.region_code.hit_rate_gap"]:.3f}, region FPR {s["fairness.region_code.fpr_gap"]:.3f},
size hit rate {s["fairness.size_band.hit_rate_gap"]:.3f}, size FPR
{s["fairness.size_band.fpr_gap"]:.3f}.

**Limits.** Trained on past inspections, which were partly targeted (complaints, lists): the
model learns risk as those inspections saw it. Region is an input; its gaps are audited above.
Scores are calibrated on inspected enterprises, i.e. "if inspected, probability of a finding".
Random draws without a recorded plan ratio (historical draws, other systems' plans) count with
weight 1: they were drawn uniformly, so within them the figures are unbiased, but beside
tier-stratified plan draws (weights 2 to 50) they are under-weighted relative to the
population they stand for. Inspections reported as unreachable (无法联系) or not inspected
(未检查) are no observation and are left out of labels and judging.
"""


def _comparison_table(metrics: dict[str, Any]) -> str:
    """The recipe beside its variants on the same folds (models.retrain.compare_recipes)."""
    rows = metrics.get("comparison")
    if not rows:
        return ""
    body = "\n".join(
        f"| {r['zh']} / {r['en']} | {r['folds']} | {r['auc']:.3f} | {r['precision']:.3f} | "
        f"{r['adjusted']:.3f} |"
        for r in rows
    )
    return f"""**配方对比 / The recipe beside its variants** (same folds and random draws, weighted
means over folds; precision at the C+D budget on outcomes as recorded and adjusted for the
inspector who recorded them):

| 配方 / recipe | folds | AUC | precision at budget | adjusted |
|---|---:|---:|---:|---:|
{body}

"""


def family_of(feature: str) -> str:
    """The catalogue family of a model feature (``attribute`` for a mapping's ``attr_*``,
    ``event`` for its ``evt_*``)."""
    if feature.startswith(ATTRIBUTE_PREFIX):
        return "attribute"
    if feature.startswith(EVENT_PREFIX):
        return "event"
    return BY_NAME[feature].family if feature in BY_NAME else "other"


def _families_note(model: Model) -> str:
    """Features per family with their share of the booster's total gain."""
    gain = model.booster.feature_importance("gain")
    total = float(gain.sum()) or 1.0
    by: dict[str, tuple[int, float]] = {}
    for name, g in zip(model.features, gain, strict=True):
        n, share = by.get(family_of(name), (0, 0.0))
        by[family_of(name)] = (n + 1, share + float(g) / total)
    return "; ".join(f"{fam} {n} ({share:.0%} of gain)" for fam, (n, share) in by.items())


def _inspectors_note(model: Model, summary: dict[str, Any]) -> str:
    """What the card says about inspector effects (models/inspectors.py)."""
    prior = model.params.get("inspector_prior")
    if prior is None:
        return "Labels are used as the inspectors recorded them (no inspector adjustment)."
    eff = model.inspector_effects
    spread = (
        f"; their effects (log scale) range {min(eff.values()):+.2f} … {max(eff.values()):+.2f}"
        if eff
        else ""
    )
    adjusted = summary.get(f"{HEADLINE}.model.precision_at_k_adjusted", float("nan"))
    return (
        f"Inspector effects (执法尺度) are learnt out of the labels by backfitting, shrunk by "
        f"{prior:g} expected findings, for {len(eff)} inspectors{spread}; scoring uses the risk "
        f"as an average inspector would find it, and inspectors are never a feature. Precision "
        f"at the budget on inspector-adjusted outcomes (what the gate judges): {adjusted:.3f}."
    )


def _weights_note(metrics: dict[str, Any]) -> str:
    """How many judged draws carried a recorded inclusion probability."""
    n = sum(f.get("weights", {}).get("drawn", 0) for f in metrics["folds"].values())
    w = sum(f.get("weights", {}).get("with_plan_ratio", 0) for f in metrics["folds"].values())
    return (
        f"{w:,} of {n:,} judged draws over the folds had a recorded ratio; the others "
        "(historical draws) count with weight 1"
    )


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
    tables.append(spark.createDataFrame(row, tables.MODEL_REGISTRY.schema), tables.MODEL_REGISTRY,
                  settings)  # fmt: skip
    return version


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
    same_recipe: bool = False,
) -> tuple[bool, list[str]]:
    """Promote or not, and why, from the two summaries (same folds, same data).

    Without a champion the challenger must beat the random draw on every fold and the rules
    baseline on the mean over folds (a fold of a small world can tie on a few dozen draws).
    ``same_recipe``: a refresh, judged against the deployed champion: not worse than it by
    more than ``tolerance``; otherwise it must beat the champion's recipe by ``margin``."""
    p = policy or PromotionPolicy()
    if champion_metrics is None:
        model = challenger[p.metric]
        rules = challenger[p.metric.replace(".model.", ".rules.")]
        ok = bool(challenger.get("beats_random_every_fold")) and model > rules
        return ok, [
            f"no champion yet; challenger {'beats' if ok else 'does not beat'} the baselines "
            f"(random on every fold: {challenger.get('beats_random_every_fold')}; mean "
            f"precision at k {model:.4f} vs rules {rules:.4f}; rules on every fold: "
            f"{challenger.get('beats_baselines_every_fold')})"
        ]
    reasons, ok = [], True
    new, old = challenger[p.metric], champion_metrics[p.metric]
    if same_recipe:
        if math.isnan(new) or math.isnan(old) or new < old - p.tolerance:
            ok = False
            reasons.append(
                f"{p.metric} {new:.4f} is worse than the deployed champion's {old:.4f} by more "
                f"than the tolerance {p.tolerance}"
            )
        else:
            reasons.append(
                f"{p.metric} {new:.4f} vs the deployed champion's {old:.4f}: not worse by more "
                f"than the tolerance {p.tolerance}"
            )
    elif not (new >= old + p.margin):
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


RECIPE_EXCLUDED = ("train_only_inspected",)  # recorded beside the params, part of the recipe


def recipe(settings: Settings, version: str) -> dict[str, Any]:
    """What makes a model's recipe: its features and training parameters (not its data)."""
    spec = json.loads(read_artifact(settings, version, "features.json"))
    params = json.loads(read_artifact(settings, version, "params.json"))
    return {"features": spec["features"], "params": params}


def trained_until(settings: Settings, version: str) -> str | None:
    """The last as-of date (ISO) a registered model was trained or calibrated on."""
    metrics = json.loads(read_artifact(settings, version, "metrics.json"))
    final = metrics.get("schedule", {}).get("final")
    if not final:
        return None
    return max([*final.get("train", []), final.get("calibration", "")])


def promote(
    spark: SparkSession,
    settings: Settings,
    version: str,
    metrics: dict[str, Any],
    champion_backtest: Callable[[dict[str, Any]], dict[str, Any]],
    policy: PromotionPolicy | None = None,
    champion_deployed: Callable[[str, list[str]], dict[str, Any]] | None = None,
) -> Decision:
    """Run the gate for ``version`` against the champion and record the decision in
    audit.model_decisions. A same-recipe challenger is compared with the champion as deployed
    (``champion_deployed(champion, fold_dates)`` scores the frozen champion on those folds) on
    the folds after the champion's training data; another recipe with the champion's recipe
    re-backtested on the same folds (``champion_backtest(spec)``)."""
    from models.evaluate import summarise

    p = policy or PromotionPolicy()
    current = champion(spark, settings)
    champ_summary, mode, folds = None, "first", []
    ok, reasons = False, []
    challenger_summary = metrics["summary"]
    if current is not None:
        same = recipe(settings, current) == recipe(settings, version)
        if same and champion_deployed is not None:
            mode = "deployed"
            until = trained_until(settings, current) or ""
            folds = sorted(t for t in metrics["folds"] if t > until)
            if not folds:
                reasons = [
                    f"no labelled fold after the champion's training data (until {until}): "
                    "nothing new to judge the refresh on; champion kept"
                ]
            else:
                deployed = champion_deployed(current, folds)
                champ_summary = deployed["summary"]
                challenger_summary = summarise({t: metrics["folds"][t] for t in folds})
                ok, reasons = gate(challenger_summary, champ_summary, p, same_recipe=True)
                reasons.insert(0, f"same recipe, newer data: judged on folds {', '.join(folds)} "
                                  f"against the deployed champion {current}")  # fmt: skip
        else:
            mode = "recipe"
            spec = json.loads(read_artifact(settings, current, "features.json"))
            spec["params"] = json.loads(read_artifact(settings, current, "params.json"))
            champ_summary = champion_backtest(spec)["summary"]
            folds = sorted(metrics["folds"])
            ok, reasons = gate(metrics["summary"], champ_summary, p)
    else:
        ok, reasons = gate(metrics["summary"], None, p)
    decision = Decision(
        challenger=version,
        champion_before=current,
        promoted=ok,
        reasons=reasons,
        comparison={
            "mode": mode,
            "folds": folds,
            "policy": asdict(p),
            "challenger": challenger_summary,
            "champion": champ_summary,
        },
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
    decided = spark.createDataFrame(row, tables.MODEL_DECISIONS.schema)
    tables.append(decided, tables.MODEL_DECISIONS, settings)
    _write_artifact(
        settings,
        decision.challenger,
        "decision.json",
        json.dumps(asdict(decision), indent=1, default=str),
    )
