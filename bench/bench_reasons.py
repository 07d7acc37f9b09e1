"""Benchmark the reasons step of scoring without Spark: LightGBM's ``pred_contrib`` (TreeSHAP)
against choosing and rendering the top-5 bilingual reasons from it (``reasons_array``), on
synthetic rows of every feature of the catalogue and a model of the production recipe
(NUM_ROUNDS rounds, PARAMS). Writes the ``## Reasons`` section of bench/RESULTS.md.

    .venv/bin/python bench/bench_reasons.py [--rows N] [--threads T]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._results import write_section  # noqa: E402
from models.score import N_REASONS, reasons_array  # noqa: E402
from models.train import NUM_ROUNDS, PARAMS  # noqa: E402
from warehouse.contracts.features import FEATURES  # noqa: E402

CODES = ["110101", "110102", "110105", "F", "C", "I", None]


def synthetic(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(raw feature frame, its numeric matrix, labels) with a signal in a few features."""
    rng = np.random.default_rng(seed)
    raw = {}
    for f in FEATURES:
        if f.categorical:
            raw[f.name] = rng.choice(np.array(CODES, dtype=object), rows)
        else:
            v = np.round(rng.gamma(1.0, 3.0, rows), 1)
            raw[f.name] = np.where(rng.random(rows) < 0.1, np.nan, v)
    frame = pd.DataFrame(raw)
    x = pd.DataFrame(
        {
            f.name: pd.factorize(frame[f.name])[0].astype(float) if f.categorical else frame[f.name]
            for f in FEATURES
        }
    )
    logit = -2.5 + 0.15 * np.nan_to_num(x.iloc[:, :5].to_numpy()).sum(axis=1) / 5
    y = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return frame, x, y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    frame, x, y = synthetic(args.rows)
    params = {**PARAMS, "verbose": -1, "num_threads": args.threads}
    params.pop("monotone_constraints", None)  # the synthetic columns have no direction
    booster = lgb.train(params, lgb.Dataset(x, y), NUM_ROUNDS)
    steps = []
    t = time.perf_counter()
    booster.predict(x, raw_score=True, num_threads=args.threads)
    steps.append(("probability (raw score)", time.perf_counter() - t))
    t = time.perf_counter()
    contrib = booster.predict(x, pred_contrib=True, num_threads=args.threads)
    steps.append((f"pred_contrib (TreeSHAP, {args.threads} threads)", time.perf_counter() - t))
    t = time.perf_counter()
    reasons = reasons_array(frame, contrib, [f.name for f in FEATURES], N_REASONS)
    steps.append((f"top-{N_REASONS} reasons chosen + rendered (1 thread)", time.perf_counter() - t))
    assert len(reasons) == args.rows
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    table = "\n".join(f"| {s} | {args.rows:,} | {sec:,.2f} | {args.rows / sec:,.0f} |"
                      for s, sec in steps)  # fmt: skip
    body = f"""Commit `{commit}`. {args.rows:,} synthetic rows of the {len(FEATURES)} catalogue
features; a LightGBM model of the production recipe ({NUM_ROUNDS} rounds, `models/train.py`
PARAMS without monotone constraints), trained on them. No Spark: the per-row cost of each
part of scoring with reasons.

| step | rows | seconds | rows/s |
|---|---|---|---|
{table}

The reasons themselves (array operations, `models/score.py` `reasons_array`) are not the
bound; TreeSHAP contributions are. Reaching 100,000 rows/s with reasons needs fewer
contributions (only for enterprises that reach a list or a draw), not faster rendering.
"""
    print(body)
    write_section("Reasons", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
