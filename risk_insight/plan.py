"""双随机 inspection plans: one per plan period, random inspectees per region x tier, two
random inspectors per drawn enterprise.

The period. ``policy.plan.period`` (monthly or quarterly) cuts the calendar into periods; the
plan id is ``CJ-<first day of the period>`` (:mod:`risk_insight.calendar`). The first run
inside a period draws the plan from that day's tiers; every later run of the period reuses it
(:func:`build_plan` never redraws a plan that exists: a published plan does not change).

Who may be drawn (无事不扰). Every non-excluded tiered enterprise of a region x tier stratum,
except one that was inspected (any mode) or drawn by an earlier plan within the
``cool_off_days`` before the draw, or that already had its tier's ``yearly_cap`` of random draws
(earlier plans' draws plus random inspections recorded outside them) in the calendar year.

The draw. Each enterprise gets a draw value ``u = int(sha256("seed|plan_id|uscc")[:13], 16) /
2**52``, uniform on [0, 1) and a function of those three strings only, so the draw does not
depend on Spark partitioning, row order or the machine, and anyone holding the revealed seed
can recompute it (:func:`draw_value`). In every stratum with e eligible enterprises the
k = round_half_up(ratio x e) lowest values (ties by USCC) are drawn; each drawn enterprise's
inclusion probability k / e is recorded (``inclusion_prob``), so judging can weight it by its
inverse. The seed is committed before the period's tiers exist (:mod:`risk_insight.seeds`).

The inspectors (:func:`assign_inspectors`, a pure function, re-run by ``plan verify``).
Drawn enterprises are staffed in order of their draw value. For each, the candidates are its
district's roster minus everyone of its previous inspection (never the previous pair, nor
either of them), minus inspectors with a declared conflict of interest (the enterprise, or its
legal representative), minus inspectors who already carry ``workload_cap`` enterprises this
period; the ``per_enterprise`` (two) candidates with the lowest
``sha256("seed|plan_id|uscc|inspector_id")`` are assigned. If fewer remain, the enterprise
stays unassigned with the reason (``unassigned_reason``), for the chief to staff by hand.

The public plan (一公开) names the drawn enterprises and both inspectors, with the revealed seed,
its commitment and the stratum counts; a sealed folder beside it (0700, for auditors) keeps the
full draw frame (every stratum member with its tier, eligibility and draw value) and the
assignment inputs, from which ``risk-insight plan verify`` recomputes the whole plan.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from risk_insight.calendar import Period, next_period, period_of, plan_id_for
from warehouse import tables
from warehouse.contracts.canonical import MODE
from warehouse.contracts.tier_policy import TierPolicy, policy_for
from warehouse.settings import Settings, get_settings

__all__ = ["plan_id_for"]  # re-exported: callers build plan ids from here

_HEX = 13  # 52 bits: exact in a double
RANDOM_DRAW_TEXT = MODE["random_draw"][0]  # 双随机抽查, shown on published plans
ID_SEPARATORS = r"[;；,，、/\s]+"  # inspection systems list several officers in one field

UNASSIGNED_TEXT = {
    "roster_too_small": "区县执法人员名录不足两人 / district roster has fewer than two inspectors",
    "previous_inspectors": "排除上次检查人员后人数不足 / too few left once the previous "
    "inspectors are excluded",
    "conflict_of_interest": "排除利益冲突人员后人数不足 / too few left once inspectors with a "
    "conflict of interest are excluded",
    "workload_cap": "其余人员本期工作量已满 / the others have reached this period's workload cap",
}


def draw_value(seed: int, plan_id: str, uscc: str) -> float:
    """The draw value of one enterprise, exactly as the plan computes it in Spark: the first
    13 hex digits of sha256("seed|plan_id|uscc") over 2^52 (uniform on [0, 1))."""
    digest = hashlib.sha256(f"{seed}|{plan_id}|{uscc}".encode()).hexdigest()
    return int(digest[:_HEX], 16) / 2**52


def inspector_value(seed: int, plan_id: str, uscc: str, inspector_id: str) -> float:
    """The value that orders an enterprise's candidate inspectors (lowest first)."""
    return draw_value(seed, plan_id, f"{uscc}|{inspector_id}")


def _hash_uniform(*parts: Column) -> Column:
    digest = F.sha2(F.concat_ws("|", *parts), 256)
    return F.conv(F.substring(digest, 1, _HEX), 16, 10).cast("double") / F.lit(float(2**52))


def previous_inspectors(inspections: DataFrame, as_of: date) -> DataFrame:
    """(uscc, previous_inspector_id, previous_inspector_ids): who inspected each enterprise
    last before ``as_of`` (the first listed officer, and all of them joined by ';')."""
    last = Window.partitionBy("uscc").orderBy(
        F.col("inspected_on").desc(), F.col("inspection_id").desc()
    )
    ids = F.array_compact(F.split(F.upper(F.trim(F.col("inspector_id"))), ID_SEPARATORS))
    return (
        inspections.where(
            (F.col("inspected_on") < F.lit(as_of)) & F.col("inspector_id").isNotNull()
        )
        .withColumn("_n", F.row_number().over(last))
        .where(F.col("_n") == 1)
        .withColumn("_ids", F.filter(ids, lambda x: x != ""))
        .select(
            "uscc",
            F.col("_ids")[0].alias("previous_inspector_id"),
            F.array_join("_ids", ";").alias("previous_inspector_ids"),
        )
    )


def _ratio(policy: TierPolicy) -> Column:
    m = F.create_map(*[F.lit(x) for kv in policy.draw.ratios.items() for x in kv])
    return F.element_at(m, F.col("tier")).cast("double")


