"""Target lists and the whole insight stage on a tiny hand-built lake (real Delta tables):
excluded enterprises are never planned or listed, formula cells are neutralised, the CSV has
a BOM and the XLSX opens with openpyxl with the Chinese headers; warnings fire."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from pyspark.sql import types as T

from risk_insight.insight import print_insight_summary, run_insight
from risk_insight.lists import HEADERS, neutralise, neutralise_frame
from risk_insight.plan import load_roster
from warehouse import tables

T0, T1 = date(2026, 10, 1), date(2026, 11, 1)
R1, R2 = "110101", "110102"
EVIL = '=HYPERLINK("http://x","点我")'


def _fill(table: tables.Table, rows: list[dict]) -> list[tuple]:
    """Rows for ``table`` with every missing column defaulted (lineage, non-null fields)."""
    default = {
        T.StringType: "x", T.LongType: 0, T.IntegerType: 0, T.DateType: date(2020, 1, 1),
        T.TimestampType: datetime(2026, 1, 1), T.BooleanType: False, T.DoubleType: 0.0,
    }  # fmt: skip
    out = []
    for row in rows:
        vals = []
        for f in table.schema.fields:
            v = row.get(f.name)
            if v is None and not f.nullable:
                v = default[type(f.dataType)]
            vals.append(v)
        out.append(tuple(vals))
    return out


def _put(spark, settings, table, rows):
    tables.ensure(spark, table, settings)
    spark.createDataFrame(_fill(table, rows), table.schema).write.format("delta").mode(
        "append"
    ).save(table.path(settings))


def _reason(text: str, c: float) -> dict:
    return {"feature": "f", "value": 1.0, "contribution": c, "text_zh": text, "text_en": "en"}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    from tests.conftest import make_settings

    root = tmp_path_factory.mktemp("insight")
    s = make_settings(root).model_copy(update={"outputs_root": str(root / "outputs")})
    ents, scores = [], []
    for k, region in enumerate((R1, R2)):
        for i in range(60):
            u = f"{region}{i:04d}"
            status = "注销" if i in (0, 1) else "存续"  # the two riskiest are deregistered
            name = EVIL if (region, i) == (R1, 2) else f"企业{region}-{i}"
            ents.append({"uscc": u, "name": name, "region_code": region, "status": status,
                         "status_code": "deregistered" if status == "注销" else "active",
                         "valid_from": date(2019, 1, 1), "is_current": True})  # fmt: skip
            for t, shift in ((T0, 0.0), (T1, 0.0 if i != 50 else 0.9)):
                p = round(0.9 - i * 0.012 + shift - k * 0.001, 4)
                reasons = [
                    _reason("-近2年行政处罚 3 次", 0.9),
                    _reason("近12个月投诉 5 件", 0.5),
                    _reason("成立年限 2 年", 0.2),
                    _reason("不应出现", -0.1),
                ]
                scores.append({"as_of": t, "uscc": u, "region_code": region,
                               "size_band": "small", "probability": min(p, 0.99),
                               "credit_score": int(1000 * (1 - min(p, 0.99))),
                               "model_version": "m1", "reasons": reasons})  # fmt: skip
    _put(spark, s, tables.DIM_ENTERPRISE, ents)
    _put(spark, s, tables.RISK_SCORES, scores)
    _put(spark, s, tables.FCT_LIST_ENTRY, [
        {"list_type": "serious", "uscc": f"{R1}0055", "entered_on": date(2026, 10, 10),
         "entry_reason": "提供虚假材料"},
        {"list_type": "abnormal", "uscc": f"{R1}0056", "entered_on": date(2026, 1, 10)},
    ])  # fmt: skip
    complaints = [
        {"complaint_id": f"C{i}", "uscc": f"{R2}0040", "received_on": date(2026, 9, 1 + i)}
        for i in range(4)
    ] + [{"complaint_id": "C9", "uscc": f"{R2}0041", "received_on": date(2026, 9, 3)}]
    _put(spark, s, tables.FCT_COMPLAINT, complaints)
    _put(spark, s, tables.FCT_INSPECTION, [])
    roster = root / "inspectors.csv"
    roster.write_text(
        "inspector_id,name,region_code\nI1,张三,110101\nI2,李四,110101\nJ1,王五,110102\n",
        encoding="utf-8",
    )
    assert load_roster(spark, roster, s) == 3
    first = run_insight(spark, T0, s)
    second = run_insight(spark, T1, s)
    return s, first, second


def test_excluded_enterprises_are_never_planned_or_listed(spark, lake):
    s, first, second = lake
    assert second.tiers["excluded"] == 4
    assert sum(v for k, v in second.tiers.items() if k != "excluded") == 116
    excluded = {f"{r}{i:04d}" for r in (R1, R2) for i in (0, 1)}
    plan = tables.read(spark, tables.INSPECTION_PLAN, s).collect()
    assert plan and not excluded & {r["uscc"] for r in plan}
    listed = set()
    for f in second.lists:
        with f.csv.open(encoding="utf-8-sig", newline="") as fh:
            listed |= {row[HEADERS["uscc"]] for row in csv.DictReader(fh)}
    assert len(listed) == 116 and not excluded & listed


def test_list_files_are_safe_and_have_chinese_headers(lake):
    s, _, second = lake
    files = {f.region_code: f for f in second.lists}
    f = files[R1]
    raw = f.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese
    text = raw.decode("utf-8-sig")
    assert "\n=" not in text and ",=" not in text and ",-" not in text and ',"=' not in text
    wb = load_workbook(f.xlsx)
    ws = wb.active
    header = [c.value for c in ws[1]]
    assert header == list(HEADERS.values())
    assert "排名 / rank" in header and "主要风险原因 / top reasons" in header
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert all(c.data_type != "f" for c in cells)
    strings = [c.value for c in cells if isinstance(c.value, str)]
    assert "'" + EVIL in strings
    assert not any(v.startswith(("=", "+", "-", "@")) for v in strings)
    # ranked: rank 1..n, tier order D..A, reasons in Chinese without negative contributions
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    order = "DCBA"
    assert [order.index(r[3]) for r in rows] == sorted(order.index(r[3]) for r in rows)
    reasons = rows[0][6]
    assert "近12个月投诉" in reasons and "不应出现" not in reasons
    # the rule-set D (serious list) says so
    serious = next(r for r in rows if r[1] == f"{R1}0055")
    assert serious[3] == "D" and "严重违法失信名单" in serious[5]


def test_neutralise():
    assert neutralise("=1+2") == "'=1+2" and neutralise("+86") == "'+86"
    assert neutralise("-3") == "'-3" and neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=x") == "'\t=x" and neutralise("正常") == "正常" and neutralise(5) == 5
    import pandas as pd

    df = neutralise_frame(pd.DataFrame({"=a": ["=b", "c"], "n": [-1, 2]}))
    assert list(df.columns) == ["'=a", "n"] and df["'=a"].tolist() == ["'=b", "c"]
    assert df["n"].tolist() == [-1, 2]  # numbers are not text: left alone


def test_public_plan_has_no_scores_or_reasons(lake):
    s, _, second = lake
    p = second.plan
    text = p.public_csv.read_text(encoding="utf-8-sig")
    header = text.splitlines()[0]
    assert "统一社会信用代码" in header and "检查人员" in header
    for word in ("信用分", "score", "原因", "reason", "等级", "tier", "probability"):
        assert word not in header
    manifest = json.loads(p.manifest.read_text(encoding="utf-8"))
    assert manifest["seed"] == p.seed and manifest["policy_version"] == second.policy_version
    assert manifest["draw_ratios"]["D"] == 0.5 and "sha256" in manifest["method"]


def test_warnings_against_the_previous_run(spark, lake):
    s, first, second = lake
    rows = tables.read(spark, tables.WARNINGS, s).where(f"as_of = DATE'{T1}'").collect()
    got = {(r["uscc"], r["trigger"]): r for r in rows}
    jumped = f"{R1}0050"  # probability jumped by 0.9: A/B -> D
    assert (jumped, "entered_d") in got and (jumped, "tier_rise") in got
    assert got[(jumped, "tier_rise")]["previous_as_of"] == T0
    assert (f"{R1}0055", "new_serious_list") in got  # entered 2026-10-10, in [T0, T1)
    assert (f"{R2}0040", "complaint_surge") in got and (f"{R2}0041", "complaint_surge") not in got
    assert "投诉" in got[(f"{R2}0040", "complaint_surge")]["evidence_zh"]
    assert not any(u[-4:] in ("0000", "0001") for u, _ in got)  # excluded: no warning
    assert second.warnings["entered_d"] >= 1


def test_summary_prints(lake):
    from rich.console import Console

    console = Console(record=True, width=160)
    print_insight_summary(lake[2], console)
    out = console.export_text()
    assert "检查对象名单" in out and "一公开" in out and "plan CJ-20261101" in out
