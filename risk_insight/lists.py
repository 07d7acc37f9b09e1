"""Target lists (检查对象名单): one district's enterprises ranked by risk, with tier, credit
score, the rule or model rank behind the tier and the top reasons in Chinese.

Files are for people, and are printed and carried: each district gets its own folder
``<outputs>/lists/<as_of>/<region>/`` (0700; files 0600: a list names enterprises and their
risk) with the district list as CSV in UTF-8 with BOM (Excel opens it without garbling
Chinese) and as XLSX, plus one XLSX per inspector of this period's plan with only the
enterprises they are assigned to. Every XLSX opens with a title block (district, period, plan,
as-of date, policy and model version, generated at), has filters on its header row and prints
landscape, fit to the page width, with the header row repeated on every page. Each row carries
the registered address, the district name, the plan and both inspectors. Any text cell
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading single quote
(OWASP CSV injection), so no list can carry a spreadsheet formula. Only one district's rows
are collected to the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from warehouse import tables
from warehouse.contracts.tier_policy import TierPolicy, policy_for
from warehouse.exports import neutralise_frame
from warehouse.settings import Settings, get_settings

HEADERS = {
    "rank": "排名 / rank",
    "uscc": "统一社会信用代码 / USCC",
    "name": "企业名称 / name",
    "tier": "风险等级 / tier",
    "credit_score": "信用分 / credit score",
    "basis": "分级依据 / basis",
    "reasons": "主要风险原因 / top reasons",
    "drawn": "本期抽查 / drawn",
    "inspector": "检查人员 / inspectors",
    "plan_id": "抽查计划 / plan",
    "address": "注册地址 / registered address",
    "region_name": "所在区县 / district",
}
RULE_TEXT = {
    "serious_list": "列入严重违法失信名单（规则定为D类）",
    "abnormal_list": "列入经营异常名录（规则定为不低于C类）",
}
TITLE_ROWS = 5  # the title block above the header row of every XLSX list
HEADER_ROW = TITLE_ROWS + 1


def list_frame(
    tiers: DataFrame,
    scores: DataFrame,
    enterprises: DataFrame,
    plan: DataFrame,
    roster: DataFrame,
    region_code: str | None,
    policy: TierPolicy,
    regions: DataFrame | None = None,
) -> DataFrame:
    """One district's list (every district's, ranked within each, when ``region_code`` is
    None), ranked by risk (rank 1 = highest): every non-excluded enterprise with tier, credit
    score, basis, top reasons (risk-raising ones only, Chinese; English in ``reasons_en``),
    whether this period's plan drew it, the plan and both inspectors (or why none could be
    assigned), the registered address and the district name. ``tiers`` and ``scores`` are
    one as-of date; ``plan`` is the plan in force then; ``inspector_ids`` (';'-joined) lets
    the per-inspector lists be cut from it."""
    from risk_insight.plan import UNASSIGNED_TEXT

    n = policy.lists.top_reasons
    risky = F.filter(
        "reasons",
        lambda r: (r["contribution"] > 0) & F.coalesce(r["raises_risk"], F.lit(True)),
    )
    top = F.slice(risky, 1, n)
    reasons = scores.select(
        "uscc",
        F.array_join(F.transform(top, lambda r: r["text_zh"]), "；").alias("_model_reasons"),
        F.array_join(F.transform(top, lambda r: r["text_en"]), "; ").alias("_reasons_en"),
    )
    rule_text = F.create_map(*[F.lit(x) for kv in RULE_TEXT.items() for x in kv])
    unassigned = F.create_map(*[F.lit(x) for kv in UNASSIGNED_TEXT.items() for x in kv])
    names = enterprises.where(F.col("is_current")).select("uscc", "name", "address")
    first = roster.select("inspector_id", F.col("name").alias("_name_1"))
    second = roster.select(
        F.col("inspector_id").alias("inspector_2_id"), F.col("name").alias("_name_2")
    )
    drawn = (
        plan.select(
            "uscc",
            "plan_id",
            F.lit("是").alias("drawn"),
            "inspector_id",
            "inspector_2_id",
            "unassigned_reason",
        )  # fmt: skip
        .join(first, "inspector_id", "left")
        .join(second, "inspector_2_id", "left")
    )
    in_scope = ~F.col("excluded") & F.col("region_code").isNotNull()
    if region_code is not None:
        in_scope &= F.col("region_code") == F.lit(region_code)
    rows = (
        tiers.where(in_scope)
        .join(reasons, "uscc", "left")
        .join(names, "uscc", "left")
        .join(drawn, "uscc", "left")
    )
    if regions is not None:
        rows = rows.join(
            F.broadcast(regions.select("region_code", "region_name")), "region_code", "left"
        )
    else:
        rows = rows.withColumn("region_name", F.lit(None).cast("string"))
    rule = F.element_at(rule_text, F.col("rule"))
    team = F.concat_ws(
        "、",
        F.concat_ws(" ", F.col("inspector_id"), F.col("_name_1")),
        F.concat_ws(" ", F.col("inspector_2_id"), F.col("_name_2")),
    )
    inspector = F.when(F.col("drawn").isNull(), F.lit("")).when(
        F.col("inspector_id").isNull(),
        F.concat(F.lit("未分配："), F.coalesce(F.element_at(unassigned, F.col("unassigned_reason")),
                                            F.lit("原因未记录"))),
    ).otherwise(team)  # fmt: skip
    return rows.select(
        "region_code",
        F.row_number().over(_by_risk()).alias("rank"),
        "uscc",
        "name",
        "tier",
        "credit_score",
        F.when(F.col("rule").isNotNull(), rule)
        .otherwise(F.concat(F.lit("模型排名第"), F.col("risk_rank").cast("string"), F.lit("位")))
        .alias("basis"),
        F.concat_ws("；", rule, F.col("_model_reasons")).alias("reasons"),
        F.coalesce(F.col("drawn"), F.lit("否")).alias("drawn"),
        inspector.alias("inspector"),
        F.coalesce(F.col("plan_id"), F.lit("")).alias("plan_id"),
        "address",
        "region_name",
        "probability",
        F.concat_ws("; ", F.when(F.col("rule").isNotNull(), F.col("rule")), "_reasons_en").alias(
            "reasons_en"
        ),
        F.concat_ws(";", "inspector_id", "inspector_2_id").alias("inspector_ids"),
    )


def _by_risk():
    from pyspark.sql import Window

    # tier first (a rule-set D outranks a model C: the rule is the stronger signal), then risk
    tier_rank = F.element_at(
        F.create_map(*[F.lit(x) for kv in {"D": 0, "C": 1, "B": 2, "A": 3}.items() for x in kv]),
        F.col("tier"),
    )
    return Window.partitionBy("region_code").orderBy(
        tier_rank, F.col("probability").desc(), F.col("uscc")
    )


def build_target_list(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> int:
    """Write gold.target_list at ``as_of``: every district's list (:func:`list_frame`, with the
    plan in force at ``as_of``), stamped with the model and policy versions of the tiers.
    Replaces that as-of date (idempotent). Returns the rows written."""
    from risk_insight.plan import read_plan

    s = settings or get_settings()
    pol = policy or policy_for(s)
    at = F.col("as_of") == F.lit(as_of)
    tiers = tables.read(spark, tables.CREDIT_TIERS, s).where(at)
    rows = list_frame(
        tiers,
        tables.read(spark, tables.RISK_SCORES, s).where(at),
        tables.read(spark, tables.DIM_ENTERPRISE, s),
        read_plan(spark, as_of, s, pol),
        tables.read(spark, tables.DIM_INSPECTOR, s),
        None,
        pol,
        tables.read(spark, tables.DIM_REGION, s),
    )
    stamp = tiers.select("model_version", "policy_version").limit(1)
    target = tables.TARGET_LIST
    tables.ensure(spark, target, s)
    out = (
        rows.crossJoin(stamp)
        .withColumn("as_of", F.lit(as_of))
        .withColumn("_built_at", F.current_timestamp())  # audit timestamp only
        .select(*target.columns)
    )
    tables.replace(out, target, s, as_of=as_of)
    return tables.read(spark, target, s).where(at).count()


def district_list(
    spark: SparkSession,
    region_code: str,
    as_of: date,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """One district's list at ``as_of`` as pandas (English column names, see HEADERS), read
    from gold.target_list (:func:`build_target_list` writes it)."""
    s = settings or get_settings()
    df = (
        tables.read(spark, tables.TARGET_LIST, s)
        .where((F.col("as_of") == F.lit(as_of)) & (F.col("region_code") == F.lit(region_code)))
        .drop("as_of", "model_version", "policy_version", "_built_at")
    )
    pdf = df.orderBy("rank").toPandas()
    pdf["credit_score"] = pdf["credit_score"].astype("Int64")
    return pdf


@dataclass
class ListMeta:
    """What the title block of a list says: whose list, which period, which versions."""

    region_code: str
    region_name: str | None
    as_of: date
    period: str  # "2026-11-01 ~ 2026-11-30"
    plan_id: str
    policy_version: str
    model_version: str
    generated_at: str = field(default_factory=lambda: _now())
    inspector: str | None = None  # "ZF11010101 张三" on an inspector's own list

    def title_rows(self) -> list[str]:
        district = f"{self.region_name or ''}（{self.region_code}）"
        who = f" — 检查人员 {self.inspector}" if self.inspector else ""
        return [
            f"检查对象名单 Inspection target list：{district}{who}",
            f"区县 / district：{district}    计划期间 / period：{self.period}    "
            f"抽查计划 / plan：{self.plan_id}",
            f"评估日期 / as-of date：{self.as_of.isoformat()}    分级政策 / policy："
            f"{self.policy_version}    模型 / model：{self.model_version}",
            f"生成时间 / generated at：{self.generated_at}",
        ]


def _now() -> str:
    from datetime import datetime

    return datetime.now().replace(microsecond=0).isoformat(sep=" ")


@dataclass
class ListFiles:
    """The files of one district's list, and of each of its inspectors' lists."""

    region_code: str
    rows: int
    csv: Path
    xlsx: Path
    inspectors: dict[str, Path] = field(default_factory=dict)  # inspector id -> XLSX


WIDTHS = {"rank": 7, "uscc": 22, "name": 30, "tier": 8, "credit_score": 9, "basis": 22,
          "reasons": 60, "drawn": 8, "inspector": 30, "plan_id": 14, "address": 40,
          "region_name": 10}  # fmt: skip


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_xlsx(safe: pd.DataFrame, path: Path, meta: ListMeta, sheet: str = "检查对象名单") -> Path:
    """A printable list: the title block, the header row with filters, data cells as text
    (never formulas), landscape, header row repeated on every page, fit to the page width."""
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for i, line in enumerate(meta.title_rows(), start=1):
        ws.cell(row=i, column=1, value=line).font = Font(bold=i == 1, size=14 if i == 1 else 10)
    ws.append([])  # a blank line between title and table (row TITLE_ROWS)
    ws.append(list(safe.columns))
    for cell in ws[HEADER_ROW]:
        cell.font = Font(bold=True)
    for row in safe.itertuples(index=False):
        ws.append([None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row])
    for cell in ws.iter_rows(min_row=HEADER_ROW + 1):
        for c in cell:
            if isinstance(c.value, str):
                c.data_type = "s"  # never a formula, whatever the text
    keys = list(WIDTHS)
    for j, header in enumerate(safe.columns, start=1):
        key = next((k for k in keys if HEADERS.get(k) == header), None)
        ws.column_dimensions[get_column_letter(j)].width = WIDTHS.get(key, 14)
    last = get_column_letter(len(safe.columns))
    ws.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + max(len(safe), 1)}"
    ws.freeze_panes = f"A{HEADER_ROW + 1}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as needed
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.print_options.gridLines = True
    wb.save(path)
    path.chmod(0o600)
    return path


def write_list(
    pdf: pd.DataFrame,
    folder: Path,
    region_code: str,
    as_of: date,
    meta: ListMeta | None = None,
    roster: pd.DataFrame | None = None,
) -> ListFiles:
    """Write ``pdf`` (from :func:`district_list`) into the district's own folder
    ``<folder>/<region>/`` (0700): the district list as CSV (UTF-8 BOM, header row first) and
    XLSX (title block, filters, print settings), and one XLSX per inspector of this period's
    plan with the enterprises they are assigned to. Every text cell is neutralised; files are
    0600. ``roster`` (inspector_id, name) names the inspectors in their lists' titles."""
    meta = meta or ListMeta(region_code, None, as_of, "", "", "", "")
    own = _private_dir(_private_dir(folder) / region_code)
    stem = f"target_list_{region_code}_{as_of:%Y%m%d}"
    safe = neutralise_frame(pdf[list(HEADERS)].rename(columns=HEADERS))
    csv = own / f"{stem}.csv"
    safe.to_csv(csv, index=False, encoding="utf-8-sig")
    csv.chmod(0o600)
    xlsx = write_xlsx(safe, own / f"{stem}.xlsx", meta)
    files = ListFiles(region_code, len(safe), csv, xlsx)
    names = {} if roster is None else dict(zip(roster["inspector_id"], roster["name"], strict=True))
    ids = pdf.get("inspector_ids", pd.Series([], dtype=object)).fillna("")
    everyone = sorted({i for v in ids for i in str(v).split(";") if i})
    for inspector in everyone:
        mine = pdf[ids.map(lambda v, i=inspector: i in str(v).split(";"))]
        cols = [c for c in HEADERS if c != "drawn"]
        part = neutralise_frame(mine[cols].rename(columns=HEADERS))
        who = f"{inspector} {names.get(inspector) or ''}".strip()
        files.inspectors[inspector] = write_xlsx(
            part,
            own / f"inspector_{inspector}_{as_of:%Y%m%d}.xlsx",
            replace(meta, inspector=who),
            sheet="本人检查任务",
        )
    return files