def _cap(policy: TierPolicy) -> Column:
    m = F.create_map(*[F.lit(x) for kv in policy.plan.yearly_cap.items() for x in kv])
    return F.element_at(m, F.col("tier"))


def ineligible(
    pop: DataFrame,
    inspections: DataFrame,
    previous_plans: DataFrame | None,
    as_of: date,
    plan_id: str,
    policy: TierPolicy,
) -> DataFrame:
    """(uscc, ineligible_reason) for the stratum members ``pop`` (uscc, tier) that may not be
    drawn at ``as_of``: ``cool_off`` (inspected or drawn within the cool-off window) or
    ``yearly_cap`` (the tier's random draws this calendar year already reached)."""
    cool_from = as_of - timedelta(days=policy.plan.cool_off_days)
    year_from = date(as_of.year, 1, 1)
    ins = inspections.where(F.col("inspected_on") < F.lit(as_of))
    recent = [ins.where(F.col("inspected_on") >= F.lit(cool_from)).select("uscc")]
    yearly = ins.where(
        (F.col("inspected_on") >= F.lit(year_from))
        & ((F.col("mode_code") == "random_draw") | F.col("plan_id").isNotNull())
    ).select("uscc", F.coalesce("plan_id", "inspection_id").alias("_draw"))
    if previous_plans is not None:
        earlier = previous_plans.where(
            (F.col("plan_id") != F.lit(plan_id)) & (F.col("as_of") < F.lit(as_of))
        )
        recent.append(earlier.where(F.col("as_of") >= F.lit(cool_from)).select("uscc"))
        plan_draws = earlier.where(F.col("as_of") >= F.lit(year_from)).select(
            "uscc", F.col("plan_id").alias("_draw")
        )
        # an inspection of an earlier plan's draw counts once, as that draw
        yearly = yearly.unionByName(plan_draws)
    cooled = recent[0]
    for df in recent[1:]:
        cooled = cooled.unionByName(df)
    cooled = cooled.distinct().withColumn("_cooled", F.lit(True))
    capped = (
        yearly.groupBy("uscc")
        .agg(F.countDistinct("_draw").alias("_draws"))
        .join(pop.select("uscc", "tier"), "uscc")
        .where(F.col("_draws") >= _cap(policy))
        .select("uscc", F.lit(True).alias("_capped"))
    )
    return (
        pop.select("uscc")
        .join(cooled, "uscc", "left")
        .join(capped, "uscc", "left")
        .where(F.col("_cooled") | F.col("_capped"))
        .select(
            "uscc",
            F.when(F.col("_cooled"), "cool_off").otherwise("yearly_cap").alias("ineligible_reason"),
        )
    )


def draw_frame(
    tiers: DataFrame,
    inspections: DataFrame,
    as_of: date,
    plan_id: str,
    seed: int,
    policy: TierPolicy,
    previous_plans: DataFrame | None = None,
) -> DataFrame:
    """Every stratum member with its draw: (region_code, tier, uscc, model_version,
    draw_value, ineligible_reason, eligible, draw_rank (among the eligible), stratum_size,
    stratum_eligible, stratum_drawn, draw_ratio, inclusion_prob, drawn). ``tiers`` is
    gold.credit_tiers at ``as_of``."""
    pop = tiers.where(~F.col("excluded") & F.col("region_code").isNotNull()).select(
        "uscc", "region_code", "tier", "model_version"
    )
    stratum = Window.partitionBy("region_code", "tier")
    frame = (
        pop.join(
            ineligible(pop, inspections, previous_plans, as_of, plan_id, policy), "uscc", "left"
        )
        .withColumn("eligible", F.col("ineligible_reason").isNull())
        .withColumn("draw_value", _hash_uniform(F.lit(str(seed)), F.lit(plan_id), F.col("uscc")))
        .withColumn("draw_ratio", _ratio(policy))
        .withColumn("stratum_size", F.count(F.lit(1)).over(stratum))
        .withColumn("stratum_eligible", F.sum(F.col("eligible").cast("long")).over(stratum))
        # round half up, as tiers.round_half_up
        .withColumn(
            "stratum_drawn",
            F.floor(F.col("draw_ratio") * F.col("stratum_eligible") + 0.5 + 1e-9).cast("long"),
        )
        .withColumn(
            "draw_rank",
            F.when(
                F.col("eligible"),
                F.row_number().over(
                    stratum.orderBy(F.col("eligible").desc(), F.col("draw_value"), F.col("uscc"))
                ),
            ),
        )
        .withColumn("drawn", F.coalesce(F.col("draw_rank") <= F.col("stratum_drawn"), F.lit(False)))
        .withColumn(
            "inclusion_prob",
            F.when(
                F.col("stratum_eligible") > 0, F.col("stratum_drawn") / F.col("stratum_eligible")
            ),
        )
    )
    return frame.select(
        "region_code", "tier", "uscc", "model_version", "draw_value", "ineligible_reason",
        "eligible", F.col("draw_rank").cast("int").alias("draw_rank"),
        F.col("stratum_size").cast("long").alias("stratum_size"),
        F.col("stratum_eligible").cast("long").alias("stratum_eligible"),
        "stratum_drawn", "draw_ratio", "inclusion_prob", "drawn",
    )  # fmt: skip


