"""Source mappings: the shipped ones load; a broken one is refused with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.ingest.layout import IngestError, layout
from warehouse.contracts import (
    CANONICAL,
    SHIPPED_MAPPINGS,
    MappingError,
    header_key,
    load_mapping,
    load_mappings,
)
from warehouse.contracts.mapping import date_shape

FIXTURE = Path(__file__).parent / "fixtures" / "bureau_b" / "mappings"

GOOD = """\
source: penalty
title_zh: 行政处罚
title_en: penalties
owner_zh: 稽查处
files: ["XZCF_*.csv"]
fields:
  case_no: 决定书文号
  uscc: [统一社会信用代码, 社会信用代码]
  decided_on: 处罚日期
  amount: {headers: [罚款金额（万元）], unit: 10k_yuan}
"""


def _write(tmp_path: Path, text: str, name: str = "penalty.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_and_fixture_mappings_load() -> None:
    shipped = load_mappings(SHIPPED_MAPPINGS)
    # the demo bureau delivers every source but the event source (declared kinds of its own)
    assert list(shipped) == [s for s in CANONICAL if s != "event"]
    assert shipped["registry"].words("status")["吊销，未注销"] == "revoked"
    bureau_b = load_mappings(FIXTURE)
    assert "serious_list" not in bureau_b  # bureau B does not deliver it
    assert bureau_b["penalty"].csv.delimiter == "|"
    assert bureau_b["penalty"].unit_of("amount") == "10k_yuan"
    assert bureau_b["inspection"].formats_of("inspected_on")[0] == "excel_serial"


def test_a_good_mapping_and_its_questions(tmp_path: Path) -> None:
    m = load_mapping(_write(tmp_path, GOOD))
    assert m.matches("XZCF_20261028.csv") and m.matches("xzcf_1.CSV")
    assert not m.matches("penalty.csv")
    assert m.file_format("XZCF_1.csv") == "csv" and m.file_format("XZCF_1.xlsx") == "xlsx"
    assert m.header_of("uscc") == "统一社会信用代码"
    assert m.formats_of("decided_on")[0] == "yyyy-M-d"  # the defaults


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (("unit: 10k_yuan", "unit: wan"), "penalty.yaml:10: fields.amount.unit",
         "'yuan' or '10k_yuan'"),
        (("  decided_on: 处罚日期\n", ""), "penalty.yaml:6: fields:",
         "required fields ['decided_on']"),
        (("  case_no: 决定书文号", "  case_no: 决定书文号\n  fine: 罚款"),
         "penalty.yaml:6: fields:", "['fine'] are not fields of penalty"),
        (("  case_no: 决定书文号", "  case_no: 处罚日期"), "penalty.yaml:9: fields.decided_on:",
         "'处罚日期' is given for both"),
        (("source: penalty", "source: penalties"), "penalty.yaml:1: source:", "must be one of"),
        (("files: [\"XZCF_*.csv\"]", "files: []"), "penalty.yaml:5: files", "at least 1 item"),
        (("title_en: penalties\n", "title_en: penalties\ncolor: red\n"), "penalty.yaml:4: color",
         "Extra inputs"),
    ],
)  # fmt: skip
def test_a_broken_mapping_names_file_line_and_key(tmp_path, change, where, says) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(MappingError) as err:
        load_mapping(_write(tmp_path, GOOD.replace(old, new)))
    assert where in str(err.value) and says in str(err.value), str(err.value)


def test_vocabularies_are_checked_against_the_canonical_values(tmp_path: Path) -> None:
    registry = (SHIPPED_MAPPINGS / "registry.yaml").read_text(encoding="utf-8")
    bad = registry.replace("    moved_out: [迁出]", "    closed: [迁出]")
    with pytest.raises(MappingError, match=r"registry.yaml:\d+: .*\['closed'\] are not canonical"):
        load_mapping(_write(tmp_path, bad, "registry.yaml"))
    no_vocab = registry[: registry.index("vocabularies:")]
    with pytest.raises(MappingError, match="vocabularies.status is required"):
        load_mapping(_write(tmp_path, no_vocab, "registry.yaml"))
    twice = registry.replace("    suspended: [歇业]", "    suspended: [歇业, 注销]")
    with pytest.raises(MappingError, match="'注销' means suspended and deregistered"):
        load_mapping(_write(tmp_path, twice, "registry.yaml"))


def test_a_folder_is_checked_whole(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "a.yaml")
    _write(tmp_path, GOOD, "b.yaml")
    _write(tmp_path, "source: [unclosed", "c.yaml")
    with pytest.raises(MappingError) as err:
        load_mappings(tmp_path)
    text = str(err.value)
    assert "b.yaml:1: source: penalty is already mapped by a.yaml" in text
    assert "c.yaml:1: not valid YAML" in text
    with pytest.raises(MappingError, match="no source-mapping folder"):
        load_mappings(tmp_path / "nowhere")


def test_headers_compare_after_unicode_normalisation() -> None:
    assert header_key("\ufeff 罚款金额（万元） ") == header_key("罚款金额(万元)")
    assert header_key("Case  No") == header_key("case no")


def test_layout_of_a_file(tmp_path: Path) -> None:
    m = load_mapping(_write(tmp_path, GOOD))
    lay = layout(m, ["社会信用代码", "决定书文号", "处罚日期", "备注", None], "XZCF_1.csv")
    assert lay.fields == {"uscc": 0, "case_no": 1, "decided_on": 2}
    assert lay.extra == {"备注": 3, "(第5列 / column 5)": 4}
    assert lay.missing == ("amount",)
    with pytest.raises(IngestError, match="XZCF_1.csv: .*missing required column.*处罚日期"):
        layout(m, ["社会信用代码", "决定书文号"], "XZCF_1.csv")
    with pytest.raises(IngestError, match="duplicated header for 统一社会信用代码"):
        layout(m, ["社会信用代码", "决定书文号", "处罚日期", "统一社会信用代码"], "XZCF_1.csv")


def test_date_shapes_come_from_the_patterns() -> None:
    assert date_shape("yyyy年M月d日") == r"^\d{4}年\d{1,2}月\d{1,2}日$"
    assert date_shape("yyyyMMdd") == r"^\d{4}\d{2}\d{2}$"
    assert date_shape("excel_serial") == r"^\d{5}(\.\d+)?$"
