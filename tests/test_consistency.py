"""执法尺度统一: inspectors' findings against those expected from the enterprises they visited,
on hand-made inspections and scores (not a simulated world)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from risk_insight.consistency import build_consistency, consistency, scored_inspections
from warehouse import tables

DAY = date(2026, 4, 15)


def _inspections(spark, rows):
    cols = [f.name for f in tables.FCT_INSPECTION.schema.fields]
    full = []
    for i, (uscc, day, inspector, found, mode) in enumerate(rows):
        r = dict.fromkeys(cols)
        r.update(inspection_id=f"JC{i:05d}", uscc=uscc, inspected_on=day, inspector_id=inspector,
                 found_problem=found, outcome="found" if found else "clean", mode_code=mode,
                 result="发现问题" if found else "未发现问题", _source_file="检查结果.xlsx",
                 _source_row=i + 2, _batch_id="b1", _run_date=day, _record_hash=str(i),
                 _ingested_at=datetime(2026, 5, 1))  # fmt: skip
        full.append(r)
    return spark.createDataFrame(full, tables.FCT_INSPECTION.schema)


def _scores(spark, rows):
    return spark.createDataFrame(
        [(as_of, uscc, p) for as_of, uscc, p in rows], "as_of date, uscc string, probability double"
    )


@pytest.fixture(scope="module")
def world(spark):
    """Two inspectors with 200 random-draw inspections each of enterprises scored p = 0.2:
    张 finds 40 (as expected), 李 80 (twice); 王 has 5; a targeted inspection and a score
    dated after the inspections must change nothing."""
    rows, scores = [], []
    for k, (who, found) in enumerate((("INS-张", 40), ("INS-李", 80))):
        for i in range(200):
            uscc = f"91{k}{i:015d}"
            rows.append((uscc, DAY, who, i < found, "random_draw"))
            scores.append((date(2026, 4, 1), uscc, 0.2))
            scores.append((date(2026, 5, 1), uscc, 0.9))  # after the inspection: not used
    for i in range(5):
        rows.append((f"92{i:016d}", DAY, "INS-王", True, "random_draw"))
        scores.append((date(2026, 4, 1), f"92{i:016d}", 0.2))
    rows.append(("910000000000000000", DAY, "INS-张", True, "targeted"))
    rows.append(("93" + "0" * 16, DAY, "INS-张", True, "random_draw"))  # never scored
    return _inspections(spark, rows), _scores(spark, scores)


def test_point_in_time_scores_and_only_random_draws(world):
    inspections, scores = world
    scored = scored_inspections(inspections, scores).toPandas()
    assert len(scored) == 405  # the targeted one and the never-scored one are out
    assert set(scored["probability"]) == {0.2}  # the later score (0.9) is never used
    assert set(scored["as_of"]) == {date(2026, 4, 1)}


def test_a_stricter_and_a_more_lenient_inspector_are_flagged(world):
    inspections, scores = world
    out = consistency(scored_inspections(inspections, scores)).set_index("inspector_id")
    zhang, li = out.loc["INS-张"], out.loc["INS-李"]
    assert zhang["inspections"] == 200 and zhang["findings"] == 40
    assert zhang["expected_findings"] == pytest.approx(40.0)
    assert zhang["ratio"] == pytest.approx(1.0) and li["ratio"] == pytest.approx(2.0)
    # the period found 125 where 81 were expected: relative to that, 张 is lenient, 李 strict
    assert zhang["relative_ratio"] == pytest.approx(1.0 / (125 / 81))
    assert li["flag"] == "stricter" and li["relative_low"] > 1
    assert zhang["flag"] == "more_lenient" and zhang["relative_high"] < 1
    assert out.loc["INS-王", "flag"] == "too_few"
    assert set(out["period"]) == {"2026Q2"}


def test_equal_inspectors_are_consistent_and_the_table_is_written(spark, settings, world):
    inspections, scores = world
    same = inspections.where(F.col("inspector_id") != "INS-李")
    tables.replace(same, tables.FCT_INSPECTION, settings)
    tables.replace(
        scores.select("as_of", "uscc", F.lit(None).cast("string").alias("region_code"),
                      F.lit(None).cast("string").alias("size_band"), "probability",
                      F.lit(500).alias("credit_score"), F.lit("m1").alias("model_version"),
                      F.lit(None).cast(tables.RISK_SCORES.schema["reasons"].dataType).alias(
                          "reasons"),
                      F.lit(1).cast("long").alias("_features_version"),
                      F.current_timestamp().alias("_scored_at"),
                      F.lit(None).cast("long").alias("_reasons_key")),
        tables.RISK_SCORES, settings,
    )  # fmt: skip
    build_consistency(spark, settings, period="month")
    got = tables.read(spark, tables.INSPECTOR_CONSISTENCY, settings).toPandas()
    got = got.set_index("inspector_id")
    assert got.loc["INS-张", "flag"] == "consistent" and got.loc["INS-张", "period"] == "2026-04"
    assert got.loc["INS-王", "flag"] == "too_few" and got["modes"].eq("random_draw").all()


def test_each_member_of_a_team_answers_for_the_finding(spark):
    """An outcome file records both drawn inspectors on one row ('A;B', or '；' typed in
    Chinese): each is credited with the inspection, the finding and its expectation."""
    inspections = _inspections(spark, [
        ("91" + "0" * 16, DAY, "INS-张;INS-李", True, "random_draw"),
        ("91" + "0" * 15 + "1", DAY, " INS-李 ； INS-王", False, "random_draw"),
        ("91" + "0" * 15 + "2", DAY, "INS-王", False, "random_draw"),
    ])  # fmt: skip
    scores = _scores(spark, [(date(2026, 4, 1), "91" + "0" * 15 + s, 0.25) for s in "012"])
    scored = scored_inspections(inspections, scores).toPandas()
    assert sorted(scored["inspector_id"]) == ["INS-张", "INS-李", "INS-李", "INS-王", "INS-王"]
    out = consistency(spark.createDataFrame(scored)).set_index("inspector_id")
    assert out.loc["INS-李", "inspections"] == 2 and out.loc["INS-李", "findings"] == 1
    assert out.loc["INS-王", "expected_findings"] == pytest.approx(0.5)


def test_the_mart_names_inspectors_and_their_district_and_keeps_strangers(spark, world):
    from pipelines.marts import mart_inspector_consistency

    inspections, scores = world
    judged = consistency(scored_inspections(inspections, scores))
    roster = spark.createDataFrame(
        [("INS-张", "张明", "110101"), ("INS-李", "李华", "110102")],
        "inspector_id string, name string, region_code string",
    )
    regions = spark.createDataFrame(
        [("110101", "东城区", "北京市"), ("110102", "西城区", "北京市")],
        "region_code string, region_name string, city_name string",
    )
    mart = mart_inspector_consistency.build(spark, spark.createDataFrame(judged), roster, regions)
    got = mart.toPandas().set_index("inspector_id")
    assert list(mart.columns) == list(mart_inspector_consistency.COLUMNS)
    assert got.loc["INS-李", ["inspector_name", "region_name"]].tolist() == ["李华", "西城区"]
    assert got.loc["INS-李", "flag_zh"] == "偏严 / stricter than expected"
    assert got.loc["INS-王", "inspector_name"] == "INS-王"  # not on the roster: kept, by id
    assert got.loc["INS-王", "region_code"] is None
    assert got.loc["INS-张", "relative_ratio"] == pytest.approx(81 / 125, abs=5e-4)