def assign_inspectors(
    drawn: pd.DataFrame,
    roster: pd.DataFrame,
    previous: dict[str, set[str]],
    conflicts: set[tuple[str, str]],
    seed: int,
    plan_id: str,
    per_enterprise: int = 2,
    workload_cap: int = 40,
) -> pd.DataFrame:
    """Inspectors of the drawn enterprises (``drawn``: uscc, region_code, draw_value) from the
    roster (inspector_id, region_code): returns (uscc, inspector_id, inspector_2_id,
    unassigned_reason), one row per drawn enterprise, in the order they were staffed.

    Pure and deterministic: enterprises are staffed in (draw_value, uscc) order; candidates
    exclude ``previous[uscc]`` (everyone of its previous inspection), ``conflicts`` pairs
    (inspector_id, uscc) and inspectors at ``workload_cap``; the ``per_enterprise`` lowest
    :func:`inspector_value` are taken, or none with the reason of the first rule that left
    too few (see ``UNASSIGNED_TEXT``)."""
    by_region: dict[str, list[str]] = {}
    for r in roster.sort_values("inspector_id").itertuples():
        by_region.setdefault(str(r.region_code), []).append(str(r.inspector_id))
    load: dict[str, int] = {}
    out = []
    order = drawn.sort_values(["draw_value", "uscc"], kind="stable")
    for r in order.itertuples():
        uscc, team = str(r.uscc), by_region.get(str(r.region_code), [])
        steps = [
            ("roster_too_small", team),
            ("previous_inspectors", [i for i in team if i not in previous.get(uscc, set())]),
        ]
        steps.append(
            ("conflict_of_interest", [i for i in steps[-1][1] if (i, uscc) not in conflicts])
        )
        steps.append(("workload_cap", [i for i in steps[-1][1] if load.get(i, 0) < workload_cap]))
        reason = next((why for why, left in steps if len(left) < per_enterprise), None)
        picked: list[str] = []
        if reason is None:
            ranked = sorted(
                steps[-1][1], key=lambda i: (inspector_value(seed, plan_id, uscc, i), i)
            )
            picked = ranked[:per_enterprise]
            for i in picked:
                load[i] = load.get(i, 0) + 1
        out.append(
            (
                uscc,
                picked[0] if picked else None,
                picked[1] if len(picked) > 1 else None,
                reason,
            )
        )
    return pd.DataFrame(
        out, columns=["uscc", "inspector_id", "inspector_2_id", "unassigned_reason"]
    )


PLAN_COLUMNS = [
    ("plan_id", "string"), ("region_code", "string"), ("tier", "string"), ("uscc", "string"),
    ("draw_value", "double"), ("draw_rank", "int"), ("stratum_size", "bigint"),
    ("stratum_drawn", "bigint"), ("draw_ratio", "double"), ("inspector_id", "string"),
    ("previous_inspector_id", "string"), ("seed", "bigint"), ("model_version", "string"),
    ("stratum_eligible", "bigint"), ("inclusion_prob", "double"), ("inspector_2_id", "string"),
    ("previous_inspector_ids", "string"), ("unassigned_reason", "string"),
]  # fmt: skip


def draw_plan(
    tiers: DataFrame,
    roster: DataFrame,
    inspections: DataFrame,
    as_of: date,
    plan_id: str,
    seed: int,
    policy: TierPolicy,
    previous_plans: DataFrame | None = None,
    conflicts: DataFrame | None = None,
    legal_reps: DataFrame | None = None,
    frame: DataFrame | None = None,
) -> DataFrame:
    """The drawn enterprises with their inspectors: (plan_id, region_code, tier, uscc,
    draw_value, draw_rank, stratum_size, stratum_drawn, draw_ratio, inspector_id,
    previous_inspector_id, seed, model_version, stratum_eligible, inclusion_prob,
    inspector_2_id, previous_inspector_ids, unassigned_reason).

    ``tiers`` is gold.credit_tiers at ``as_of``; ``inspections`` silver.fct_inspection;
    ``previous_plans`` gold.inspection_plan (earlier periods); ``conflicts`` (inspector_id,
    uscc, legal_rep_token) with ``legal_reps`` (uscc, legal_rep_token at ``as_of``). The drawn
    rows (a few per cent of the population) are staffed on the driver."""
    spark = tiers.sparkSession
    frame = (
        frame
        if frame is not None
        else draw_frame(tiers, inspections, as_of, plan_id, seed, policy, previous_plans)
    )
    drawn = (
        frame.where("drawn")
        .join(previous_inspectors(inspections, as_of), "uscc", "left")
        .select(
            F.lit(plan_id).alias("plan_id"),
            "region_code",
            "tier",
            "uscc",
            "draw_value",
            "draw_rank",
            "stratum_size",
            "stratum_drawn",
            "draw_ratio",
            "previous_inspector_id",
            F.lit(seed).cast("long").alias("seed"),
            "model_version",
            "stratum_eligible",
            "inclusion_prob",
            "previous_inspector_ids",
        )  # fmt: skip
    )
    pairs = conflict_pairs(drawn.select("uscc"), conflicts, legal_reps)
    pdf = drawn.toPandas()
    previous = {
        u: set(str(ids).split(";"))
        for u, ids in zip(pdf["uscc"], pdf["previous_inspector_ids"], strict=True)
        if isinstance(ids, str) and ids
    }
    staff = assign_inspectors(
        pdf[["uscc", "region_code", "draw_value"]],
        roster.select("inspector_id", "region_code").toPandas(),
        previous,
        pairs,
        seed,
        plan_id,
        policy.inspectors.per_enterprise,
        policy.inspectors.workload_cap,
    )
    out = pdf.merge(staff, on="uscc", how="left")
    schema = ", ".join(f"{n} {t}" for n, t in PLAN_COLUMNS)
    rows = [
        tuple(None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row)
        for row in out[[n for n, _ in PLAN_COLUMNS]].itertuples(index=False)
    ]
    return spark.createDataFrame(rows, schema)


