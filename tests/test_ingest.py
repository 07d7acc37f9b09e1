"""Ingest on hand-made extracts: encodings, formats, header mapping, malformed rows,
unmatched and rejected files, reconciliation, re-runs."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from pyspark.sql import functions as F

from pipelines.ingest import UNMATCHED, detect_encoding, land_day, land_file
from pipelines.ingest.layout import IngestError
from quality.uscc import check_char
from warehouse import contracts, tables
from warehouse.contracts.mapping import XlsxOptions

DAY = date(2026, 10, 28)


def _code(region: str, org: str) -> str:
    return f"91{region}{org}{check_char(f'91{region}{org}')}"


A = _code("110105", "MA01ABCD1")


def _headers(source: str) -> list[str]:
    m = contracts.mapping(source)
    return [m.header_of(f) for f in m.fields]


def _write(
    folder: Path,
    source: str,
    rows: list[list[str]],
    encoding: str = "utf-8",
    name: str | None = None,
    headers: list[str] | None = None,
) -> Path:
    """A file of ``source`` with the demo bureau's headers (or ``headers``)."""
    m = contracts.mapping(source)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or m.files[0])
    head = headers or _headers(source)
    if path.suffix == ".xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(head)
        for r in rows:
            sheet.append(r)
        book.save(path)
        return path
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(head)
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
    # a quoted field with the delimiter and doubled quotes inside (RFC 4180, as Excel writes)
    ["京市监罚〔2024〕2号", A, "2024/6/1", '无照经营,"情节较轻"', "12,000", "朝阳区", "2024-06-11"],
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


def test_detect_encoding_reads_gbk_a_guesser_takes_for_cyrillic(tmp_path: Path) -> None:
    # The first 64 KiB of a GBK inspection extract (ending inside a character), which
    # charset_normalizer reads as PTCP154 (Kazakh Cyrillic): Spark then refused the charset and
    # the whole day failed instead of landing.
    gbk = Path(__file__).parent / "fixtures" / "encodings" / "inspection_gbk_head.csv"
    assert detect_encoding(gbk) == "GB18030"
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("统一社会信用代码,企业名称\n".encode("utf-16"))
    with pytest.raises(IngestError, match="neither UTF-8 nor GBK/GB18030.*declare `encoding`"):
        detect_encoding(utf16)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_csv_lands_with_lineage_and_quarantines_malformed_rows(spark, settings, tmp_path, encoding):
    path = _write(tmp_path / DAY.isoformat(), "penalty", PENALTIES, encoding)
    result = land_file(spark, contracts.mapping("penalty"), path, DAY, settings)

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
    assert (bronze[1].category, bronze[1].amount) == ('无照经营,"情节较轻"', "12,000")
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
    assert log[0].mapping == "penalty.yaml" and log[0].unmapped_columns == []


def test_relanding_the_same_file_is_a_no_op(spark, settings, tmp_path):
    path = _write(tmp_path / DAY.isoformat(), "penalty", PENALTIES[:2])
    mapping = contracts.mapping("penalty")
    first = land_file(spark, mapping, path, DAY, settings)
    version = tables.delta(spark, tables.BRONZE["penalty"], settings).history(1).first().version
    log_version = tables.delta(spark, tables.INGEST_LOG, settings).history(1).first().version
    again = land_file(spark, mapping, path, DAY, settings)
    assert first.status == "landed" and again.status == "skipped"
    assert (
        tables.delta(spark, tables.BRONZE["penalty"], settings).history(1).first().version
        == version
    )
    assert tables.delta(spark, tables.INGEST_LOG, settings).history(1).first().version == (
        log_version
    )
    assert tables.read(spark, tables.BRONZE["penalty"], settings).count() == 2
    # the same bytes delivered on a later day count as that day's delivery, landing nothing
    later = land_file(spark, mapping, path, date(2026, 10, 29), settings)
    assert later.status == "skipped" and first.batch_id in later.message
    log = tables.read(spark, tables.INGEST_LOG, settings).orderBy("run_date").collect()
    assert [(r.run_date, r.status, r.rows_landed) for r in log] == [
        (DAY, "landed", 2),
        (date(2026, 10, 29), "skipped", 0),
    ]


def test_xlsx_source_lands(spark, settings, tmp_path):
    rows = [[A, "2024-07-01", "严重违法", "", "朝阳区市场监管局", "2024-07-02"]]
    path = _write(tmp_path / DAY.isoformat(), "serious_list", rows)
    result = land_file(spark, contracts.mapping("serious_list"), path, DAY, settings)
    assert (result.status, result.rows_landed, result.encoding) == ("landed", 1, "xlsx")
    row = tables.read(spark, tables.BRONZE["serious_list"], settings).first()
    assert row.uscc == A and row.removed_on is None and row._source_row == 1


