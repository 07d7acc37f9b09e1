"""Batch scoring in Spark: every active enterprise at T → gold.risk_scores.

The booster travels to the executors as its model string (broadcast); each task scores its
Arrow batches with ``mapInPandas``, so nothing is collected to the driver. Reasons are the
five largest LightGBM feature contributions (``pred_contrib``), each rendered in Chinese
with English beside it: codes are shown by name (districts from silver.dim_region, industries
from the GB/T 4754 reference), and each is flagged ``raises_risk`` when it is a reason an
inspector can use (positive contribution and a risk-raising value, see
:mod:`warehouse.contracts.features`). The five kept are the largest contributions among the
risk-raising ones, filled up with the next largest when fewer than five raise the risk.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from models import registry
from warehouse import tables
from warehouse.contracts.features import BY_NAME, render
from warehouse.settings import Settings, get_settings

N_REASONS = 5
PDO = 50.0  # credit-score points that double the odds of a finding
BASE_SCORE = 500.0  # the score at odds 1:1 (probability 0.5); 1000 is the lowest risk


def credit_score(p: np.ndarray) -> np.ndarray:
    """0-1000 credit score from probability: 500 at p = 0.5, -50 points per doubling of odds."""
    p = np.clip(p, 1e-9, 1 - 1e-9)
    s = BASE_SCORE - PDO / np.log(2.0) * np.log(p / (1 - p))
    return np.clip(np.rint(s), 0, 1000).astype("int32")


def reasons_for(
    x: pd.DataFrame,
    raw: pd.DataFrame,
    contrib: np.ndarray,
    features: list[str],
    n: int,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
) -> list[list[dict[str, Any]]]:
    """``n`` contributions per row, largest first: the largest risk-raising ones (positive
    contribution and a value :meth:`Feature.can_raise`), filled up with the next largest
    others (``raises_risk`` False), rendered with the raw value and ``names`` (per feature,
    code -> (Chinese, English) name)."""
    names = names or {}
    out = []
    order = np.argsort(-contrib[:, : len(features)], axis=1, kind="stable")
    for i in range(len(x)):
        picked, rest = [], []
        for j in order[i]:
            f = features[j]
            c = float(contrib[i, j])
            value = raw[f].iat[i]
            raises = c > 0 and BY_NAME[f].can_raise(None if pd.isna(value) else value)
            (picked if raises else rest).append((j, c, raises))
            if len(picked) == n:
                break
        chosen = sorted(picked + rest[: n - len(picked)], key=lambda t: -t[1])
        row = []
        for j, c, raises in chosen:
            f = features[j]
            value = raw[f].iat[i]
            zh, en = render(BY_NAME[f], value, names.get(f))
            numeric = None if BY_NAME[f].categorical or pd.isna(value) else float(value)
            row.append(
                {
                    "feature": f,
                    "value": numeric,
                    "contribution": c,
                    "text_zh": zh,
                    "text_en": en,
                    "raises_risk": raises,
                }
            )
        out.append(row)
    return out


def code_names(spark: SparkSession, settings: Settings) -> dict[str, dict[str, tuple[str, str]]]:
    """Names of the categorical codes reasons show: districts (silver.dim_region) and
    industries (GB/T 4754 sections, quality/reference/industries.csv)."""
    import csv
    from pathlib import Path

    regions = {
        r["region_code"]: (r["region_name"], f"{r['region_name']} ({r['region_code']})")
        for r in tables.read(spark, tables.DIM_REGION, settings).collect()
    }
    path = Path(__file__).resolve().parents[1] / "quality" / "reference" / "industries.csv"
    with path.open(encoding="utf-8") as fh:
        industries = {
            r["industry"]: (r["industry_name"], f"{r.get('industry_name_en') or r['industry']}")
            for r in csv.DictReader(fh)
        }
    return {"region_code": regions, "industry": industries}


_BOOSTERS: dict[str, Any] = {}


def _scorer(
    model_string: str,
    spec: dict[str, Any],
    version: str,
    with_reasons: bool,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
):
    """The mapInPandas function: batches of feature rows → score rows."""

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import lightgbm as lgb

        from models.dataset import encode
        from models.train import calibrate

        if version not in _BOOSTERS:  # once per Python worker, not per batch
            _BOOSTERS[version] = lgb.Booster(model_str=model_string)
        booster = _BOOSTERS[version]
        feats = spec["features"]
        for pdf in batches:
            x = encode(pdf, spec["vocab"], feats)
            raw = booster.predict(x, raw_score=True, num_threads=1)
            p = calibrate(raw, tuple(spec["calibration"]))
            out = pd.DataFrame(
                {
                    "as_of": pdf["as_of"],
                    "uscc": pdf["uscc"],
                    "region_code": pdf["region_code"],
                    "size_band": pdf["size_band"],
                    "probability": p,
                    "credit_score": credit_score(p),
                    "model_version": version,
                }
            )
            if with_reasons:
                contrib = booster.predict(x, pred_contrib=True, num_threads=1)
                out["reasons"] = reasons_for(x, pdf, contrib, feats, N_REASONS, names)
            else:
                out["reasons"] = None
            yield out

    return score_batches


def _local_python(spark: SparkSession) -> None:
    """In local mode run Python workers with this interpreter (it has numpy and LightGBM);
    the session factory leaves PYSPARK_PYTHON unset, so workers would start bare ``python3``.
    On a cluster, set ``spark.pyspark.python`` instead."""
    sc = spark.sparkContext
    if sc.master.startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        sc.pythonExec = sys.executable


def score_frame(
    features: DataFrame, settings: Settings, version: str, with_reasons: bool = True
) -> DataFrame:
    """Scores of a gold-features frame by the registered model ``version`` (lazy)."""
    spec = json.loads(registry.read_artifact(settings, version, "features.json"))
    model_string = registry.read_artifact(settings, version, "booster.txt")
    schema = tables.RISK_SCORES.schema
    out_schema = type(schema)(
        [f for f in schema.fields if f.name not in ("_features_version", "_scored_at")]
    )
    spark = features.sparkSession
    _local_python(spark)
    bc = spark.sparkContext.broadcast(model_string)
    names = code_names(spark, settings) if with_reasons else None
    cols = ["as_of", "uscc", "region_code", "size_band", *spec["features"]]
    cols = list(dict.fromkeys(cols))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        yield from _scorer(bc.value, spec, version, with_reasons, names)(batches)

    return features.select(*cols).mapInPandas(run, out_schema)


def score(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    version: str | None = None,
    with_reasons: bool = True,
) -> dict[str, Any]:
    """Score every enterprise active at ``as_of`` with the champion (or ``version``) into
    gold.risk_scores (that as-of partition replaced); returns what was written."""
    from pipelines.features.build import build_features, delta_version, read_features

    s = settings or get_settings()
    v = version or registry.champion(spark, s)
    if v is None:
        raise RuntimeError("no champion model registered: run `risk-insight train` first")
    feats = read_features(spark, [as_of], s)
    if feats.limit(1).count() == 0:
        build_features(spark, [as_of], s)
        feats = read_features(spark, [as_of], s)
    fversion = delta_version(spark, tables.ENTERPRISE_FEATURES, s)
    target = tables.RISK_SCORES
    tables.ensure(spark, target, s)
    scored = score_frame(feats, s, v, with_reasons).select(
        *[c for c in target.columns if c not in ("_features_version", "_scored_at")],
        F.lit(fversion).cast("long").alias("_features_version"),
        F.current_timestamp().alias("_scored_at"),
    )
    tables.replace(scored, target, s, as_of=as_of)
    n = tables.read(spark, target, s).where(F.col("as_of") == F.lit(as_of)).count()
    return {"as_of": as_of.isoformat(), "model_version": v, "rows": n, "features_version": fversion}