def conflict_pairs(
    drawn_usccs: DataFrame, conflicts: DataFrame | None, legal_reps: DataFrame | None
) -> set[tuple[str, str]]:
    """(inspector_id, uscc) pairs that may not meet: a declared conflict with the enterprise,
    or with its legal representative (by token)."""
    if conflicts is None:
        return set()
    by_uscc = conflicts.where(F.col("uscc").isNotNull()).join(drawn_usccs, "uscc")
    pairs = by_uscc.select("inspector_id", "uscc")
    if legal_reps is not None:
        by_rep = (
            conflicts.where(F.col("legal_rep_token").isNotNull())
            .select("inspector_id", "legal_rep_token")
            .join(legal_reps.join(drawn_usccs, "uscc"), "legal_rep_token")
            .select("inspector_id", "uscc")
        )
        pairs = pairs.unionByName(by_rep)
    return {(r["inspector_id"], r["uscc"]) for r in pairs.distinct().collect()}


# ---- reference files: the roster and the conflict-of-interest declarations -----------------
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
    tables.replace(df, target, s)
    return len(rows)


def default_roster_csv(settings: Settings) -> Path:
    """Where the simulator (and agencies) put the roster: ``<landing>/../reference/``."""
    return Path(settings.landing_root).parent / "reference" / "inspectors.csv"


CONFLICT_COLUMNS = ("inspector_id", "uscc", "legal_rep_id", "legal_rep_token", "reason")


def conflicts_csv(settings: Settings, policy: TierPolicy) -> Path:
    """The conflict-of-interest file: ``policy.inspectors.conflicts`` or
    ``<landing>/../reference/conflicts.csv``."""
    if policy.inspectors.conflicts:
        return Path(policy.inspectors.conflicts)
    return Path(settings.landing_root).parent / "reference" / "conflicts.csv"


def load_conflicts(
    spark: SparkSession, csv_path: str | Path, settings: Settings, roster: DataFrame | None = None
) -> DataFrame:
    """The declared conflicts of interest as (inspector_id, uscc, legal_rep_token, reason).

    The file (UTF-8, header row) has ``inspector_id`` and at least one of ``uscc`` (the
    enterprise), ``legal_rep_id`` (the legal representative's ID number, tokenised here with
    the lake's personal-data key and never stored) or ``legal_rep_token`` (an already tokenised
    one); ``reason`` is free text. A row naming no enterprise or representative, or an inspector
    not on the roster, is an error (ValueError with the row numbers): a conflict must never be
    silently ignored."""
    from pipelines.normalise import clean_code, token

    pdf = pd.read_csv(csv_path, dtype=str, encoding="utf-8-sig").fillna("")
    missing = [c for c in ("inspector_id",) if c not in pdf.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}; expected {CONFLICT_COLUMNS}")
    for c in CONFLICT_COLUMNS:
        pdf[c] = pdf[c].str.strip() if c in pdf.columns else ""
    bad = pdf.index[
        (pdf["inspector_id"] == "")
        | ((pdf["uscc"] == "") & (pdf["legal_rep_id"] == "") & (pdf["legal_rep_token"] == ""))
    ]
    if len(bad):
        rows = ", ".join(str(i + 2) for i in bad)
        raise ValueError(
            f"{csv_path}: row(s) {rows} name no inspector, or neither an enterprise (uscc) nor a "
            "legal representative (legal_rep_id / legal_rep_token)"
        )
    if roster is not None:
        known = {r[0] for r in roster.select("inspector_id").collect()}
        unknown = pdf.index[~pdf["inspector_id"].str.upper().isin({k.upper() for k in known})]
        if len(unknown):
            rows = ", ".join(f"{i + 2} ({pdf.at[i, 'inspector_id']})" for i in unknown)
            raise ValueError(f"{csv_path}: inspector(s) not on the roster in row(s) {rows}")
    raw = spark.createDataFrame(
        [tuple(r) for r in pdf[list(CONFLICT_COLUMNS)].itertuples(index=False)],
        ", ".join(f"{c} string" for c in CONFLICT_COLUMNS),
    )
    key = settings.resolved_pii_key()
    return raw.select(
        clean_code(F.col("inspector_id")).alias("inspector_id"),
        clean_code(F.col("uscc")).alias("uscc"),
        F.coalesce(token(F.col("legal_rep_id"), key), clean_code(F.col("legal_rep_token"))).alias(
            "legal_rep_token"
        ),
        F.col("reason"),
    ).withColumn(
        "legal_rep_token",
        F.when(F.col("legal_rep_token").isNotNull(), F.lower("legal_rep_token")),
    )


# ---- building and publishing a plan -----------------------------------------------------------
@dataclass
class PlanResult:
    """What one period's plan drew: id, seed, size per region x tier, where it was published,
    and whether this run drew it or found it already drawn."""

    as_of: date
    plan_id: str
    seed: int
    size: dict[tuple[str, str], int]  # (region_code, tier) -> drawn
    public_csv: Path | None = None
    manifest: Path | None = None
    period: Period | None = None
    drawn_at: date | None = None  # the as-of date the plan was drawn at
    reused: bool = False
    unassigned: int = 0
    commitment: str | None = None
    next_commitment: str | None = None
    sealed: Path | None = None
    seed_source: str = "committed"
    extra: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.size.values())


def period_for(as_of: date, policy: TierPolicy) -> Period:
    """The plan period of ``as_of`` under ``policy``."""
    return period_of(as_of, policy.plan.period)


