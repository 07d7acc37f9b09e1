"""Batch scoring in Spark: every active enterprise at T → gold.risk_scores.

The booster travels to the executors as its model string (broadcast); each task scores its
Arrow batches with ``mapInArrow``, so nothing is collected to the driver. Reasons are the
five largest LightGBM feature contributions (``pred_contrib``), each rendered in Chinese
with English beside it: codes are shown by name (districts from silver.dim_region, industries
from the GB/T 4754 reference), and each is flagged ``raises_risk`` when it is a reason an
inspector can use (positive contribution and a risk-raising value, see
:mod:`warehouse.contracts.features`). The five kept are the largest contributions among the
risk-raising ones, filled up with the next largest when fewer than five raise the risk.

TreeSHAP is the cost of scoring with reasons (about 1,500 rows/s on two cores), so an
enterprise's contributions are computed again only when they can have changed. They depend
only on which side of each of the model's splits its features fall, so each score keeps a
key of those sides (:func:`reasons_key`: per feature, how many of the model's thresholds lie
below its value, or its category; and which values read as raising the risk). Scoring with
the same model takes the previous scores' contributions where the key is unchanged, exactly
what TreeSHAP would give again, and renders their texts from today's values; on a day when
few enterprises cross a threshold, few contributions are computed.
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
import pyarrow.compute as pc
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


def raising_flags(raw: pd.DataFrame, features: list[str], catalogue: dict[str, Feature]):
    """(rows × features) whether each raw value reads as raising the risk (:func:`raising`)."""
    flags = [raising(catalogue[f], raw[f]) for f in features]
    return np.column_stack(flags) if flags else np.zeros((len(raw), 0), bool)


def reasons_array(
    raw: pd.DataFrame,
    contrib: np.ndarray,
    features: list[str],
    n: int,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
    catalogue: dict[str, Feature] | None = None,
) -> pa.ListArray:
    """Each row's reasons (``gold.risk_scores.reasons``) as one Arrow list column, built with
    array operations: which contributions are reasons (:func:`pick_reasons`), rendered by
    :func:`render_reasons`. ``catalogue`` describes the features (default the built-in one;
    pass :func:`warehouse.contracts.catalogue` for declared attributes)."""
    cat = catalogue if catalogue is not None else BY_NAME
    contrib = np.asarray(contrib, dtype="float64")[:, : len(features)]
    raises = raising_flags(raw, features, cat) & (contrib > 0)
    chosen = pick_reasons(contrib, raises, n)
    return render_reasons(
        raw,
        chosen,
        np.take_along_axis(contrib, chosen, axis=1),
        np.take_along_axis(raises, chosen, axis=1),
        features,
        names,
        cat,
    )


def render_reasons(
    raw: pd.DataFrame,
    chosen: np.ndarray,
    contribution: np.ndarray,
    raises: np.ndarray,
    features: list[str],
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
    catalogue: dict[str, Feature] | None = None,
) -> pa.ListArray:
    """The reasons column of the ``chosen`` features (rows × k column indices into
    ``features``) with their ``contribution`` and ``raises`` flags: each rendered once per
    feature and distinct value (:func:`render`) from the raw value and ``names`` (per feature,
    code → (Chinese, English) name)."""
    names = names or {}
    cat = catalogue if catalogue is not None else BY_NAME
    rows, k = chosen.shape
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
            pa.array(np.asarray(contribution, dtype="float64").ravel(), pa.float64()),
            pa.array(zh.ravel(), pa.string()),
            pa.array(en.ravel(), pa.string()),
            pa.array(np.asarray(raises, dtype=bool).ravel(), pa.bool_()),
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


def split_points(booster: Any, features: list[str], categorical: set[str]) -> list[Any]:
    """Per feature (the booster's columns, in order), the sorted thresholds of its numeric
    splits (an empty array where it is never split on), or None for a categorical feature,
    whose code itself decides its splits."""
    found: list[set[float]] = [set() for _ in features]

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                found[node["split_feature"]].add(float(node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return [
        None if f in categorical else np.array(sorted(t), dtype="float64")
        for f, t in zip(features, found, strict=True)
    ]


def reasons_key(x: pd.DataFrame, rising: np.ndarray, points: list[Any]) -> np.ndarray:
    """Per row a 64-bit key of everything its reasons' contributions and choice depend on:
    for each feature of the encoded ``x``, how many of the model's thresholds (``points``)
    lie below its value (missing and zero apart: a split may send them its own way), or its
    category code; and which raw values read as raising the risk (``rising``). Two rows with
    equal keys fall on the same side of every split, so TreeSHAP gives them the same
    contributions, and the same reasons are chosen."""
    cols: dict[str, np.ndarray] = {}
    for j, (name, thresholds) in enumerate(zip(x.columns, points, strict=True)):
        v = x[name].to_numpy(dtype="float64")
        if thresholds is None:
            side = np.where(np.isnan(v), -1, v)
        else:
            side = np.searchsorted(thresholds, v, side="left")
            side = np.where(np.isnan(v), -1, np.where(v == 0, -2, side))
        cols[f"s{j}"] = side.astype("int64")
        cols[f"r{j}"] = rising[:, j].astype("int8")
    hashed = pd.util.hash_pandas_object(pd.DataFrame(cols), index=False)
    return hashed.to_numpy().view("int64")


def _previous_reasons(
    batch: pa.RecordBatch, key: np.ndarray, features: list[str], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which rows of ``batch`` can take the previous score's reasons (same model, same
    ``key``) and, for those rows, the chosen feature indices, contributions and raises
    flags (each rows × k)."""
    none = np.zeros(len(key), bool)
    empty = (none, np.zeros((0, k), "int64"), np.zeros((0, k)), np.zeros((0, k), bool))
    if "_prev_key" not in batch.schema.names:
        return empty
    prev_key = batch.column("_prev_key")
    scored = prev_key.is_valid().to_numpy(zero_copy_only=False)  # a previous score exists
    prev = batch.column("_prev_reasons")
    lengths = pc.fill_null(prev.value_lengths(), 0).to_numpy()
    same = scored & (pc.fill_null(prev_key, 0).to_numpy() == key) & (lengths == k)
    if not same.any():
        return empty
    flat = prev.filter(pa.array(same)).flatten()
    chosen = pd.Index(features).get_indexer(flat.field("feature").to_numpy(zero_copy_only=False))
    chosen = chosen.reshape(-1, k)
    known = (chosen >= 0).all(axis=1)  # a feature the model no longer has: compute afresh
    rows = np.flatnonzero(same)
    same[rows[~known]] = False
    contribution = flat.field("contribution").to_numpy(zero_copy_only=False).reshape(-1, k)
    raises = flat.field("raises_risk").to_numpy(zero_copy_only=False).reshape(-1, k)
    return same, chosen[known], contribution[known], raises[known].astype(bool)


def reasons_for_batch(
    booster: Any,
    points: list[Any],
    batch: pa.RecordBatch,
    raw: pd.DataFrame,
    x: pd.DataFrame,
    features: list[str],
    names: dict[str, dict[str, tuple[str, str]]] | None,
    catalogue: dict[str, Feature],
) -> tuple[pa.ListArray, np.ndarray, int]:
    """The reasons column of one batch and each row's :func:`reasons_key`: contributions taken
    from the previous score (columns ``_prev_key``, ``_prev_reasons``) where the key is
    unchanged, computed by TreeSHAP (``pred_contrib``) for the other rows; every text rendered
    from today's values. Also returns how many rows were computed."""
    rows = len(raw)
    k = min(N_REASONS, len(features))
    rising = raising_flags(raw, features, catalogue)
    key = reasons_key(x, rising, points)
    reused, chosen_r, contribution_r, raises_r = _previous_reasons(batch, key, features, k)
    chosen = np.zeros((rows, k), "int64")
    contribution = np.zeros((rows, k))
    raises = np.zeros((rows, k), bool)
    chosen[reused], contribution[reused], raises[reused] = chosen_r, contribution_r, raises_r
    fresh = ~reused
    if fresh.any():
        contrib = booster.predict(x[fresh], pred_contrib=True, num_threads=1)[:, : len(features)]
        flags = rising[fresh] & (contrib > 0)
        picked = pick_reasons(contrib, flags, N_REASONS)
        chosen[fresh] = picked
        contribution[fresh] = np.take_along_axis(contrib, picked, axis=1)
        raises[fresh] = np.take_along_axis(flags, picked, axis=1)
    rendered = render_reasons(raw, chosen, contribution, raises, features, names, catalogue)
    return rendered, key, int(fresh.sum())


_BOOSTERS: dict[str, Any] = {}


def _scorer(
    model_string: str,
    spec: dict[str, Any],
    version: str,
    with_reasons: bool,
    schema: pa.Schema,
    names: dict[str, dict[str, tuple[str, str]]] | None = None,
    catalogue: dict[str, Feature] | None = None,
    computed: Any = None,
):
    """The mapInArrow function: Arrow batches of feature rows → Arrow batches of scores
    (``computed``, a Spark accumulator, counts the rows whose contributions were computed)."""

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import lightgbm as lgb

        from models.dataset import encode
        from models.train import calibrate

        feats = spec["features"]
        if version not in _BOOSTERS:  # once per Python worker, not per batch
            booster = lgb.Booster(model_str=model_string)
            _BOOSTERS[version] = (booster, split_points(booster, feats, set(spec["vocab"])))
        booster, points = _BOOSTERS[version]
        cat = catalogue if catalogue is not None else BY_NAME
        for batch in batches:
            pdf = batch.select(feats).to_pandas()
            x = encode(pdf, spec["vocab"], feats)
            p = calibrate(booster.predict(x, raw_score=True, num_threads=1),
                          tuple(spec["calibration"]))  # fmt: skip
            if with_reasons:
                reasons, key, fresh = reasons_for_batch(booster, points, batch, pdf, x, feats,
                                                        names, cat)  # fmt: skip
                if computed is not None:
                    computed.add(fresh)
                keys = pa.array(key, pa.int64())
            else:
                reasons = pa.nulls(len(pdf), schema.field("reasons").type)
                keys = pa.nulls(len(pdf), pa.int64())
            columns = {
                "as_of": batch.column("as_of"),
                "uscc": batch.column("uscc"),
                "region_code": batch.column("region_code"),
                "size_band": batch.column("size_band"),
                "probability": pa.array(p, pa.float64()),
                "credit_score": pa.array(credit_score(p), pa.int32()),
                "model_version": pa.array([version] * len(pdf), pa.string()),
                "reasons": reasons,
                "_reasons_key": keys,
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
    features: DataFrame,
    settings: Settings,
    version: str,
    with_reasons: bool = True,
    previous: DataFrame | None = None,
    computed: Any = None,
) -> DataFrame:
    """Scores of a gold-features frame by the registered model ``version`` (lazy). With
    ``previous`` (earlier scores by the same model: :func:`previous_scores`), an enterprise
    whose :func:`reasons_key` is unchanged takes its reasons' contributions from there; the
    others are counted into ``computed`` (a Spark accumulator) when given."""
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
    if with_reasons and previous is not None:
        features = features.join(previous, "uscc", "left")
        cols += ["_prev_key", "_prev_reasons"]

    arrow_schema = _arrow_schema(out_schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _scorer(bc.value, spec, version, with_reasons, arrow_schema, names,
                           catalogue, computed)(batches)  # fmt: skip

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
    previous = previous_scores(spark, as_of, v, s) if with_reasons else None
    computed = spark.sparkContext.accumulator(0)
    scored = score_frame(feats, s, v, with_reasons, previous, computed).select(
        *[c for c in target.columns if c not in ("_features_version", "_scored_at")],
        F.lit(fversion).cast("long").alias("_features_version"),
        F.current_timestamp().alias("_scored_at"),
    )
    tables.replace(scored, target, s, as_of=as_of)
    n = tables.read(spark, target, s).where(F.col("as_of") == F.lit(as_of)).count()
    # reasons_computed: enterprises whose contributions TreeSHAP computed (the others took the
    # previous scores'); a task Spark retried counts twice
    return {"as_of": as_of.isoformat(), "model_version": v, "rows": n, "features_version": fversion,
            "reasons_computed": computed.value}  # fmt: skip


def previous_scores(
    spark: SparkSession, as_of: date, version: str, settings: Settings
) -> DataFrame | None:
    """The latest scores at or before ``as_of`` by model ``version`` that carry a
    :func:`reasons_key` (uscc, ``_prev_key``, ``_prev_reasons``), or None when there are none:
    what :func:`score_frame` takes unchanged reasons from."""
    scores = tables.read(spark, tables.RISK_SCORES, settings)
    last = scores.where(F.col("as_of") <= F.lit(as_of)).agg(F.max("as_of")).first()[0]
    if last is None:
        return None
    return scores.where(
        (F.col("as_of") == F.lit(last))
        & (F.col("model_version") == F.lit(version))
        & F.col("_reasons_key").isNotNull()
    ).select("uscc", F.col("_reasons_key").alias("_prev_key"),
             F.col("reasons").alias("_prev_reasons"))  # fmt: skip