def lists_folder(settings: Settings, as_of: date) -> Path:
    """``<outputs>/lists/<as_of>/`` (each district in its own 0700 folder below)."""
    return Path(settings.outputs_root) / "lists" / as_of.isoformat()


def list_meta(
    spark: SparkSession,
    region_code: str,
    as_of: date,
    settings: Settings,
    policy: TierPolicy,
) -> ListMeta:
    """The title block of one district's list at ``as_of``."""
    from risk_insight.plan import period_for

    period = period_for(as_of, policy)
    names = {
        r["region_code"]: r["region_name"]
        for r in tables.read(spark, tables.DIM_REGION, settings)
        .where(F.col("region_code") == F.lit(region_code))
        .collect()
    }
    tier = (
        tables.read(spark, tables.CREDIT_TIERS, settings)
        .where(F.col("as_of") == F.lit(as_of))
        .select("model_version", "policy_version")
        .first()
    )
    return ListMeta(
        region_code=region_code,
        region_name=names.get(region_code),
        as_of=as_of,
        period=f"{period.start.isoformat()} ~ {period.end.isoformat()}",
        plan_id=period.plan_id,
        policy_version=tier["policy_version"] if tier else policy.version,
        model_version=tier["model_version"] if tier else "",
    )


def write_district_list(
    spark: SparkSession,
    region_code: str,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> ListFiles:
    """Build and write one district's list (and its inspectors' lists) under
    ``<outputs>/lists/<as_of>/<region>/``."""
    s = settings or get_settings()
    pol = policy or policy_for(s)
    pdf = district_list(spark, region_code, as_of, s)
    roster = tables.read(spark, tables.DIM_INSPECTOR, s).select("inspector_id", "name").toPandas()
    meta = list_meta(spark, region_code, as_of, s, pol)
    return write_list(pdf, lists_folder(s, as_of), region_code, as_of, meta, roster)


def regions_at(spark: SparkSession, as_of: date, settings: Settings) -> list[str]:
    """Districts with tiered enterprises at ``as_of``."""
    rows = (
        tables.read(spark, tables.CREDIT_TIERS, settings)
        .where((F.col("as_of") == F.lit(as_of)) & F.col("region_code").isNotNull())
        .select("region_code")
        .distinct()
        .collect()
    )
    return sorted(r[0] for r in rows)
