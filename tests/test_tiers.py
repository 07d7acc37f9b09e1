"""Tier policy: hard rules override the model, model tiers follow the policy shares."""

from __future__ import annotations

from datetime import date

import pytest

from risk_insight.tiers import assign_tiers, round_half_up
from warehouse.contracts.tier_policy import TierPolicy, load_policy

T = date(2026, 11, 1)
ENT_SCHEMA = "uscc string, status_code string, closed_on date, valid_from date, valid_to date"
LIST_SCHEMA = "list_type string, uscc string, entered_on date, removed_on date"
SCORE_SCHEMA = (
    "as_of date, uscc string, region_code string, size_band string, probability double, "
    "credit_score int, model_version string"
)


def _scores(spark, probs: dict[str, float]):
    rows = [(T, u, "110101", "small", p, int(1000 * (1 - p)), "m1") for u, p in probs.items()]
    return spark.createDataFrame(rows, SCORE_SCHEMA)


def _tiers(spark, probs, ents=(), entries=(), policy=None):
    ent = spark.createDataFrame(list(ents), ENT_SCHEMA)
    lists = spark.createDataFrame(list(entries), LIST_SCHEMA)
    df = assign_tiers(_scores(spark, probs), ent, lists, T, policy or load_policy())
    return {r["uscc"]: r.asDict() for r in df.collect()}


def test_policy_is_versioned_and_validated():
    p = load_policy()
    assert p.version and p.shares == {"D": 0.05, "C": 0.15, "B": 0.60, "A": 0.20}
    assert p.draw.ratios == {"A": 0.02, "B": 0.05, "C": 0.15, "D": 0.50}
    bad = p.model_dump()
    bad["shares"]["A"] = 0.3
    with pytest.raises(ValueError, match="sum to 1"):
        TierPolicy.model_validate(bad)


@pytest.mark.parametrize("n", [1000, 37])
def test_tier_shares_match_the_policy_within_rounding(spark, n):
    probs = {f"U{i:04d}": (i + 1) / (n + 1) for i in range(n)}
    got = _tiers(spark, probs)
    counts = {t: sum(r["tier"] == t for r in got.values()) for t in "ABCD"}
    pol = load_policy()
    for t, share in pol.shares.items():
        assert abs(counts[t] - share * n) <= 1, (t, counts)
    assert sum(counts.values()) == n
    if n == 1000:
        assert counts == {"D": 50, "C": 150, "B": 600, "A": 200}
    # the riskiest are D, the safest A, and rank 1 is the highest probability
    top = max(probs, key=probs.get)
    assert got[top]["tier"] == "D" and got[top]["risk_rank"] == 1
    assert got[min(probs, key=probs.get)]["tier"] == "A"
    assert all(r["tier_source"] == "model" and r["rule"] is None for r in got.values())


def test_hard_rules_override_the_model(spark):
    probs = {f"U{i:03d}": (i + 1) / 101 for i in range(100)}  # U099 riskiest, U000 safest
    old = date(2020, 1, 1)
    ents = [
        ("U001", "deregistered", date(2026, 5, 1), old, None),
        ("U002", "revoked", None, old, None),
        ("U003", "active", date(2026, 6, 1), old, None),  # closed before T
        ("U004", "active", None, old, None),
        ("U006", "moved_out", None, old, None),  # moved out of the jurisdiction
        # U005 was revoked only in a version that starts after T: still in scope at T
        ("U005", "active", None, old, date(2026, 12, 1)),
        ("U005", "revoked", None, date(2026, 12, 1), None),
    ]
    entries = [
        ("serious", "U010", date(2026, 1, 1), None),  # model A -> D by rule
        ("abnormal", "U011", date(2026, 1, 1), None),  # model A -> C by rule
        ("abnormal", "U099", date(2026, 1, 1), None),  # model D stays D, set by the model
        ("serious", "U012", date(2025, 1, 1), date(2026, 3, 1)),  # removed before T: no rule
        ("serious", "U013", date(2026, 11, 5), None),  # enters after T: no rule at T
    ]
    got = _tiers(spark, probs, ents, entries)
    assert got["U010"]["tier"] == "D" and got["U010"]["model_tier"] == "A"
    assert (got["U010"]["tier_source"], got["U010"]["rule"]) == ("rule", "serious_list")
    assert got["U011"]["tier"] == "C" and got["U011"]["rule"] == "abnormal_list"
    assert got["U099"]["tier"] == "D" and got["U099"]["tier_source"] == "model"
    assert got["U012"]["tier"] == got["U012"]["model_tier"] == "A"
    assert got["U013"]["tier_source"] == "model"
    for u, rule in (
        ("U001", "deregistered"),
        ("U002", "revoked"),
        ("U003", "deregistered"),
        ("U006", "moved_out"),
    ):
        assert got[u]["excluded"] and got[u]["tier"] is None and got[u]["rule"] == rule
        assert got[u]["risk_rank"] is None
    assert not got["U004"]["excluded"] and not got["U005"]["excluded"]
    # excluded enterprises do not take a share: 96 ranked, ranks 1..96
    ranks = sorted(r["risk_rank"] for r in got.values() if not r["excluded"])
    assert ranks == list(range(1, 97))


def test_round_half_up():
    assert [round_half_up(x) for x in (0.5, 1.5, 2.5, 2.4999, 0.15 * 10)] == [1, 2, 3, 2, 2]


def test_the_distributed_rank_equals_row_number_over_the_whole_frame(spark):
    import numpy as np
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from risk_insight.tiers import global_rank

    rng = np.random.default_rng(3)
    rows = [(f"U{i:05d}", float(p)) for i, p in enumerate(np.round(rng.random(5000), 2))]
    df = spark.createDataFrame(rows, "uscc string, probability double").repartition(7)
    order = [F.col("probability").desc(), F.col("uscc")]
    got = global_rank(df, order, "rank").toPandas().set_index("uscc")["rank"]
    want = df.withColumn("rank", F.row_number().over(Window.orderBy(*order)))
    want = want.toPandas().set_index("uscc")["rank"]
    assert sorted(got) == list(range(1, 5001))  # ties (2-digit probabilities) broken by uscc
    assert got.sort_index().equals(want.sort_index().astype(got.dtype))
