"""``risk-insight sources check DIR``: a dry run of the source mappings over a landing folder.

For every file: the source it matched (or none), its encoding, how its headers map onto the
canonical fields, unmapped and missing columns, and — after typing its rows exactly as
conform would — how many rows each rule would quarantine (or warn about), with examples:
words outside a vocabulary, dates in no accepted spelling, unknown region codes, and so on.
Nothing is written to the lake: enterprises are known from the lake's registry when it
exists and from the registry files of the folder checked.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.conform import FACT_MODELS, dim_enterprise
from pipelines.conform._common import Staging, with_raw
from pipelines.ingest import IngestError, delivery_files, match
from pipelines.ingest.readers import read_file
from quality.policy import policy_for
from quality.rules import RowRule
from warehouse import contracts, tables
from warehouse.contracts import SourceMapping
from warehouse.settings import Settings

EXAMPLES = 3


@dataclass
class RuleCount:
    """One rule over one file: rows breaking it, its gate, and a few raw values."""

    rule: str
    field: str
    gate: str  # block (rows would be quarantined) | warn
    rows: int
    reason: str
    examples: list[str] = field(default_factory=list)


@dataclass
class FileCheck:
    """What the dry run found in one file."""

    file: Path
    source: str | None
    status: str  # ok | unmatched | ambiguous | rejected
    message: str = ""
    encoding: str = ""
    headers: list[tuple[str, str | None]] = field(default_factory=list)  # header → field
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    rows: int = 0
    unsplittable: int = 0  # lines with another field count, or undecodable bytes
    rules: list[RuleCount] = field(default_factory=list)

    @property
    def would_quarantine(self) -> int:
        return self.unsplittable + sum(r.rows for r in self.rules if r.gate == "block")


def delivery_folders(path: Path) -> list[Path]:
    """``path`` itself when it holds files, else its date-named sub-folders (a landing root)."""
    if any(p.is_file() for p in delivery_files(path)):
        return [path]
    return sorted(p for p in path.iterdir() if p.is_dir() and _as_date(p.name))


def _as_date(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _model(source: str, settings: Settings) -> tuple[list[RowRule], object, tables.Table]:
    if source == dim_enterprise.SOURCE:
        return (
            dim_enterprise.rules(settings.jurisdiction),
            dim_enterprise.stage,
            dim_enterprise.TARGET,
        )
    model = next(m for m in FACT_MODELS if m.source == source)
    return model.rules, model.stage, model.target


def _known_enterprises(
    spark: SparkSession, settings: Settings, registry_rows: list[DataFrame]
) -> DataFrame:
    """(uscc, _known_enterprise, _founded_on) from the lake's registry (if any) and the
    registry files being checked; read only, nothing created."""
    parts = [r.select("uscc", F.col("founded_on").alias("_founded_on")) for r in registry_rows]
    path = tables.DIM_ENTERPRISE.path(settings)
    if DeltaTable.isDeltaTable(spark, path):
        dim = spark.read.format("delta").load(path)
        parts.append(dim.select("uscc", F.col("founded_on").alias("_founded_on")))
    if not parts:
        return spark.createDataFrame([], "uscc string, _known_enterprise boolean, _founded_on date")
    union = parts[0]
    for p in parts[1:]:
        union = union.unionByName(p)
    return union.groupBy("uscc").agg(
        F.lit(True).alias("_known_enterprise"), F.min("_founded_on").alias("_founded_on")
    )


def _staged(
    spark: SparkSession, mapping: SourceMapping, path: Path, day: date, settings: Settings
) -> tuple[DataFrame, DataFrame, str, object]:
    raw, lay, encoding = read_file(spark, mapping, path)
    raw = raw.withColumns(
        {
            "_source_file": F.lit(str(path)),
            "_batch_id": F.lit("dry-run"),
            "_run_date": F.lit(day),
            "_ingested_at": F.lit(datetime.now()),
        }
    ).cache()
    _, stage, _ = _model(mapping.source, settings)
    good = raw.where(F.col("_problem").isNull())
    staged = stage(with_raw(good, mapping.source), Staging(settings.resolved_pii_key(), mapping))
    return raw, staged, encoding, lay


def check_file(
    spark: SparkSession,
    path: Path,
    mappings: dict[str, SourceMapping],
    day: date,
    settings: Settings,
    known: DataFrame | None = None,
) -> tuple[FileCheck, DataFrame | None]:
    """The dry run of one file (and its staged rows, for the registry's enterprises)."""
    claims = match(path.name, mappings)
    if not claims:
        return FileCheck(
            path, None, "unmatched", "没有匹配的数据源映射 / no mapping claims it"
        ), None
    if len(claims) > 1:
        names = ", ".join(m.source for m in claims)
        return FileCheck(path, None, "ambiguous", f"matches several mappings: {names}"), None
    mapping = claims[0]
    try:
        raw, staged, encoding, lay = _staged(spark, mapping, path, day, settings)
    except IngestError as exc:
        return FileCheck(path, mapping.source, "rejected", str(exc)), None
    columns = {i: (str(lay.headers[i]), f) for f, i in lay.fields.items()}
    columns.update({i: (str(lay.headers[i]), f"attributes.{a}") for a, i in lay.attributes.items()})
    columns.update({i: (h, None) for h, i in lay.extra.items()})
    check = FileCheck(
        path,
        mapping.source,
        "ok",
        encoding=encoding,
        headers=[columns[i] for i in sorted(columns)],
        unmapped=list(lay.unmapped),
        missing=list(lay.missing),
    )
    counts = raw.agg(F.count("*"), F.count("_problem")).first()
    check.rows, check.unsplittable = int(counts[0]), int(counts[1])
    rules, _, target = _model(mapping.source, settings)
    if mapping.source != dim_enterprise.SOURCE:
        facts = known if known is not None else _known_enterprises(spark, settings, [])
        staged = staged.join(F.broadcast(facts), "uscc", "left").fillna(
            {"_known_enterprise": False}
        )
    policy = policy_for(settings)
    broken = staged.agg(*[F.sum(r.column().cast("int")).alias(r.name) for r in rules]).first()
    for r in rules:
        n = int(broken[r.name] or 0)
        if n == 0:
            continue
        column = f"{r.field}__raw" if f"{r.field}__raw" in staged.columns else r.field
        pii = r.field in mapping.canonical.pii
        examples = (
            []
            if pii
            else [
                str(x[0])
                for x in staged.where(r.column())
                .select(column)
                .distinct()
                .limit(EXAMPLES)
                .collect()
            ]
        )
        check.rules.append(
            RuleCount(r.name, r.field, policy.gate(target.qualified, r.name), n, r.reason, examples)
        )
    raw.unpersist()
    return check, staged if mapping.source == dim_enterprise.SOURCE else None


def check_folder(spark: SparkSession, folder: Path, settings: Settings) -> list[FileCheck]:
    """The dry run of every file in a delivery folder, or in each delivery folder of a landing
    root. Registry files are checked first, so the other files know their enterprises."""
    mappings = contracts.mappings(settings)
    out: list[FileCheck] = []
    registry_rows: list[DataFrame] = []  # earlier folders' registry rows count as known too
    for day_folder in delivery_folders(folder):
        day = _as_date(day_folder.name) or date.today()
        files = delivery_files(day_folder)
        registry_first = sorted(
            files, key=lambda p: [m.source for m in match(p.name, mappings)] != ["registry"]
        )
        known = None
        for path in registry_first:
            is_registry = [m.source for m in match(path.name, mappings)] == ["registry"]
            if not is_registry and known is None:
                known = _known_enterprises(spark, settings, registry_rows).cache()
            check, staged = check_file(spark, path, mappings, day, settings, known)
            if staged is not None:
                registry_rows.append(staged)
            out.append(check)
        if known is not None:
            known.unpersist()
    return out


def problem_rows(checks: list[FileCheck]) -> list[list[object]]:
    """(file, rule, gate, rows, examples) of every problem found: a file that cannot land,
    unsplittable lines, and each rule some rows break."""
    out: list[list[object]] = []
    for c in checks:
        name = f"{c.file.parent.name}/{c.file.name}"
        if c.message:
            out.append([name, c.status, "block", "-", c.message])
        if c.unsplittable:
            out.append([name, "field_count / decodable", "block", c.unsplittable, ""])
        out += [[name, r.rule, r.gate, r.rows, ", ".join(r.examples)] for r in c.rules]
    return out


def summary_frame(checks: list[FileCheck]) -> pd.DataFrame:
    """One row per file: what the terminal table and the CSV report show."""
    return pd.DataFrame(
        [
            {
                "文件 / file": f"{c.file.parent.name}/{c.file.name}",
                "数据源 / source": c.source or "-",
                "状态 / status": c.status,
                "编码 / encoding": c.encoding,
                "行数 / rows": c.rows,
                "将隔离 / would quarantine": c.would_quarantine,
                "未映射列 / unmapped": ", ".join(c.unmapped),
                "缺少列 / missing": ", ".join(c.missing),
                "问题 / problems": "; ".join(
                    [c.message] * bool(c.message)
                    + [f"{c.unsplittable} 行无法拆分 / unsplittable"] * bool(c.unsplittable)
                    + [f"{r.rule} ({r.gate}) {r.rows}: {', '.join(r.examples)}" for r in c.rules]
                ),
            }
            for c in checks
        ]
    )


def write_report(checks: list[FileCheck], out: Path) -> tuple[Path, Path]:
    """``sources_check.csv`` (one row per file, UTF-8 with BOM) and ``sources_check.html``
    (the summary, then per file its header mapping and rule counts with examples)."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out / "sources_check.csv", out / "sources_check.html"
    summary = summary_frame(checks)
    summary.to_csv(csv_path, index=False, encoding="utf-8-sig")

    def table(df: pd.DataFrame) -> str:
        return df.to_html(index=False, escape=True, border=0)

    parts = [
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'>",
        "<title>数据源映射检查 / source mapping check</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px;font-size:13px}th{background:#eee}</style>",
        "</head><body><h1>数据源映射检查 / source mapping check</h1>",
        f"<p>{len(checks)} files; nothing was written to the lake.</p>",
        table(summary),
    ]
    for c in checks:
        parts.append(f"<h2>{html.escape(c.file.name)} → {html.escape(c.source or '-')}</h2>")
        if c.message:
            parts.append(f"<p>{html.escape(c.message)}</p>")
        if c.headers:
            parts.append(
                table(
                    pd.DataFrame(
                        [(h, f or "(未映射 / unmapped)") for h, f in c.headers],
                        columns=["表头 / header", "字段 / field"],
                    )
                )
            )
        if c.rules:
            parts.append(
                table(
                    pd.DataFrame(
                        [
                            (r.rule, r.field, r.gate, r.rows, r.reason, ", ".join(r.examples))
                            for r in c.rules
                        ],
                        columns=[
                            "规则 / rule",
                            "字段 / field",
                            "门禁 / gate",
                            "行数 / rows",
                            "原因 / reason",
                            "示例 / examples",
                        ],
                    )  # fmt: skip
                )
            )
    parts.append("</body></html>")
    html_path.write_text("\n".join(parts), encoding="utf-8")
    return csv_path, html_path
