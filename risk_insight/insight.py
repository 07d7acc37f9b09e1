"""The risk-insight stage in one call: open the plan period -> tiers -> the period's plan ->
warnings -> every district's list (and each inspector's) -> inspector consistency (执法尺度统一).

``run_insight(spark, as_of, settings)`` is what the demo and the Airflow DAG call after
scoring, every day: the first run of a plan period commits its seed (if the previous plan did
not already) *before* building the tiers, then draws the plan; later runs of the period reuse
that plan. Warnings compare with the previous period. ``print_insight_summary(summary,
console)`` prints its closing output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from risk_insight.consistency import FLAGS, build_consistency
from risk_insight.lists import (
    HEADERS,
    ListFiles,
    build_target_list,
    district_list,
    list_meta,
    lists_folder,
    regions_at,
    write_list,
)
from risk_insight.plan import PlanResult, build_plan, open_period
from risk_insight.tiers import build_tiers
from risk_insight.warnings import build_warnings
from warehouse import audit
from warehouse.contracts.tier_policy import policy_for
from warehouse.settings import Settings, get_settings


@dataclass
class InsightSummary:
    """What one insight run produced, and where its files are."""

    as_of: date
    policy_version: str
    tiers: dict[str, int]
    plan: PlanResult
    warnings: dict[str, int]
    lists: list[ListFiles] = field(default_factory=list)
    # 执法尺度统一: inspectors per flag in the newest period with random-draw inspections
    consistency: dict[str, int] = field(default_factory=dict)
    consistency_period: str | None = None
    sample_region: str | None = None
    sample: pd.DataFrame | None = None  # top rows of the sample district's list
    outputs: Path | None = None


def run_insight(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    seed: int | None = None,
    sample_rows: int = 10,
) -> InsightSummary:
    """Build gold.credit_tiers, the period's gold.inspection_plan (+ public file; drawn only
    by the first run of the period), every district's and inspector's list and gold.warnings
    for ``as_of`` (needs gold.risk_scores at ``as_of``), then recompute
    audit.inspector_consistency from every scored random-draw inspection so far. Idempotent."""
    from warehouse import tables

    s = settings or get_settings()
    pol = policy_for(s)
    if seed is None and pol.draw.seed is None:
        open_period(spark, as_of, s, pol)  # the seed is committed before the tiers exist
    tiers = build_tiers(spark, as_of, s, pol)
    plan = build_plan(spark, as_of, s, seed, pol)
    warnings = build_warnings(spark, as_of, s, pol)
    build_target_list(spark, as_of, s, pol)
    files, sample_region, sample = [], None, None
    folder = lists_folder(s, as_of)
    roster = tables.read(spark, tables.DIM_INSPECTOR, s).select("inspector_id", "name").toPandas()
    for region in regions_at(spark, as_of, s):
        pdf = district_list(spark, region, as_of, s)
        meta = list_meta(spark, region, as_of, s, pol)
        files.append(write_list(pdf, folder, region, as_of, meta, roster))
        # the sample district: the one with the most D-tier enterprises (ties by code)
        d = int((pdf["tier"] == "D").sum())
        if sample is None or d > int((sample["tier"] == "D").sum()):
            sample_region, sample = region, pdf
    if not plan.reused:  # a period's plan is drawn once; later runs reuse it
        audit.record_plan_draw(spark, s, plan, pol.version)
    audit.record_list_export(spark, s, as_of, files, pol.version)
    judged = build_consistency(spark, s)
    newest = judged["period"].max() if len(judged) else None
    flags = judged.loc[judged["period"] == newest, "flag"].value_counts().to_dict()
    return InsightSummary(
        as_of=as_of,
        policy_version=pol.version,
        tiers=tiers,
        plan=plan,
        warnings=warnings,
        lists=files,
        consistency={k: int(v) for k, v in flags.items()},
        consistency_period=newest,
        sample_region=sample_region,
        sample=None if sample is None else sample.head(sample_rows),
        outputs=Path(s.outputs_root),
    )


def print_insight_summary(summary: InsightSummary, console) -> None:
    """Print tier counts, plan size per tier and region, one district's top list rows with
    reasons, warnings and where the files were written (a ``rich`` console)."""
    from rich.table import Table

    def table(title: str, headers: list[str], rows: list[list[object]]) -> None:
        t = Table(title=title)
        for h in headers:
            t.add_column(h)
        for row in rows:
            t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
        console.print(t)

    console.rule(f"risk insight / 风险洞察 as of {summary.as_of} ({summary.policy_version})")
    table(
        "tiers / 信用风险分类", ["tier", "enterprises"], [[k, v] for k, v in summary.tiers.items()]
    )
    p = summary.plan
    tiers = ["A", "B", "C", "D"]
    regions = sorted({r for r, _ in p.size})
    rows = [[r, *(p.size.get((r, t), 0) for t in tiers), sum(p.size.get((r, t), 0) for t in tiers)]
            for r in regions]  # fmt: skip
    rows.append(["all", *(sum(p.size.get((r, t), 0) for r in regions) for t in tiers), p.total])
    how = (
        f"reused, drawn at {p.drawn_at}"
        if p.reused
        else f"drawn now, seed committed {p.commitment[:12] if p.commitment else '-'}…"
    )
    table(f"plan {p.plan_id} (seed {p.seed}; {how}) / 双随机抽查计划: drawn per region and tier",
          ["region", *tiers, "total"], rows)  # fmt: skip
    if p.unassigned:
        console.print(
            f"[yellow]{p.unassigned} drawn enterprises have no inspectors assigned "
            "(see unassigned_reason in gold.inspection_plan) / 未分配检查人员[/]"
        )
    table("early warnings / 风险预警", ["trigger", "enterprises"],
          [[k, v] for k, v in summary.warnings.items()])  # fmt: skip
    if summary.sample is not None:
        cols = ["rank", "uscc", "name", "tier", "credit_score", "reasons", "drawn"]
        table(
            f"target list of district {summary.sample_region} / 检查对象名单 (top "
            f"{len(summary.sample)})",
            [HEADERS[c] for c in cols],
            [[row[c] for c in cols] for _, row in summary.sample.iterrows()],
        )
    if summary.consistency_period:
        table(
            f"inspector consistency {summary.consistency_period} / 执法尺度统一 (random draws)",
            ["flag", "inspectors"],
            [[" / ".join(FLAGS[k]), v] for k, v in summary.consistency.items()],
        )
    n_insp = sum(len(f.inspectors) for f in summary.lists)
    console.print(
        f"lists / 检查对象名单: {len(summary.lists)} districts and {n_insp} inspectors under "
        f"{summary.lists[0].csv.parent.parent if summary.lists else '-'}"
    )
    if p.public_csv:
        console.print(f"public plan / 一公开: {p.public_csv} (manifest {p.manifest})")