def open_period(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
):
    """Make sure the period of ``as_of`` has a committed seed (called before the tiers are
    built); returns its commitment. A no-op when the previous plan already committed it."""
    from risk_insight import seeds

    s = settings or get_settings()
    pol = policy or policy_for(s)
    period = period_for(as_of, pol)
    if pol.draw.seed is not None:
        return seeds.commit(spark, period, pol.version, s, pol.draw.seed, "policy")
    return seeds.commit(spark, period, pol.version, s)


def build_plan(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    seed: int | None = None,
    policy: TierPolicy | None = None,
    publish: bool = True,
) -> PlanResult:
    """The plan of the period of ``as_of``: drawn from gold.credit_tiers at ``as_of`` into
    gold.inspection_plan (and, when ``publish``, the public disclosure 一公开 plus its sealed
    audit folder) if the period has none yet; otherwise the existing plan, unchanged.

    The seed is the period's committed one (:mod:`risk_insight.seeds`; committed now if the
    period was never opened), or ``seed`` / the policy's fixed seed when given (recorded as
    predictable). Drawing also commits the next period's seed, published in the manifest."""
    from pipelines.features.build import delta_version
    from risk_insight import seeds

    s = settings or get_settings()
    pol = policy or policy_for(s)
    period = period_for(as_of, pol)
    plan_id = period.plan_id
    existing = plan_rows(spark, plan_id, s)
    first = existing.select("as_of", "seed", "seed_commitment").limit(1).collect()
    if first:
        size = _sizes(existing)
        folder = Path(s.outputs_root) / "plans" / plan_id
        return PlanResult(
            as_of, plan_id, int(first[0]["seed"]), size,
            folder / "public_plan.csv" if (folder / "public_plan.csv").exists() else None,
            folder / "manifest.json" if (folder / "manifest.json").exists() else None,
            period, first[0]["as_of"], True,
            existing.where(F.col("inspector_id").isNull()).count(),
            first[0]["seed_commitment"],
        )  # fmt: skip
    if seed is not None or pol.draw.seed is not None:
        seed = int(seed if seed is not None else pol.draw.seed)
        source = "explicit" if pol.draw.seed is None or seed != pol.draw.seed else "policy"
        commitment = seeds.commitment_of(plan_id, seed)
        done = seeds.recorded(spark, plan_id, s)
        if done is None:
            done = seeds.commit(spark, period, pol.version, s, seed, source)
        elif done.commitment != commitment:
            # a period's seed is committed once: drawing with another one is what commit-reveal
            # exists to prevent, so it is recorded as such (the manifest carries both)
            source = "explicit"
    else:
        if seeds.recorded(spark, plan_id, s) is None:
            open_period(spark, as_of, s, pol)
        seed, done = seeds.reveal(spark, plan_id, s)
        source = done.seed_source
        commitment = done.commitment

    roster = tables.read(spark, tables.DIM_INSPECTOR, s)
    if roster.limit(1).count() == 0 and default_roster_csv(s).is_file():
        load_roster(spark, default_roster_csv(s), s)
        roster = tables.read(spark, tables.DIM_INSPECTOR, s)
    conflicts_file = conflicts_csv(s, pol)
    conflicts = (
        load_conflicts(spark, conflicts_file, s, roster) if conflicts_file.is_file() else None
    )
    versions = {
        t.qualified: delta_version(spark, t, s)
        for t in (
            tables.CREDIT_TIERS,
            tables.DIM_INSPECTOR,
            tables.FCT_INSPECTION,
            tables.INSPECTION_PLAN,
        )
    }
    tiers = tables.read(spark, tables.CREDIT_TIERS, s).where(F.col("as_of") == F.lit(as_of))
    if tiers.limit(1).count() == 0:
        raise ValueError(f"no tiers at {as_of}: run `risk-insight tiers --as-of {as_of}` first")
    inspections = tables.read(spark, tables.FCT_INSPECTION, s)
    previous = tables.read(spark, tables.INSPECTION_PLAN, s)
    from risk_insight.tiers import enterprises_at

    legal_reps = enterprises_at(tables.read(spark, tables.DIM_ENTERPRISE, s), as_of).select(
        "uscc", "legal_rep_token"
    )
    frame = draw_frame(tiers, inspections, as_of, plan_id, seed, pol, previous).cache()
    plan = draw_plan(
        tiers, roster, inspections, as_of, plan_id, seed, pol, previous, conflicts, legal_reps,
        frame=frame,
    )  # fmt: skip
    target = tables.INSPECTION_PLAN
    tables.ensure(spark, target, s)
    out = plan.select(
        F.lit(as_of).alias("as_of"),
        F.lit(period.start).alias("period_start"),
        F.lit(period.end).alias("period_end"),
        "*",
        F.lit(commitment).alias("seed_commitment"),
        F.lit(pol.version).alias("policy_version"),
        F.lit(json.dumps(versions, sort_keys=True)).alias("_input_versions"),
        F.current_timestamp().alias("_planned_at"),  # audit timestamp only
    ).select(*target.columns)
    tables.replace(out, target, s, as_of=as_of)
    written = plan_rows(spark, plan_id, s)
    nxt = next_period(period)
    upcoming = (
        seeds.commit(spark, nxt, pol.version, s) if pol.draw.seed is None and seed is not None
        else None
    )  # fmt: skip
    result = PlanResult(
        as_of, plan_id, seed, _sizes(written), period=period, drawn_at=as_of,
        unassigned=written.where(F.col("inspector_id").isNull()).count(),
        commitment=commitment, next_commitment=upcoming.commitment if upcoming else None,
        seed_source=source,
    )  # fmt: skip
    if publish:
        result.public_csv, result.manifest, result.sealed = publish_plan(
            spark, plan_id, s, pol, frame, upcoming, conflicts_file if conflicts else None
        )
    frame.unpersist()
    return result


