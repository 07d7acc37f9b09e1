"""Batch scoring in Spark: every active enterprise at T → gold.risk_scores.

The booster travels to the executors as its model string (broadcast); each task scores its
Arrow batches with ``mapInArrow``, so nothing is collected to the driver. Reasons are the
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
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from models import registry
from warehouse import contracts, tables
from warehouse.contracts.features import BY_NAME, Feature, render
from warehouse.settings import Settings, get_settings

N_REASONS = 5
PDO = 50.0  # credit-score points that double the odds of a finding
BASE_SCORE = 500.0  # the score at odds 1:1 (probability 0.5); 1000 is the lowest risk


def credit_score(p: np.ndarray) -> np.ndarray:
    """0-1000 credit score from probability: 500 at p = 0.5, -50 points per doubling of odds."""
    p = np.clip(p, 1e-9, 1 - 1e-9)
    s = BASE_SCORE - PDO / np.log(2.0) * np.log(p / (1 - p))
    return np.clip(np.rint(s), 0, 1000).astype("int32")


def raising(feature: Feature, values: pd.Series) -> np.ndarray:
    """Per row, whether ``values`` of ``feature`` read as raising the risk
    (:meth:`Feature.can_raise`, decided once per distinct value)."""
    codes, uniques = pd.factorize(values)  # NaN / None → -1, the last flag below
    spec = feature
    flags = np.array([spec.can_raise(u) for u in uniques] + [spec.can_raise(None)], dtype=bool)
    return flags[codes]


def pick_reasons(contrib: np.ndarray, raises: np.ndarray, n: int) -> np.ndarray:
    """Column indices of each row's ``min(n, features)`` reasons, largest contribution first:
    the largest risk-raising ones (``raises``), filled up with the next largest others."""
    order = np.argsort(-contrib, axis=1, kind="stable")
    ranked = np.take_along_axis(raises, order, axis=1)
    k = min(n, contrib.shape[1])
    picked = ranked & (np.cumsum(ranked, axis=1) <= k)
    room = k - picked.sum(axis=1, keepdims=True)
    keep = picked | (~ranked & (np.cumsum(~ranked, axis=1) <= room))  # exactly k per row
    return np.take_along_axis(order, np.argsort(~keep, axis=1, kind="stable")[:, :k], axis=1)


def reasons_array(
    raw: pd.DataFrame,
    contrib: np.ndarray,
    features: list[str],
    n: int,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
    catalogue: dict[str, Feature] | None = None,
) -> pa.ListArray:
    """Each row's reasons (``gold.risk_scores.reasons``) as one Arrow list column, built with
    array operations: which contributions are reasons (:func:`pick_reasons`), rendered once
    per feature and distinct value (:func:`render`) with the raw value and ``names`` (per
    feature, code → (Chinese, English) name). ``catalogue`` describes the features (default
    the built-in one; pass :func:`warehouse.contracts.catalogue` for declared attributes)."""
    names = names or {}
    cat = catalogue if catalogue is not None else BY_NAME
    contrib = np.asarray(contrib, dtype="float64")[:, : len(features)]
    rows = len(raw)
    flags = [raising(cat[f], raw[f]) for f in features] or [np.zeros(rows, bool)]
    raises = np.column_stack(flags) & (contrib > 0)
    chosen = pick_reasons(contrib, raises, n)
    k = chosen.shape[1]
    value = np.full((rows, k), np.nan)
    zh = np.empty((rows, k), dtype=object)
    en = np.empty((rows, k), dtype=object)
    for j, f in enumerate(features):
        r, c = np.nonzero(chosen == j)
        if not len(r):
            continue
        values = raw[f].iloc[r]
        codes, uniques = pd.factorize(values)
        texts = [render(cat[f], u, names.get(f)) for u in uniques]
        texts.append(render(cat[f], None, names.get(f)))
        zh[r, c] = np.array([t[0] for t in texts], dtype=object)[codes]
        en[r, c] = np.array([t[1] for t in texts], dtype=object)[codes]
        if not cat[f].categorical:
            value[r, c] = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    struct = pa.StructArray.from_arrays(
        [
            pa.array(np.asarray(features, dtype=object)[chosen.ravel()], pa.string()),
            pa.array(value.ravel(), pa.float64(), from_pandas=True),  # NaN → null
            pa.array(np.take_along_axis(contrib, chosen, axis=1).ravel(), pa.float64()),
            pa.array(zh.ravel(), pa.string()),
            pa.array(en.ravel(), pa.string()),
            pa.array(np.take_along_axis(raises, chosen, axis=1).ravel(), pa.bool_()),
        ],
        names=[f.name for f in tables.REASON.fields],
    )
    return pa.ListArray.from_arrays(pa.array(np.arange(rows + 1, dtype="int32") * k), struct)


def reasons_for(
    x: pd.DataFrame,
    raw: pd.DataFrame,
    contrib: np.ndarray,
    features: list[str],
    n: int,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
    catalogue: dict[str, Feature] | None = None,
) -> list[list[dict[str, Any]]]:
    """:func:`reasons_array` as Python lists of dicts (for callers outside Spark)."""
    return reasons_array(raw, contrib, features, n, names, catalogue).to_pylist()


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
    schema: pa.Schema,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
    catalogue: dict[str, Feature] | None = None,
):
    """The mapInArrow function: Arrow batches of feature rows → Arrow batches of scores."""

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import lightgbm as lgb

        from models.dataset import encode
        from models.train import calibrate

        if version not in _BOOSTERS:  # once per Python worker, not per batch
            _BOOSTERS[version] = lgb.Booster(model_str=model_string)
        booster = _BOOSTERS[version]
        feats = spec["features"]
        for batch in batches:
            pdf = batch.select(feats).to_pandas()
            x = encode(pdf, spec["vocab"], feats)
            p = calibrate(booster.predict(x, raw_score=True, num_threads=1),
                          tuple(spec["calibration"]))  # fmt: skip
            reasons = (
                reasons_array(
                    pdf,
                    booster.predict(x, pred_contrib=True, num_threads=1),
                    feats,
                    N_REASONS,
                    names,
                    catalogue,
                )  # fmt: skip
                if with_reasons
                else pa.nulls(len(pdf), schema.field("reasons").type)
            )
            columns = {
                "as_of": batch.column("as_of"),
                "uscc": batch.column("uscc"),
                "region_code": batch.column("region_code"),
                "size_band": batch.column("size_band"),
                "probability": pa.array(p, pa.float64()),
                "credit_score": pa.array(credit_score(p), pa.int32()),
                "model_version": pa.array([version] * len(pdf), pa.string()),
                "reasons": reasons,
            }
            yield pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)

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
    catalogue = contracts.catalogue(settings)  # the declared attributes' templates too
    cols = ["as_of", "uscc", "region_code", "size_band", *spec["features"]]
    cols = list(dict.fromkeys(cols))

    arrow_schema = _arrow_schema(out_schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _scorer(bc.value, spec, version, with_reasons, arrow_schema, names,
                           catalogue)(batches)  # fmt: skip

    return features.select(*cols).mapInArrow(run, out_schema)


def _arrow_schema(schema: T.StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


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
