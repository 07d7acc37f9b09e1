"""Rectification reports (数据质量反馈整改): per source system and run, every problem of its
delivery — each quarantined row with its file, row, field, value and the rule it broke, each
file that was rejected (and why), columns its mapping does not name, and a delivery that was
expected and did not come — as CSV (UTF-8 with BOM, opens in Excel) and HTML, so the owning
department can correct and re-deliver.

Values of personal-data fields are never shown: quarantine keeps only tokens for them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from quality.gates import UNMATCHED, expected_sources
from warehouse import contracts, tables
from warehouse.exports import neutralise_frame
from warehouse.settings import Settings

HEADERS = {
    "source_file": "源文件 / source file",
    "row": "行号 / row",
    "field": "字段 / field",
    "value": "值 / value",
    "rule": "违反规则 / rule broken",
    "reason": "原因 / reason",
    "stage": "环节 / stage",
    "batch": "批次 / batch",
}


@dataclass(frozen=True)
class Report:
    """Where one source's report of one run was written, and how many problems it lists."""

    source: str
    run_date: date
    csv: Path
    html: Path
    problems: int


@dataclass(frozen=True)
class Owner:
    """Who a report goes to and what it is about."""

    source: str
    title_zh: str
    title_en: str
    owner_zh: str
    headers: dict[str, str]  # canonical field -> the header the source's files use


UNMATCHED_OWNER = Owner(
    UNMATCHED,
    "未识别的文件",
    "files no source mapping claims",
    "数据管理员 / data administrator",
    {},
)


def resolve_source(name: str, settings: Settings) -> Owner:
    """A source by its name or a plural of it (``penalties`` → ``penalty``), as its mapping
    names it; KeyError naming the known sources."""
    if name == UNMATCHED:
        return UNMATCHED_OWNER
    found = contracts.mappings(settings)
    for m in found.values():
        plurals = {m.source + "s", m.source[:-1] + "ies", m.source + "es"}
        if name == m.source or name in plurals:
            headers = {f: m.header_of(f) for f in m.fields}
            return Owner(m.source, m.title_zh, m.title_en, m.owner_zh, headers)
    raise KeyError(f"unknown source {name!r}; known: {', '.join(found)}")


def reports_root(settings: Settings) -> Path:
    """``reports_root`` or ``<lake_root>/../reports``."""
    return Path(settings.reports_dir())


def problems(spark: SparkSession, owner: Owner, run_date: date, settings: Settings) -> pd.DataFrame:
    """Every problem of ``owner``'s delivery of ``run_date`` (small: collected) with the
    report's bilingual headers: files first (rejected, unmatched, unmapped columns, a missing
    delivery), then quarantined rows in file and row order. Rows released since (their
    enterprise was registered later) are not problems any more."""
    q = tables.read(spark, tables.REJECTED_ROWS, settings).where(
        (F.col("source") == owner.source)
        & (F.col("_run_date") == F.lit(run_date))
        & ~F.coalesce(F.col("released"), F.lit(False))
    )
    rows = q.select(
        "_source_file",
        "_source_row",
        "field",
        "value",
        "check_name",
        "reason",
        "stage",
        "_batch_id",
    ).orderBy("_source_file", "_source_row", "check_name")
    df = rows.toPandas()
    df["field"] = [
        f"{owner.headers[f]} / {f}" if f in owner.headers else (f or "(整行 / whole row)")
        for f in df["field"]
    ]
    df = pd.concat([_file_problems(spark, owner, run_date, settings), df], ignore_index=True)
    # Folder/file as delivered (<date>/<file>), not the path on the engine's machine.
    df["_source_file"] = [
        str(PurePosixPath(*Path(p).parts[-2:])) if p else "" for p in df["_source_file"]
    ]
    df.columns = list(HEADERS.values())
    return df


