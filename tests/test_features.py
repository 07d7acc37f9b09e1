"""Gold features on a hand-built silver lake: values, point-in-time correctness, idempotence."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from pipelines.features import build_features, build_labels
from pipelines.features.build import month_starts, read_features
from warehouse import tables

T = date(2024, 1, 1)
D = date.fromisoformat
# Every silver row here is "delivered" long after T (like the first history delivery):
# point-in-time must come from the sources' own dates, not from _run_date.
RUN = date(2026, 10, 28)


def _write(spark, table, settings, rows: list[dict]) -> None:
    full = []
    for i, r in enumerate(rows):
        row = {c: None for c in table.columns}
        row.update(
            _source_file="test.csv", _source_row=i + 1, _batch_id="b1", _run_date=RUN,
            _ingested_at=datetime(2026, 10, 28), _record_hash=f"h{i}",
        )  # fmt: skip
        row.update(r)
        full.append(tuple(row[c] for c in table.columns))
    tables.ensure(spark, table, settings)
    spark.createDataFrame(full, table.schema).write.format("delta").mode("append").save(
        table.path(settings)
    )


def _version(uscc, valid_from, valid_to, rep, addr, status="存续", closed=None, founded=None):
    return dict(
        uscc=uscc, name=uscc, ent_type="有限责任公司", reg_capital_yuan=Decimal("500000.00"),
        founded_on=founded or D(valid_from), region_code="110101", industry="F", status=status,
        status_code={"存续": "active", "注销": "deregistered"}[status],
        closed_on=closed, legal_rep_token=rep, address="addr", address_token=addr,
        valid_from=D(valid_from), valid_to=valid_to and D(valid_to), is_current=valid_to is None,
    )  # fmt: skip


def _lake(spark, settings) -> None:
    _write(spark, tables.DIM_ENTERPRISE, settings, [
        _version("A", "2020-01-01", "2023-03-01", "R1", "X1"),
        _version("A", "2023-03-01", None, "R1", "X2", founded=D("2020-01-01")),
        _version("B", "2021-06-01", None, "R1", "X9"),
        _version("C", "2019-01-01", "2023-01-15", "R2", "X1"),
        _version("C", "2023-01-15", None, "R2", "X1", status="注销", closed=D("2023-01-15"),
                 founded=D("2019-01-01")),
    ])  # fmt: skip
    _write(spark, tables.FCT_PENALTY, settings, [
        dict(case_no="P1", uscc="A", decided_on=D("2023-05-01"), reported_on=D("2023-05-10"),
             amount_yuan=Decimal("3000.00"), category="价格违法"),
        dict(case_no="P2", uscc="A", decided_on=D("2022-06-01"), reported_on=D("2022-06-03"),
             amount_yuan=Decimal("1000.00")),
        # decided before T but reported after T: not known at T
        dict(case_no="P3", uscc="A", decided_on=D("2023-12-20"), reported_on=D("2024-01-05"),
             amount_yuan=Decimal("9000.00")),
        dict(case_no="P4", uscc="B", decided_on=D("2021-12-01"), reported_on=D("2021-12-05")),
    ])  # fmt: skip
    _write(spark, tables.FCT_LIST_ENTRY, settings, [
        dict(list_type="abnormal", uscc="B", entered_on=D("2023-07-15"),
             reported_on=D("2023-07-20")),
    ])  # fmt: skip
    _write(spark, tables.FCT_INSPECTION, settings, [
        dict(inspection_id="I1", uscc="A", inspected_on=D("2023-09-01"), found_problem=True,
             outcome="found", reported_on=D("2023-09-05"), mode="投诉核查",
             mode_code="complaint_check"),
        dict(inspection_id="I2", uscc="B", inspected_on=D("2024-03-01"), found_problem=True,
             outcome="found", reported_on=D("2024-03-05"), mode="双随机抽查",
             mode_code="random_draw", plan_id="CJ-2024Q1"),
        # could not be reached: not an inspection that observed anything
        dict(inspection_id="I3", uscc="A", inspected_on=D("2023-10-01"), found_problem=None,
             outcome="unreachable", reported_on=D("2023-10-02"), mode="双随机抽查",
             mode_code="random_draw", plan_id="CJ-2023Q4"),
    ])  # fmt: skip
    _write(spark, tables.FCT_COMPLAINT, settings, [
        dict(complaint_id="C1", uscc="A", received_on=D("2023-11-01")),
        dict(complaint_id="C2", uscc="A", received_on=D("2023-02-01")),
    ])  # fmt: skip
    _write(spark, tables.FCT_ANNUAL_REPORT, settings, [
        dict(uscc="A", report_year=2021, filed_on=D("2022-03-01"), due_on=D("2022-06-30"),
             is_late=False, employees=10, insured_staff=4),
        dict(uscc="A", report_year=2022, filed_on=D("2023-08-01"), due_on=D("2023-06-30"),
             is_late=True, employees=20, insured_staff=5),
        dict(uscc="B", report_year=2021, filed_on=D("2022-04-01"), due_on=D("2022-06-30"),
             is_late=False, employees=3, insured_staff=3),
    ])  # fmt: skip


def _rows(spark, settings, as_of=T) -> dict[str, dict]:
    df = read_features(spark, [as_of], settings).drop("_built_at", "_input_versions")
    return {r["uscc"]: r.asDict() for r in df.collect()}


@pytest.fixture()
def lake(spark, settings):
    _lake(spark, settings)
    build_features(spark, T, settings)
    return settings


def test_feature_values_by_hand(spark, lake):
    rows = _rows(spark, lake)
    assert set(rows) == {"A", "B"}  # C was deregistered before T
    a, b = rows["A"], rows["B"]
    assert (a["penalties_1y"], a["penalties_2y"], a["penalties_5y"]) == (1, 2, 2)
    assert a["penalty_amount_2y"] == pytest.approx(4000.0)
    assert (b["penalties_2y"], b["penalties_5y"]) == (0, 1)
    assert a["address_changes_2y"] == 1 and a["legal_rep_changes_2y"] == 0
    assert (a["inspections_3y"], a["findings_3y"], a["months_since_finding"]) == (1, 1, 4)
    assert (a["complaints_3m"], a["complaints_12m"], a["complaint_trend"]) == (1, 2, 0)
    assert (a["reports_late_3y"], a["reports_missing_3y"]) == (1, 0)
    assert (b["reports_late_3y"], b["reports_missing_3y"]) == (0, 1)
    assert a["employees"] == 20 and a["insured_share"] == pytest.approx(0.25)
    assert b["on_abnormal_list"] == 1 and a["on_abnormal_list"] == 0
    # A and B share legal representative R1; C (same address as A once) is closed but
    # registered, and A moved away from X1 before T.
    assert (a["rep_associates"], a["rep_assoc_listed"], a["rep_assoc_penalised_2y"]) == (1, 1, 0)
    assert (b["rep_associates"], b["rep_assoc_penalised_2y"]) == (1, 1)
    assert a["addr_associates"] == 0
    assert a["age_years"] == pytest.approx(4.0, abs=0.01)
    assert a["size_band"] == "small <1M"


def test_records_dated_after_t_change_no_feature_at_t(spark, lake):
    before = _rows(spark, lake)
    s = lake
    _write(spark, tables.DIM_ENTERPRISE, s, [
        _version("D", "2024-01-15", None, "R1", "X2"),  # new associate after T
    ])  # fmt: skip
    # A's new version from T itself (not before T): its old version stays valid at T.
    spark.sql(
        f"UPDATE delta.`{tables.DIM_ENTERPRISE.path(s)}` SET valid_to = DATE'2024-01-01', "
        "is_current = false WHERE uscc = 'A' AND valid_from = DATE'2023-03-01'"
    )
    _write(spark, tables.DIM_ENTERPRISE, s, [
        _version("A", "2024-01-01", None, "R2", "X3", founded=D("2020-01-01")),
    ])  # fmt: skip
    _write(spark, tables.FCT_PENALTY, s, [
        dict(case_no="P9", uscc="A", decided_on=D("2024-02-01"), reported_on=D("2024-02-02")),
        dict(case_no="P10", uscc="B", decided_on=D("2023-12-30"), reported_on=D("2024-01-02")),
    ])  # fmt: skip
    # B's list entry is removed after T (silver overwrites the row with the removal version).
    spark.sql(
        f"UPDATE delta.`{tables.FCT_LIST_ENTRY.path(s)}` SET removed_on = DATE'2024-02-01', "
        "reported_on = DATE'2024-02-05' WHERE uscc = 'B'"
    )
    _write(spark, tables.FCT_LIST_ENTRY, s, [
        dict(list_type="serious", uscc="A", entered_on=D("2024-01-10"),
             reported_on=D("2024-01-12")),
        dict(list_type="abnormal", uscc="A", entered_on=D("2023-12-25"),
             reported_on=D("2024-01-03")),
    ])  # fmt: skip
    _write(spark, tables.FCT_INSPECTION, s, [
        dict(inspection_id="I9", uscc="A", inspected_on=D("2023-12-30"), found_problem=True,
             outcome="found", reported_on=D("2024-01-04")),
    ])  # fmt: skip
    _write(spark, tables.FCT_COMPLAINT, s, [
        dict(complaint_id="C9", uscc="B", received_on=D("2024-01-01")),
    ])  # fmt: skip
    _write(spark, tables.FCT_ANNUAL_REPORT, s, [
        dict(uscc="B", report_year=2022, filed_on=D("2024-01-20"), due_on=D("2023-06-30"),
             is_late=True, employees=5, insured_staff=1),
    ])  # fmt: skip
    build_features(spark, T, s)
    after = _rows(spark, s)
    assert after == before
    # ...while a later as-of date does see them (the test can fail).
    build_features(spark, date(2024, 3, 1), s)
    later = _rows(spark, s, date(2024, 3, 1))
    assert later["A"]["on_serious_list"] == 1 and later["A"]["legal_rep_changes_2y"] == 1
    assert later["B"]["on_abnormal_list"] == 0 and "D" in later


def test_rebuild_is_idempotent_and_labels(spark, lake):
    first = read_features(spark, [T], lake).count()
    build_features(spark, [T], lake)
    assert read_features(spark, [T], lake).count() == first == 2
    labels = {r["uscc"]: r for r in build_labels(spark, [T], lake).collect()}
    assert labels["B"]["drawn"] and labels["B"]["found"] and labels["B"]["label"] == 1
    # P3 was decided before T: it is a feature-time record, not a label in (T, T+H].
    assert "A" not in labels


def test_month_starts():
    assert month_starts(date(2023, 11, 5), date(2024, 5, 1), 3) == [
        date(2023, 11, 1), date(2024, 2, 1), date(2024, 5, 1),
    ]  # fmt: skip


def _region(code, name, city="深圳市", province="广东省"):
    return dict(
        region_code=code, region_name=name, level="county", parent_code="4403",
        city_code="4403", city_name=city, province_code="44", province_name=province,
        valid_from_year=1980,
    )  # fmt: skip


def _at(uscc, region, address):
    v = _version(uscc, "2020-01-01", None, f"R-{uscc}", f"X-{uscc}")
    return {**v, "region_code": region, "address": address}


def _inspection(i, uscc, on, found, reported=None):
    return dict(
        inspection_id=f"I{i}", uscc=uscc, inspected_on=D(on), found_problem=found,
        outcome="found" if found else "clean", reported_on=D(reported or on),
        mode="双随机抽查", mode_code="random_draw",
    )  # fmt: skip


@pytest.fixture()
def street_lake(spark, settings):
    """Another bureau's way of writing addresses: with or without province and city, spaces,
    第 before the number, a building after it, and one address with no number at all."""
    _write(spark, tables.DIM_REGION, settings, [
        _region("440305", "南山区"), _region("440304", "福田区"),
    ])  # fmt: skip
    _write(spark, tables.DIM_ENTERPRISE, settings, [
        _at("N1", "440305", "广东省深圳市南山区科技园路18号B座"),
        _at("N2", "440305", "南山区科技园路 1号"),
        _at("N3", "440305", "深圳市南山区科技园路第3号"),
        _at("N4", "440305", "南山区粤海路5号"),
        _at("F1", "440304", "深圳市福田区科技园路18号"),  # same street name, other district
        _at("X", "440305", "南山区创业大厦"),
    ])  # fmt: skip
    _write(spark, tables.FCT_INSPECTION, settings, [
        _inspection(1, "N1", "2023-03-01", True),
        _inspection(2, "N1", "2022-05-01", False),
        _inspection(3, "N2", "2023-06-01", False),
        _inspection(4, "N4", "2023-06-01", True),
        # found before T, reported after: not known at T
        _inspection(5, "N2", "2023-12-20", True, reported="2024-01-05"),
    ])  # fmt: skip
    _write(spark, tables.FCT_PENALTY, settings, [
        dict(case_no="P1", uscc="N1", decided_on=D("2023-05-01"), reported_on=D("2023-05-02")),
    ])  # fmt: skip
    _write(spark, tables.FCT_COMPLAINT, settings, [
        dict(complaint_id="C1", uscc="N1", received_on=D("2023-10-01")),
    ])  # fmt: skip
    build_features(spark, T, settings)
    return settings


def test_street_keys_of_differently_written_addresses(spark, street_lake):
    from pyspark.sql import functions as F

    from pipelines.features.build import street_key

    df = spark.createDataFrame(
        [("广东省深圳市南山区科技园路18号B座",), ("南山区科技园路 1号",),
         ("深圳市南山区科技园路第3号",), ("南山区创业大厦",), ("南山区粤海路5号",)],
        "address string",
    )  # fmt: skip
    key = street_key(F.col("address"), F.lit("440305"), F.lit("广东省"), F.lit("深圳市"),
                     F.lit("南山区"))  # fmt: skip
    assert [r[0] for r in df.select(key).collect()] == [
        "440305|科技园路", "440305|科技园路", "440305|科技园路", None, "440305|粤海路",
    ]  # fmt: skip


def test_neighbourhood_rates_exclude_self_and_the_unknown(spark, street_lake):
    from pipelines.features.build import NEIGHBOUR_PRIOR as k

    rows = _rows(spark, street_lake)
    # The lake at T: 4 observed inspections (the late-reported one is not known), 2 findings;
    # 1 complaint and 1 penalised enterprise among 6.
    finding, share = 2 / 4, 1 / 6
    n3 = rows["N3"]  # neighbours N1 (1 finding in 2, penalised, 1 complaint) and N2 (0 in 1)
    assert n3["street_neighbours"] == 2
    assert n3["street_finding_rate_3y"] == pytest.approx((1 + k * finding) / (3 + k))
    assert n3["street_complaints_12m"] == pytest.approx((1 + k * share) / (2 + k))
    assert n3["street_penalised_share_2y"] == pytest.approx((1 + k * share) / (2 + k))
    n1 = rows["N1"]  # its own finding, complaint and penalty do not count for itself
    assert n1["street_neighbours"] == 2
    assert n1["street_finding_rate_3y"] == pytest.approx(k * finding / (1 + k))
    assert n1["street_complaints_12m"] == pytest.approx(k * share / (2 + k))
    assert n1["street_penalised_share_2y"] == pytest.approx(k * share / (2 + k))
    # N4 is alone on 粤海路, F1 on 福田区's 科技园路, X has no street: each gets the lake's rates
    for alone in ("N4", "F1", "X"):
        r = rows[alone]
        assert r["street_neighbours"] == 0
        assert r["street_finding_rate_3y"] == pytest.approx(finding)
        assert r["street_complaints_12m"] == pytest.approx(share)
        assert r["street_penalised_share_2y"] == pytest.approx(share)
