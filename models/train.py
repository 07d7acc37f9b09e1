"""LightGBM risk model: temporal backtests, Platt calibration on a later window, registration.

Schedule (H = horizon). For a backtest fold with test as-of T: the model is calibrated on the
as-of date T - H (its label window closes at T, so it is known at T) and trained on quarterly
as-of dates before that. Training rows are all active enterprises (see
:mod:`pipelines.features.labels` for how the uninspected are treated, and why). The
registered model follows the same recipe with the latest labelled as-of date as calibration
window.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sklearn.linear_model import LogisticRegression

from models.dataset import encode, oracle_probabilities, vocabulary
from models.evaluate import evaluate_fold, summarise
from models.inspectors import inspector_effects, row_effects
from pipelines.features.build import month_starts
from warehouse import contracts, tables
from warehouse.contracts.features import FEATURE_NAMES, Feature
from warehouse.contracts.model_policy import HORIZON_DAYS, ModelPolicy, load_model_policy
from warehouse.settings import Settings

SEED = 42
INSPECTOR_PASSES = 2  # backfitting rounds of inspector effects (models/inspectors.py)
NUM_ROUNDS = 300
# Train on every active enterprise (uninspected and unpenalised = 0), not only the inspected:
# on random-draw inspections it ranked better (5,000-enterprise world, 3 folds: precision at
# k 0.296 vs 0.274; also on inspected and all), from ten times the rows. See labels.py.
TRAIN_ON_INSPECTED_ONLY = False
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "cat_smooth": 20.0,
    "min_data_per_group": 50,
    "monotone_constraints_method": "intermediate",
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}


@dataclass(frozen=True)
class Schedule:
    """As-of dates of the backtest folds and of the final model."""

    folds: dict[date, tuple[list[date], date]]  # test T -> (train dates, calibration date)
    final: tuple[list[date], date]  # (train dates, calibration date) of the registered model
    horizon_days: int = HORIZON_DAYS  # the label window the folds were laid out for

    def all_dates(self) -> list[date]:
        out = set(self.final[0]) | {self.final[1]}
        for test, (train, calib) in self.folds.items():
            out |= set(train) | {calib, test}
        return sorted(out)

    def to_json(self) -> dict[str, Any]:
        """The schedule as JSON-able data (dates in ISO form): the model card's ``schedule``,
        and what a retrain's steps hand on to each other."""
        return {
            "folds": {
                t.isoformat(): {"train": [d.isoformat() for d in tr], "calibration": c.isoformat()}
                for t, (tr, c) in self.folds.items()
            },
            "final": {
                "train": [d.isoformat() for d in self.final[0]],
                "calibration": self.final[1].isoformat(),
            },
            "horizon_days": self.horizon_days,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        """The schedule :meth:`to_json` wrote."""
        d = date.fromisoformat
        return cls(
            folds={
                d(t): ([d(x) for x in f["train"]], d(f["calibration"]))
                for t, f in data["folds"].items()
            },
            final=([d(x) for x in data["final"]["train"]], d(data["final"]["calibration"])),
            horizon_days=int(data["horizon_days"]),
        )


def _add_months(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


def make_schedule(
    first_event: date,
    last_event: date,
    horizon_days: int = HORIZON_DAYS,
    n_folds: int = 3,
    fold_step_months: int = 6,
    train_step_months: int = 3,
    warmup_months: int = 6,
) -> Schedule:
    """Folds ending at the last as-of date whose label window closes 60 days before the data
    ends (late reports), every ``fold_step_months`` back; training dates every quarter from
    ``warmup_months`` after the first record (features need some history)."""
    h = math.ceil(horizon_days / 30.4375)
    last = date.fromordinal(last_event.toordinal() - horizon_days - 60)
    last_test = _add_months(date(last.year, last.month, 1), 0)
    start = _add_months(date(first_event.year, first_event.month, 1), warmup_months)

    def recipe(calib: date) -> tuple[list[date], date]:
        train = [d for d in month_starts(start, _add_months(calib, -1), train_step_months)]
        return train, calib

    folds = {}
    for i in reversed(range(n_folds)):
        test = _add_months(last_test, -i * fold_step_months)
        train, calib = recipe(_add_months(test, -h))
        if len(train) < 2:
            raise ValueError(f"not enough history before fold {test}: {train}")
        folds[test] = (train, calib)
    return Schedule(folds=folds, final=recipe(last_test), horizon_days=horizon_days)


def schedule_for_span(
    first_event: date, last_event: date, policy: ModelPolicy | None = None
) -> Schedule:
    """The model policy's schedule on this data span, with as many folds as the span allows
    (down to ``min_folds``); its ``short_history`` schedule (shorter horizon) when even that
    does not fit. ValueError if nothing fits."""
    pol = policy or load_model_policy()
    sched, short = pol.schedule, pol.short_history
    steps = sched.model_dump(exclude={"n_folds", "min_folds"})
    for n in range(sched.n_folds, sched.min_folds - 1, -1):
        try:
            return make_schedule(first_event, last_event, pol.horizon_days, n_folds=n, **steps)
        except ValueError:
            continue
    return make_schedule(
        first_event,
        last_event,
        short.horizon_days,
        **short.model_dump(exclude={"horizon_days", "min_folds"}),
    )


def data_span(spark: SparkSession, settings: Settings) -> tuple[date, date]:
    """(first, last) inspection date in silver: the span the schedule is laid on."""
    r = (
        tables.read(spark, tables.FCT_INSPECTION, settings)
        .agg(F.min("inspected_on"), F.max("inspected_on"))
        .first()
    )
    if r[0] is None:
        raise ValueError("no inspections in silver: nothing to train on")
    return r[0], r[1]


@dataclass
class Model:
    """A fitted booster with what scoring needs: features, vocabulary and calibration."""

    booster: lgb.Booster
    features: list[str]
    vocab: dict[str, list[str]]
    calibration: tuple[float, float]  # p = sigmoid(a * raw_logit + b)
    params: dict[str, Any] = field(default_factory=dict)
    # θ per inspector id taken out of the labels (models/inspectors.py); {} when not adjusted
    inspector_effects: dict[str, float] = field(default_factory=dict)

    def raw(self, df: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(encode(df, self.vocab, self.features), raw_score=True)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of a finding within the horizon."""
        return calibrate(self.raw(df), self.calibration)

    def spec(self) -> dict[str, Any]:
        """What features.json stores: enough to rebuild the scorer with the booster file."""
        return {
            "features": self.features,
            "categorical": [f for f in self.features if f in self.vocab],
            "vocab": self.vocab,
            "monotone": dict(
                zip(self.features, self.params.get("monotone_constraints", []), strict=False)
            ),
            "calibration": list(self.calibration),
            # who inspected, taken out of the labels (never used in scoring)
            "inspector_effects": self.inspector_effects,
        }


def calibrate(raw: np.ndarray, ab: tuple[float, float]) -> np.ndarray:
    """Platt scaling of raw log-odds: strictly increasing, so ranks are kept."""
    return 1.0 / (1.0 + np.exp(-(ab[0] * raw + ab[1])))


def fit(
    train: pd.DataFrame,
    calib: pd.DataFrame,
    params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    num_rounds: int = NUM_ROUNDS,
    seed: int = SEED,
    inspector_prior: float | None = None,
    catalogue: dict[str, Feature] | None = None,
) -> Model:
    """Fit LightGBM on ``train`` with monotone constraints, then Platt-calibrate on ``calib``.

    ``catalogue`` (default: the one in force, :func:`warehouse.contracts.catalogue`) gives
    each feature's direction and kind; ``features`` default to all of it, the built-in ones
    and the declared attributes'. With ``inspector_prior`` (k of :mod:`models.inspectors`)
    and rows that name their inspectors, the inspectors' effects are estimated by backfitting
    (fit, effects of the residual, refit from them as offsets; ``INSPECTOR_PASSES`` times)
    and the booster learns the risk net of who inspected (``Model.inspector_effects``;
    scoring ignores them). Same data, parameters and seed give the same booster
    (deterministic, fixed thread count).
    """
    cat = catalogue if catalogue is not None else contracts.catalogue()
    feats = list(features or [*FEATURE_NAMES, *(f for f in cat if f not in FEATURE_NAMES)])
    vocab = vocabulary(train, [f for f in feats if f in cat and cat[f].categorical])
    p = {**PARAMS, **(params or {}), "seed": seed}
    # a registered recipe carries its prior among its params (the champion's re-backtest)
    inspector_prior = p.pop("inspector_prior", inspector_prior)
    p["monotone_constraints"] = [cat[f].direction if f in cat else 0 for f in feats]
    x = encode(train, vocab, feats)
    cats = [f for f in feats if f in vocab]
    label = train["label"].to_numpy()

    def boost(offset: np.ndarray | None) -> lgb.Booster:
        ds = lgb.Dataset(x, label=label, init_score=offset, categorical_feature=cats,
                         free_raw_data=False)  # fmt: skip
        return lgb.train(p, ds, num_boost_round=num_rounds)

    booster, effects = boost(None), {}
    for _ in range(INSPECTOR_PASSES if inspector_prior is not None else 0):
        offset = row_effects(train, effects)
        expected = calibrate(booster.predict(x, raw_score=True) + offset, (1.0, 0.0))
        step = inspector_effects(train, expected, inspector_prior)
        if not step:
            break
        effects = {w: effects.get(w, 0.0) + step.get(w, 0.0) for w in {*effects, *step}}
        booster = boost(row_effects(train, effects))
    recipe = {**p, "num_rounds": num_rounds}
    if inspector_prior is not None:
        recipe["inspector_prior"] = inspector_prior
    model = Model(booster, feats, vocab, (1.0, 0.0), recipe, dict(sorted(effects.items())))
    raw = model.raw(calib).reshape(-1, 1)
    y = calib["label"].to_numpy()
    if 0 < y.sum() < len(y):
        lr = LogisticRegression(C=1e6).fit(raw, y)
        model.calibration = (float(lr.coef_[0][0]), float(lr.intercept_[0]))
    return model


def backtest(
    frames: Callable[[list[date], bool], pd.DataFrame],
    schedule: Schedule,
    params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    num_rounds: int = NUM_ROUNDS,
    seed: int = SEED,
    truth_dir: str | None = None,
    say: Callable[[str], None] = lambda _m: None,
    only_inspected: bool = TRAIN_ON_INSPECTED_ONLY,
    inspector_prior: float | None = None,
    catalogue: dict[str, Feature] | None = None,
) -> dict[str, Any]:
    """Train and judge one model per fold; ``frames(dates, only_inspected)`` gives the data
    (``catalogue``: see :func:`fit`). With ``inspector_prior`` each fold's model learns net
    of its inspectors' effects, and the fold is judged on outcomes adjusted by them (kept as
    the fold's ``inspector_effects``)."""
    folds = {}
    for test_date, (train_dates, calib_date) in schedule.folds.items():
        say(f"fold {test_date}: train on {len(train_dates)} as-of dates, calibrate {calib_date}")
        model = fit(
            frames(train_dates, only_inspected),
            frames([calib_date], True),
            params,
            features,
            num_rounds,
            seed,
            inspector_prior,
            catalogue,
        )
        test = frames([test_date], False)
        oracle = oracle_probabilities(truth_dir, test) if truth_dir else None
        effects = model.inspector_effects
        fold = evaluate_fold(test, model.predict(test), oracle, effects)
        folds[test_date.isoformat()] = {**fold, "inspector_effects": effects}
    return {"folds": folds, "summary": summarise(folds)}


def model_version(model: Model, trained_at: datetime) -> str:
    """``m<timestamp>-<hash of the booster>``: sortable and tied to the model's content."""
    digest = hashlib.sha256(model.booster.model_to_string().encode()).hexdigest()[:8]
    return f"m{trained_at:%Y%m%d%H%M%S}-{digest}"
