"""Why an enterprise has its tier, traced to the source records (问题数据可反馈、共享过程可追溯).

``explain(spark, uscc, as_of, settings)`` gathers, for one enterprise at one as-of date: the
hard rule or the model rank behind its tier, its probability and credit score, the model and
policy versions, this period's plan and inspectors if it was drawn, and every risk-raising
reason of its score with the silver records behind it — each record with its source, file,
row and delivery date (the bronze lineage silver rows keep: ``_source_file``, ``_source_row``,
``_run_date``). The records are selected point in time, the way the features were built
(event and report date before T), so they are the ones the score saw.
``render_explanation`` prints it (``risk-insight explain USCC [--as-of D]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.inspection_results import FOUND
from risk_insight.lists import RULE_TEXT
from warehouse import tables
from warehouse.settings import Settings, get_settings

MAX_RECORDS = 10  # per reason; the rest are counted


@dataclass
class Record:
    """One source record behind a reason, with its lineage."""

    source: str  # e.g. "行政处罚 penalty"
    key: str
    on: str  # the record's own date
    detail: str
    file: str | None
    row: int | None
    delivered: str | None  # the delivery date it landed with

    def line(self) -> str:
        where = (
            f"{self.file} 第{self.row}行 / row {self.row}, 交付 / delivered {self.delivered}"
            if self.file
            else "无源记录 / no source record"
        )
        return f"[{self.source}] {self.key} {self.on} {self.detail} ← {where}"


@dataclass
class Reason:
    """One risk-raising reason of the score and the records behind it."""

    feature: str
    text_zh: str
    text_en: str
    contribution: float
    records: list[Record] = field(default_factory=list)
    more: int = 0  # records not shown


@dataclass
class Explanation:
    """Everything ``explain`` found for one enterprise at one as-of date."""

    uscc: str
    as_of: date
    name: str | None
    region: str | None
    address: str | None
    tier: str | None
    basis: str
    probability: float | None
    credit_score: int | None
    model_version: str | None
    policy_version: str | None
    plan: str | None
    reasons: list[Reason] = field(default_factory=list)
    registry: Record | None = None
    rule_records: list[Record] = field(default_factory=list)


def _lineage(r) -> tuple[str | None, int | None, str | None]:
    d = r["_run_date"]
    return r["_source_file"], r["_source_row"], d.isoformat() if d else None


def _records(
    df: DataFrame, source: str, key: Column, on: Column, detail: Column, limit: int
) -> tuple[list[Record], int]:
    picked = df.select(
        key.cast("string").alias("_key"),
        on.cast("string").alias("_on"),
        detail.alias("_detail"),
        "_source_file",
        "_source_row",
        "_run_date",
    ).orderBy(F.desc("_on"), "_key")
    rows = picked.limit(limit + 1).collect()
    total = picked.count() if len(rows) > limit else len(rows)
    out = [
        Record(source, r["_key"] or "", r["_on"] or "", r["_detail"] or "", *_lineage(r))
        for r in rows[:limit]
    ]
    return out, total - len(out)


def _known(df: DataFrame, event: str, known: str | None, as_of: date) -> DataFrame:
    t = F.lit(as_of)
    cond = F.col(event) < t
    if known:
        cond &= F.coalesce(F.col(known), F.col(event)) < t
    return df.where(cond)


def evidence(
    spark: SparkSession, uscc: str, feature: str, as_of: date, s: Settings, limit: int = MAX_RECORDS
) -> tuple[list[Record], int]:
    """The silver records behind ``feature`` of ``uscc`` at ``as_of`` (point in time), newest
    first, at most ``limit`` (and how many more there are)."""
    me = F.col("uscc") == F.lit(uscc)
    t = as_of

    def within(col: str, days: int) -> Column:
        return F.col(col) >= F.lit(t - timedelta(days=days))

    if feature.startswith(("penalt", "months_since_penalty")):
        days = {"penalties_1y": 365, "penalties_2y": 730, "penalty_amount_2y": 730}.get(
            feature, 1826
        )
        df = _known(tables.read(spark, tables.FCT_PENALTY, s).where(me), "decided_on",
                    "reported_on", t).where(within("decided_on", days))  # fmt: skip
        return _records(
            df, "行政处罚 penalty", F.col("case_no"), F.col("decided_on"),
            F.concat_ws(" ", F.col("category"), F.concat(F.format_number("amount_yuan", 2),
                                                         F.lit("元"))),
            limit,
        )  # fmt: skip
    if feature in ("on_abnormal_list", "on_serious_list", "list_entries_3y"):
        df = tables.read(spark, tables.FCT_LIST_ENTRY, s).where(me & (F.col("entered_on") < t))
        if feature == "on_abnormal_list":
            df = df.where("list_type = 'abnormal'")
        elif feature == "on_serious_list":
            df = df.where("list_type = 'serious'")
        else:
            df = df.where(within("entered_on", 1096))
        if feature.startswith("on_"):
            df = df.where(F.col("removed_on").isNull() | (F.col("removed_on") >= t))
        names = F.when(F.col("list_type") == "serious", "严重违法失信名单").otherwise(
            "经营异常名录"
        )
        return _records(
            df, "名录 list", names, F.col("entered_on"),
            F.concat_ws(" ", F.col("entry_reason"),
                        F.when(F.col("removed_on").isNotNull(),
                               F.concat(F.lit("移出 "), F.col("removed_on").cast("string")))),
            limit,
        )  # fmt: skip
    if feature in ("reports_late_3y", "reports_missing_3y", "employees", "insured_share"):
        df = tables.read(spark, tables.FCT_ANNUAL_REPORT, s).where(
            me & (F.col("report_year") >= t.year - 3) & (F.col("report_year") <= t.year - 1)
        )
        df = df.where(F.col("filed_on").isNull() | (F.col("filed_on") < t))
        if feature == "reports_late_3y":
            df = df.where(F.col("filed_on") > F.col("due_on"))
        records, more = _records(
            df, "年度报告 annual report", F.col("report_year"), F.col("filed_on"),
            F.concat(F.lit("应报 due "), F.col("due_on").cast("string"), F.lit("，从业人数 "),
                     F.coalesce(F.col("employees").cast("string"), F.lit("-")), F.lit("，参保 "),
                     F.coalesce(F.col("insured_staff").cast("string"), F.lit("-"))),
            limit,
        )  # fmt: skip
        if feature == "reports_missing_3y":
            filed = {int(r.key) for r in records}
            for year in range(t.year - 3, t.year):
                if year not in filed and date(year + 1, 6, 30) < t:
                    records.append(Record("年度报告 annual report", str(year), "",
                                          "未报送（无记录）/ not filed (no record)", None, None,
                                          None))  # fmt: skip
            records = [r for r in records if r.file is None]
        return records, more
    if feature in ("address_changes_2y", "legal_rep_changes_2y", "capital_changes_2y"):
        df = tables.read(spark, tables.DIM_ENTERPRISE, s).where(
            me & (F.col("valid_from") < t) & within("valid_from", 730)
        )
        return _records(
            df, "登记变更 registry version", F.col("status"), F.col("valid_from"),
            F.concat_ws(" ", F.col("address"),
                        F.concat(F.lit("注册资本 "), F.format_number("reg_capital_yuan", 0))),
            limit,
        )  # fmt: skip
    if feature in ("inspections_3y", "findings_3y", "months_since_finding"):
        df = _known(tables.read(spark, tables.FCT_INSPECTION, s).where(me), "inspected_on",
                    "reported_on", t).where(within("inspected_on", 1096))  # fmt: skip
        if feature != "inspections_3y":
            df = df.where(F.col("outcome") == FOUND)
        return _records(
            df, "检查 inspection", F.col("inspection_id"), F.col("inspected_on"),
            F.concat_ws(" ", F.col("mode"), F.col("result"), F.col("plan_id")), limit,
        )  # fmt: skip
    if feature.startswith("complaint"):
        days = 91 if feature == "complaints_3m" else 365
        df = tables.read(spark, tables.FCT_COMPLAINT, s).where(
            me & (F.col("received_on") < t) & within("received_on", days)
        )
        return _records(
            df, "投诉举报 complaint", F.col("complaint_id"), F.col("received_on"),
            F.concat_ws(" ", F.col("category"), F.col("channel")), limit,
        )  # fmt: skip
    if feature.startswith(("rep_", "addr_")):
        return _associates(spark, uscc, feature, t, s, limit)
    # basic attributes: the registry version in force at T
    return _records(
        _version_at(spark, uscc, t, s), "企业登记 registry", F.col("uscc"), F.col("valid_from"),
        F.concat_ws(" ", F.col("ent_type"), F.col("industry"), F.col("region_code"),
                    F.col("founded_on").cast("string"),
                    F.concat(F.format_number("reg_capital_yuan", 0), F.lit("元"))),
        limit,
    )  # fmt: skip


def _version_at(spark: SparkSession, uscc: str, t: date, s: Settings) -> DataFrame:
    from risk_insight.tiers import enterprises_at

    return enterprises_at(tables.read(spark, tables.DIM_ENTERPRISE, s), t).where(
        F.col("uscc") == F.lit(uscc)
    )


def _associates(
    spark: SparkSession, uscc: str, feature: str, t: date, s: Settings, limit: int
) -> tuple[list[Record], int]:
    """Other enterprises sharing the legal representative (``rep_*``) or address (``addr_*``)
    at T, with the records that make them count (penalties in 2 years, list entries)."""
    from risk_insight.tiers import enterprises_at

    by = "legal_rep_token" if feature.startswith("rep_") else "address_token"
    at = enterprises_at(tables.read(spark, tables.DIM_ENTERPRISE, s), t)
    mine = at.where(F.col("uscc") == F.lit(uscc)).select(by).first()
    if mine is None or mine[0] is None:
        return [], 0
    others = at.where((F.col(by) == F.lit(mine[0])) & (F.col("uscc") != F.lit(uscc)))
    if feature.endswith("penalised_2y") or feature == "rep_assoc_score":
        pen = _known(tables.read(spark, tables.FCT_PENALTY, s), "decided_on", "reported_on", t)
        df = pen.where(F.col("decided_on") >= F.lit(t - timedelta(days=730))).join(
            others.select("uscc", F.col("name").alias("_assoc")), "uscc"
        )
        return _records(
            df, "关联企业处罚 associate's penalty", F.col("case_no"), F.col("decided_on"),
            F.concat_ws(" ", F.col("uscc"), F.col("_assoc"), F.col("category")), limit,
        )  # fmt: skip
    if feature.endswith("listed"):
        lst = tables.read(spark, tables.FCT_LIST_ENTRY, s).where(
            (F.col("entered_on") < t) & (F.col("removed_on").isNull() | (F.col("removed_on") >= t))
        )
        df = lst.join(others.select("uscc", F.col("name").alias("_assoc")), "uscc")
        return _records(
            df, "关联企业名录 associate's list entry", F.col("uscc"), F.col("entered_on"),
            F.concat_ws(" ", F.col("_assoc"), F.col("list_type"), F.col("entry_reason")), limit,
        )  # fmt: skip
    return _records(
        others, "关联企业 associate", F.col("uscc"), F.col("valid_from"), F.col("name"), limit
    )


def explain(
    spark: SparkSession, uscc: str, as_of: date | None = None, settings: Settings | None = None
) -> Explanation:
    """The explanation of ``uscc``'s tier at ``as_of`` (default: its latest tiered as-of
    date). LookupError if it was never tiered."""
    from risk_insight.plan import UNASSIGNED_TEXT, read_plan
    from warehouse.contracts.tier_policy import policy_for

    s = settings or get_settings()
    tiers = tables.read(spark, tables.CREDIT_TIERS, s).where(F.col("uscc") == F.lit(uscc))
    if as_of is None:
        as_of = tiers.agg(F.max("as_of")).first()[0]
        if as_of is None:
            raise LookupError(f"{uscc} has no tier in gold.credit_tiers")
    row = tiers.where(F.col("as_of") == F.lit(as_of)).first()
    if row is None:
        raise LookupError(f"{uscc} has no tier at {as_of}")
    n = (
        tables.read(spark, tables.CREDIT_TIERS, s)
        .where((F.col("as_of") == F.lit(as_of)) & ~F.col("excluded"))
        .count()
    )
    version = _version_at(spark, uscc, as_of, s).first()
    region = None
    if row["region_code"]:
        names = tables.read(spark, tables.DIM_REGION, s).where(
            F.col("region_code") == F.lit(row["region_code"])
        )
        hit = names.select("region_name").first()
        region = f"{hit[0] if hit else ''}（{row['region_code']}）"
    if row["excluded"]:
        basis = f"不参与分级：{row['rule']} / excluded ({row['rule']})"
    elif row["rule"]:
        basis = f"{RULE_TEXT.get(row['rule'], row['rule'])} / hard rule {row['rule']}"
    else:
        basis = (f"模型排名第{row['risk_rank']}位（共{n}家）/ model rank {row['risk_rank']} of {n}"
                 f", tier {row['model_tier']}")  # fmt: skip
    plan = read_plan(spark, as_of, s, policy_for(s)).where(F.col("uscc") == F.lit(uscc)).first()
    plan_text = None
    if plan is not None:
        team = " + ".join(x for x in (plan["inspector_id"], plan["inspector_2_id"]) if x)
        plan_text = f"{plan['plan_id']}：" + (
            team or f"未分配 — {UNASSIGNED_TEXT.get(plan['unassigned_reason'], '')}"
        )
    e = Explanation(
        uscc=uscc, as_of=as_of, name=version["name"] if version else None, region=region,
        address=version["address"] if version else None, tier=row["tier"], basis=basis,
        probability=row["probability"], credit_score=row["credit_score"],
        model_version=row["model_version"], policy_version=row["policy_version"],
        plan=plan_text,
    )  # fmt: skip
    if version is not None:
        e.registry = Record("企业登记 registry", uscc, version["valid_from"].isoformat(),
                            version["status"] or "", *_lineage(version))  # fmt: skip
    if row["rule"] in ("serious_list", "abnormal_list"):
        feat = "on_serious_list" if row["rule"] == "serious_list" else "on_abnormal_list"
        e.rule_records, _ = evidence(spark, uscc, feat, as_of, s)
    score = (
        tables.read(spark, tables.RISK_SCORES, s)
        .where((F.col("uscc") == F.lit(uscc)) & (F.col("as_of") == F.lit(as_of)))
        .first()
    )
    for r in (score["reasons"] or []) if score else []:
        raises = r["raises_risk"] if r["raises_risk"] is not None else r["contribution"] > 0
        if not raises:
            continue
        records, more = evidence(spark, uscc, r["feature"], as_of, s)
        e.reasons.append(
            Reason(r["feature"], r["text_zh"], r["text_en"], r["contribution"], records, more)
        )
    return e


def render_explanation(e: Explanation) -> str:
    """The explanation as text for a terminal or a ticket (Chinese with English beside)."""
    lines = [
        f"{e.name or ''} {e.uscc}",
        f"  区县 / district: {e.region or '-'}    注册地址 / address: {e.address or '-'}",
        f"  评估日期 / as-of: {e.as_of}    风险等级 / tier: {e.tier or '-'}    "
        f"分级依据 / basis: {e.basis}",
        f"  风险概率 / probability: {e.probability:.4f}    信用分 / credit score: "
        f"{e.credit_score}    模型 / model: {e.model_version}    政策 / policy: "
        f"{e.policy_version}",
        f"  本期抽查 / this period's plan: {e.plan or '未抽中 / not drawn'}",
    ]
    if e.registry:
        lines.append(f"  登记记录 / registry record: {e.registry.line()}")
    if e.rule_records:
        lines.append("  规则依据 / rule evidence:")
        lines += [f"    - {r.line()}" for r in e.rule_records]
    lines.append("  主要风险原因 / reasons (with the records behind them):")
    if not e.reasons:
        lines.append("    （无提高风险的因素 / no risk-raising attribute）")
    for i, r in enumerate(e.reasons, start=1):
        lines.append(f"    {i}. {r.text_zh} / {r.text_en}  (+{r.contribution:.3f})")
        lines += [f"       - {rec.line()}" for rec in r.records]
        if r.more:
            lines.append(f"       … 另有 {r.more} 条 / {r.more} more")
    return "\n".join(lines)
