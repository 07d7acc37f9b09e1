"""Risk model: monotone constraints, reproducibility, the promotion gate, Spark scoring.

Uses a synthetic feature world (pandas) with a known risk so the tests stay small; the model,
registry, Delta tables and Spark scoring are the real ones.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import registry
from models.evaluate import backtest_table, targeting
from models.score import credit_score, score, score_frame
from models.train import Schedule, backtest, fit
from warehouse import tables
from warehouse.contracts.features import CATEGORICAL, FEATURE_NAMES, FEATURES

DATES = [date(2022, m, 1) for m in (1, 4, 7, 10)] + [date(2023, m, 1) for m in (1, 4, 7, 10)]
SCHEDULE = Schedule(
    folds={
        DATES[5]: (DATES[:3], DATES[3]),
        DATES[6]: (DATES[:4], DATES[4]),
        DATES[7]: (DATES[:5], DATES[5]),
    },
    final=(DATES[:6], DATES[6]),
)


def world(n: int = 1500, seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """Enterprises at each as-of date with features and a label drawn from a known risk.
    ``drift`` moves the risk from complaints to penalties over the dates (1: all the way)."""
    rng = np.random.default_rng(seed)
    frames = []
    latent = rng.normal(size=n)
    for k, d in enumerate(DATES):
        r = np.random.default_rng([seed, k])
        df = pd.DataFrame({"as_of": d, "uscc": [f"U{i:05d}" for i in range(n)]})
        for f in FEATURES:
            if not f.categorical:
                df[f.name] = r.poisson(0.3, n).astype(float)
        df["penalties_2y"] = r.poisson(np.exp(0.5 * latent - 1))
        df["on_abnormal_list"] = (r.random(n) < 0.05 + 0.05 * (latent > 1)).astype(float)
        df["complaints_12m"] = r.poisson(np.exp(0.6 * latent - 1.2))
        df["age_years"] = r.uniform(0, 20, n)
        df["months_since_penalty"] = np.where(df["penalties_2y"] > 0, r.integers(0, 24, n), np.nan)
        df["ent_type"] = r.choice(["有限责任公司", "个体工商户"], n)
        df["industry"] = r.choice(list("CFHIL"), n)
        df["region_code"] = r.choice(["110101", "110102", "310101"], n)
        df["size_band"] = r.choice(["small <1M", "medium 1M-10M"], n)
        a = drift * k / (len(DATES) - 1)
        z = (-2.2 + 0.8 * latent + (0.5 + 0.7 * a) * df["penalties_2y"]
             + 0.8 * df["on_abnormal_list"] + 0.3 * (1 - a) * df["complaints_12m"])  # fmt: skip
        df["label"] = (r.random(n) < 1 / (1 + np.exp(-z))).astype(int)
        df["inspected"] = (r.random(n) < 0.5).astype(int)
        df["drawn"] = (df["inspected"] & (r.random(n) < 0.5)).astype(int)
        df["found"] = df["label"]
        df["penalised"] = 0
        df["_oracle"] = 1 / (1 + np.exp(-z))
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return world()


def frames_of(df: pd.DataFrame):
    def frames(dates, only_inspected):
        sub = df[df["as_of"].isin(dates)]
        return (sub[sub["inspected"] == 1] if only_inspected else sub).reset_index(drop=True)

    return frames


def test_monotone_constraints_hold_on_a_grid(data):
    train = data[data["as_of"].isin(DATES[:5])]
    model = fit(train, data[data["as_of"] == DATES[5]], num_rounds=80)
    base = data[data["as_of"] == DATES[6]].head(60).reset_index(drop=True)
    grid = [0, 1, 2, 3, 5, 8, 13, 30]
    constrained = [f.name for f in FEATURES if f.direction > 0]
    assert "penalties_2y" in constrained and "rep_assoc_penalised_2y" in constrained
    for name in constrained:
        preds = []
        for v in grid:
            x = base.copy()
            x[name] = float(v)
            preds.append(model.predict(x))
        diffs = np.diff(np.vstack(preds), axis=0)
        assert (diffs >= -1e-12).all(), f"{name} lowers risk somewhere on the grid"
    # the constraint binds: penalties do raise risk for these rows
    low, high = base.assign(penalties_2y=0.0), base.assign(penalties_2y=5.0)
    assert (model.predict(high) - model.predict(low)).mean() > 0.01


def test_same_seed_and_data_give_the_same_model(data):
    train, calib = data[data["as_of"].isin(DATES[:3])], data[data["as_of"] == DATES[3]]
    a = fit(train, calib, num_rounds=40, seed=7)
    b = fit(train, calib, num_rounds=40, seed=7)
    c = fit(train, calib, num_rounds=40, seed=8)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    assert a.calibration == b.calibration
    assert a.booster.model_to_string() != c.booster.model_to_string()


def test_model_beats_rules_and_random_on_synthetic_backtests(data):
    metrics = backtest(frames_of(data), SCHEDULE, num_rounds=80)
    table = backtest_table(metrics)
    folds = table[table["fold (as-of)"] != "mean"]
    assert (folds["model"] > folds["random"]).all() and (folds["model"] > folds["rules"]).all()
    assert metrics["summary"]["beats_baselines_every_fold"]
    t = targeting(np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0]), np.arange(10.0))
    assert t["k"] == 2 and t["precision_at_k"] == 0.0 and t["recall_at_k"] == 0.0


def test_gate_refuses_a_worse_or_less_fair_challenger():
    champ = {
        "drawn.model.precision_at_k": 0.30,
        "fairness.region_code.hit_rate_gap": 0.10,
        "fairness.region_code.fpr_gap": 0.05,
        "fairness.size_band.hit_rate_gap": 0.10,
        "fairness.size_band.fpr_gap": 0.05,
    }
    better = {**champ, "drawn.model.precision_at_k": 0.32}
    assert registry.gate(better, champ)[0]
    assert not registry.gate({**champ, "drawn.model.precision_at_k": 0.302}, champ)[0]
    ok, why = registry.gate({**better, "fairness.size_band.fpr_gap": 0.2}, champ)
    assert not ok and any("size_band.fpr_gap" in r for r in why)


def test_register_promote_and_score_in_spark(spark, settings, data):
    frames = frames_of(data)
    good = backtest(frames, SCHEDULE, num_rounds=80, truth_dir=None)
    model = fit(frames(SCHEDULE.final[0], True), frames([SCHEDULE.final[1]], True), num_rounds=80)
    # The model's lineage names the silver tables that exist (this lake has only the one made
    # here: its features are hand-made) with their Delta versions.
    tables.ensure(spark, tables.FCT_PENALTY, settings)
    v1 = registry.register(spark, settings, model, good, seed=42)
    d1 = registry.promote(spark, settings, v1, good, lambda spec: pytest.fail("no champion"))
    assert d1.promoted and registry.champion(spark, settings) == v1
    for name in (
        "booster.txt",
        "features.json",
        "card.md",
        "metrics.json",
        "lift.png",
        "inputs.json",
        "params.json",
    ):
        assert (Path(settings.lake_root) / "models" / v1 / name).is_file(), name
    inputs = json.loads((Path(settings.lake_root) / "models" / v1 / "inputs.json").read_text())
    assert inputs["silver.fct_penalty"] == 0
    assert "silver.fct_complaint" not in inputs  # never created here, so not read

    # A crippled challenger (one weak feature, few rounds) is refused; the champion's recipe
    # is re-backtested on the same folds for the comparison.
    weak_kw = {"features": ["age_years"], "num_rounds": 5}
    weak = backtest(frames, SCHEDULE, **weak_kw)
    weak_model = fit(frames(SCHEDULE.final[0], True), frames([SCHEDULE.final[1]], True), **weak_kw)
    v2 = registry.register(spark, settings, weak_model, weak, seed=42)
    seen = []

    def champion_backtest(spec):
        seen.append(spec["features"])
        return backtest(
            frames,
            SCHEDULE,
            spec["params"],
            spec["features"],
            int(spec["params"]["num_rounds"]),
            int(spec["params"]["seed"]),
        )

    d2 = registry.promote(spark, settings, v2, weak, champion_backtest)
    assert not d2.promoted and d2.champion_before == v1 and seen == [list(FEATURE_NAMES)]
    assert registry.champion(spark, settings) == v1
    decisions = tables.read(spark, tables.MODEL_DECISIONS, settings).collect()
    assert sorted(r["promoted"] for r in decisions) == [False, True]

    # Scoring in Spark equals the model's own prediction, with five bilingual reasons.
    as_of = DATES[7]
    test = data[data["as_of"] == as_of].head(300).reset_index(drop=True)
    gold = test[["as_of", "uscc", *FEATURE_NAMES, "size_band"]].assign(
        _input_versions="{}", _built_at=datetime(2024, 1, 1)
    )
    for c in FEATURE_NAMES:
        if c not in CATEGORICAL:
            gold[c] = gold[c].astype(float)
    tables.ensure(spark, tables.ENTERPRISE_FEATURES, settings)
    spark.createDataFrame(
        gold[tables.ENTERPRISE_FEATURES.columns], tables.ENTERPRISE_FEATURES.schema
    ).write.format("delta").mode("append").save(tables.ENTERPRISE_FEATURES.path(settings))
    result = score(spark, as_of, settings)
    assert result["rows"] == 300 and result["model_version"] == v1
    assert result["reasons_computed"] == 300  # no earlier scores to take reasons from
    out = (
        tables.read(spark, tables.RISK_SCORES, settings)
        .toPandas()
        .set_index("uscc")
        .loc[test["uscc"]]
    )
    np.testing.assert_allclose(out["probability"].to_numpy(), model.predict(test), rtol=1e-9)
    assert (out["credit_score"].to_numpy() == credit_score(model.predict(test))).all()
    assert out["reasons"].map(len).eq(5).all()
    for rs in out["reasons"]:  # largest contribution first
        assert [r["contribution"] for r in rs] == sorted(
            (r["contribution"] for r in rs), reverse=True
        )
    texts = [r["text_zh"] + " / " + r["text_en"] for rs in out["reasons"] for r in rs]
    assert any(
        t.startswith("近2年行政处罚") and "penalties in the last 2 years" in t for t in texts
    )
    # without reasons the frame scores the same probabilities
    feats = spark.createDataFrame(
        gold[tables.ENTERPRISE_FEATURES.columns], tables.ENTERPRISE_FEATURES.schema
    )
    plain = score_frame(feats, settings, v1, with_reasons=False).toPandas().set_index("uscc")
    np.testing.assert_allclose(plain.loc[test["uscc"], "probability"], out["probability"])
    # re-scoring the same date replaces the partition; each enterprise's reasons come over
    # from the scores it replaces (same model, same split key), equal to those computed
    assert out["_reasons_key"].notna().all()
    rescored = score(spark, as_of, settings)
    assert rescored["rows"] == 300 and rescored["reasons_computed"] == 0
    again = (
        tables.read(spark, tables.RISK_SCORES, settings)
        .toPandas()
        .set_index("uscc")
        .loc[test["uscc"]]
    )
    assert (again["_reasons_key"] == out["_reasons_key"]).all()
    as_lists = [[dict(r) for r in rs] for rs in out["reasons"]]
    assert [[dict(r) for r in rs] for rs in again["reasons"]] == as_lists


def test_credit_score_is_decreasing_in_risk():
    s = credit_score(np.array([0.001, 0.05, 0.5, 0.95]))
    assert list(s) == sorted(s, reverse=True) and s[2] == 500 and 0 <= s.min() <= s.max() <= 1000


def test_gate_lets_a_same_recipe_refresh_through_within_the_tolerance():
    champ = {
        "drawn.model.precision_at_k": 0.30,
        "fairness.region_code.hit_rate_gap": 0.10,
        "fairness.region_code.fpr_gap": 0.05,
        "fairness.size_band.hit_rate_gap": 0.10,
        "fairness.size_band.fpr_gap": 0.05,
    }
    p = registry.PromotionPolicy(tolerance=0.01)
    assert registry.gate({**champ, "drawn.model.precision_at_k": 0.295}, champ, p, True)[0]
    assert registry.gate(dict(champ), champ, p, True)[0]  # a tie refreshes the model
    assert not registry.gate({**champ, "drawn.model.precision_at_k": 0.285}, champ, p, True)[0]
    wider = {**champ, "fairness.region_code.fpr_gap": 0.2}
    ok, why = registry.gate(wider, champ, p, True)
    assert not ok and any("region_code.fpr_gap" in r for r in why)
    # another recipe still has to beat the champion by the margin
    assert not registry.gate(dict(champ), champ, p, False)[0]
    pol = registry.PromotionPolicy.from_policy(margin=0.02)
    assert pol.margin == 0.02 and pol.tolerance == 0.01 and pol.fairness_bound == 0.05


def _schedule(last: int) -> Schedule:
    """Folds at DATES[last - 1] and DATES[last] with a one-quarter horizon, as
    ``make_schedule`` lays them; the final model calibrates on DATES[last]."""
    return Schedule(
        folds={DATES[k]: (DATES[: k - 1], DATES[k - 1]) for k in (last - 1, last)},
        final=(DATES[:last], DATES[last]),
        horizon_days=90,
    )


def _retrain(spark, settings, frames, last: int):
    """One scheduled retrain: backtest, fit, register and gate, as train_and_register does."""
    from models.retrain import deployed_evaluator

    sched = _schedule(last)
    metrics = backtest(frames, sched, num_rounds=40)
    metrics["schedule"] = {
        "final": {"train": [d.isoformat() for d in sched.final[0]],
                  "calibration": sched.final[1].isoformat()},
        "horizon_days": 90,
    }  # fmt: skip
    model = fit(frames(sched.final[0], False), frames([sched.final[1]], True), num_rounds=40)
    version = registry.register(spark, settings, model, metrics, seed=42)
    decision = registry.promote(
        spark, settings, version, metrics, lambda spec: pytest.fail("same recipe: no re-backtest"),
        registry.PromotionPolicy(tolerance=0.01), deployed_evaluator(settings, frames),
    )  # fmt: skip
    return version, model, decision


def test_two_retrains_a_quarter_apart_on_a_drifting_world_refresh_the_champion(spark, settings):
    data = world(seed=5, drift=1.0)
    frames = frames_of(data)
    v1, m1, d1 = _retrain(spark, settings, frames, 5)  # trained until DATES[5]
    assert d1.promoted and d1.comparison["mode"] == "first"
    # the frozen champion loses ground as the risk drifts: its hit rate on the newest quarter
    # is below its own backtest's
    as_of = DATES[7]
    test = data[data["as_of"] == as_of].reset_index(drop=True)
    gold = test[["as_of", "uscc", *FEATURE_NAMES, "size_band"]].assign(
        _input_versions="{}", _built_at=datetime(2024, 1, 1)
    )
    for c in FEATURE_NAMES:
        if c not in CATEGORICAL:
            gold[c] = gold[c].astype(float)
    tables.ensure(spark, tables.ENTERPRISE_FEATURES, settings)
    spark.createDataFrame(
        gold[tables.ENTERPRISE_FEATURES.columns], tables.ENTERPRISE_FEATURES.schema
    ).write.format("delta").mode("append").save(tables.ENTERPRISE_FEATURES.path(settings))
    assert score(spark, as_of, settings, with_reasons=False)["model_version"] == v1
    before = tables.read(spark, tables.RISK_SCORES, settings).toPandas().set_index("uscc")

    # a quarter later: the same recipe on newer data, judged against v1 as deployed on the
    # fold v1 never saw (DATES[6]); not worse within the tolerance: promoted
    v2, m2, d2 = _retrain(spark, settings, frames, 6)
    assert d2.comparison["mode"] == "deployed" and d2.comparison["folds"] == [DATES[6].isoformat()]
    assert d2.promoted, d2.reasons
    assert registry.champion(spark, settings) == v2 and d2.champion_before == v1
    assert m2.booster.model_to_string() != m1.booster.model_to_string()
    assert score(spark, as_of, settings, with_reasons=False)["model_version"] == v2
    after = tables.read(spark, tables.RISK_SCORES, settings).toPandas().set_index("uscc")
    moved = (after["probability"] - before.loc[after.index, "probability"]).abs()
    assert moved.mean() > 1e-3 and set(after["model_version"]) == {v2}

    # a broken feed next quarter (labels scrambled up to DATES[6]): the refresh is refused
    broken = data.copy()
    early = broken["as_of"] <= DATES[6]
    broken.loc[early, "label"] = np.random.default_rng(9).permutation(
        broken.loc[early, "label"].to_numpy()
    )
    _, _, d3 = _retrain(spark, settings, frames_of(broken), 7)
    assert not d3.promoted and registry.champion(spark, settings) == v2
    assert any("worse than the deployed champion" in r for r in d3.reasons)
    rows = tables.read(spark, tables.MODEL_DECISIONS, settings).orderBy("decided_at").collect()
    assert [r["promoted"] for r in rows] == [True, True, False]


def test_the_card_compares_the_recipe_with_its_variants_on_the_same_folds(data):
    from models.retrain import compare_recipes
    from warehouse.contracts.features import BY_NAME

    frames = frames_of(data)
    metrics = backtest(frames, SCHEDULE, num_rounds=40)
    rows = compare_recipes(frames, SCHEDULE, metrics, list(FEATURE_NAMES), dict(BY_NAME), None,
                           {"num_rounds": 40})  # fmt: skip
    assert [r["en"] for r in rows] == [
        "this recipe (labels as recorded)",
        "this recipe (inspector-adjusted)",
        "without the neighbourhood features",  # the only family beyond history it uses
    ]
    assert rows[0]["auc"] == metrics["summary"]["drawn.model.auc"]
    assert all(r["folds"] == len(SCHEDULE.folds) and 0.5 < r["auc"] <= 1.0 for r in rows)
    without = backtest(frames, SCHEDULE, num_rounds=40,
                       features=[f for f in FEATURE_NAMES
                                 if registry.family_of(f) != "neighbourhood"])  # fmt: skip
    assert rows[2]["auc"] == without["summary"]["drawn.model.auc"]
    model = fit(frames(SCHEDULE.final[0], True), frames([SCHEDULE.final[1]], True), num_rounds=40)
    card = registry.model_card("m-test", model, {**metrics, "comparison": rows}, {})
    assert "| 不含周边企业特征 / without the neighbourhood features | 3 |" in card


def test_a_frame_above_the_cap_is_the_same_uniform_sample_every_time(spark):
    from models.dataset import sample_rows

    rows = [(f"9111{i:014d}", date(2025, 1 + i % 12, 1), i % 7 == 0) for i in range(20_000)]
    df = spark.createDataFrame(rows, "uscc string, as_of date, label boolean")
    assert sample_rows(df, 20_000, 20_000) is df  # at or under the cap: whole
    kept = sample_rows(df, 20_000, 5_000)
    first = {(r.uscc, r.as_of) for r in kept.collect()}
    assert 4_500 <= len(first) <= 5_500
    again = sample_rows(df.repartition(7), 20_000, 5_000)  # other partitions, same rows
    assert {(r.uscc, r.as_of) for r in again.collect()} == first
    share = kept.where("label").count() / len(first)  # uniform: the label rate is kept
    assert abs(share - 1 / 7) < 0.02