def _file_problems(
    spark: SparkSession, owner: Owner, run_date: date, settings: Settings
) -> pd.DataFrame:
    """Report lines for the source's files of the day that did not land cleanly, and for a
    delivery that was expected but did not come."""
    log = (
        tables.read(spark, tables.INGEST_LOG, settings)
        .where((F.col("source") == owner.source) & (F.col("run_date") == F.lit(run_date)))
        .orderBy("source_file")
        .collect()
    )
    lines = []
    for r in log:
        if r["status"] in ("rejected", "unmatched"):
            lines.append((r["source_file"], None, "(整个文件 / whole file)", None,
                          "file_accepted", f"文件未接入 / file not landed: {r['message']}",
                          "ingest", r["batch_id"]))  # fmt: skip
        elif r["status"] == "landed" and (r["unmapped_columns"] or r["missing_columns"]):
            lines.append((r["source_file"], None, "(表头 / header)", None, "columns_mapped",
                          f"未映射列 / unmapped columns {list(r['unmapped_columns'] or [])}; "
                          f"缺少列 / missing columns {list(r['missing_columns'] or [])}",
                          "ingest", r["batch_id"]))  # fmt: skip
    if owner.source in expected_sources(run_date, settings) and not log:
        lines.append((None, None, "(整批 / whole delivery)", None, "delivery_expected",
                      f"应报送而未报送 / expected delivery on {run_date} did not arrive",
                      "delivery", None))  # fmt: skip
    cols = ["_source_file", "_source_row", "field", "value", "check_name", "reason", "stage",
            "_batch_id"]  # fmt: skip
    return pd.DataFrame(lines, columns=cols)


def _html(spec: Owner, run_date: date, df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in df.columns)
    body = "\n".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>" for v in row)
        + "</tr>"
        for row in df.itertuples(index=False)
    )
    by_rule = df.groupby(HEADERS["reason"]).size().sort_values(ascending=False)
    summary = "".join(f"<li>{html.escape(str(reason))}: {n}</li>" for reason, n in by_rule.items())
    title = f"数据质量整改通知 / rectification report — {spec.title_zh} / {spec.title_en}"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)} {run_date}</title>
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 6px;font-size:13px}}th{{background:#eee}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>报送日期 / delivery date: {run_date} · 责任部门 / owner: {html.escape(spec.owner_zh)} ·
问题行数 / problems: {len(df)}</p>
<p>请更正以下记录并在新文件中重新报送 / please correct these records and re-deliver them in a
new file; corrected rows are accepted once.</p>
<ul>{summary}</ul>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table></body></html>
"""


def write_report(
    spark: SparkSession, source_name: str, run_date: date, settings: Settings
) -> Report:
    """Write ``<reports_root>/<date>/rectification_<source>.csv`` and ``.html``."""
    owner = resolve_source(source_name, settings)
    df = problems(spark, owner, run_date, settings)
    folder = reports_root(settings) / run_date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    name = owner.source.lstrip("_")
    csv_path = folder / f"rectification_{name}.csv"
    html_path = folder / f"rectification_{name}.html"
    # a delivered value may be a spreadsheet formula (=HYPERLINK(...)): never pass it on live
    neutralise_frame(df).to_csv(csv_path, index=False, encoding="utf-8-sig")
    html_path.write_text(_html(owner, run_date, df), encoding="utf-8")
    return Report(owner.source, run_date, csv_path, html_path, len(df))


def write_run_reports(spark: SparkSession, run_date: date, settings: Settings) -> list[Report]:
    """One report per source with a problem in its delivery of ``run_date``: quarantined rows,
    a file that did not land cleanly, or an expected delivery that did not come (and one for
    files no mapping claims)."""
    quarantined = {
        r["source"]
        for r in tables.read(spark, tables.REJECTED_ROWS, settings)
        .where(
            (F.col("_run_date") == F.lit(run_date)) & ~F.coalesce(F.col("released"), F.lit(False))
        )
        .select("source")
        .distinct()
        .collect()
    }
    log = tables.read(spark, tables.INGEST_LOG, settings).where(
        F.col("run_date") == F.lit(run_date)
    )
    odd_files = {
        r["source"]
        for r in log.where(
            F.col("status").isin("rejected", "unmatched")
            | (
                (F.col("status") == "landed")
                & (F.size("unmapped_columns") + F.size("missing_columns") > 0)
            )
        )
        .select("source")
        .distinct()
        .collect()
    }
    delivered = {r["source"] for r in log.select("source").distinct().collect()}
    missing = set(expected_sources(run_date, settings)) - delivered
    return [
        write_report(spark, s, run_date, settings)
        for s in sorted(quarantined | odd_files | missing)
    ]