def _sizes(plan: DataFrame) -> dict[tuple[str, str], int]:
    size = {
        (r["region_code"], r["tier"]): r["count"]
        for r in plan.groupBy("region_code", "tier").count().collect()
    }
    return dict(sorted(size.items()))


def plan_rows(spark: SparkSession, plan_id: str, settings: Settings | None = None) -> DataFrame:
    """The rows of plan ``plan_id`` in gold.inspection_plan."""
    s = settings or get_settings()
    return tables.read(spark, tables.INSPECTION_PLAN, s).where(F.col("plan_id") == F.lit(plan_id))


def read_plan(
    spark: SparkSession,
    as_of: date,
    settings: Settings | None = None,
    policy: TierPolicy | None = None,
) -> DataFrame:
    """The plan in force at ``as_of``: the rows of its period's plan (empty if none yet)."""
    s = settings or get_settings()
    return plan_rows(spark, period_for(as_of, policy or policy_for(s)).plan_id, s)


PUBLIC_HEADERS = {
    "plan_id": "抽查计划编号 / plan id",
    "period": "计划期间 / period",
    "region_code": "行政区划代码 / region",
    "region_name": "区县 / district",
    "uscc": "统一社会信用代码 / USCC",
    "name": "企业名称 / name",
    "inspector_id": "检查人员1编号 / inspector 1 id",
    "inspector_name": "检查人员1 / inspector 1",
    "inspector_2_id": "检查人员2编号 / inspector 2 id",
    "inspector_2_name": "检查人员2 / inspector 2",
    "draw_value": "抽取值 / draw value",
    "mode": "抽查方式 / mode",
}


def public_plan_frame(spark: SparkSession, plan_id: str, settings: Settings) -> pd.DataFrame:
    """The plan as published (一公开): who is inspected and by whom, with each enterprise's draw
    value so anyone can recompute it from the revealed seed; no tier, score or reason."""
    ent = tables.read(spark, tables.DIM_ENTERPRISE, settings).where(F.col("is_current"))
    roster = tables.read(spark, tables.DIM_INSPECTOR, settings)
    names = tables.read(spark, tables.DIM_REGION, settings).select("region_code", "region_name")
    first = roster.select("inspector_id", F.col("name").alias("inspector_name"))
    second = roster.select(
        F.col("inspector_id").alias("inspector_2_id"), F.col("name").alias("inspector_2_name")
    )
    pdf = (
        plan_rows(spark, plan_id, settings)
        .join(ent.select("uscc", "name"), "uscc", "left")
        .join(names, "region_code", "left")
        .join(first, "inspector_id", "left")
        .join(second, "inspector_2_id", "left")
        .select(
            "plan_id",
            F.concat_ws(
                " ~ ", F.col("period_start").cast("string"), F.col("period_end").cast("string")
            ).alias("period"),
            "region_code",
            "region_name",
            "uscc",
            "name",
            "inspector_id",
            "inspector_name",
            "inspector_2_id",
            "inspector_2_name",
            F.format_string("%.15f", "draw_value").alias("draw_value"),
            F.lit(RANDOM_DRAW_TEXT).alias("mode"),
        )  # fmt: skip
        .orderBy("region_code", "uscc")
        .toPandas()
    )
    return pdf


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _private_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def publish_plan(
    spark: SparkSession,
    plan_id: str,
    settings: Settings,
    policy: TierPolicy,
    frame: DataFrame | None = None,
    upcoming=None,
    conflicts_file: Path | None = None,
) -> tuple[Path, Path, Path | None]:
    """Write ``<outputs>/plans/<plan_id>/public_plan.csv`` (UTF-8 with BOM, safe cells) and
    ``manifest.json`` (seed, its commitment, the next period's commitment, ratios, stratum
    counts, method, versions), and, given the draw ``frame``, the sealed audit folder
    ``sealed/`` (0700; files 0600): ``draw_frame.csv`` and ``assignment.json``."""
    from risk_insight import seeds
    from warehouse.exports import neutralise_frame

    rows = plan_rows(spark, plan_id, settings)
    pdf = public_plan_frame(spark, plan_id, settings)
    head = rows.limit(1).collect()
    if not head:
        raise ValueError(f"plan {plan_id} drew nobody: nothing to publish")
    first = head[0]
    folder = Path(settings.outputs_root) / "plans" / plan_id
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "public_plan.csv"
    neutralise_frame(pdf).rename(columns=PUBLIC_HEADERS).to_csv(
        csv, index=False, encoding="utf-8-sig"
    )
    strata = (
        rows.groupBy("region_code", "tier")
        .agg(
            F.first("stratum_size").alias("size"),
            F.first("stratum_eligible").alias("eligible"),
            F.first("stratum_drawn").alias("drawn"),
            F.first("draw_ratio").alias("ratio"),
        )
        .orderBy("region_code", "tier")
        .collect()
    )
    committed = seeds.recorded(spark, plan_id, settings)
    tiers_built = (
        tables.read(spark, tables.CREDIT_TIERS, settings)
        .where(F.col("as_of") == F.lit(first["as_of"]))
        .agg(F.min("_built_at"))
        .first()[0]
    )
    manifest = {
        "plan_id": plan_id,
        "period": [first["period_start"].isoformat(), first["period_end"].isoformat()],
        "as_of": first["as_of"].isoformat(),
        "seed": int(first["seed"]),
        "seed_commitment": first["seed_commitment"],
        "seed_source": committed.seed_source if committed else "explicit",
        "committed_at": committed.committed_at if committed else None,
        "tiers_built_at": tiers_built.isoformat(timespec="seconds") if tiers_built else None,
        "next_commitment": upcoming.as_dict() if upcoming else None,
        "draw_ratios": policy.draw.ratios,
        "cool_off_days": policy.plan.cool_off_days,
        "yearly_cap": policy.plan.yearly_cap,
        "inspectors_per_enterprise": policy.inspectors.per_enterprise,
        "workload_cap": policy.inspectors.workload_cap,
        "policy_version": policy.version,
        "model_version": first["model_version"],
        "input_versions": json.loads(first["_input_versions"]),
        "enterprises_drawn": len(pdf),
        "unassigned": int(pdf["inspector_id"].isna().sum()),
        "strata": [
            {
                "region_code": r["region_code"],
                "size": int(r["size"]),
                "eligible": int(r["eligible"]),
                "drawn": int(r["drawn"]),
            }
            for r in strata
        ],  # fmt: skip
        "method": "commitment = sha256('plan_id|seed'); u = int(sha256('seed|plan_id|uscc')"
        "[:13], 16) / 2^52; per region x tier among the eligible (no inspection or draw in the "
        "cool-off window, under the yearly cap) the round_half_up(ratio x eligible) lowest u are "
        "drawn; inspectors: drawn enterprises in u order, the two lowest "
        "sha256('seed|plan_id|uscc|inspector_id') among the district's roster minus the previous "
        "inspection's inspectors, declared conflicts and inspectors at the workload cap",
    }
    man = folder / "manifest.json"
    man.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    sealed = None
    if frame is not None:
        sealed = _private_dir(folder / "sealed")
        # every stratum member: written by Spark (the population is not collected)
        (
            frame.drop("model_version")
            .orderBy("region_code", "tier", "uscc")
            .coalesce(1)
            .write.mode("overwrite")
            .option("header", True)
            .csv(str(sealed / "draw_frame"))
        )
        for root, _dirs, files in os.walk(sealed / "draw_frame"):
            os.chmod(root, 0o700)
            for f in files:
                os.chmod(Path(root) / f, 0o600)
        roster = tables.read(spark, tables.DIM_INSPECTOR, settings)
        previous = {
            r["uscc"]: r["previous_inspector_ids"]
            for r in rows.where(F.col("previous_inspector_ids").isNotNull()).collect()
        }
        conflicts = []
        if conflicts_file is not None:
            conflicts = [
                [a, b]
                for a, b in sorted(
                    conflict_pairs(
                        rows.select("uscc"),
                        load_conflicts(spark, conflicts_file, settings),
                        tables.read(spark, tables.DIM_ENTERPRISE, settings)
                        .where(F.col("is_current"))
                        .select("uscc", "legal_rep_token"),
                    )
                )
            ]
        assignment = {
            "roster": [
                [r["inspector_id"], r["region_code"]]
                for r in roster.orderBy("inspector_id").collect()
            ],
            "previous_inspectors": previous,
            "conflicts": conflicts,
            "per_enterprise": policy.inspectors.per_enterprise,
            "workload_cap": policy.inspectors.workload_cap,
        }
        _private_file(sealed / "assignment.json", json.dumps(assignment, ensure_ascii=False))
    return csv, man, sealed


