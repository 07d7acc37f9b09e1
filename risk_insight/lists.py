"""Target lists (检查对象名单): one district's enterprises ranked by risk, with tier, credit
score, the rule or model rank behind the tier and the top reasons in Chinese.

Files are for people: CSV in UTF-8 with BOM (Excel opens it without garbling Chinese) and XLSX
with Chinese headers. Any text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading single quote (OWASP CSV injection), so no list can carry a spreadsheet
formula. Only one district's rows are collected to the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from risk_insight.policy import TierPolicy, policy_for
from warehouse import tables
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
    "inspector": "检查人员 / inspector",
}
RULE_TEXT = {
    "serious_list": "列入严重违法失信名单（规则定为D类）",
    "abnormal_list": "列入经营异常名录（规则定为不低于C类）",
}
_UNSAFE = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """``value`` made safe for a spreadsheet: text starting with a formula character gets a
    leading single quote; everything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(_UNSAFE):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell (and header) neutralised."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def list_frame(
    tiers: DataFrame,
    scores: DataFrame,
    enterprises: DataFrame,
    plan: DataFrame,
    roster: DataFrame,
    region_code: str | None,
    policy: TierPolicy,
) -> DataFrame:
    """One district's list (every district's, ranked within each, when ``region_code`` is
    None), ranked by risk (rank 1 = highest): every non-excluded enterprise with tier, credit
    score, basis, top reasons (positive contributions, Chinese; English in ``reasons_en``) and
    whether this period's plan drew it. Inputs are the tables at one as-of date."""
    n = policy.lists.top_reasons
    top = F.slice(F.filter("reasons", lambda r: r["contribution"] > 0), 1, n)
    reasons = scores.select(
        "uscc",
        F.array_join(F.transform(top, lambda r: r["text_zh"]), "；").alias("_model_reasons"),
        F.array_join(F.transform(top, lambda r: r["text_en"]), "; ").alias("_reasons_en"),
    )
    rule_text = F.create_map(*[F.lit(x) for kv in RULE_TEXT.items() for x in kv])
    names = enterprises.where(F.col("is_current")).select("uscc", "name")
    drawn = plan.select("uscc", F.lit("是").alias("drawn"), "inspector_id").join(
        roster.select("inspector_id", F.col("name").alias("_inspector_name")),
        "inspector_id",
        "left",
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
    rule = F.element_at(rule_text, F.col("rule"))
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
        F.concat_ws(" ", F.col("inspector_id"), F.col("_inspector_name")).alias("inspector"),
        "probability",
        F.concat_ws("; ", F.when(F.col("rule").isNotNull(), F.col("rule")), "_reasons_en").alias(
            "reasons_en"
        ),
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


def district_list(
    spark: SparkSession,
    region_code: str,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> pd.DataFrame:
    """One district's list at ``as_of`` as pandas (English column names, see HEADERS)."""
    s = settings or get_settings()
    pol = policy or policy_for(s)
    at = F.col("as_of") == F.lit(as_of)
    df = list_frame(
        tables.read(spark, tables.CREDIT_TIERS, s).where(at),
        tables.read(spark, tables.RISK_SCORES, s).where(at),
        tables.read(spark, tables.DIM_ENTERPRISE, s),
        tables.read(spark, tables.INSPECTION_PLAN, s).where(at),
        tables.read(spark, tables.DIM_INSPECTOR, s),
        region_code,
        pol,
    )
    pdf = df.orderBy("rank").toPandas()
    pdf["credit_score"] = pdf["credit_score"].astype("Int64")
    return pdf


@dataclass
class ListFiles:
    """The files of one district's list."""

    region_code: str
    rows: int
    csv: Path
    xlsx: Path


def write_list(pdf: pd.DataFrame, folder: Path, region_code: str, as_of: date) -> ListFiles:
    """Write ``pdf`` (from :func:`district_list`) as CSV (UTF-8 BOM) and XLSX with Chinese
    headers, every text cell neutralised."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"target_list_{region_code}_{as_of:%Y%m%d}"
    safe = neutralise_frame(pdf[list(HEADERS)].rename(columns=HEADERS))
    csv = folder / f"{stem}.csv"
    safe.to_csv(csv, index=False, encoding="utf-8-sig")
    xlsx = folder / f"{stem}.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.title = "检查对象名单"
    ws.append(list(safe.columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in safe.itertuples(index=False):
        ws.append([None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row])
    for cell in ws.iter_rows(min_row=2):
        for c in cell:
            if isinstance(c.value, str):
                c.data_type = "s"  # never a formula, whatever the text
    widths = {"A": 8, "B": 22, "C": 34, "D": 10, "E": 12, "F": 30, "G": 70, "H": 10, "I": 18}
    for col, w in widths.items():
        ws.column_dimensions[col].width = w
    ws.freeze_panes = "A2"
    wb.save(xlsx)
    return ListFiles(region_code, len(safe), csv, xlsx)


def lists_folder(settings: Settings, as_of: date) -> Path:
    """``<outputs>/lists/<as_of>/``."""
    return Path(settings.outputs_root) / "lists" / as_of.isoformat()


def write_district_list(
    spark: SparkSession,
    region_code: str,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> ListFiles:
    """Build and write one district's list under ``<outputs>/lists/<as_of>/``."""
    s = settings or get_settings()
    pdf = district_list(spark, region_code, as_of, s, policy)
    return write_list(pdf, lists_folder(s, as_of), region_code, as_of)


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
