"""Retraining: backtest a recipe, fit the final model, register it and run the promotion gate.

Fitting and calibration live in :mod:`models.train`, the artifact and the gate in
:mod:`models.registry`; this module only wires them (and builds missing feature partitions
the schedule needs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from models import registry
from models.dataset import load_frame, oracle_probabilities
from models.evaluate import evaluate_fold, summarise
from models.train import (
    NUM_ROUNDS,
    SEED,
    TRAIN_ON_INSPECTED_ONLY,
    Schedule,
    backtest,
    data_span,
    fit,
    schedule_for_span,
)
from pipelines.features.build import build_features, read_features
from warehouse import contracts
from warehouse.contracts.features import FEATURE_NAMES
from warehouse.contracts.model_policy import HORIZON_DAYS, load_model_policy
from warehouse.settings import Settings, get_settings


def frame_source(
    spark: SparkSession, settings: Settings, horizon_days: int = HORIZON_DAYS
) -> Callable[[list[date], bool], pd.DataFrame]:
    """A cached ``frames(dates, only_inspected)`` over gold features and labels."""
    cache: dict[tuple[tuple[date, ...], bool], pd.DataFrame] = {}

    def frames(dates: list[date], only_inspected: bool) -> pd.DataFrame:
        key = (tuple(sorted(dates)), only_inspected)
        if key not in cache:
            cache[key] = load_frame(spark, dates, settings, only_inspected, horizon_days)
        return cache[key]

    return frames


# Feature families the model card shows the recipe without, when the recipe uses them: a
# bureau's declared attributes and events, and the neighbourhood rates.
COMPARED_FAMILIES = {
    "attribute": ("不含登记扩展属性", "without the registry attributes"),
    "event": ("不含其他事项（许可等）", "without the events (licences …)"),
    "neighbourhood": ("不含周边企业特征", "without the neighbourhood features"),
}


def compare_recipes(
    frames: Callable[[list[date], bool], pd.DataFrame],
    schedule: Schedule,
    metrics: dict[str, Any],
    features: list[str],
    catalogue: dict[str, Any],
    prior: float | None,
    fit_args: dict[str, Any],
    truth_dir: str | None = None,
) -> list[dict[str, Any]]:
    """The recipe (``metrics``, backtested on ``features``) beside variants on the same
    folds: inspector adjustment the other way round, and without each of
    :data:`COMPARED_FAMILIES` it uses. One row each: zh / en label, AUC, precision at the C+D
    budget on random draws as recorded and inspector-adjusted (weighted means over folds)."""

    def row(zh: str, en: str, m: dict[str, Any]) -> dict[str, Any]:
        su = m["summary"]
        return {"zh": zh, "en": en, "folds": len(m["folds"]), "auc": su["drawn.model.auc"],
                "precision": su["drawn.model.precision_at_k"],
                "adjusted": su["drawn.model.precision_at_k_adjusted"]}  # fmt: skip

    def run(feats: list[str], k: float | None) -> dict[str, Any]:
        return backtest(frames, schedule, features=feats, truth_dir=truth_dir,
                        inspector_prior=k, catalogue=catalogue, **fit_args)  # fmt: skip

    adjusted = ("按检查人员调整", "inspector-adjusted")
    recorded = ("按记录结果", "labels as recorded")
    this, other = (adjusted, recorded) if prior is not None else (recorded, adjusted)
    other_prior = None if prior is not None else load_model_policy().inspectors.prior_findings
    rows = [
        row(f"本模型配方（{this[0]}）", f"this recipe ({this[1]})", metrics),
        row(f"本模型配方（{other[0]}）", f"this recipe ({other[1]})", run(features, other_prior)),
    ]
    for family, (zh, en) in COMPARED_FAMILIES.items():
        kept = [f for f in features if registry.family_of(f) != family]
        if len(kept) < len(features):
            rows.append(row(zh, en, run(kept, prior)))
    return rows


def ensure_features(spark: SparkSession, dates: list[date], settings: Settings) -> None:
    """Build the gold feature partitions among ``dates`` that do not exist yet."""
    have = {r[0] for r in read_features(spark, None, settings).select("as_of").distinct().collect()}
    missing = [d for d in dates if d not in have]
    if missing:
        build_features(spark, missing, settings)


def train_and_register(
    spark: SparkSession,
    settings: Settings | None = None,
    params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    num_rounds: int = NUM_ROUNDS,
    seed: int = SEED,
    truth_dir: str | None = None,
    schedule: Schedule | None = None,
    policy: Any = None,
    say: Callable[[str], None] = lambda _m: None,
    only_inspected: bool = TRAIN_ON_INSPECTED_ONLY,
):
    """Backtest the recipe, fit the final model, store it under ``<lake>/models/<version>/``
    with its registry row, and run the promotion gate. Returns the gate's decision.

    ``schedule`` defaults to the model policy's schedule on silver's data span
    (:func:`schedule_for_span`); its horizon is the label horizon."""
    s = settings or get_settings()
    if schedule is None:
        schedule = schedule_for_span(*data_span(spark, s))
    horizon_days = schedule.horizon_days
    ensure_features(spark, schedule.all_dates(), s)
    frames = frame_source(spark, s, horizon_days)
    say("backtesting the challenger")
    prior = load_model_policy().inspector_prior
    catalogue = contracts.catalogue(s)  # built-in features and the declared attributes'
    metrics = backtest(
        frames, schedule, params, features, num_rounds, seed, truth_dir, say, only_inspected,
        prior, catalogue,
    )  # fmt: skip
    if load_model_policy().compare_recipes:
        say("backtesting the variants the model card compares")
        used = features or [*FEATURE_NAMES, *(f for f in catalogue if f not in FEATURE_NAMES)]
        fit_args = {"params": params, "num_rounds": num_rounds, "seed": seed,
                    "only_inspected": only_inspected}  # fmt: skip
        metrics["comparison"] = compare_recipes(
            frames, schedule, metrics, used, catalogue, prior, fit_args, truth_dir
        )
    train_dates, calib_date = schedule.final
    say(f"final model: train on {len(train_dates)} as-of dates, calibrate {calib_date}")
    model = fit(
        frames(train_dates, only_inspected),
        frames([calib_date], True),
        params,
        features,
        num_rounds,
        seed,
        prior,
        catalogue,
    )
    model.params["train_only_inspected"] = only_inspected
    metrics["schedule"] = schedule.to_json()
    version = registry.register(spark, s, model, metrics, seed)
    say(f"registered {version}")

    def champion_backtest(spec: dict[str, Any]) -> dict[str, Any]:
        p = spec["params"]
        return backtest(
            frames,
            schedule,
            p,
            spec["features"],
            int(p.get("num_rounds", NUM_ROUNDS)),
            int(p.get("seed", SEED)),
            truth_dir,
            say,
            bool(p.get("train_only_inspected", TRAIN_ON_INSPECTED_ONLY)),
            p.get("inspector_prior"),
            catalogue,
        )

    return registry.promote(
        spark,
        s,
        version,
        metrics,
        champion_backtest,
        policy or registry.PromotionPolicy.from_policy(),
        deployed_evaluator(s, frames, truth_dir, fold_effects(metrics)),
    )


def fold_effects(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The inspector effects each fold of a backtest was judged with (test as-of → θ per
    inspector): a deployed champion is judged on the same adjusted outcomes."""
    return {t: f.get("inspector_effects") or {} for t, f in metrics["folds"].items()}


def deployed_evaluator(
    settings: Settings,
    frames: Callable[[list[date], bool], pd.DataFrame],
    truth_dir: str | None = None,
    effects: dict[str, dict[str, float]] | None = None,
) -> Callable[[str, list[str]], dict[str, Any]]:
    """``evaluate(version, fold_dates)``: a registered model *as deployed* (its frozen booster
    and calibration from its artifacts) judged on the test frames of those folds, with the
    same metrics as a backtest fold (outcomes adjusted by ``effects[fold]`` when given)."""

    def evaluate(version: str, fold_dates: list[str]) -> dict[str, Any]:
        deployed = registry.load(settings, version)
        folds = {}
        for t in fold_dates:
            test = frames([date.fromisoformat(t)], False)
            oracle = oracle_probabilities(truth_dir, test) if truth_dir else None
            folds[t] = evaluate_fold(test, deployed.predict(test), oracle, (effects or {}).get(t))
        return {"folds": folds, "summary": summarise(folds)}

    return evaluate
