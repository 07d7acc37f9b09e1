"""Ingest on hand-made extracts: encodings, formats, malformed rows, reconciliation, re-runs."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from pyspark.sql import functions as F

from pipelines.ingest import detect_encoding, land_day, land_file
from pipelines.sources import SOURCES
from quality.uscc import check_char
from warehouse import tables

DAY = date(2026, 10, 28)


def _code(region: str, org: str) -> str:
    return f"91{region}{org}{check_char(f'91{region}{org}')}"


A = _code("110105", "MA01ABCD1")


def _write(folder: Path, source: str, rows: list[list[str]], encoding: str | None = None) -> Path:
    spec = SOURCES[source]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / spec.file_name
    if spec.fmt == "xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(spec.headers_zh)
        for r in rows:
            sheet.append(r)
        book.save(path)
        return path
    with path.open("w", encoding=encoding or spec.export_encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(spec.headers_zh)
        writer.writerows(rows)
    return path


PENALTIES = [
    [
        "京市监罚〔2024〕1号",
        A,
        "2024-05-01",
        "虚假宣传",
        "1.5万元",
        "朝阳区市场监管局",
        "2024-05-10",
    ],
    ["京市监罚〔2024〕2号", A, "2024/6/1", "无照经营", "12,000", "朝阳区市场监管局", "2024-06-11"],
    ["京市监罚〔2024〕3号", A, "2024-07-01", "无照经营"],  # 4 fields of 7: malformed
    ["京市监罚〔2024〕4号", A, "2024-08-01", "其他", "100", "朝阳区", "2024-08-02", "多余"],
]


def test_detect_encoding(tmp_path: Path) -> None:
    gbk = _write(tmp_path / "g", "penalty", PENALTIES[:2], "gbk")
    bom = _write(tmp_path / "b", "penalty", PENALTIES[:2], "utf-8-sig")
    plain = _write(tmp_path / "u", "penalty", PENALTIES[:2], "utf-8")
    assert detect_encoding(gbk) == "GB18030"
    assert detect_encoding(bom) == "UTF-8"
    assert detect_encoding(plain) == "UTF-8"


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_csv_lands_with_lineage_and_quarantines_malformed_rows(spark, settings, tmp_path, encoding):
    path = _write(tmp_path / DAY.isoformat(), "penalty", PENALTIES, encoding)
    result = land_file(spark, SOURCES["penalty"], path, DAY, settings)

    assert (result.status, result.rows_read, result.rows_landed, result.rows_quarantined) == (
        "landed",
        4,
        2,
        2,
    )
    bronze = tables.read(spark, tables.BRONZE["penalty"], settings).orderBy("_source_row").collect()
    assert [r.case_no for r in bronze] == ["京市监罚〔2024〕1号", "京市监罚〔2024〕2号"]
    assert [r._source_row for r in bronze] == [1, 2]
    assert bronze[0].amount == "1.5万元"  # bronze keeps the raw text
    assert all(r._record_hash and r._batch_id == result.batch_id for r in bronze)

    rejected = tables.read(spark, tables.REJECTED_ROWS, settings).orderBy("_source_row").collect()
    assert [(r._source_row, r.check_name) for r in rejected] == [
        (3, "field_count"),
        (4, "field_count"),
    ]
    assert "expected 7, got 4" in rejected[0].reason and "应为7个" in rejected[0].reason
    assert rejected[1]._source_file == str(path)

    log = tables.read(spark, tables.INGEST_LOG, settings).collect()
    assert len(log) == 1 and log[0].rows_read == log[0].rows_landed + log[0].rows_quarantined


def test_relanding_the_same_file_is_a_no_op(spark, settings, tmp_path):
    path = _write(tmp_path / DAY.isoformat(), "penalty", PENALTIES[:2])
    first = land_file(spark, SOURCES["penalty"], path, DAY, settings)
    version = tables.delta(spark, tables.BRONZE["penalty"], settings).history(1).first().version
    again = land_file(spark, SOURCES["penalty"], path, DAY, settings)
    assert first.status == "landed" and again.status == "skipped"
    assert (
        tables.delta(spark, tables.BRONZE["penalty"], settings).history(1).first().version
        == version
    )
    assert tables.read(spark, tables.BRONZE["penalty"], settings).count() == 2


def test_xlsx_source_lands(spark, settings, tmp_path):
    rows = [[A, "2024-07-01", "严重违法", "", "朝阳区市场监管局", "2024-07-02"]]
    path = _write(tmp_path / DAY.isoformat(), "serious_list", rows)
    result = land_file(spark, SOURCES["serious_list"], path, DAY, settings)
    assert (result.status, result.rows_landed, result.encoding) == ("landed", 1, "xlsx")
    row = tables.read(spark, tables.BRONZE["serious_list"], settings).first()
    assert row.uscc == A and row.removed_on is None and row._source_row == 1


def test_wrong_header_rejects_the_file_with_a_clear_message(spark, settings, tmp_path):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    path = folder / "penalty.csv"
    path.write_text("文号,代码\nx,y\n", encoding="utf-8")
    result = land_file(spark, SOURCES["penalty"], path, DAY, settings)
    assert result.status == "rejected"
    assert "处罚决定日期" in result.message and "unexpected" in result.message
    log = tables.read(spark, tables.INGEST_LOG, settings).where(F.col("status") == "rejected")
    assert log.count() == 1
    assert tables.read(spark, tables.BRONZE["penalty"], settings).count() == 0


def test_land_day_needs_the_delivery_folder(spark, settings, tmp_path):
    with pytest.raises(FileNotFoundError, match="2026-10-28"):
        land_day(spark, tmp_path, DAY, settings)
