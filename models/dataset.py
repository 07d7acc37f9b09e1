"""Model frames: gold features joined with labels, collected for the (small) samples a model
trains and is judged on, and the encoding of categorical features shared with scoring."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.features import build_labels
from pipelines.features.build import read_features
from warehouse.contracts.features import CATEGORICAL, FEATURE_NAMES
from warehouse.contracts.model_policy import HORIZON_DAYS, load_model_policy
from warehouse.settings import Settings

LABEL_COLUMNS = ("inspected", "drawn", "found", "penalised", "label")


def load_frame(
    spark: SparkSession,
    as_of: Iterable[date],
    settings: Settings,
    only_inspected: bool,
    horizon_days: int = HORIZON_DAYS,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Features + labels at ``as_of`` as pandas: inspected enterprises only (a training sample)
    or every active enterprise (an evaluation sample). Sorted for reproducible training.

    A frame of every active enterprise of more than ``max_rows`` rows (default: the model
    policy's ``frame_max_rows``) is a uniform sample of about that many, the same rows every
    time (:func:`sample_rows`); inspected enterprises are few and taken whole."""
    dates = sorted(set(as_of))
    feats = read_features(spark, dates, settings).drop("_input_versions", "_built_at")
    labels = build_labels(spark, dates, settings, horizon_days)
    df = feats.join(labels, ["as_of", "uscc"], "left").fillna(
        False, subset=["inspected", "drawn", "found", "penalised"]
    )
    df = df.fillna(0, subset=["label"])
    if only_inspected:
        df = df.where(F.col("inspected"))
    else:
        cap = max_rows if max_rows is not None else load_model_policy().frame_max_rows
        df = sample_rows(df, feats.count(), cap)
    pdf = df.toPandas()
    pdf["as_of"] = pd.to_datetime(pdf["as_of"]).dt.date
    for c in LABEL_COLUMNS:
        pdf[c] = pdf[c].astype(int)
    # 1 / inclusion probability of a random draw's stratum (NaN unless drawn; see labels.py)
    pdf["draw_weight"] = pd.to_numeric(pdf["draw_weight"], errors="coerce").astype("float64")
    return pdf.sort_values(["as_of", "uscc"], kind="stable").reset_index(drop=True)


def sample_rows(df: DataFrame, total: int, max_rows: int) -> DataFrame:
    """``df`` (of ``total`` rows) when it has at most ``max_rows`` rows, else a uniform sample
    of about that many: the rows whose hash of (enterprise, as-of date) falls below the share
    kept, so the same rows are kept every time whatever the partitioning."""
    if total <= max_rows:
        return df
    buckets = 1 << 20
    keep = int(buckets * max_rows / total)
    return df.where(F.pmod(F.xxhash64("uscc", "as_of"), F.lit(buckets)) < F.lit(keep))


def vocabulary(
    train: pd.DataFrame, categorical: Iterable[str] = CATEGORICAL
) -> dict[str, list[str]]:
    """Sorted category values of each ``categorical`` feature (default: the built-in ones)
    seen in training."""
    return {c: sorted(train[c].dropna().astype(str).unique().tolist()) for c in categorical}


def encode(df: pd.DataFrame, vocab: dict[str, list[str]], features: list[str]) -> pd.DataFrame:
    """Numeric matrix for LightGBM: categories as their vocabulary index, unseen ones NaN."""
    out = {}
    for c in features:
        if c in vocab:
            index = {v: i for i, v in enumerate(vocab[c])}
            out[c] = df[c].map(index).astype("float64")
        else:
            out[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=df.index)


def oracle_probabilities(truth_dir: str, frame: pd.DataFrame) -> np.ndarray:
    """The simulator's true monthly finding probability of each row at its as-of month
    (NaN where the truth has none); only for synthetic worlds."""
    truth = pd.read_parquet(f"{truth_dir}/true_risk.parquet", columns=["uscc", "month", "true_p"])
    truth["month"] = pd.to_datetime(truth["month"]).dt.date
    wanted = set(frame["as_of"])
    truth = truth[truth["month"].isin(wanted)]
    merged = frame[["as_of", "uscc"]].merge(
        truth, left_on=["as_of", "uscc"], right_on=["month", "uscc"], how="left"
    )
    return merged["true_p"].to_numpy()


__all__ = ["FEATURE_NAMES", "encode", "load_frame", "oracle_probabilities", "vocabulary"]
