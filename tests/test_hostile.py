"""Hostile and broken input (tests/fixtures/hostile): each file gets a quarantine row or a
clear error naming the file and the reason, the other files of the delivery still land,
memory stays bounded, and nothing already landed changes."""

from __future__ import annotations

import resource
import shutil
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pipelines.run import run_day
from quality.reports import write_run_reports
from tests.fixtures.hostile.make import USCC, build, csv_text, penalty_row
from warehouse import tables
from warehouse.contracts import SHIPPED_MAPPINGS

DAY1, DAY2 = date(2026, 10, 27), date(2026, 10, 28)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def delivered(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    mappings = root / "mappings"
    shutil.copytree(SHIPPED_MAPPINGS, mappings)
    penalty = mappings / "penalty.yaml"  # this bureau declares UTF-8 and names files freely
    penalty.write_text(
        penalty.read_text(encoding="utf-8")
        .replace("files: [penalty.csv]", 'files: ["penalty*.csv"]\nencoding: utf-8'),
        encoding="utf-8",
    )  # fmt: skip
    serious = mappings / "serious_list.yaml"
    serious.write_text(
        serious.read_text(encoding="utf-8").replace(
            "files: [serious_list.xlsx]", 'files: ["serious_list*.xlsx"]'
        ),
        encoding="utf-8",
    )
    policy = root / "policy.yaml"  # let the run go on past the rejected files
    policy.write_text(
        "version: hostile-test\ndefault: block\nexpectations:\n  file_accepted: warn\n"
        "  columns_mapped: warn\n  delivery_expected: warn\n  volume: warn\n  freshness: warn\n",
        encoding="utf-8",
    )
    from tests.conftest import make_settings

    s = make_settings(root).replace(sources_dir=str(mappings), quality_policy=str(policy))
    landing = root / "landing"
    (landing / DAY1.isoformat()).mkdir(parents=True)
    good = csv_text([penalty_row(100), penalty_row(101)])
    (landing / DAY1.isoformat() / "penalty_day1.csv").write_text(good, encoding="utf-8")
    registry = [
        "统一社会信用代码",
        "企业名称",
        "成立日期",
        "住所行政区划代码",
        "登记状态",
        "核准日期",
    ]
    enterprise = [USCC, "北京示例科技有限公司", "2015-03-01", "110105", "存续", "2015-03-01"]
    (landing / DAY1.isoformat() / "registry.csv").write_text(
        csv_text([enterprise], registry), encoding="utf-8"
    )
    run_day(spark, landing, DAY1, s, docs=False)
    before = sorted(
        str(r)
        for r in tables.read(spark, tables.BRONZE["penalty"], s).drop("_ingested_at").collect()
    )
    cases = build(landing / DAY2.isoformat())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run = run_day(spark, landing, DAY2, s, docs=False)
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    return s, cases, {Path(r.file).name: r for r in run.ingested}, before, grew_mib


def test_every_case_has_its_outcome_and_names_the_file(delivered):
    _, cases, results, _, _ = delivered
    assert set(results) == set(cases)
    for name, (status, _what) in cases.items():
        r = results[name]
        assert r.status == status, (name, r.status, r.message)
        if status in ("rejected", "unmatched"):
            assert name in r.message, (name, r.message)
    msg = {n: r.message for n, r in results.items()}
    assert "empty" in msg["penalty_empty.csv"]
    assert "cannot be read as UTF-8" in msg["penalty_gbk_declared_utf8.csv"]
    assert "cannot be read" in msg["penalty_garbage.csv"]
    assert "more than the 1,000 accepted" in msg["penalty_10000_columns.csv"]
    assert "duplicated header" in msg["penalty_duplicated_header.csv"]
    assert "missing required column" in msg["penalty_missing_required.csv"]
    assert "symbolic link" in msg["penalty_link.csv"]
    assert "folder" in msg["penalty_folder.csv"]
    assert "would inflate" in msg["serious_list_zip_bomb.xlsx"]
    assert "macros" in msg["serious_list_macros.xlsx"]
    assert "not an XLSX" in msg["serious_list_not_a_zip.xlsx"]


def test_broken_lines_are_quarantined_with_their_reason(spark, delivered):
    s, _, results, _, _ = delivered
    q = tables.read(spark, tables.REJECTED_ROWS, s).where(F.col("_run_date") == F.lit(DAY2))
    by_file = {}
    for r in q.collect():
        by_file.setdefault(Path(r._source_file).name, []).append(r)

    def checks(name: str) -> list[str]:
        return sorted(r.check_name for r in by_file.get(name, []))

    assert results["penalty_header_only.csv"].rows_read == 0
    assert checks("penalty_truncated.csv") == ["field_count"]
    assert checks("penalty_cut_multibyte.csv") == ["decodable"]
    assert checks("penalty_50mb_field.csv") == ["line_length"]
    assert results["penalty_50mb_field.csv"].rows_landed == 3
    (long,) = by_file["penalty_50mb_field.csv"]
    assert len(long.payload) < 3_000  # the 50 MB line is not copied into the quarantine
    assert checks("penalty_nul_bytes.csv") == ["control_chars"]
    assert checks("serious_list_formulas.xlsx") == ["formula"]
    assert checks("penalty_bom_in_the_middle.csv") == ["uscc_check_digit"]  # at conform
    assert "amount" in {r.field for r in by_file["penalty_formula_cells.csv"]}
    unknown = results["penalty_unknown_and_missing.csv"]
    assert unknown.unmapped == ("备注",) and unknown.missing == ("reported_on",)


def test_the_rest_of_the_delivery_lands_and_nothing_earlier_changes(spark, delivered):
    s, _, results, before, grew_mib = delivered
    pen = tables.read(spark, tables.BRONZE["penalty"], s)
    day1 = pen.where(F.col("_run_date") == F.lit(DAY1)).drop("_ingested_at").collect()
    assert sorted(str(r) for r in day1) == before
    names = {
        Path(r._source_file).name for r in pen.where(F.col("_run_date") == F.lit(DAY2)).collect()
    }
    assert "penalty 2026年10月 (修订版).csv" in names and "penalty_truncated.csv" in names
    silver = tables.read(spark, tables.FCT_PENALTY, s)
    assert silver.where(F.col("case_no") == "京罚〔2026〕50号").count() == 1
    assert grew_mib < 1024, f"the driver grew by {grew_mib:.0f} MiB"


def test_no_report_cell_is_a_live_formula(spark, delivered):
    s, *_ = delivered
    reports = {r.source: r for r in write_run_reports(spark, DAY2, s)}
    text = reports["penalty"].csv.read_text(encoding="utf-8-sig")
    assert "'=1+2" in text  # the quarantined value, neutralised
    assert ",=" not in text and "\n=" not in text
