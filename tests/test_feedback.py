"""Outcome feedback end to end on a small simulated world: model N scores -> tiers -> plan N ->
the outcome file (XLSX) -> the simulator fills it in as inspectors would -> `outcomes import`
-> inspection extract (the inspection mapping's format) -> run_day -> the labelled training
frame of the next model holds plan N's inspections with their findings; unreachable / not-inspected
enterprises stay unlabelled; plan completion counts them apart."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from models.dataset import load_frame
from models.registry import model_dir
from models.score import score
from models.train import fit
from pipelines.features.build import build_features
from pipelines.inspection_results import CLEAN, FOUND, NOT_INSPECTED, TOOK_PLACE, UNREACHABLE
from pipelines.simulator.outcomes import fill_outcome_file
from risk_insight.feedback import hit_rate_by_tier, plan_frame, plan_outcomes_in_silver
from risk_insight.outcomes import OutcomeFileError, import_outcomes, plan_completion, write_template
from risk_insight.plan import build_plan, load_roster, plan_rows
from risk_insight.tiers import build_tiers
from tests.conftest import make_settings
from warehouse import contracts

TRAIN = [date(2025, 2, 1), date(2025, 5, 1)]
CALIB = date(2025, 8, 1)
T = date(2026, 11, 1)  # the month after the world ends: the plan's as-of date


@pytest.mark.slow
def test_outcomes_of_plan_n_are_labels_for_model_n_plus_1(spark, delivered_world, tmp_path):
    root = tmp_path / "world"
    shutil.copytree(delivered_world.root, root)  # the session's delivered world, ours to change
    sim = root / "sim"
    landing = sim / "landing"
    s = make_settings(root).replace(outputs_root=str(tmp_path / "out"), landing_root=str(landing))
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

    # the inspectors' outcome file, filled in by the simulator, comes back as a delivery
    template = write_template(spark, plan.plan_id, s)
    filled = tmp_path / "filled.xlsx"
    outcomes = fill_outcome_file(
        template, sim / "truth", filled, T, seed=0, unreachable=0.06, not_inspected=0.04
    )
    assert {UNREACHABLE, NOT_INSPECTED} <= set(outcomes["outcome"])  # both occur
    day = max(outcomes["inspected_on"]) + timedelta(days=3)
    imp = import_outcomes(spark, filled, s, delivery_date=day)
    mapping = contracts.mapping("inspection", s)
    header = imp.extract.read_bytes().decode("utf-8").splitlines()[0].split(",")
    assert header == [mapping.header_of(f) for f in mapping.fields]  # the bureau's headers
    assert mapping.matches(imp.extract.name) and imp.extract.name != "inspection.csv"
    assert len(outcomes) == plan.total and imp.delivery_date > T and imp.open_rows == 0
    landed = {r.source: r for r in imp.run.ingested}
    assert landed["inspection"].rows_landed == plan.total and imp.quarantined == 0

    silver = plan_outcomes_in_silver(spark, plan.plan_id, s).toPandas()
    assert len(silver) == plan.total
    # both inspectors are on the delivered record, and every outcome is read back as recorded
    assert silver["inspector_id"].str.contains(";").any()
    recorded = outcomes.set_index("uscc")["outcome"]
    assert (silver.set_index("uscc")["outcome"] == recorded.reindex(silver["uscc"])).all()

    # the next model's training frame at T: plan N's enterprises, drawn, labelled by outcome
    frame = load_frame(spark, [T], s, True).set_index("uscc")
    outcome = outcomes.set_index("uscc")
    took = outcome[outcome["outcome"].isin(TOOK_PLACE)]
    assert set(took.index) <= set(frame.index)
    rows = frame.loc[took.index]
    assert (rows["drawn"] == 1).all()
    assert (rows.loc[took["found"], "label"] == 1).all()
    assert (rows.loc[took["found"], "found"] == 1).all()
    clean = took.index[~took["found"].to_numpy()]
    # a clean inspection is label 0 unless a penalty in the window says otherwise
    assert (rows.loc[clean, "found"] == 0).all()
    # unreachable and not inspected are no observation: not inspected, not drawn, not clean
    absent = outcome.index[~outcome["outcome"].isin(TOOK_PLACE)]
    assert len(absent) and not set(absent) & set(frame.index)
    # every random draw is weighted by its stratum's inverse inclusion probability
    probs = plan_rows(spark, plan.plan_id, s).select("uscc", "inclusion_prob").toPandas()
    w = (1 / probs.set_index("uscc")["inclusion_prob"]).loc[took.index]
    assert np.allclose(rows["draw_weight"].to_numpy(), w.to_numpy())
    tiers = plan_frame(spark, T, s)[["uscc", "tier"]]  # the outcome file carries no tier
    hits = hit_rate_by_tier(outcomes.merge(tiers, on="uscc"))
    assert hits["inspected"].sum() == len(took) and hits["hit_rate"].between(0, 1).all()

    # plan completion: drawn = inspected + unreachable + not inspected, none left open
    by_district, by_inspector = plan_completion(spark, plan.plan_id, s)
    tot = by_district[["drawn", "inspected", "found_problem", "unreachable", "not_inspected",
                       "not_yet"]].sum()  # fmt: skip
    n = outcome["outcome"].value_counts()
    assert tot["drawn"] == plan.total and tot["not_yet"] == 0
    assert (tot["inspected"], tot["found_problem"]) == (n[FOUND] + n[CLEAN], n[FOUND])
    assert (tot["unreachable"], tot["not_inspected"]) == (n[UNREACHABLE], n[NOT_INSPECTED])
    # each drawn enterprise counts for both its inspectors
    assert by_inspector["drawn"].sum() == 2 * plan.total - plan.unassigned * 2 + plan.unassigned

    # re-importing the same file changes nothing
    again = import_outcomes(spark, filled, s, delivery_date=day)
    assert again.extract == imp.extract and again.skipped
    assert plan_outcomes_in_silver(spark, plan.plan_id, s).where(
        F.col("found_problem")
    ).count() == (int(outcomes["found"].sum()))

    # a result outside the four, or an enterprise the plan did not draw, is refused by row
    from openpyxl import load_workbook

    wb = load_workbook(filled)
    ws = wb.active
    header = next(
        r for r in range(1, 10) if ws.cell(row=r, column=1).value == "抽查计划编号 / plan id"
    )
    ws.cell(row=header + 1, column=8).value = "差不多"
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    with pytest.raises(OutcomeFileError, match=f"row {header + 1}"):
        import_outcomes(spark, bad, s, delivery_date=day, run=False)
    ws.cell(row=header + 1, column=8, value="发现问题")
    ws.cell(row=header + 1, column=2, value="91110101MA00000000")
    wb.save(bad)
    with pytest.raises(OutcomeFileError, match="did not draw"):
        import_outcomes(spark, bad, s, delivery_date=day, run=False)
