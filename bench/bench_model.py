"""Benchmark the risk model at 1,000,000 enterprises: training time and Spark scoring
throughput (rows/s) with and without reasons. Writes the ``## Model`` section of
bench/RESULTS.md, leaving the other sections alone.

The 1M feature rows are synthesised from a real lake's feature distribution: rows of
gold.enterprise_features (training rows with their labels) are resampled with replacement and
their numeric features perturbed, so the trees see realistic shapes and sizes.

    RISK_INSIGHT_LAKE_ROOT=/path/to/lake .venv/bin/python bench/bench_model.py [--rows N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._results import write_section  # noqa: E402
from models import registry  # noqa: E402
from models.dataset import load_frame  # noqa: E402
from models.score import score_frame  # noqa: E402
from models.train import NUM_ROUNDS, data_span, fit, make_schedule  # noqa: E402
from warehouse import tables  # noqa: E402
from warehouse.contracts.features import CATEGORICAL, FEATURE_NAMES  # noqa: E402
from warehouse.settings import Settings, get_settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402


def synthesise(sample: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` rows resampled from ``sample``; numeric features jittered by up to ±10 %."""
    rng = np.random.default_rng(seed)
    out = sample.iloc[rng.integers(0, len(sample), rows)].reset_index(drop=True)
    for c in FEATURE_NAMES:
        if c not in CATEGORICAL:
            v = out[c].to_numpy(dtype=float)
            out[c] = np.where(np.isnan(v), v, np.round(v * rng.uniform(0.9, 1.1, rows), 3))
    out["uscc"] = [f"B{i:017d}" for i in range(rows)]
    return out


def body(n: int, sample: int, master: str, lake: str, steps: list) -> str:
    """The Markdown body of the ``## Model`` section."""
    rows = "\n".join(f"| {a} | {r:,} | {t:,.1f} | {r / t:,.0f} |" for a, r, t in steps)
    return f"""Spark master `{master}` on a machine shared with other jobs. {n:,} synthetic
enterprises resampled (numeric features jittered ±10 %) from {sample:,} inspected rows of the
feature distribution of `{lake}`; {len(FEATURE_NAMES)} features.

| step | rows | seconds | rows/s |
|---|---|---|---|
{rows}
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    s = get_settings()
    spark = get_spark(s)
    sched = make_schedule(*data_span(spark, s))
    train_dates, calib_date = sched.final
    sample = load_frame(spark, train_dates + [calib_date], s, only_inspected=True)
    big = synthesise(sample, args.rows)
    calib = big.sample(n=min(100_000, args.rows), random_state=1)

    t0 = time.perf_counter()
    model = fit(big, calib)
    train_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        lake = Settings(lake_root=tmp, spark_master=s.spark_master)
        metrics = {"folds": {}, "summary": {"brier": float("nan")}}
        for k in ("region_code", "size_band"):
            for g in ("hit_rate_gap", "fpr_gap"):
                metrics["summary"][f"fairness.{k}.{g}"] = float("nan")
        for w in ("drawn.model.precision_at_k", "drawn.model.lift", "drawn.model_to_oracle"):
            metrics["summary"][w] = float("nan")
        metrics["summary"]["beats_baselines_every_fold"] = False
        version = registry.register(spark, lake, model, metrics, seed=42)
        parquet = f"{tmp}/features.parquet"
        cols = [c for c in tables.ENTERPRISE_FEATURES.columns if not c.startswith("_")]
        big["as_of"] = calib_date
        spark.createDataFrame(big[cols]).write.parquet(parquet)
        feats = spark.read.parquet(parquet).cache()
        n = feats.count()
        timings = {}
        for with_reasons in (False, True):
            t0 = time.perf_counter()
            score_frame(feats, lake, version, with_reasons).write.format("noop").mode(
                "overwrite"
            ).save()
            timings[with_reasons] = time.perf_counter() - t0
    steps = [
        (f"LightGBM training ({NUM_ROUNDS} rounds, 2 threads) + calibration", len(big), train_s),
        ("Spark scoring: probability + credit score", n, timings[False]),
        ("Spark scoring: + top-5 bilingual reasons (pred_contrib)", n, timings[True]),
    ]
    write_section("Model", body(n, len(sample), s.spark_master, s.lake_root, steps))
    print(body(n, len(sample), s.spark_master, s.lake_root, steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