# ---- verification (anyone with the public files; auditors with the sealed folder too) --------
@dataclass
class Verification:
    """What ``plan verify`` checked, and what did not hold."""

    plan_id: str
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _round_half_up(x: float) -> int:
    import math

    return int(math.floor(x + 0.5 + 1e-9))


def verify_plan(path: str | Path, commitment_file: str | Path | None = None) -> Verification:
    """Recompute a published plan from its public folder (or its ``public_plan.csv``): the
    revealed seed against its commitment (and against the commitment published when the period
    opened: ``commitment_file``, else ``../commitments/<plan_id>.json`` beside the plan, else
    the previous plan's manifest), every enterprise's draw value, the drawn count of every
    stratum from its eligible count and ratio, and two distinct inspectors per assigned
    enterprise. With the sealed folder present, also the selection itself (the lowest draw
    values among each stratum's eligible) and the inspector assignment. Needs no Spark."""
    from risk_insight import seeds

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    plan_id, seed = manifest["plan_id"], int(manifest["seed"])
    v = Verification(plan_id)
    public = pd.read_csv(folder / "public_plan.csv", dtype=str, encoding="utf-8-sig").fillna("")
    cols = {h: k for k, h in PUBLIC_HEADERS.items()}
    public = public.rename(columns=cols)
    public["uscc"] = public["uscc"].str.lstrip("'")

    # 1. the seed is the committed one, committed before the tiers were built
    if seeds.commitment_of(plan_id, seed) != manifest["seed_commitment"]:
        v.problems.append("the revealed seed does not match the plan's commitment")
    else:
        v.checks.append(f"sha256('{plan_id}|seed') = {manifest['seed_commitment'][:16]}…")
    published = None
    candidates = [Path(commitment_file)] if commitment_file else [
        folder.parent / "commitments" / f"{plan_id}.json",
    ]  # fmt: skip
    for c in candidates:
        if c.is_file():
            published = json.loads(c.read_text(encoding="utf-8"))
            break
    if published is None:
        for other in sorted(folder.parent.glob("*/manifest.json")):
            nxt = json.loads(other.read_text(encoding="utf-8")).get("next_commitment") or {}
            if nxt.get("plan_id") == plan_id:
                published = nxt
    if published is None:
        v.problems.append("no commitment published for this plan was found")
    elif published["commitment"] != manifest["seed_commitment"]:
        v.problems.append("the plan's seed is not the one committed when the period opened")
    else:
        v.checks.append(f"commitment published at {published.get('committed_at')}")
        built = manifest.get("tiers_built_at")
        if built and published.get("committed_at") and published["committed_at"] > built:
            v.problems.append(
                f"the seed was committed ({published['committed_at']}) after the tiers it draws "
                f"from were built ({built})"
            )
    if manifest.get("seed_source") in ("explicit", "policy"):
        v.problems.append(
            f"the seed was {manifest['seed_source']} (chosen, not committed at random): the draw "
            "was predictable"
        )

    # 2. every published draw value recomputes from the seed
    wrong = [
        u for u, dv in zip(public["uscc"], public["draw_value"], strict=True)
        if abs(draw_value(seed, plan_id, u) - float(dv)) > 1e-12
    ]  # fmt: skip
    if wrong:
        v.problems.append(f"{len(wrong)} draw values do not recompute, e.g. {wrong[:3]}")
    else:
        v.checks.append(f"{len(public)} draw values recomputed from the seed")

    # 3. stratum counts: drawn = round_half_up(ratio x eligible); the file holds them all
    ratios = manifest["draw_ratios"]
    per_region = public.groupby("region_code").size().to_dict()
    expected: dict[str, int] = {}
    for st in manifest["strata"]:
        expected[st["region_code"]] = expected.get(st["region_code"], 0) + st["drawn"]
    if per_region != {k: n for k, n in expected.items() if n}:
        v.problems.append("drawn enterprises per district differ from the manifest's strata")
    bad_k = [
        st for st in manifest["strata"]
        if st["drawn"] not in {_round_half_up(r * st["eligible"]) for r in ratios.values()}
    ]  # fmt: skip
    if bad_k:
        v.problems.append(f"{len(bad_k)} strata draw a count no ratio gives")
    else:
        v.checks.append(
            f"{len(manifest['strata'])} strata: drawn = round_half_up(ratio x eligible)"
        )

    # 4. two distinct inspectors where assigned
    assigned = public[public["inspector_id"] != ""]
    same = assigned[assigned["inspector_id"] == assigned["inspector_2_id"]]
    if len(same):
        v.problems.append(f"{len(same)} enterprises have the same inspector twice")
    v.checks.append(f"{len(assigned)} of {len(public)} enterprises have inspectors assigned")

    sealed = folder / "sealed"
    if (sealed / "draw_frame").is_dir():
        _verify_sealed(v, sealed, public, manifest, seed, plan_id)
    else:
        v.checks.append("sealed folder absent: selection and assignment not recomputed")
    return v


