"""Rectification reports (数据质量反馈整改): per source system and run, every quarantined row
with its file, row, field, value and the rule it broke, as CSV (UTF-8 with BOM, opens in Excel)
and HTML, so the owning department can correct and re-deliver it.

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

from pipelines.sources import SOURCES, SourceSpec, source
from warehouse import tables
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


def resolve_source(name: str) -> SourceSpec:
    """A source by its name or a plural of it (``penalties`` → ``penalty``)."""
    if name in SOURCES:
        return SOURCES[name]
    for spec in SOURCES.values():
        plurals = {spec.name + "s", spec.name[:-1] + "ies", spec.name + "es"}
        if name in plurals:
            return spec
    return source(name)  # raises KeyError naming the known sources


def reports_root(settings: Settings) -> Path:
    """``reports_root`` or ``<lake_root>/../reports``."""
    return Path(settings.reports_dir())


def problems(
    spark: SparkSession, spec: SourceSpec, run_date: date, settings: Settings
) -> pd.DataFrame:
    """The quarantined rows of ``spec`` delivered on ``run_date`` (small: collected), with the
    report's bilingual headers, in file and row order."""
    q = tables.read(spark, tables.REJECTED_ROWS, settings).where(
        (F.col("source") == spec.name) & (F.col("_run_date") == F.lit(run_date))
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
    # Folder/file as delivered (<date>/<file>), not the path on the engine's machine.
    df["_source_file"] = [str(PurePosixPath(*Path(p).parts[-2:])) for p in df["_source_file"]]
    df["field"] = [
        f"{spec.columns[f]} / {f}" if f in spec.columns else (f or "(整行 / whole row)")
        for f in df["field"]
    ]
    df.columns = list(HEADERS.values())
    return df


def _html(spec: SourceSpec, run_date: date, df: pd.DataFrame) -> str:
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
    spec = resolve_source(source_name)
    df = problems(spark, spec, run_date, settings)
    folder = reports_root(settings) / run_date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"rectification_{spec.name}.csv"
    html_path = folder / f"rectification_{spec.name}.html"
    df.to_csv(csv_path, index=False, encoding="utf-8-sig")
    html_path.write_text(_html(spec, run_date, df), encoding="utf-8")
    return Report(spec.name, run_date, csv_path, html_path, len(df))


def write_run_reports(spark: SparkSession, run_date: date, settings: Settings) -> list[Report]:
    """One report per source with quarantined rows delivered on ``run_date``."""
    with_problems = [
        r["source"]
        for r in tables.read(spark, tables.REJECTED_ROWS, settings)
        .where(F.col("_run_date") == F.lit(run_date))
        .select("source")
        .distinct()
        .collect()
    ]
    return [write_report(spark, s, run_date, settings) for s in sorted(with_problems)]
