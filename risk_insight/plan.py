"""双随机 inspection plans: random inspectees per region x tier, random inspectors per roster.

The draw. Each enterprise gets a draw value ``u = int(sha256("seed|plan_id|uscc")[:13], 16) /
2**52``, uniform on [0, 1) and a function of those three strings only, so the draw does not
depend on Spark partitioning, row order or the machine, and anyone holding the published seed
can recompute it (:func:`draw_value`). In every region x tier stratum of n non-excluded
enterprises the k = round_half_up(ratio x n) lowest values (ties by USCC) are drawn.

The inspector. Among the roster of the enterprise's region, minus the inspector of its most
recent inspection before T (never the same inspector twice in a row), the one with the lowest
``sha256("seed|plan_id|uscc|inspector_id")`` is assigned. A region whose roster holds nobody
else leaves ``inspector_id`` NULL for the chief to fill in by hand.

The seed, ratios, policy version, model version and the Delta versions of the inputs are on
every plan row, so the plan can be re-drawn identically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from risk_insight.policy import TierPolicy, policy_for
from warehouse import tables
from warehouse.settings import Settings, get_settings

_HEX = 13  # 52 bits: exact in a double


def plan_id_for(as_of: date) -> str:
    """The plan id of the period starting at ``as_of`` (``CJ-YYYYMMDD``)."""
    return f"CJ-{as_of:%Y%m%d}"


def draw_value(seed: int, plan_id: str, uscc: str) -> float:
    """The draw value of one enterprise, as the plan computes it in Spark (for audits)."""
    digest = hashlib.sha256(f"{seed}|{plan_id}|{uscc}".encode()).hexdigest()
    return int(digest[:_HEX], 16) / 2**52


def _hash_uniform(*parts: Column) -> Column:
    digest = F.sha2(F.concat_ws("|", *parts), 256)
    return F.conv(F.substring(digest, 1, _HEX), 16, 10).cast("double") / F.lit(float(2**52))


def previous_inspectors(inspections: DataFrame, as_of: date) -> DataFrame:
    """(uscc, previous_inspector_id): who inspected each enterprise last before ``as_of``."""
    last = Window.partitionBy("uscc").orderBy(
        F.col("inspected_on").desc(), F.col("inspection_id").desc()
    )
    return (
        inspections.where(
            (F.col("inspected_on") < F.lit(as_of)) & F.col("inspector_id").isNotNull()
        )
        .withColumn("_n", F.row_number().over(last))
        .where(F.col("_n") == 1)
        .select("uscc", F.col("inspector_id").alias("previous_inspector_id"))
    )


def draw_plan(
    tiers: DataFrame,
    roster: DataFrame,
    inspections: DataFrame,
    as_of: date,
    plan_id: str,
    seed: int,
    policy: TierPolicy,
) -> DataFrame:
    """The drawn enterprises with their inspector: (plan_id, region_code, tier, uscc,
    draw_value, draw_rank, stratum_size, stratum_drawn, draw_ratio, inspector_id,
    previous_inspector_id, seed, model_version). ``tiers`` is gold.credit_tiers at ``as_of``."""
    ratios = policy.draw.ratios
    ratio_map = F.create_map(*[F.lit(x) for kv in ratios.items() for x in kv])
    ratio = F.element_at(ratio_map, F.col("tier"))
    pop = tiers.where(~F.col("excluded") & F.col("region_code").isNotNull()).select(
        "uscc", "region_code", "tier", "model_version"
    )
    stratum = Window.partitionBy("region_code", "tier")
    drawn = (
        pop.withColumn("draw_value", _hash_uniform(F.lit(str(seed)), F.lit(plan_id), F.col("uscc")))
        .withColumn("draw_ratio", ratio.cast("double"))
        .withColumn("stratum_size", F.count(F.lit(1)).over(stratum))
        # round half up, as tiers.round_half_up
        .withColumn(
            "stratum_drawn", F.floor(F.col("draw_ratio") * F.col("stratum_size") + 0.5 + 1e-9)
        )
        .withColumn(
            "draw_rank",
            F.row_number().over(stratum.orderBy(F.col("draw_value"), F.col("uscc"))),
        )
        .where(F.col("draw_rank") <= F.col("stratum_drawn"))
        .join(previous_inspectors(inspections, as_of), "uscc", "left")
    )
    candidates = (
        drawn.select("uscc", "region_code", "previous_inspector_id")
        .join(roster.select("inspector_id", "region_code"), "region_code")
        .where(
            F.col("previous_inspector_id").isNull()
            | (F.col("inspector_id") != F.col("previous_inspector_id"))
        )
        .withColumn(
            "_h",
            _hash_uniform(F.lit(str(seed)), F.lit(plan_id), F.col("uscc"), F.col("inspector_id")),
        )
        .withColumn(
            "_n",
            F.row_number().over(
                Window.partitionBy("uscc").orderBy(F.col("_h"), F.col("inspector_id"))
            ),
        )
        .where(F.col("_n") == 1)
        .select("uscc", "inspector_id")
    )
    return drawn.join(candidates, "uscc", "left").select(
        F.lit(plan_id).alias("plan_id"),
        "region_code",
        "tier",
        "uscc",
        "draw_value",
        F.col("draw_rank").cast("int").alias("draw_rank"),
        F.col("stratum_size").cast("long").alias("stratum_size"),
        F.col("stratum_drawn").cast("long").alias("stratum_drawn"),
        "draw_ratio",
        "inspector_id",
        "previous_inspector_id",
        F.lit(seed).cast("long").alias("seed"),
        "model_version",
    )


# ---- the roster: a reference table loaded from the district's CSV -----------------------------
def load_roster(spark: SparkSession, csv_path: str | Path, settings: Settings | None = None) -> int:
    """Replace silver.dim_inspector with the roster CSV (inspector_id, name, region_code; UTF-8,
    with or without BOM); returns the number of inspectors. Same file, same table content."""
    s = settings or get_settings()
    path = Path(csv_path)
    pdf = pd.read_csv(path, dtype=str, encoding="utf-8-sig").fillna("")
    for col in pdf.columns:
        pdf[col] = pdf[col].str.strip()
    pdf = pdf[pdf["inspector_id"] != ""].drop_duplicates("inspector_id").sort_values("inspector_id")
    rows = [
        (
            r.inspector_id,
            r.name or None,
            r.region_code,
            path.name,
            hashlib.sha256(f"{r.inspector_id}|{r.name}|{r.region_code}".encode()).hexdigest(),
        )
        for r in pdf.itertuples()
    ]
    target = tables.DIM_INSPECTOR
    tables.ensure(spark, target, s)
    df = spark.createDataFrame(
        rows,
        "inspector_id string, name string, region_code string, _source_file string, "
        "_record_hash string",
    ).withColumn("_loaded_at", F.current_timestamp())
    df.select(*target.columns).write.format("delta").mode("overwrite").save(target.path(s))
    return len(rows)


def default_roster_csv(settings: Settings) -> Path:
    """Where the simulator (and agencies) put the roster: ``<landing>/../reference/``."""
    return Path(settings.landing_root).parent / "reference" / "inspectors.csv"


# ---- building and publishing a plan -----------------------------------------------------------
@dataclass
class PlanResult:
    """What one plan drew: its id, seed, size per region x tier and where it was published."""

    as_of: date
    plan_id: str
    seed: int
    size: dict[tuple[str, str], int]  # (region_code, tier) -> drawn
    public_csv: Path | None = None
    manifest: Path | None = None

    @property
    def total(self) -> int:
        return sum(self.size.values())


def build_plan(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    seed: int | None = None,
    policy: TierPolicy | None = None,
    publish: bool = True,
) -> PlanResult:
    """Draw the plan of ``as_of`` from gold.credit_tiers into gold.inspection_plan (that
    as-of partition replaced) and, when ``publish``, write the public disclosure (一公开)."""
    from pipelines.features.build import delta_version
    from risk_insight.tiers import _replace_as_of

    s = settings or get_settings()
    pol = policy or policy_for(s)
    seed = pol.draw.seed if seed is None else int(seed)
    plan_id = plan_id_for(as_of)
    roster = tables.read(spark, tables.DIM_INSPECTOR, s)
    if roster.limit(1).count() == 0 and default_roster_csv(s).is_file():
        load_roster(spark, default_roster_csv(s), s)
        roster = tables.read(spark, tables.DIM_INSPECTOR, s)
    versions = {
        t.qualified: delta_version(spark, t, s)
        for t in (tables.CREDIT_TIERS, tables.DIM_INSPECTOR, tables.FCT_INSPECTION)
    }
    tiers = tables.read(spark, tables.CREDIT_TIERS, s).where(F.col("as_of") == F.lit(as_of))
    plan = draw_plan(
        tiers, roster, tables.read(spark, tables.FCT_INSPECTION, s), as_of, plan_id, seed, pol
    )
    target = tables.INSPECTION_PLAN
    tables.ensure(spark, target, s)
    out = plan.select(
        F.lit(as_of).alias("as_of"),
        "*",
        F.lit(pol.version).alias("policy_version"),
        F.lit(json.dumps(versions, sort_keys=True)).alias("_input_versions"),
        F.current_timestamp().alias("_planned_at"),  # audit timestamp only
    ).select(*target.columns)
    _replace_as_of(out, target, as_of, s)
    written = read_plan(spark, as_of, s)
    size = {
        (r["region_code"], r["tier"]): r["count"]
        for r in written.groupBy("region_code", "tier").count().collect()
    }
    result = PlanResult(as_of, plan_id, seed, dict(sorted(size.items())))
    if publish:
        result.public_csv, result.manifest = publish_plan(spark, as_of, s, pol)
    return result


def read_plan(spark: SparkSession, as_of: date, settings: Settings | None = None) -> DataFrame:
    """The plan rows of ``as_of`` from gold.inspection_plan."""
    s = settings or get_settings()
    return tables.read(spark, tables.INSPECTION_PLAN, s).where(F.col("as_of") == F.lit(as_of))


PUBLIC_HEADERS = {
    "plan_id": "抽查计划编号 / plan id",
    "region_code": "行政区划代码 / region",
    "uscc": "统一社会信用代码 / USCC",
    "name": "企业名称 / name",
    "inspector_id": "检查人员编号 / inspector id",
    "inspector_name": "检查人员 / inspector",
    "mode": "抽查方式 / mode",
}


def public_plan_frame(spark: SparkSession, as_of: date, settings: Settings) -> pd.DataFrame:
    """The plan as published (一公开): who is inspected and by whom; no tier, score or reason."""
    ent = tables.read(spark, tables.DIM_ENTERPRISE, settings).where(F.col("is_current"))
    roster = tables.read(spark, tables.DIM_INSPECTOR, settings).select(
        "inspector_id", F.col("name").alias("inspector_name")
    )
    pdf = (
        read_plan(spark, as_of, settings)
        .join(ent.select("uscc", "name"), "uscc", "left")
        .join(roster, "inspector_id", "left")
        .select(
            "plan_id",
            "region_code",
            "uscc",
            "name",
            "inspector_id",
            "inspector_name",
            F.lit("双随机抽查").alias("mode"),
        )  # fmt: skip
        .orderBy("region_code", "uscc")
        .toPandas()
    )
    return pdf


def publish_plan(
    spark: SparkSession, as_of: date, settings: Settings, policy: TierPolicy
) -> tuple[Path, Path]:
    """Write ``<outputs>/plans/<plan_id>/public_plan.csv`` (UTF-8 with BOM, safe cells) and
    ``manifest.json`` (seed, ratios, method, policy and input versions)."""
    from risk_insight.lists import neutralise_frame

    pdf = public_plan_frame(spark, as_of, settings)
    first = read_plan(spark, as_of, settings).limit(1).collect()
    plan_id = plan_id_for(as_of)
    folder = Path(settings.outputs_root) / "plans" / plan_id
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "public_plan.csv"
    neutralise_frame(pdf).rename(columns=PUBLIC_HEADERS).to_csv(
        csv, index=False, encoding="utf-8-sig"
    )
    manifest = {
        "plan_id": plan_id,
        "as_of": as_of.isoformat(),
        "seed": int(first[0]["seed"]) if first else policy.draw.seed,
        "draw_ratios": policy.draw.ratios,
        "policy_version": policy.version,
        "model_version": first[0]["model_version"] if first else None,
        "input_versions": json.loads(first[0]["_input_versions"]) if first else {},
        "enterprises_drawn": len(pdf),
        "method": "u = int(sha256('seed|plan_id|uscc')[:13], 16) / 2^52; per region x tier the "
        "round_half_up(ratio x n) lowest u are drawn; inspector = lowest "
        "sha256('seed|plan_id|uscc|inspector_id') in the region's roster, excluding the "
        "enterprise's previous inspector",
    }
    man = folder / "manifest.json"
    man.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return csv, man
