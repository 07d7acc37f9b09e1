"""Target lists and the whole insight stage on a tiny hand-built lake (real Delta tables):
excluded enterprises are never planned or listed, formula cells are neutralised, the CSV has
a BOM and the XLSX opens with openpyxl with the Chinese headers, a title block, filters and
print settings; one plan per period (a later run of the period reuses it), its seed committed
before the tiers and verifiable from the public files; warnings fire against the previous
period."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from pyspark.sql import types as T

from risk_insight.insight import print_insight_summary, run_insight
from risk_insight.lists import HEADER_ROW, HEADERS
from risk_insight.plan import load_roster
from warehouse import tables
from warehouse.exports import neutralise, neutralise_frame

T0, T1, T2 = date(2026, 10, 1), date(2026, 11, 1), date(2026, 11, 16)
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
            for t, shift in ((T0, 0.0), (T1, 0.0 if i != 50 else 0.9), (T2, 0.01 * (i % 3))):
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
    for e in ents:
        e["address"] = f"{e['region_code']}区某某路{e['uscc'][-2:]}号"
    _put(spark, s, tables.DIM_ENTERPRISE, ents)
    _put(spark, s, tables.DIM_REGION, [
        {"region_code": R1, "region_name": "东城区", "city_code": "110100", "city_name": "北京市",
         "province_name": "北京市"},
        {"region_code": R2, "region_name": "西城区", "city_code": "110100", "city_name": "北京市",
         "province_name": "北京市"},
    ])  # fmt: skip
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
        "inspector_id,name,region_code\nI1,张三,110101\nI2,李四,110101\nI3,赵六,110101\n"
        "J1,王五,110102\n",
        encoding="utf-8",
    )
    assert load_roster(spark, roster, s) == 4
    first = run_insight(spark, T0, s)
    second = run_insight(spark, T1, s)
    return s, first, second


@pytest.fixture(scope="module")
def later(spark, lake):
    """A third run, inside the period of the second (T2 = 16 November)."""
    return run_insight(spark, T2, lake[0])


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
    header = [c.value for c in ws[HEADER_ROW]]  # below the title block
    assert header == list(HEADERS.values())
    assert "排名 / rank" in header and "主要风险原因 / top reasons" in header
    cells = [c for row in ws.iter_rows(min_row=HEADER_ROW + 1) for c in row]
    assert all(c.data_type != "f" for c in cells)
    strings = [c.value for c in cells if isinstance(c.value, str)]
    assert "'" + EVIL in strings
    assert not any(v.startswith(("=", "+", "-", "@")) for v in strings)
    # ranked: rank 1..n, tier order D..A, reasons in Chinese without negative contributions
    rows = list(ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True))
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


def test_xlsx_opens_with_a_title_block_filters_and_print_settings(lake):
    s, _, second = lake
    f = {x.region_code: x for x in second.lists}[R1]
    ws = load_workbook(f.xlsx).active
    title = [ws.cell(row=i, column=1).value for i in range(1, HEADER_ROW)]
    assert "东城区" in title[0] and R1 in title[0]
    assert "2026-11-01 ~ 2026-11-30" in title[1] and "CJ-20261101" in title[1]
    assert "2026-11-01" in title[2] and "tier-policy" in title[2] and "m1" in title[2]
    assert title[3].startswith("生成时间 / generated at")
    assert ws.auto_filter.ref.startswith(f"A{HEADER_ROW}:")
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"
    rows = list(ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True))
    col = {h: i for i, h in enumerate(HEADERS)}
    assert all(r[col["region_name"]] == "东城区" and "某某路" in r[col["address"]] for r in rows)
    drawn = [r for r in rows if r[col["drawn"]] == "是"]
    assert drawn and all(r[col["plan_id"]] == "CJ-20261101" for r in drawn)
    # two named inspectors on every drawn row of 110101 (I1, I2, I3 on its roster)
    for r in drawn:
        team = r[col["inspector"]].split("、")
        assert len(team) == 2 and all(t.split(" ")[0] in ("I1", "I2", "I3") for t in team)
    # 110102 has one inspector only: its drawn rows say why nobody is assigned
    other = {x.region_code: x for x in second.lists}[R2]
    rows2 = list(load_workbook(other.xlsx).active.iter_rows(min_row=HEADER_ROW + 1,
                                                            values_only=True))  # fmt: skip
    drawn2 = [r for r in rows2 if r[col["drawn"]] == "是"]
    assert drawn2 and all(r[col["inspector"]].startswith("未分配：") for r in drawn2)


def test_one_private_folder_per_district_and_one_list_per_inspector(spark, lake):
    import stat

    from risk_insight.plan import plan_rows

    s, _, second = lake
    for f in second.lists:
        assert f.csv.parent.name == f.region_code
        assert stat.S_IMODE(f.csv.parent.stat().st_mode) == 0o700
        for path in (f.csv, f.xlsx, *f.inspectors.values()):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    plan = plan_rows(spark, second.plan.plan_id, s).collect()
    mine = {}
    for r in plan:
        for i in (r["inspector_id"], r["inspector_2_id"]):
            if i:
                mine.setdefault(i, set()).add(r["uscc"])
    files = {i: p for f in second.lists for i, p in f.inspectors.items()}
    assert set(files) == set(mine) and mine
    for inspector, usccs in mine.items():
        ws = load_workbook(files[inspector]).active
        assert inspector in ws.cell(row=1, column=1).value
        header = [c.value for c in ws[HEADER_ROW]]
        at = header.index(HEADERS["uscc"])
        got = {r[at] for r in ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True)}
        assert got == usccs, inspector


def test_a_later_run_of_the_period_reuses_the_plan_and_warns_against_the_previous_period(
    spark, lake, later
):
    from risk_insight.plan import plan_rows

    s, first, second = lake
    assert later.plan.reused and not second.plan.reused
    assert later.plan.plan_id == second.plan.plan_id == "CJ-20261101"
    assert later.plan.drawn_at == T1 and later.plan.size == second.plan.size
    rows = plan_rows(spark, "CJ-20261101", s)
    assert {r["as_of"] for r in rows.select("as_of").distinct().collect()} == {T1}
    assert not tables.read(spark, tables.INSPECTION_PLAN, s).where(f"as_of = DATE'{T2}'").count()
    # the T0 plan drew enterprises 31 days before T1: inside the cool-off, so not drawn again
    t0 = {r["uscc"] for r in plan_rows(spark, "CJ-20261001", s).collect()}
    assert t0 and not t0 & {r["uscc"] for r in rows.collect()}
    # the list at T2 shows the period's plan
    listed = {f.region_code: f for f in later.lists}[R1]
    with listed.csv.open(encoding="utf-8-sig", newline="") as fh:
        drawn = {r[HEADERS["uscc"]] for r in csv.DictReader(fh) if r[HEADERS["drawn"]] == "是"}
    assert drawn == {r["uscc"] for r in rows.where(f"region_code = '{R1}'").collect()}
    # warnings at T2 compare with the last run before November (T0), not with T1
    prev = tables.read(spark, tables.WARNINGS, s).where(f"as_of = DATE'{T2}'")
    assert {r[0] for r in prev.select("previous_as_of").distinct().collect()} == {T0}
    assert later.warnings["entered_d"] >= 1  # 110101-0050 rose to D since October


def test_the_seed_is_committed_before_the_tiers_and_the_public_plan_verifies(spark, lake, tmp_path):
    import shutil

    from risk_insight.plan import verify_plan
    from risk_insight.seeds import commitment_of

    s, first, second = lake
    m0 = json.loads(first.plan.manifest.read_text(encoding="utf-8"))
    m1 = json.loads(second.plan.manifest.read_text(encoding="utf-8"))
    # November's seed was committed when October's plan was drawn, and published in it
    assert m0["next_commitment"]["plan_id"] == "CJ-20261101"
    assert m0["next_commitment"]["commitment"] == m1["seed_commitment"]
    assert m1["seed_commitment"] == commitment_of("CJ-20261101", m1["seed"])
    assert m1["committed_at"] <= m1["tiers_built_at"] and m1["seed_source"] == "committed"
    commitments = tables.read(spark, tables.PLAN_COMMITMENTS, s).collect()
    assert sorted(r["plan_id"] for r in commitments) == ["CJ-20261001", "CJ-20261101",
                                                         "CJ-20261201"]  # fmt: skip
    folder = second.plan.public_csv.parent
    v = verify_plan(folder)
    assert v.ok, v.problems
    assert any("selection recomputed" in c for c in v.checks)
    assert any("assignment recomputed" in c for c in v.checks)
    # a forged plan: another enterprise swapped in
    forged = tmp_path / "plans" / "CJ-20261101"
    shutil.copytree(folder, forged)
    shutil.copytree(folder.parent / "commitments", tmp_path / "plans" / "commitments")
    text = (forged / "public_plan.csv").read_text(encoding="utf-8-sig")
    drawn_one = second.plan.public_csv.read_text(encoding="utf-8-sig").splitlines()[1]
    uscc = drawn_one.split(",")[4]
    other = next(f"{R1}{i:04d}" for i in range(2, 60) if f"{R1}{i:04d}" not in text)
    (forged / "public_plan.csv").write_text(text.replace(uscc, other), encoding="utf-8-sig")
    bad = verify_plan(forged)
    assert not bad.ok and any("draw values" in p or "selects" in p for p in bad.problems)
    # a seed other than the committed one
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    man["seed"] += 1
    shutil.copy(folder / "public_plan.csv", forged / "public_plan.csv")
    (forged / "manifest.json").write_text(json.dumps(man), encoding="utf-8")
    assert any("commitment" in p for p in verify_plan(forged).problems)


def test_outcome_template_validates_results_and_dates_and_reads_back(spark, lake, tmp_path):
    import pandas as pd

    from pipelines.inspection_results import OUTCOME_HEADERS, RESULT_TEXT
    from pipelines.simulator.outcomes import fill_outcome_file
    from risk_insight.outcomes import OutcomeFileError, read_outcome_file, write_template
    from risk_insight.plan import plan_rows

    s, _, second = lake
    plan = {r["uscc"]: r for r in plan_rows(spark, second.plan.plan_id, s).collect()}
    path = write_template(spark, second.plan.plan_id, s)
    ws = load_workbook(path).active
    header = [c.value for c in ws[HEADER_ROW]]
    assert header == list(OUTCOME_HEADERS.values())
    rows = list(ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True))
    assert sorted(r[1] for r in rows) == sorted(plan)  # one row per drawn enterprise
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1 and all(t in lists[0].formula1 for t in RESULT_TEXT.values())
    assert "H" in str(lists[0].sqref)  # the result column
    dates = [dv for dv in ws.data_validations.dataValidation if dv.type == "date"]
    assert dates and "DATE(2026,11,1)" in dates[0].formula1 and "I" in str(dates[0].sqref)
    assert ws.protection.sheet and not ws.cell(HEADER_ROW + 1, 8).protection.locked
    assert ws.cell(HEADER_ROW + 1, 2).protection.locked  # the USCC cannot be typed over
    # both inspectors are pre-filled (110101 has three on its roster)
    ids = {r[1]: r[6] for r in rows}
    u = next(k for k, v in plan.items() if v["inspector_2_id"])
    assert ids[u] == f"{plan[u]['inspector_id']};{plan[u]['inspector_2_id']}"
    # the simulator fills it as an inspector would; reading it back gives every row
    truth = tmp_path / "truth"
    truth.mkdir()
    pd.DataFrame({"uscc": list(plan), "month": date(2026, 11, 1), "true_p": 0.5}).to_parquet(
        truth / "true_risk.parquet"
    )
    filled = tmp_path / "filled.xlsx"
    done = fill_outcome_file(path, truth, filled, T1, seed=1, unreachable=0.2, not_inspected=0.1)
    back = read_outcome_file(filled)
    assert back.plan_id == "CJ-20261101" and back.open_rows == 0
    assert len(back.filled) == len(plan) and set(back.filled["result"]) <= set(RESULT_TEXT.values())
    assert (back.filled.set_index("uscc")["result"] == done.set_index("uscc")["result"]).all()
    # a row left blank is open, not delivered; a second plan id in one file is refused
    wb = load_workbook(filled)
    ws = wb.active
    ws.cell(HEADER_ROW + 1, 8).value = None  # (value=None would not clear it)
    wb.save(filled)
    assert read_outcome_file(filled).open_rows == 1
    ws.cell(HEADER_ROW + 2, 1, value="CJ-20261001")
    wb.save(filled)
    with pytest.raises(OutcomeFileError, match="one plan per file"):
        read_outcome_file(filled)