def _verify_sealed(v: Verification, sealed: Path, public: pd.DataFrame, manifest: dict,
                   seed: int, plan_id: str) -> None:  # fmt: skip
    frame = pd.concat(
        [
            pd.read_csv(f, dtype={"uscc": str, "region_code": str, "tier": str})
            for f in sorted((sealed / "draw_frame").glob("part-*.csv"))
        ],
        ignore_index=True,
    )
    ratios = manifest["draw_ratios"]
    drawn: list[str] = []
    for (_region, tier), g in frame.groupby(["region_code", "tier"]):
        if any(abs(draw_value(seed, plan_id, u) - dv) > 1e-12
               for u, dv in zip(g["uscc"], g["draw_value"], strict=True)):  # fmt: skip
            v.problems.append(f"sealed frame: draw values of {_region}/{tier} do not recompute")
        eligible = g[g["eligible"].astype(str) == "True"]
        k = _round_half_up(ratios[tier] * len(eligible))
        top = eligible.assign(u=[draw_value(seed, plan_id, u) for u in eligible["uscc"]])
        drawn += top.sort_values(["u", "uscc"]).head(k)["uscc"].tolist()
    if sorted(drawn) != sorted(public["uscc"]):
        v.problems.append("the sealed draw frame selects other enterprises than the public plan")
    else:
        v.checks.append(
            f"selection recomputed from the sealed frame ({len(frame)} stratum members)"
        )
    a = json.loads((sealed / "assignment.json").read_text(encoding="utf-8"))
    staff = assign_inspectors(
        public[["uscc", "region_code"]].assign(
            draw_value=[draw_value(seed, plan_id, u) for u in public["uscc"]]
        ),
        pd.DataFrame(a["roster"], columns=["inspector_id", "region_code"]),
        {u: set(ids.split(";")) for u, ids in a["previous_inspectors"].items()},
        {(i, u) for i, u in a["conflicts"]},
        seed,
        plan_id,
        a["per_enterprise"],
        a["workload_cap"],
    ).set_index("uscc")
    got = public.set_index("uscc")[["inspector_id", "inspector_2_id"]].replace("", None)
    want = staff[["inspector_id", "inspector_2_id"]].reindex(got.index)
    diff = (got.fillna("-") != want.fillna("-")).any(axis=1)
    if diff.any():
        v.problems.append(f"{int(diff.sum())} inspector assignments do not recompute")
    else:
        v.checks.append("inspector assignment recomputed from the roster, previous inspectors, "
                        "conflicts and workload cap")  # fmt: skip


def plan_of_day(as_of: date, policy: TierPolicy) -> str:
    """The plan id in force on ``as_of``."""
    return period_for(as_of, policy).plan_id


def now_stamp() -> str:
    """Generated-at stamp for files people read (local time, seconds)."""
    return datetime.now().replace(microsecond=0).isoformat(sep=" ")
