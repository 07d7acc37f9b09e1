"""A second bureau's own extracts, written by hand (tests/fixtures/bureau_b): other file
names, headers, encodings, delimiters, an XLSX with title rows and Excel serial dates, dates
as 2024年3月1日, amounts in 万元, city- and province-level region codes, status and result
words of its own — onboarded with YAML mappings only, landed through silver, features and
scores, and checked dry with ``sources check``."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from models.dataset import load_frame
from models.registry import model_dir
from models.score import score
from models.train import fit
from pipelines.features import build_features
from pipelines.run import run_day
from pipelines.sources_check import check_folder
from quality import ledger
from quality.reports import write_report
from tests.conftest import make_settings
from warehouse import tables

FIXTURE = Path(__file__).parent / "fixtures" / "bureau_b"
LANDING = FIXTURE / "landing"
DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 5)
AS_OF = date(2026, 4, 1)
ORPHAN_CASE = "京市监罚〔2025〕55号"  # its enterprise's registry row comes on DAY2

pytestmark = pytest.mark.slow


def _settings(root: Path):
    return make_settings(root).replace(
        sources_dir=str(FIXTURE / "mappings"), landing_root=str(LANDING)
    )


@pytest.fixture(scope="module")
def bureau(spark, tmp_path_factory):
    s = _settings(tmp_path_factory.mktemp("bureau_b"))
    first = run_day(spark, LANDING, DAY1, s, docs=False)
    held = tables.read(spark, tables.REJECTED_ROWS, s).where(F.col("source") == "penalty")
    before_day2 = [r.asDict() for r in held.collect()]
    second = run_day(spark, LANDING, DAY2, s, docs=False)
    return s, first, second, before_day2


def _by_file(run) -> dict:
    return {Path(r.file).name: r for r in run.ingested}


def test_every_file_lands_by_its_mapping(bureau):
    _, first, second, _ = bureau
    day1 = _by_file(first)
    assert {n: (r.source, r.status) for n, r in day1.items()} == {
        "12315投诉_20260302.csv": ("complaint", "landed"),
        "XZCF_20260302.csv": ("penalty", "landed"),
        "双随机抽查结果_2025.xlsx": ("inspection", "landed"),
        "年报_2024.csv": ("annual_report", "landed"),
        "登记信息_20260302.csv": ("registry", "landed"),
        "经营异常名录.csv": ("abnormal_list", "landed"),
    }
    assert day1["登记信息_20260302.csv"].encoding == "GB18030"  # GBK with CRLF
    assert day1["12315投诉_20260302.csv"].encoding == "GB18030"  # auto-detected
    assert day1["XZCF_20260302.csv"].encoding == "UTF-8"
    assert day1["登记信息_20260302.csv"].unmapped == ("经营范围",)
    assert day1["双随机抽查结果_2025.xlsx"].rows_landed == 8  # title rows are not rows
    assert all(r.rows_quarantined == 0 for r in day1.values())  # every line split cleanly
    assert {r.source for r in second.ingested} == {"registry", "penalty"}


def test_registry_words_units_dates_and_city_level_codes(spark, bureau):
    s, *_ = bureau
    dim = {
        (r.uscc, r.valid_from): r for r in tables.read(spark, tables.DIM_ENTERPRISE, s).collect()
    }
    assert len(dim) == 12  # 13 rows delivered, one with an unknown status word held back
    current = {u: r for (u, _), r in dim.items() if r.is_current}
    shenzhen = current["914403001922038216"]  # a published code registered at city level
    assert shenzhen.region_code == "440300" and shenzhen.founded_on == date(1987, 9, 15)
    assert shenzhen.reg_capital_yuan == Decimal("40000000000.00")  # 4,000,000 万元
    assert current["91110000802100433B"].region_code == "110000"  # province level
    assert current["91350100M000100Y43"].region_code == "350100"
    assert current["91440305MA5FXXH2KY"].reg_capital_yuan == Decimal("500000.00")  # 50 万元
    codes = {u: r.status_code for u, r in current.items()}
    assert codes["91440305MA5G3L0N4W"] == "revoked"  # 吊销，未注销
    assert codes["91350102MA2XN6W8PW"] == "moved_out"  # 迁出
    assert codes["91110105MA01TQ9R3E"] == "cancelled"  # 撤销
    assert codes["91110105MA00BW5L88"] == "deregistered"  # 注销
    assert codes["91350102MA32K1QT7C"] == "active"  # 在业
    assert current["91440305MA5G3L0N4W"].status == "吊销,未注销"  # the word, half-width
    versions = [r for (u, _), r in dim.items() if u == "91440305MA5FXXH2KY"]
    assert sorted(v.valid_from for v in versions) == [date(2018, 7, 2), date(2024, 9, 10)]
    held = tables.read(spark, tables.REJECTED_ROWS, s).where(F.col("source") == "registry")
    (row,) = held.collect()
    assert (row.check_name, row.field, row.value) == ("vocabulary_status", "status", "清算中")
    assert "映射的词表" in row.reason


def test_penalties_read_in_10k_yuan_with_their_own_date_spelling(spark, bureau):
    s, *_ = bureau
    pen = {r.case_no: r for r in tables.read(spark, tables.FCT_PENALTY, s).collect()}
    first = pen["深市监罚〔2025〕101号"]
    assert first.amount_yuan == Decimal("15000.00") and first.decided_on == date(2025, 4, 12)
    assert pen["榕市监罚〔2026〕3号"].amount_yuan == Decimal("12000.00")  # "12,000元": 元 wins


def test_inspections_from_an_xlsx_with_serial_dates_and_result_words(spark, bureau):
    s, *_ = bureau
    ins = {r.inspection_id: r for r in tables.read(spark, tables.FCT_INSPECTION, s).collect()}
    assert ins["JC-2024-001"].inspected_on == date(2024, 3, 1)  # Excel serial 45352
    assert (ins["JC-2024-001"].outcome, ins["JC-2024-001"].found_problem) == ("found", True)
    assert (ins["JC-2024-002"].outcome, ins["JC-2024-002"].found_problem) == ("clean", False)
    # could not be reached / not inspected: nobody looked, so no finding either way
    assert (ins["JC-2025-002"].outcome, ins["JC-2025-002"].found_problem) == (
        "unreachable",
        None,
    )
    assert (ins["JC-2025-003"].outcome, ins["JC-2025-003"].found_problem) == (
        "not_inspected",
        None,
    )
    assert ins["JC-2024-001"].mode_code == "random_draw"  # 双随机
    assert ins["JC-2025-004"].mode_code == "other"  # 专项整治: not in the mapping, a warning
    assert "JC-2025-005" not in ins  # 合格: not a word of the mapping, quarantined
    led = ledger.read(spark, s).where(F.col("run_date") == F.lit(DAY1))
    outcome = {r.expectation: r.outcome for r in led.where("source = 'inspection'").collect()}
    assert outcome["vocabulary_mode"] == "warned"
    assert outcome["vocabulary_result"] == "quarantined"


def test_an_orphan_penalty_lands_once_its_enterprise_is_registered(spark, bureau):
    s, _, second, before_day2 = bureau
    (held,) = [r for r in before_day2 if ORPHAN_CASE in r["payload"]]
    assert held["check_name"] == "enterprise_known" and held["released"] is None
    pen = tables.read(spark, tables.FCT_PENALTY, s).where(F.col("case_no") == ORPHAN_CASE)
    assert pen.count() == 1  # replayed on DAY2
    q = tables.read(spark, tables.REJECTED_ROWS, s).where(
        (F.col("_batch_id") == held["_batch_id"]) & (F.col("_source_row") == held["_source_row"])
    )
    (now,) = q.collect()
    assert now.released is True and now.replayed_on == DAY2
    assert now.check_name == "enterprise_known"  # what held it back stays on record
    log = {
        (r.run_date, r.source): r
        for r in tables.read(spark, tables.CONFORM_LOG, s).where("source = 'penalty'").collect()
    }
    day2 = log[(DAY2, "penalty")]
    assert (day2.rows_in, day2.rows_replayed, day2.rows_conformed) == (1, 1, 2)
    for r in log.values():
        assert r.rows_in + r.rows_replayed == r.rows_quarantined + r.rows_duplicate + (
            r.rows_conformed
        )
    # the report of DAY1 no longer lists it; a re-run of DAY2 changes nothing
    report = write_report(spark, "penalty", DAY1, s)
    assert ORPHAN_CASE not in report.csv.read_text(encoding="utf-8-sig")

    def content() -> tuple:
        quarantined = q.drop("quarantined_at").collect()
        conformed = pen.drop("_ingested_at").collect()
        return quarantined, conformed, log_of(DAY2)

    def log_of(day: date):
        return (
            tables.read(spark, tables.CONFORM_LOG, s)
            .where((F.col("run_date") == F.lit(day)) & (F.col("source") == "penalty"))
            .drop("finished_at")
            .collect()
        )

    before = content()
    run_day(spark, LANDING, DAY2, s, docs=False)
    assert content() == before


def test_reports_name_unmapped_columns_and_unknown_words(spark, bureau):
    s, *_ = bureau
    report = write_report(spark, "registry", DAY1, s)
    text = report.csv.read_text(encoding="utf-8-sig")
    assert "经营范围" in text and "清算中" in text
    assert "登记注册处" in report.html.read_text(encoding="utf-8")  # the owner, from the mapping


def test_features_and_scores_for_the_bureaus_active_enterprises(spark, bureau):
    s, *_ = bureau
    build_features(spark, [date(2025, 1, 1)], s)
    train = load_frame(spark, [date(2025, 1, 1)], s, False)
    assert train["label"].sum() >= 2
    model = fit(
        train,
        train,
        params={"min_data_in_leaf": 1, "min_data_per_group": 1, "cat_smooth": 1.0},
        num_rounds=10,
    )
    d = Path(model_dir(s, "m-bureau-b"))
    d.mkdir(parents=True)
    model.booster.save_model(str(d / "booster.txt"))
    (d / "features.json").write_text(json.dumps(model.spec(), ensure_ascii=False), "utf-8")
    done = score(spark, AS_OF, s, "m-bureau-b")
    scores = tables.read(spark, tables.RISK_SCORES, s).where(F.col("as_of") == F.lit(AS_OF))
    scored = {r.uscc: r for r in scores.collect()}
    # revoked, moved out, cancelled and deregistered enterprises are not scored
    assert set(scored) == {
        "914403001922038216", "91350100M000100Y43", "91110000802100433B",
        "91440305MA5FXXH2KY", "91350102MA32K1QT7C", "91350100MA8RPP0B6W",
        "91110000MA04D6YC1M",
    }  # fmt: skip
    assert done["rows"] == 7
    assert all(r.reasons and 0 <= r.probability <= 1 for r in scored.values())
    assert scored["914403001922038216"].region_code == "440300"


def test_sources_check_is_a_dry_run(spark, tmp_path):
    s = _settings(tmp_path)
    checks = {(c.file.parent.name, c.file.name): c for c in check_folder(spark, LANDING, s)}
    assert all(c.status == "ok" for c in checks.values())
    registry = checks[(DAY1.isoformat(), "登记信息_20260302.csv")]
    assert registry.encoding == "GB18030" and registry.unmapped == ["经营范围"]
    assert ("注册资本（万元）", "reg_capital") in registry.headers
    assert [(r.rule, r.gate, r.rows, r.examples) for r in registry.rules] == [
        ("vocabulary_status", "block", 1, ["清算中"])
    ]
    inspection = {r.rule: r for r in checks[(DAY1.isoformat(), "双随机抽查结果_2025.xlsx")].rules}
    assert (inspection["vocabulary_result"].gate, inspection["vocabulary_result"].examples) == (
        "block",
        ["合格"],
    )
    assert inspection["vocabulary_mode"].gate == "warn"
    penalty1 = {r.rule: r for r in checks[(DAY1.isoformat(), "XZCF_20260302.csv")].rules}
    assert penalty1["enterprise_known"].rows == 1  # its registry row comes later
    assert not checks[(DAY2.isoformat(), "XZCF_20260305.csv")].rules  # known from DAY1's file
    assert not any(Path(s.lake_root).glob("*/*/_delta_log"))  # nothing written
