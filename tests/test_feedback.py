"""Outcome feedback end to end on a small simulated world: model N scores -> tiers -> plan N ->
simulated outcomes -> inspection extract (source contract, GBK) -> run_day -> the labelled
training frame of the next model holds plan N's inspections with their findings."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from models.dataset import load_frame
from models.registry import model_dir
from models.score import score
from models.train import fit
from pipelines.features.build import build_features
from pipelines.run import run_day
from pipelines.simulator.exports import exports
from risk_insight.feedback import feed_back_simulated, hit_rate_by_tier, plan_outcomes_in_silver
from risk_insight.plan import build_plan, load_roster
from risk_insight.tiers import build_tiers
from tests.conftest import make_settings

TRAIN = [date(2025, 2, 1), date(2025, 5, 1)]
CALIB = date(2025, 8, 1)
T = date(2026, 11, 1)  # the month after the world ends: the plan's as-of date


@pytest.mark.slow
def test_outcomes_of_plan_n_are_labels_for_model_n_plus_1(spark, delivered_world, tmp_path):
    root = tmp_path / "world"
    shutil.copytree(delivered_world.root, root)  # the session's delivered world, ours to change
    s = make_settings(root).model_copy(update={"outputs_root": str(tmp_path / "out")})
    sim = root / "sim"
    landing = sim / "landing"
    assert load_roster(spark, sim / "reference" / "inspectors.csv", s) > 0

    # model N: a real LightGBM fit on the world's inspections, scored in Spark at T
    build_features(spark, [*TRAIN, CALIB, T], s)
    model = fit(
        load_frame(spark, TRAIN, s, True),
        load_frame(spark, [CALIB], s, True),
        params={"min_data_in_leaf": 5, "min_data_per_group": 5},
        num_rounds=20,
    )
    d = Path(model_dir(s, "m-e2e-n"))
    d.mkdir(parents=True)
    model.booster.save_model(str(d / "booster.txt"))
    (d / "features.json").write_text(json.dumps(model.spec(), ensure_ascii=False), "utf-8")
    assert score(spark, T, s, "m-e2e-n", with_reasons=False)["rows"] > 0
    build_tiers(spark, T, s)
    plan = build_plan(spark, T, s, seed=3, publish=False)
    assert plan.total > 0

    # the outcomes come back as an ordinary delivery
    fb = feed_back_simulated(spark, T, sim / "truth", s, landing)
    header = fb.extract.read_bytes().decode("gbk").splitlines()[0]
    assert header == ",".join(exports()["inspection"].headers_zh)
    assert len(fb.outcomes) == plan.total and fb.delivery_date > T
    run = run_day(spark, landing, fb.delivery_date, s, docs=False)
    landed = {r.source: r for r in run.ingested}
    assert landed["inspection"].rows_landed == plan.total

    silver = plan_outcomes_in_silver(spark, fb.plan_id, s).toPandas()
    assert len(silver) == plan.total

    # the next model's training frame at T: plan N's enterprises, drawn, labelled by outcome
    frame = load_frame(spark, [T], s, True).set_index("uscc")
    outcome = fb.outcomes.set_index("uscc")
    assert set(outcome.index) <= set(frame.index)
    rows = frame.loc[outcome.index]
    assert (rows["drawn"] == 1).all()
    assert (rows.loc[outcome["found"], "label"] == 1).all()
    assert (rows.loc[outcome["found"], "found"] == 1).all()
    clean = outcome.index[~outcome["found"].to_numpy()]
    # a clean inspection is label 0 unless a penalty in the window says otherwise
    assert (rows.loc[clean, "found"] == 0).all()
    hits = hit_rate_by_tier(fb.outcomes)
    assert hits["inspected"].sum() == plan.total and hits["hit_rate"].between(0, 1).all()

    # re-delivering the same outcomes changes nothing
    fb2 = feed_back_simulated(spark, T, sim / "truth", s, landing)
    assert fb2.extract == fb.extract
    run_day(spark, landing, fb.delivery_date, s, docs=False)
    assert plan_outcomes_in_silver(spark, fb.plan_id, s).where(F.col("found_problem")).count() == (
        int(fb.outcomes["found"].sum())
    )
