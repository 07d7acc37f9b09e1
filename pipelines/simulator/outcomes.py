"""Outcomes of a drawn inspection plan on a synthetic world (the inspectors' side, simulated).

Each planned inspection takes place on a day within ``window_days`` after the plan's as-of
date and finds a problem with the enterprise's true monthly finding probability
(``truth/true_risk.parquet``: the latest month at or before the inspection), as the simulator's
own inspections do. Deterministic in (seed, plan_id, uscc).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

RESULT_FOUND = "发现问题"
RESULT_CLEAN = "未发现问题"


def _month(d: date) -> date:
    return date(d.year, d.month, 1)


def true_probability(truth_dir: str | Path, uscc: pd.Series, on: pd.Series) -> np.ndarray:
    """The true finding probability of each enterprise at its date (latest month <= date;
    NaN where the truth has none)."""
    truth = pd.read_parquet(
        Path(truth_dir) / "true_risk.parquet", columns=["uscc", "month", "true_p"]
    )
    truth = truth[truth["uscc"].isin(set(uscc))]
    truth["month"] = pd.to_datetime(truth["month"])
    want = pd.DataFrame({"uscc": uscc.to_numpy(), "month": pd.to_datetime(on.map(_month))})
    want["_i"] = np.arange(len(want))
    merged = pd.merge_asof(
        want.sort_values("month"), truth.sort_values("month"), on="month", by="uscc"
    )
    return merged.sort_values("_i")["true_p"].to_numpy()


def simulate_outcomes(
    plan: pd.DataFrame, truth_dir: str | Path, seed: int = 0, window_days: int = 60
) -> pd.DataFrame:
    """One inspection per plan row (columns ``as_of, plan_id, uscc, region_code, tier,
    inspector_id``): adds ``inspected_on``, ``true_p``, ``found``, ``result``."""
    out = plan.sort_values(["plan_id", "uscc"], kind="stable").reset_index(drop=True).copy()
    if out.empty:
        return out.assign(inspected_on=[], true_p=[], found=[], result=[])
    rngs = [
        np.random.default_rng([seed, *(ord(c) for c in f"{p}|{u}")])
        for p, u in zip(out["plan_id"], out["uscc"], strict=True)
    ]
    draws = np.array([(r.integers(1, window_days + 1), r.random()) for r in rngs])
    out["inspected_on"] = [
        d + timedelta(days=int(k)) for d, k in zip(out["as_of"], draws[:, 0], strict=True)
    ]
    out["true_p"] = true_probability(truth_dir, out["uscc"], out["inspected_on"])
    out["found"] = draws[:, 1] < np.nan_to_num(out["true_p"].to_numpy(), nan=0.0)
    out["result"] = np.where(out["found"], RESULT_FOUND, RESULT_CLEAN)
    return out
