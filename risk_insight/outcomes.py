"""Recording what inspectors found: the outcome file of a plan, and its import.

``write_template(spark, plan_id, settings)`` writes ``<outputs>/outcomes/<plan_id>/
outcomes_<plan_id>[_<region>].xlsx``: a title block, then one row per drawn enterprise
(plan id, USCC, name, district, registered address, both inspectors' names and ids) and the
columns an inspector fills in: 检查结果 (data validation: 发现问题 / 未发现问题 / 无法联系 /
未检查), 检查日期 (a date on or after the plan was drawn) and 备注. The pre-filled columns are
locked (sheet protection without a password: a guard against slips, not a security
boundary); the inspector-id column stays editable for a substitute.

``import_outcomes(spark, path, settings)`` reads a filled file and turns its filled rows into
an ordinary inspection delivery (in the inspection mapping's format, with the plan id; inspection id
``JC<plan_id>-<uscc>``, mode random draw, both inspector ids joined by ';', reported on the
delivery date) in ``<landing>/<delivery date>/`` under a name the mapping matches
(``inspection_outcomes-<plan_id>.csv`` for the demo bureau), records every filled row (notes
included) in ``audit.outcome_imports``, and runs that delivery date through the normal run
(``pipelines.run.run_day``), so the quality rules apply (an unreadable or future date is
quarantined with its reason and goes back in the rectification report). Rows left blank are
still open and are not delivered. A file that is not an outcome file, names another plan or
an enterprise the plan did not draw, or holds a result outside the four, is refused with the
rows at fault. Re-importing the same file delivers the same bytes, which land once.

Unreachable (无法联系) and not inspected (未检查) land as their canonical outcomes; labels, plan
completion and judging treat them as no observation, never as "no problem found".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, Protection
from openpyxl.worksheet.datavalidation import DataValidation
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.inspection_results import (
    OUTCOME_FILLED,
    OUTCOME_HEADERS,
    OUTCOME_SHEET,
    RESULT_TEXT,
    outcome_header_row,
)
from risk_insight.feedback import write_inspection_extract
from risk_insight.plan import plan_rows
from warehouse import tables
from warehouse.exports import neutralise
from warehouse.settings import Settings, get_settings

RESULTS = tuple(RESULT_TEXT.values())


def template_frame(
    spark: SparkSession, plan_id: str, settings: Settings, region_code: str | None = None
) -> pd.DataFrame:
    """One row per drawn enterprise of ``plan_id`` (one district's when ``region_code``), the
    outcome file's columns (see ``OUTCOME_HEADERS``) with the filled-in ones empty."""
    rows = plan_rows(spark, plan_id, settings)
    if region_code:
        rows = rows.where(F.col("region_code") == F.lit(region_code))
    ent = tables.read(spark, tables.DIM_ENTERPRISE, settings).where(F.col("is_current"))
    roster = tables.read(spark, tables.DIM_INSPECTOR, settings)
    names = tables.read(spark, tables.DIM_REGION, settings).select("region_code", "region_name")
    first = roster.select("inspector_id", F.col("name").alias("_n1"))
    second = roster.select(
        F.col("inspector_id").alias("inspector_2_id"), F.col("name").alias("_n2")
    )
    pdf = (
        rows.join(ent.select("uscc", "name", "address"), "uscc", "left")
        .join(names, "region_code", "left")
        .join(first, "inspector_id", "left")
        .join(second, "inspector_2_id", "left")
        .select(
            "plan_id",
            "uscc",
            "name",
            "region_name",
            "address",
            "region_code",
            "as_of",
            F.concat_ws("、", "_n1", "_n2").alias("inspectors"),
            F.concat_ws(";", "inspector_id", "inspector_2_id").alias("inspector_ids"),
        )  # fmt: skip
        .orderBy("region_code", "uscc")
        .toPandas()
    )
    for c in ("result", "inspected_on", "note"):
        pdf[c] = None
    return pdf


def outcomes_folder(settings: Settings, plan_id: str) -> Path:
    """``<outputs>/outcomes/<plan_id>/`` (0700: the files name enterprises and inspectors)."""
    folder = Path(settings.outputs_root) / "outcomes" / plan_id
    folder.mkdir(parents=True, exist_ok=True)
    folder.parent.chmod(0o700)
    folder.chmod(0o700)
    return folder


def write_template(
    spark: SparkSession,
    plan_id: str,
    settings: Settings | None = None,
    region_code: str | None = None,
    out: str | Path | None = None,
) -> Path:
    """Write the outcome file of ``plan_id`` (one district's with ``region_code``) and return
    its path. ValueError if the plan does not exist."""
    s = settings or get_settings()
    pdf = template_frame(spark, plan_id, s, region_code)
    if pdf.empty:
        raise ValueError(f"plan {plan_id} has no drawn enterprises"
                         + (f" in {region_code}" if region_code else ""))  # fmt: skip
    suffix = f"_{region_code}" if region_code else ""
    path = Path(out) if out else outcomes_folder(s, plan_id) / f"outcomes_{plan_id}{suffix}.xlsx"
    drawn_at = pd.to_datetime(pdf["as_of"]).dt.date.min()
    wb = Workbook()
    ws = wb.active
    ws.title = OUTCOME_SHEET
    district = pdf["region_name"].dropna().iat[0] if region_code else "全部区县 / all districts"
    title = [
        f"双随机抽查结果登记表 Inspection outcome form：{plan_id}",
        f"区县 / district：{district}    抽取日期 / drawn on：{drawn_at}    "
        f"共 {len(pdf)} 家 / enterprises",
        "填写 / fill in：检查结果（下拉选择：" + " / ".join(RESULTS) + "）、检查日期（每条结果都须"
        "填写；未检查填报告日期）、备注；换人检查时改写检查人员编号（以 ; 分隔）",
        f"生成时间 / generated at：{datetime.now().replace(microsecond=0).isoformat(sep=' ')}",
    ]
    for i, line in enumerate(title, start=1):
        ws.cell(row=i, column=1, value=line).font = Font(bold=i == 1, size=14 if i == 1 else 10)
    ws.append([])
    header_row = len(title) + 2
    keys = list(OUTCOME_HEADERS)
    ws.append([OUTCOME_HEADERS[k] for k in keys])
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
    for r in pdf.itertuples(index=False):
        ws.append([None if pd.isna(getattr(r, k)) else neutralise(getattr(r, k)) for k in keys])
    last = header_row + len(pdf)
    letter = {k: chr(ord("A") + j) for j, k in enumerate(keys)}
    results = DataValidation(
        type="list", formula1='"' + ",".join(RESULTS) + '"', allow_blank=True,
        showErrorMessage=True, errorTitle="检查结果 / result",
        error="请从下拉列表选择 / choose one of: " + " / ".join(RESULTS),
    )  # fmt: skip
    results.add(f"{letter['result']}{header_row + 1}:{letter['result']}{last}")
    dates = DataValidation(
        type="date", operator="greaterThanOrEqual",
        formula1=f"DATE({drawn_at.year},{drawn_at.month},{drawn_at.day})", allow_blank=True,
        showErrorMessage=True, errorTitle="检查日期 / date",
        error=f"日期不得早于抽取日期 {drawn_at} / a date on or after {drawn_at}",
    )  # fmt: skip
    dates.add(f"{letter['inspected_on']}{header_row + 1}:{letter['inspected_on']}{last}")
    ws.add_data_validation(results)
    ws.add_data_validation(dates)
    for row in ws.iter_rows(min_row=header_row + 1, max_row=last):
        for k, c in zip(keys, row, strict=True):
            if isinstance(c.value, str):
                c.data_type = "s"
            if k in OUTCOME_FILLED:
                c.protection = Protection(locked=False)
            if k == "inspected_on":
                c.number_format = "yyyy-mm-dd"
    widths = {"plan_id": 14, "uscc": 22, "name": 30, "region_name": 10, "address": 36,
              "inspectors": 16, "inspector_ids": 26, "result": 12, "inspected_on": 12,
              "note": 36}  # fmt: skip
    for k, w in widths.items():
        ws.column_dimensions[letter[k]].width = w
    ws.freeze_panes = f"A{header_row + 1}"
    ws.auto_filter.ref = f"A{header_row}:{letter[keys[-1]]}{last}"
    ws.protection.sheet = True
    ws.protection.autoFilter = False  # filtering stays allowed on the protected sheet
    ws.protection.sort = False
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    path.chmod(0o600)
    return path


class OutcomeFileError(ValueError):
    """A filled outcome file that cannot be delivered as it is (the message names the rows)."""


@dataclass
class OutcomeFile:
    """The filled rows of an outcome file and the rows still open."""

    path: Path
    sha256: str
    plan_id: str
    filled: pd.DataFrame  # sheet_row, plan_id, uscc, inspector_ids, result, inspected_on, note
    open_rows: int


def _cell_date(value: object) -> object:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()  # conform reads the accepted spellings, quarantines the rest


def read_outcome_file(path: str | Path) -> OutcomeFile:
    """The filled rows of an outcome file, checked: it is an outcome file, one plan only,
    every result one of the four, every enterprise once. Raises OutcomeFileError naming the
    rows at fault. Pure (no Spark): the plan itself is checked by :func:`import_outcomes`."""
    p = Path(path)
    raw = p.read_bytes()
    wb = load_workbook(p, data_only=True, read_only=True)
    ws = wb[OUTCOME_SHEET] if OUTCOME_SHEET in wb.sheetnames else wb.active
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    h = outcome_header_row(rows[:30])
    if h is None:
        raise OutcomeFileError(
            f"{p.name}: not an outcome file (no header row with "
            f"{OUTCOME_HEADERS['plan_id']!r} and {OUTCOME_HEADERS['uscc']!r})"
        )
    col = {str(v).strip(): j for j, v in enumerate(rows[h]) if v is not None}
    missing = [v for k, v in OUTCOME_HEADERS.items()
               if k in ("plan_id", "uscc", "result", "inspected_on", "inspector_ids")
               and v not in col]  # fmt: skip
    if missing:
        raise OutcomeFileError(f"{p.name}: missing column(s) {missing}")

    def get(row: list[object], key: str) -> object:
        j = col.get(OUTCOME_HEADERS[key])
        return row[j] if j is not None and j < len(row) else None

    filled, problems, open_rows = [], [], 0
    for i, row in enumerate(rows[h + 1 :], start=h + 2):
        uscc = str(get(row, "uscc") or "").strip().lstrip("'")
        if not uscc:
            continue
        result = str(get(row, "result") or "").strip()
        if not result:
            open_rows += 1
            continue
        if result not in RESULTS:
            problems.append(f"第{i}行 / row {i}: 检查结果 {result!r} 不是 " + " / ".join(RESULTS))
            continue
        filled.append(
            {
                "sheet_row": i,
                "plan_id": str(get(row, "plan_id") or "").strip(),
                "uscc": uscc,
                "inspector_ids": str(get(row, "inspector_ids") or "").strip(),
                "result": result,
                "inspected_on": _cell_date(get(row, "inspected_on")),
                "note": (str(get(row, "note")).strip() or None) if get(row, "note") else None,
            }
        )
    df = pd.DataFrame(
        filled,
        columns=["sheet_row", "plan_id", "uscc", "inspector_ids", "result", "inspected_on",
                 "note"],
    )  # fmt: skip
    plans = sorted(set(df["plan_id"]))
    if len(plans) > 1 or (plans and not plans[0]):
        problems.append(f"一份文件只能登记一个抽查计划 / one plan per file, found {plans}")
    dup = df[df.duplicated("uscc", keep=False)]
    for u, g in dup.groupby("uscc"):
        problems.append(
            f"企业 {u} 登记了多次 / entered more than once: rows {list(g['sheet_row'])}"
        )
    if problems:
        raise OutcomeFileError(f"{p.name}: " + "; ".join(problems))
    return OutcomeFile(p, hashlib.sha256(raw).hexdigest(), plans[0] if plans else "", df,
                       open_rows)  # fmt: skip


@dataclass
class OutcomeImport:
    """What an import delivered and how the run landed it."""

    plan_id: str
    file: Path
    extract: Path | None
    delivery_date: date | None
    filled: int
    open_rows: int
    by_result: dict[str, int] = field(default_factory=dict)
    landed: int = 0
    quarantined: int = 0
    skipped: bool = False  # the same extract had landed already
    run: object | None = None  # pipelines.run.DayRun


def import_outcomes(
    spark: SparkSession,
    path: str | Path,
    settings: Settings | None = None,
    delivery_date: date | None = None,
    run: bool = True,
    progress=None,
) -> OutcomeImport:
    """Deliver the filled rows of the outcome file ``path`` as an inspection extract on
    ``delivery_date`` (default today) and, when ``run``, land it through ``run_day``.
    Raises OutcomeFileError for a file that does not fit its plan (see module doc)."""
    s = settings or get_settings()
    f = read_outcome_file(path)
    day = delivery_date or date.today()
    result = OutcomeImport(f.plan_id, f.path, None, None, len(f.filled), f.open_rows)
    result.by_result = {r: int((f.filled["result"] == r).sum()) for r in RESULTS}
    if f.filled.empty:
        return result
    plan = plan_rows(spark, f.plan_id, s).select("uscc", "inspector_id", "inspector_2_id")
    planned = {r["uscc"]: r for r in plan.collect()}
    if not planned:
        raise OutcomeFileError(f"{f.path.name}: no plan {f.plan_id} in gold.inspection_plan")
    strangers = f.filled[~f.filled["uscc"].isin(planned)]
    if len(strangers):
        rows = ", ".join(f"{r.sheet_row} ({r.uscc})" for r in strangers.itertuples())
        raise OutcomeFileError(
            f"{f.path.name}: row(s) {rows} name enterprises plan {f.plan_id} did not draw"
        )
    df = f.filled.copy()

    def team(r) -> str:
        if r.inspector_ids:
            return ";".join(x for x in r.inspector_ids.replace("；", ";").split(";") if x.strip())
        p = planned[r.uscc]
        return ";".join(x for x in (p["inspector_id"], p["inspector_2_id"]) if x)

    df["inspector_id"] = [team(r) for r in df.itertuples()]
    extract, landed_day = write_inspection_extract(
        df, s, day, reported_on=day, tag=f"outcomes-{f.plan_id}"
    )
    result.extract, result.delivery_date = extract, landed_day
    _record(spark, f, df, landed_day, extract, s)
    if run:
        from pipelines.run import run_day

        day_run = run_day(spark, Path(s.landing_root), landed_day, s, progress=progress,
                          docs=False)  # fmt: skip
        result.run = day_run
        got = next((r for r in day_run.ingested if r.source == "inspection"), None)
        result.skipped = got is None or got.status != "landed"
        conformed = next((c for c in day_run.conformed if c.source == "inspection"), None)
        if conformed is not None:
            result.landed = conformed.rows_conformed
            result.quarantined = conformed.rows_quarantined + (got.rows_quarantined if got else 0)
    return result


def _record(
    spark: SparkSession, f: OutcomeFile, df: pd.DataFrame, day: date, extract: Path, s: Settings
) -> None:
    """Every filled row into audit.outcome_imports (this file's rows replaced)."""
    target = tables.OUTCOME_IMPORTS
    tables.ensure(spark, target, s)
    now = datetime.now().replace(microsecond=0)
    rows = [
        (f.sha256, f.path.name, int(r.sheet_row), r.plan_id, r.uscc, r.result,
         None if r.inspected_on is None else str(r.inspected_on), r.inspector_id, r.note, day,
         str(extract), now)
        for r in df.itertuples()
    ]  # fmt: skip
    tables.replace(spark.createDataFrame(rows, target.schema), target, s, file_sha256=f.sha256)


def plan_completion(spark: SparkSession, plan_id: str, settings: Settings | None = None):
    """Completion of ``plan_id`` per district and per inspector (pandas, small): drawn,
    inspected (took place), found, unreachable, not inspected, not yet reported."""
    from pipelines.marts import mart_plan_completion

    s = settings or get_settings()
    by_district, by_inspector = mart_plan_completion.build(
        spark,
        plan_rows(spark, plan_id, s),
        tables.read(spark, tables.FCT_INSPECTION, s),
        tables.read(spark, tables.DIM_REGION, s),
        tables.read(spark, tables.DIM_INSPECTOR, s),
    )
    return (
        by_district.orderBy("region_code").toPandas(),
        by_inspector.orderBy("region_code", "inspector_id").toPandas(),
    )
