"""mart_model_backtest and mart_model_calibration: every registered model's backtest folds
(模型表现: model vs rules vs random vs oracle at the C+D budget) and its reliability curve.

``is_champion`` marks the promoted champion; ``is_current`` the model behind the newest scores
(the champion, or the model an operator named for a shadow run): the one the lists come from.

The registry holds a few rows, each with its metrics as JSON, so this works in pandas."""

from __future__ import annotations

import json

import pandas as pd

from warehouse.contracts.metrics import HEADLINE

METHOD_ZH = {"model": "模型", "rules": "规则", "random": "随机", "oracle": "理想(真实风险)"}
BACKTEST_COLUMNS = [
    "model_version", "registered_at", "is_champion", "is_current", "fold_as_of", "population",
    "method", "method_zh", "n", "k", "precision_at_k", "lift", "auc", "brier",
]  # fmt: skip
CALIBRATION_COLUMNS = [
    "model_version", "is_champion", "is_current", "fold_as_of", "bin", "predicted", "observed", "n",
]  # fmt: skip


def build(
    registry: pd.DataFrame, champion: str | None, current: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(backtest rows, calibration rows) from one row per registered model (model_version,
    registered_at, metrics: the model's metrics.json text); the population is the headline
    one (random-draw inspections)."""
    backtest, calibration = [], []
    for r in registry.itertuples(index=False):
        metrics = json.loads(r.metrics)
        flags = {
            "is_champion": r.model_version == champion,
            "is_current": r.model_version == current,
        }
        for fold, f in metrics.get("folds", {}).items():
            pop = f["populations"][HEADLINE]
            for method in ("model", "rules", "random", "oracle"):
                m = pop.get(method)
                if m is None:
                    continue
                backtest.append(
                    {
                        "model_version": r.model_version,
                        "registered_at": r.registered_at,
                        **flags,
                        "fold_as_of": fold,
                        "population": HEADLINE,
                        "method": method,
                        "method_zh": METHOD_ZH[method],
                        "n": m.get("n"),
                        "k": m.get("k"),
                        "precision_at_k": m.get("precision_at_k"),
                        "lift": m.get("lift"),
                        "auc": m.get("auc"),
                        "brier": f.get("brier") if method == "model" else None,
                    }
                )
            for i, b in enumerate(f.get("reliability", []), start=1):
                calibration.append(
                    {"model_version": r.model_version, **flags, "fold_as_of": fold, "bin": i, **b}
                )  # fmt: skip
    return (
        pd.DataFrame(backtest, columns=BACKTEST_COLUMNS).astype(
            {
                "n": "Int64",
                "k": "Int64",
                "precision_at_k": float,
                "lift": float,
                "auc": float,
                "brier": float,
            }
        ),  # fmt: skip
        pd.DataFrame(calibration, columns=CALIBRATION_COLUMNS).astype(
            {"bin": "Int64", "n": "Int64", "predicted": float, "observed": float}
        ),
    )