def test_xlsx_header_below_title_rows_is_found(spark, settings, tmp_path):
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    path = folder / "serious_list.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["严重违法失信名单（2026年10月）"])
    sheet.append([])
    sheet.append(["制表：信用监管科", None, None, None, None, None])
    sheet.append(_headers("serious_list"))
    sheet.append([A, "2024-07-01", "严重违法", "", "朝阳区市场监管局", "2024-07-02"])
    book.save(path)
    shipped = contracts.mapping("serious_list")  # says the header is on row 1
    fixed = land_file(spark, shipped, path, DAY, settings)
    assert fixed.status == "rejected" and "serious_list.xlsx" in fixed.message
    auto = shipped.model_copy(update={"xlsx": XlsxOptions(header_row="auto")})
    result = land_file(spark, auto, path, DAY, settings)
    assert (result.status, result.rows_landed) == ("landed", 1)
    row = tables.read(spark, tables.BRONZE["serious_list"], settings).first()
    assert row.uscc == A and row.entered_on == "2024-07-01" and row._source_row == 1


def test_unmapped_columns_are_kept_and_missing_optional_ones_land_as_null(
    spark, settings, tmp_path
):
    headers = [h for h in _headers("penalty") if h != "处罚机关"] + ["备注", "经办人"]
    rows = [["京市监罚〔2024〕9号", A, "2024-05-01", "虚假宣传", "100", "2024-05-10", "加急", "张"]]
    path = _write(tmp_path / DAY.isoformat(), "penalty", rows, headers=headers)
    result = land_file(spark, contracts.mapping("penalty"), path, DAY, settings)
    assert result.status == "landed" and result.rows_landed == 1
    assert result.unmapped == ("备注", "经办人") and result.missing == ("authority",)
    row = tables.read(spark, tables.BRONZE["penalty"], settings).first()
    assert row.authority is None and row.reported_on == "2024-05-10"
    assert row._extra == {"备注": "加急", "经办人": "张"}
    log = tables.read(spark, tables.INGEST_LOG, settings).first()
    assert log.unmapped_columns == ["备注", "经办人"] and log.missing_columns == ["authority"]


def test_missing_required_column_rejects_the_file_naming_it(spark, settings, tmp_path):
    headers = [h for h in _headers("penalty") if h != "处罚决定日期"]
    rows = [["京市监罚〔2024〕9号", A, "虚假宣传", "100", "朝阳区", "2024-05-10"]]
    path = _write(tmp_path / DAY.isoformat(), "penalty", rows, headers=headers)
    result = land_file(spark, contracts.mapping("penalty"), path, DAY, settings)
    assert result.status == "rejected"
    assert "penalty.csv" in result.message and "处罚决定日期 (decided_on)" in result.message
    log = tables.read(spark, tables.INGEST_LOG, settings).where(F.col("status") == "rejected")
    assert log.count() == 1
    assert tables.read(spark, tables.BRONZE["penalty"], settings).count() == 0


def test_duplicated_header_rejects_the_file(spark, settings, tmp_path):
    headers = [*_headers("penalty"), "罚没金额"]
    path = _write(tmp_path / DAY.isoformat(), "penalty", [[*PENALTIES[0], "1"]], headers=headers)
    result = land_file(spark, contracts.mapping("penalty"), path, DAY, settings)
    assert result.status == "rejected" and "duplicated header" in result.message
    assert "罚没金额 (amount)" in result.message


def test_land_day_claims_files_by_pattern_and_logs_the_unclaimed(spark, settings, tmp_path):
    folder = tmp_path / DAY.isoformat()
    rows = [["JC-1", A, "2026-10-01", "双随机抽查", "发现问题", "Z1", "CJ-1", "2026-10-02"]]
    _write(folder, "inspection", rows, encoding="gbk", name="inspection_district1.csv")
    _write(folder, "inspection", rows, encoding="gbk", name="inspection_district2.csv",
           headers=_headers("inspection"))  # fmt: skip
    (folder / "说明.txt").write_text("本批次数据说明", encoding="utf-8")
    (folder / ".hidden").write_text("x", encoding="utf-8")
    results = {Path(r.file).name: r for r in land_day(spark, tmp_path, DAY, settings)}
    assert set(results) == {
        "inspection_district1.csv", "inspection_district2.csv", "说明.txt", ".hidden",
    }  # fmt: skip
    assert results[".hidden"].status == "unmatched"  # nothing in a delivery passes unseen
    assert results["inspection_district1.csv"].status == "landed"
    # identical bytes: the second file is the same delivery, already landed
    assert results["inspection_district2.csv"].status == "skipped"
    unmatched = results["说明.txt"]
    assert (unmatched.source, unmatched.status) == (UNMATCHED, "unmatched")
    assert "说明.txt" in unmatched.message and "no source mapping" in unmatched.message
    log = tables.read(spark, tables.INGEST_LOG, settings).where(F.col("status") == "unmatched")
    assert sorted(r.source_file for r in log.collect()) == [
        str(folder / ".hidden"), str(folder / "说明.txt"),
    ]  # fmt: skip


def test_land_day_without_a_delivery_folder_lands_nothing(spark, settings, tmp_path):
    assert land_day(spark, tmp_path, DAY, settings) == []
