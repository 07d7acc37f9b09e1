"""The table registry: every lakehouse table declared once.

A :class:`Table` names its layer, schema, natural key, partitioning and Delta constraints.
Jobs refer to tables through this module only (``tables.FCT_PENALTY``), never by path.
Tables live at ``<lake root>/<layer>/<name>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from warehouse import caches, conflicts, contracts
from warehouse.contracts import CANONICAL, CanonicalSource
from warehouse.contracts.features import FEATURES
from warehouse.settings import Settings, get_settings

LAYERS = ("bronze", "silver", "gold", "quarantine", "audit")

# Lineage every bronze row carries (ARCHITECTURE.md, "Contracts between layers").
LINEAGE = [
    T.StructField("_source_file", T.StringType(), False),
    T.StructField("_source_row", T.LongType(), False),
    T.StructField("_batch_id", T.StringType(), False),
    T.StructField("_run_date", T.DateType(), False),
    T.StructField("_ingested_at", T.TimestampType(), False),
    T.StructField("_record_hash", T.StringType(), False),
]
# Silver rows keep the bronze row they came from.
SILVER_LINEAGE = LINEAGE


@dataclass(frozen=True)
class Table:
    """A Delta table's contract: where it lives and what every row must satisfy."""

    layer: str
    name: str
    schema: T.StructType
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    checks: dict[str, str] = field(default_factory=dict)  # constraint name -> SQL predicate
    description: str = ""
    personal: tuple[str, ...] = ()  # raw personal-data columns (retention, erasure)
    properties: dict[str, str] = field(default_factory=dict)  # Delta table properties

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, settings: Settings | None = None) -> str:
        return (settings or get_settings()).table_path(self.layer, self.name)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema.fields]


def _schema(*fields: T.StructField | list[T.StructField]) -> T.StructType:
    flat: list[T.StructField] = []
    for f in fields:
        flat.extend(f if isinstance(f, list) else [f])
    return T.StructType(flat)


def _col(name: str, dtype: T.DataType, nullable: bool = True) -> T.StructField:
    return T.StructField(name, dtype, nullable)


S, D, L, INT, B, TS = (
    T.StringType(),
    T.DateType(),
    T.LongType(),
    T.IntegerType(),
    T.BooleanType(),
    T.TimestampType(),
)
MONEY = T.DecimalType(18, 2)


# ---- bronze: one table per source, every field as the raw string that arrived ---------------
def _bronze(spec: CanonicalSource) -> Table:
    # _extra: columns of the file that the source mapping does not name: header -> raw text;
    # _attributes: the enterprise attributes the mapping declares: attribute name -> raw text
    schema = _schema(
        [_col(f, S) for f in spec.fields],
        _col("_extra", T.MapType(S, S)),
        _col("_attributes", T.MapType(S, S)),
        LINEAGE,
    )
    # Delta keeps min/max statistics of data columns in its log (and .crc files), where an
    # UPDATE or VACUUM never reaches: personal-data columns (and the unmapped columns, which
    # may hold some) get none, so erasure and retention leave no raw value behind in the log.
    stats = [
        c for c in schema.fieldNames() if c not in (*spec.pii, "_extra", "_attributes", "_run_date")
    ]
    return Table(
        layer="bronze",
        name=spec.name,
        schema=schema,
        keys=("_batch_id", "_source_row"),
        partition_by=("_run_date",),
        description=f"{spec.name}: raw rows as landed, with lineage and unmapped columns",
        personal=spec.pii,
        properties={"delta.dataSkippingStatsColumns": ",".join(stats)},
    )


BRONZE: dict[str, Table] = {name: _bronze(spec) for name, spec in CANONICAL.items()}

# ---- silver: conformed, deduplicated, personal data tokenised ------------------------------
DIM_ENTERPRISE = Table(
    "silver",
    "dim_enterprise",
    _schema(
        _col("uscc", S, False),
        _col("name", S),
        _col("ent_type", S),
        _col("reg_capital_yuan", MONEY),
        _col("founded_on", D),
        _col("region_code", S),
        _col("industry", S),
        _col("status", S),
        _col("status_code", S),
        _col("closed_on", D),
        _col("legal_rep_token", S),
        _col("address", S),
        _col("address_token", S),
        # the attributes the registry mapping declares: attribute name -> cleaned text
        _col("attributes", T.MapType(S, S)),
        _col("valid_from", D, False),
        _col("valid_to", D),
        _col("is_current", B, False),
        SILVER_LINEAGE,
    ),
    keys=("uscc", "valid_from"),
    checks={
        "valid_interval": "valid_to IS NULL OR valid_to > valid_from",
        "capital_non_negative": "reg_capital_yuan IS NULL OR reg_capital_yuan >= 0",
    },
    description="企业 / enterprise, SCD type 2 over address, legal rep, capital and status",
)


def known_before(at: Column, versions: DataFrame | None = None) -> Column:
    """SCD2 (silver.dim_enterprise): the version in force just before ``at`` — what was known
    before T (``valid_from < at``, not ended by then). Features, tiers and marts all read an
    enterprise at T through this one rule; ``versions`` resolves the columns of a joined frame."""
    col = versions.__getitem__ if versions is not None else F.col
    return (col("valid_from") < at) & (col("valid_to").isNull() | (col("valid_to") >= at))


FCT_ANNUAL_REPORT = Table(
    "silver",
    "fct_annual_report",
    _schema(
        _col("uscc", S, False),
        _col("report_year", INT, False),
        _col("filed_on", D),
        _col("due_on", D, False),
        _col("is_late", B),
        _col("employees", INT),
        _col("revenue_band", S),
        _col("insured_staff", INT),
        SILVER_LINEAGE,
    ),
    keys=("uscc", "report_year"),
    checks={"employees_non_negative": "employees IS NULL OR employees >= 0"},
    description="企业年度报告 / annual reports, with due date and lateness",
)

FCT_PENALTY = Table(
    "silver",
    "fct_penalty",
    _schema(
        _col("case_no", S, False),
        _col("uscc", S, False),
        _col("decided_on", D, False),
        _col("category", S),
        _col("amount_yuan", MONEY),
        _col("authority", S),
        _col("reported_on", D),
        SILVER_LINEAGE,
    ),
    keys=("case_no",),
    checks={"amount_non_negative": "amount_yuan IS NULL OR amount_yuan >= 0"},
    description="行政处罚 / administrative penalties, amounts in yuan",
)

FCT_LIST_ENTRY = Table(
    "silver",
    "fct_list_entry",
    _schema(
        _col("list_type", S, False),
        _col("uscc", S, False),
        _col("entered_on", D, False),
        _col("entry_reason", S),
        _col("removed_on", D),
        _col("removal_reason", S),
        _col("authority", S),
        _col("reported_on", D),
        SILVER_LINEAGE,
    ),
    keys=("list_type", "uscc", "entered_on"),
    checks={
        "removal_after_entry": "removed_on IS NULL OR removed_on >= entered_on",
        "known_list_type": "list_type IN ('abnormal', 'serious')",
    },
    description="经营异常名录 + 严重违法失信名单 / abnormal-operation and serious-violation lists",
)

FCT_INSPECTION = Table(
    "silver",
    "fct_inspection",
    _schema(
        _col("inspection_id", S, False),
        _col("uscc", S, False),
        _col("inspected_on", D, False),
        _col("mode", S),
        _col("mode_code", S),
        _col("result", S),
        _col("outcome", S),
        _col("found_problem", B),
        _col("inspector_id", S),
        _col("plan_id", S),
        _col("reported_on", D),
        SILVER_LINEAGE,
    ),
    keys=("inspection_id",),
    checks={
        "known_outcome": "outcome IS NULL "
        "OR outcome IN ('found', 'clean', 'unreachable', 'not_inspected')",
        "found_means_found": "found_problem IS NULL OR found_problem = (outcome = 'found')",
    },
    description="检查记录 / inspections, their canonical mode and outcome (found, clean, "
    "unreachable, not_inspected); found_problem is NULL when nobody inspected",
)

FCT_COMPLAINT = Table(
    "silver",
    "fct_complaint",
    _schema(
        _col("complaint_id", S, False),
        _col("uscc", S, False),
        _col("received_on", D, False),
        _col("category", S),
        _col("channel", S),
        _col("complainant_token", S),
        SILVER_LINEAGE,
    ),
    keys=("complaint_id",),
    description="投诉举报 / complaints and tip-offs (12315)",
)

FCT_EVENT = Table(
    "silver",
    "fct_event",
    _schema(
        _col("event_id", S, False),
        _col("uscc", S, False),
        _col("kind", S),  # the bureau's word
        _col("kind_code", S, False),  # the kind it means, as the event mapping declares it
        _col("event_on", D, False),
        _col("detail", S),
        _col("authority", S),
        _col("reported_on", D),
        SILVER_LINEAGE,
    ),
    keys=("event_id", "kind_code", "event_on"),
    description="其他企业事项 / enterprise events of the kinds the event mapping declares "
    "(e.g. 准予许可, 吊销许可证), each a point-in-time model feature evt_<kind>",
)

DIM_REGION = Table(
    "silver",
    "dim_region",
    _schema(
        _col("region_code", S, False),
        _col("region_name", S, False),
        _col("level", S, False),
        _col("parent_code", S),
        _col("city_code", S),
        _col("city_name", S),
        _col("province_code", S, False),
        _col("province_name", S, False),
        _col("valid_from_year", INT, False),
        _col("valid_to_year", INT),
    ),
    keys=("region_code",),
    description="GB/T 2260 行政区划 / every province, city and county code with its latest "
    "name and the years it was in force (quality/reference/gbt2260.csv)",
)

# ---- quarantine and audit ---------------------------------------------------------------
REJECTED_ROWS = Table(
    "quarantine",
    "rejected_rows",
    _schema(
        _col("source", S, False),
        _col("stage", S, False),
        _col("check_name", S, False),
        _col("checks", T.ArrayType(S), False),
        _col("field", S),
        _col("value", S),
        _col("reason", S, False),
        _col("payload", S, False),
        _col("_source_file", S, False),
        _col("_source_row", L, False),
        _col("_batch_id", S, False),
        _col("_run_date", D, False),
        _col("quarantined_at", TS, False),
        _col("replayed_on", D),
        _col("released", B),
    ),
    keys=("stage", "_batch_id", "_source_row"),
    partition_by=("source",),
    description="隔离区 / rows that failed a blocking check, with the check and its reason. "
    "payload is the raw row as JSON with personal-data fields tokenised. A row held back because "
    "its enterprise was not registered yet is re-checked once it is: replayed_on is that run, "
    "released TRUE when it was then conformed (FALSE: it broke another rule, now named here).",
)

INGEST_LOG = Table(
    "audit",
    "ingest_log",
    _schema(
        _col("batch_id", S, False),
        _col("run_date", D, False),
        _col("source", S, False),
        _col("source_file", S, False),
        _col("checksum", S, False),
        _col("encoding", S),
        _col("status", S, False),
        _col("message", S),
        _col("rows_read", L, False),
        _col("rows_landed", L, False),
        _col("rows_quarantined", L, False),
        _col("mapping", S),
        _col("unmapped_columns", T.ArrayType(S)),
        _col("missing_columns", T.ArrayType(S)),
        _col("ingested_at", TS, False),
    ),
    keys=("batch_id",),
    checks={
        "reconciles": "status <> 'landed' OR rows_read = rows_landed + rows_quarantined",
        "known_status": "status IN ('landed', 'skipped', 'rejected', 'unmatched')",
    },
    description="接入日志 / one row per delivered file: landed (with reconciled row counts, the "
    "mapping used, unmapped and missing columns), skipped (the same bytes landed on another "
    "day), rejected (why) or unmatched by any mapping",
)

CONFORM_LOG = Table(
    "audit",
    "conform_log",
    _schema(
        _col("run_date", D, False),
        _col("source", S, False),
        _col("target", S, False),
        _col("rows_in", L, False),
        _col("rows_replayed", L, False),
        _col("rows_quarantined", L, False),
        _col("rows_duplicate", L, False),
        _col("rows_conformed", L, False),
        _col("finished_at", TS, False),
        _col("inputs_hash", S),  # what the run read (pipelines.conform.inputs): same → reused
    ),
    keys=("run_date", "source", "target"),
    checks={
        "reconciles": "rows_in + rows_replayed = rows_quarantined + rows_duplicate + rows_conformed"
    },
    description="清洗日志 / per run: bronze rows in + quarantined rows replayed (their "
    "enterprise registered since) = quarantined + duplicates + conformed; the fingerprint of "
    "the inputs it read (a re-run with the same inputs reuses the row instead of conforming)",
)


# ---- gold: features, scores, tiers, lists (models/ and risk_insight/ write these) -------------
def _feature_fields() -> list[T.StructField]:
    return [_col(f.name, S if f.categorical else T.DoubleType()) for f in FEATURES]


ENTERPRISE_FEATURES = Table(
    "gold",
    "enterprise_features",
    _schema(
        _col("as_of", D, False),
        _col("uscc", S, False),
        _feature_fields(),
        _col("size_band", S),
        _col("_input_versions", S, False),
        _col("_built_at", TS, False),
    ),
    keys=("as_of", "uscc"),
    partition_by=("as_of",),
    description="企业风险特征 / point-in-time features per enterprise active at as_of; "
    "_input_versions holds the silver Delta versions read",
)


def enterprise_features(settings: Settings | None = None) -> Table:
    """gold.enterprise_features as the mappings in force declare it: the built-in features,
    then one column per declared feature (attributes ``attr_<name>``, text when categorical,
    double when numeric; event kinds ``evt_<kind>``, double). Columns declared since the
    table was created are added by :func:`ensure`."""
    extra = [_col(f.name, S if f.categorical else T.DoubleType())
             for f in contracts.declared_features(settings)]  # fmt: skip
    if not extra:
        return ENTERPRISE_FEATURES
    fields = ENTERPRISE_FEATURES.schema.fields
    at = ENTERPRISE_FEATURES.columns.index("size_band")
    return dataclasses.replace(ENTERPRISE_FEATURES, schema=_schema(fields[:at], extra, fields[at:]))


# Nested fields stay nullable: Delta does not enforce NOT NULL inside arrays.
REASON = T.StructType(
    [
        _col("feature", S),
        _col("value", T.DoubleType()),
        _col("contribution", T.DoubleType()),
        _col("text_zh", S),
        _col("text_en", S),
        _col("raises_risk", B),  # positive contribution and a risk-raising value: a reason
    ]
)

RISK_SCORES = Table(
    "gold",
    "risk_scores",
    _schema(
        _col("as_of", D, False),
        _col("uscc", S, False),
        _col("region_code", S),
        _col("size_band", S),
        _col("probability", T.DoubleType(), False),
        _col("credit_score", INT, False),
        _col("model_version", S, False),
        _col("reasons", T.ArrayType(REASON)),
        _col("_features_version", L, False),
        _col("_scored_at", TS, False),
        # what the reasons' contributions depend on (models.score.reasons_key): a later
        # scoring by the same model reuses them where it is unchanged
        _col("_reasons_key", L),
    ),
    keys=("as_of", "uscc"),
    partition_by=("as_of",),
    checks={
        "probability_range": "probability >= 0 AND probability <= 1",
        "score_range": "credit_score >= 0 AND credit_score <= 1000",
    },
    description="风险评分 / calibrated probability of a finding within the horizon, 0-1000 "
    "credit score (1000 = lowest risk) and top reasons",
)

MODEL_REGISTRY = Table(
    "audit",
    "model_registry",
    _schema(
        _col("model_version", S, False),
        _col("registered_at", TS, False),
        _col("artifact_path", S, False),
        _col("params", S, False),
        _col("features", S, False),
        _col("input_versions", S, False),
        _col("metrics", S, False),
        _col("seed", INT, False),
    ),
    keys=("model_version",),
    description="模型登记 / every trained model: artifacts, parameters, training inputs, metrics",
)

MODEL_DECISIONS = Table(
    "audit",
    "model_decisions",
    _schema(
        _col("decided_at", TS, False),
        _col("challenger", S, False),
        _col("champion_before", S),
        _col("promoted", B, False),
        _col("reasons", S, False),
        _col("comparison", S, False),
    ),
    keys=("decided_at", "challenger"),
    description="冠军/挑战者决策 / promotion decisions and their reasons; the champion is the "
    "challenger of the latest promoted decision",
)


# ---- risk insight: tiers, plans, warnings ----------------------------------------------------
DIM_INSPECTOR = Table(
    "silver",
    "dim_inspector",
    _schema(
        _col("inspector_id", S, False),
        _col("name", S),
        _col("region_code", S, False),
        _col("_source_file", S, False),
        _col("_record_hash", S, False),
        _col("_loaded_at", TS, False),
    ),
    keys=("inspector_id",),
    description="执法检查人员名录 / district inspector roster (reference file, replaced on load)",
)

CREDIT_TIERS = Table(
    "gold",
    "credit_tiers",
    _schema(
        _col("as_of", D, False),
        _col("uscc", S, False),
        _col("region_code", S),
        _col("size_band", S),
        _col("tier", S),
        _col("model_tier", S),
        _col("tier_source", S, False),
        _col("rule", S),
        _col("excluded", B, False),
        _col("probability", T.DoubleType(), False),
        _col("credit_score", INT, False),
        _col("risk_rank", L),
        _col("policy_version", S, False),
        _col("model_version", S, False),
        _col("_input_versions", S, False),
        _col("_built_at", TS, False),
    ),
    keys=("as_of", "uscc"),
    partition_by=("as_of",),
    checks={
        "known_tier": "tier IS NULL OR tier IN ('A', 'B', 'C', 'D')",
        "excluded_has_no_tier": "(excluded AND tier IS NULL) "
        "OR (NOT excluded AND tier IS NOT NULL)",
        "known_source": "tier_source IN ('model', 'rule')",
    },
    description="信用风险分类 / A-D tier per scored enterprise: hard rule or model rank that set "
    "it, policy and model versions; excluded = deregistered or revoked",
)

INSPECTION_PLAN = Table(
    "gold",
    "inspection_plan",
    _schema(
        _col("as_of", D, False),
        _col("plan_id", S, False),
        _col("period_start", D, False),
        _col("period_end", D, False),
        _col("region_code", S, False),
        _col("tier", S, False),
        _col("uscc", S, False),
        _col("draw_value", T.DoubleType(), False),
        _col("draw_rank", INT, False),
        _col("stratum_size", L, False),
        _col("stratum_eligible", L, False),
        _col("stratum_drawn", L, False),
        _col("draw_ratio", T.DoubleType(), False),
        _col("inclusion_prob", T.DoubleType(), False),
        _col("inspector_id", S),
        _col("inspector_2_id", S),
        _col("previous_inspector_id", S),
        _col("previous_inspector_ids", S),
        _col("unassigned_reason", S),
        _col("seed", L, False),
        _col("seed_commitment", S, False),
        _col("policy_version", S, False),
        _col("model_version", S, False),
        _col("_input_versions", S, False),
        _col("_planned_at", TS, False),
    ),
    keys=("as_of", "uscc"),
    partition_by=("as_of",),
    checks={
        "not_same_inspector": "inspector_id IS NULL OR previous_inspector_id IS NULL "
        "OR inspector_id <> previous_inspector_id",
        "two_distinct_inspectors": "inspector_2_id IS NULL OR inspector_2_id <> inspector_id",
        "unassigned_has_reason": "inspector_id IS NOT NULL OR unassigned_reason IS NOT NULL",
        "drawn_in_stratum": "draw_rank >= 1 AND draw_rank <= stratum_drawn",
        "eligible_in_stratum": "stratum_drawn <= stratum_eligible "
        "AND stratum_eligible <= stratum_size",
        "inclusion_prob_range": "inclusion_prob > 0 AND inclusion_prob <= 1",
    },
    description="双随机抽查计划 / random-draw plan, one per plan period (as_of = the as-of date "
    "it was drawn at): enterprises drawn per region x tier among the eligible (cool-off, yearly "
    "cap) with a committed seed (sha-256 of seed|plan_id|uscc), two random inspectors from the "
    "district roster (or the reason none could be assigned)",
)

PLAN_COMMITMENTS = Table(
    "audit",
    "plan_commitments",
    _schema(
        _col("plan_id", S, False),
        _col("period_start", D, False),
        _col("period_end", D, False),
        _col("commitment", S, False),
        _col("seed_source", S, False),
        _col("committed_at", TS, False),
        _col("policy_version", S, False),
    ),
    keys=("plan_id",),
    checks={"known_seed_source": "seed_source IN ('committed', 'explicit', 'policy')"},
    description="抽查种子承诺 / sha-256 of each plan period's seed, recorded (and published) "
    "when the period opens, before the tiers it draws from exist; the seed is revealed with the "
    "plan. One row per plan: a period never gets a second seed",
)

OUTCOME_IMPORTS = Table(
    "audit",
    "outcome_imports",
    _schema(
        _col("file_sha256", S, False),
        _col("file_name", S, False),
        _col("sheet_row", L, False),
        _col("plan_id", S, False),
        _col("uscc", S, False),
        _col("result", S),
        _col("inspected_on", S),
        _col("inspector_ids", S),
        _col("note", S),
        _col("delivery_date", D, False),
        _col("landed_as", S),
        _col("imported_at", TS, False),
    ),
    keys=("file_sha256", "sheet_row"),
    description="检查结果导入 / every filled row of an imported outcome file (the result, date, "
    "inspectors and the inspector's note as written), the delivery it became (landed_as: the "
    "landing file) and when; rows left open are not recorded",
)

WARNINGS = Table(
    "gold",
    "warnings",
    _schema(
        _col("as_of", D, False),
        _col("uscc", S, False),
        _col("trigger", S, False),
        _col("region_code", S),
        _col("tier", S),
        _col("previous_tier", S),
        _col("previous_as_of", D),
        _col("evidence_zh", S, False),
        _col("evidence_en", S, False),
        _col("evidence", T.MapType(S, S)),
        _col("policy_version", S, False),
        _col("_built_at", TS, False),
    ),
    keys=("as_of", "uscc", "trigger"),
    partition_by=("as_of",),
    checks={
        "known_trigger": "trigger IN ('tier_rise', 'entered_d', 'new_serious_list', "
        "'complaint_surge')",
    },
    description="风险预警 / early warnings since the previous run, with the trigger and evidence",
)

TARGET_LIST = Table(
    "gold",
    "target_list",
    _schema(
        _col("as_of", D, False),
        _col("region_code", S, False),
        _col("rank", INT, False),
        _col("uscc", S, False),
        _col("name", S),
        _col("tier", S, False),
        _col("credit_score", INT, False),
        _col("basis", S),
        _col("reasons", S),
        _col("drawn", S, False),
        _col("inspector", S),
        _col("plan_id", S),
        _col("address", S),
        _col("region_name", S),
        _col("probability", T.DoubleType(), False),
        _col("reasons_en", S),
        _col("inspector_ids", S),
        _col("model_version", S, False),
        _col("policy_version", S, False),
        _col("_built_at", TS, False),
    ),
    keys=("as_of", "uscc"),
    partition_by=("as_of",),
    checks={"rank_from_one": "rank >= 1", "drawn_yes_no": "drawn IN ('是', '否')"},
    description="检查对象名单 / every district's risk-ranked target list at an as-of date: tier, "
    "basis, reasons, whether the period's plan drew it and its inspectors; the district list "
    "files and the target-list mart are cut from it",
)

# ---- quality ledger and other audit tables of quality/ -------------------------------------
QUALITY_RESULTS = Table(
    "audit",
    "quality_results",
    _schema(
        _col("run_date", D, False),
        _col("table_name", S, False),
        _col("source", S, False),  # source system, or "-" for a table-level check
        _col("expectation", S, False),
        _col("expectation_type", S, False),
        _col("suite", S, False),
        _col("column_name", S),
        _col("defect_class", S),
        _col("gate", S, False),
        _col("outcome", S, False),
        _col("success", B, False),
        _col("observed_value", S),
        _col("threshold", S),
        _col("element_count", L),
        _col("unexpected_count", L),
        _col("unexpected_percent", T.DoubleType()),
        _col("rows_quarantined", L, False),
        _col("policy_version", S, False),
        _col("validated_at", TS, False),
    ),
    keys=("run_date", "table_name", "source", "expectation"),
    checks={
        "known_gate": "gate IN ('block', 'warn')",
        "known_outcome": "outcome IN ('passed', 'warned', 'quarantined', 'blocked')",
    },
    description="质量台账 / quality ledger: one row per run date × table × source × expectation "
    "(Great Expectations result, gate policy and outcome)",
)

# 执法尺度统一 flags of audit.inspector_consistency: canonical value → (Chinese, English)
CONSISTENCY_FLAGS = {
    "consistent": ("尺度一致", "consistent"),
    "stricter": ("偏严", "stricter than expected"),
    "more_lenient": ("偏宽", "more lenient than expected"),
    "too_few": ("样本不足", "too few inspections to judge"),
}

INSPECTOR_CONSISTENCY = Table(
    "audit",
    "inspector_consistency",
    _schema(
        _col("period", S, False),
        _col("inspector_id", S, False),
        _col("inspections", L, False),
        _col("findings", L, False),
        _col("expected_findings", T.DoubleType(), False),
        _col("finding_rate", T.DoubleType(), False),
        _col("expected_rate", T.DoubleType(), False),
        _col("ratio", T.DoubleType()),
        _col("relative_ratio", T.DoubleType()),
        _col("relative_low", T.DoubleType()),
        _col("relative_high", T.DoubleType()),
        _col("flag", S, False),
        _col("modes", S, False),
        _col("computed_at", TS, False),
    ),
    keys=("period", "inspector_id"),
    checks={
        "known_flag": f"flag IN ({', '.join(repr(f) for f in CONSISTENCY_FLAGS)})",
        "findings_within_inspections": "findings <= inspections",
    },
    description="执法尺度统一 / per period and inspector: inspections, findings, the findings "
    "expected from the visited enterprises' calibrated probabilities, their ratio relative to "
    "the period's whole, its confidence interval and a flag (stricter, more lenient)",
)

AUDIT_EVENTS = Table(
    "audit",
    "events",
    _schema(
        _col("event_id", S, False),
        _col("event", S, False),
        _col("action", S, False),
        _col("outcome", S, False),
        _col("subject", S, False),
        _col("run_id", S, False),
        _col("run_date", D),
        _col("occurred_at", TS, False),
        _col("started_at", TS),
        _col("inputs", S, False),
        _col("versions", S, False),
        _col("details", S, False),
        _col("os_user", S, False),
        _col("host", S, False),
        _col("pid", L, False),
        _col("command", S, False),
        _col("airflow_run_id", S),
    ),
    keys=("event_id",),
    checks={
        "known_event": "event IN ('run', 'step', 'gate', 'model_promotion', 'plan_draw', "
        "'list_export', 'erasure', 'retention')",
        "known_action": "action IN ('start', 'end', 'decision', 'export', 'apply')",
    },
    description="审计事件 / audit trail: every run (start/end/outcome), gate decision, model "
    "promotion, plan draw, list export, retention and erasure, with inputs, versions and who "
    "(OS user, host, pid, Airflow run); append-only",
)

SILVER_FACTS = (
    FCT_ANNUAL_REPORT, FCT_PENALTY, FCT_LIST_ENTRY, FCT_INSPECTION, FCT_COMPLAINT, FCT_EVENT
)  # fmt: skip

ALL_TABLES: tuple[Table, ...] = (
    *BRONZE.values(),
    DIM_ENTERPRISE,
    *SILVER_FACTS,
    DIM_REGION,
    DIM_INSPECTOR,
    REJECTED_ROWS,
    INGEST_LOG,
    CONFORM_LOG,
    ENTERPRISE_FEATURES,
    RISK_SCORES,
    CREDIT_TIERS,
    INSPECTION_PLAN,
    TARGET_LIST,
    WARNINGS,
    MODEL_REGISTRY,
    MODEL_DECISIONS,
    PLAN_COMMITMENTS,
    OUTCOME_IMPORTS,
    INSPECTOR_CONSISTENCY,
    QUALITY_RESULTS,
    AUDIT_EVENTS,
)


def layer_tables(layer: str) -> tuple[Table, ...]:
    """Every registered table of ``layer`` (bronze, silver, gold, quarantine, audit)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; one of {LAYERS}")
    return tuple(t for t in ALL_TABLES if t.layer == layer)


# paths this process created or checked, with their columns
_ENSURED: dict[str, frozenset[str]] = caches.remember({})


def ensure(spark: SparkSession, table: Table, settings: Settings | None = None) -> DeltaTable:
    """Create ``table`` at its path if missing (schema, partitioning, properties, CHECK
    constraints); add the declared columns an existing table lacks (nullable, appended: a
    column declared since it was created). Safe when another process creates the same table
    at the same moment."""
    path = table.path(settings)
    if set(table.columns) <= _ENSURED.get(path, frozenset()):
        return DeltaTable.forPath(spark, path)
    existed = DeltaTable.isDeltaTable(spark, path)
    if existed:
        delta_table = DeltaTable.forPath(spark, path)
        _add_declared_columns(spark, table, path, delta_table)
    else:
        # Two first writers racing on an empty folder: the loser's commit fails with
        # ProtocolChangedException / MetadataChangedException; the retry finds the table.
        delta_table = conflicts.retrying(lambda: _create(spark, table, path), f"create {path}")
    # DESCRIBE DETAIL is a Spark job: ask it only for an existing table with checks/properties
    present = (
        delta_table.detail().select("properties").first()[0] or {}
        if existed and (table.checks or table.properties)
        else _created_properties(table)
    )
    missing = {k: v for k, v in table.properties.items() if present.get(k) != v}
    if missing:
        settings_sql = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({settings_sql})")
    for name, predicate in table.checks.items():
        if _constraint_key(name) not in present:
            add_constraint(spark, path, name, predicate)
    _ENSURED[path] = _ENSURED.get(path, frozenset()) | set(table.columns)
    return delta_table


def _add_declared_columns(
    spark: SparkSession, table: Table, path: str, delta_table: DeltaTable
) -> None:
    """A lake written by an older release: columns the declaration has gained since are added
    (nullable only: old rows hold NULL there); a new NOT NULL column needs a migration."""
    have = {c.lower() for c in delta_table.toDF().columns}
    new = [f for f in table.schema.fields if f.name.lower() not in have]
    if not new:
        return
    strict = [f.name for f in new if not f.nullable]
    if strict:
        raise ValueError(
            f"{table.qualified} at {path} lacks the NOT NULL column(s) {', '.join(strict)}: "
            "migrate it (rebuild the table from the layer below, or add them with a value)"
        )
    cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
    sql = f"ALTER TABLE delta.`{path}` ADD COLUMNS ({cols})"
    conflicts.retrying(lambda: spark.sql(sql), f"add columns to {path}")


def _create(spark: SparkSession, table: Table, path: str) -> DeltaTable:
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(table.schema)
    if table.partition_by:
        builder = builder.partitionedBy(*table.partition_by)
    if table.description:
        builder = builder.comment(table.description)
    for key, value in _created_properties(table).items():
        builder = builder.property(key, value)
    return builder.execute()


def _constraint_key(name: str) -> str:
    return f"delta.constraints.{name.lower()}"


def _created_properties(table: Table) -> dict[str, str]:
    """The properties a new table is created with. A new, empty table takes its CHECK
    constraints as properties in its first commit: one ALTER TABLE per constraint would cost
    a commit (and a scan) each."""
    return {**table.properties, **{_constraint_key(n): p for n, p in table.checks.items()}}


def _squash(sql: str) -> str:
    return "".join(sql.split()).lower()


def add_constraint(spark: SparkSession, path: str, name: str, predicate: str) -> None:
    """Add CHECK constraint ``name`` to the table at ``path``. When another process added it
    first (``DELTA_CONSTRAINT_ALREADY_EXISTS``) that is success if its predicate is ours, and a
    clear error if not."""
    sql = f"ALTER TABLE delta.`{path}` ADD CONSTRAINT {name} CHECK ({predicate})"
    try:
        conflicts.retrying(lambda: spark.sql(sql), f"add constraint {name} to {path}")
    except Exception as exc:
        if "DELTA_CONSTRAINT_ALREADY_EXISTS" not in (conflicts._condition(exc) + str(exc)):
            raise
        props = DeltaTable.forPath(spark, path).detail().select("properties").first()[0] or {}
        existing = props.get(_constraint_key(name), "")
        if _squash(existing) != _squash(predicate):
            raise ValueError(
                f"{path} already has a constraint {name} CHECK ({existing}), not ({predicate})"
            ) from exc


def read(spark: SparkSession, table: Table, settings: Settings | None = None) -> DataFrame:
    """The current version of ``table`` (created empty if it does not exist yet)."""
    path = table.path(settings)
    if not set(table.columns) <= _ENSURED.get(path, frozenset()):
        ensure(spark, table, settings)  # a DeltaTable handle costs a JVM round trip: only once
    return spark.read.format("delta").load(path)


def predicate(table: Table, where: Mapping[str, Any], alias: str = "") -> str:
    """A Delta SQL predicate selecting the rows of ``table`` where each column equals its value
    (a list or tuple: is one of them), literals typed by the table's schema; ``alias`` prefixes
    the columns (``t`` in a MERGE). ValueError for a column the table does not have or an empty
    ``where``."""
    if not where:
        raise ValueError(f"{table.qualified}: a predicate needs at least one column")
    types = {f.name: f.dataType for f in table.schema.fields}
    parts = []
    for column, value in where.items():
        if column not in types:
            raise ValueError(f"{table.qualified} has no column {column!r}")
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        if not values:
            raise ValueError(f"{table.qualified}: no values for {column!r}")
        lits = [_literal(types[column], v) for v in sorted(values, key=str)]
        name = f"{alias}.{column}" if alias else column
        parts.append(f"{name} = {lits[0]}" if len(lits) == 1 else
                     f"{name} IN ({', '.join(lits)})")  # fmt: skip
    return " AND ".join(parts)


def _literal(kind: T.DataType, value: Any) -> str:
    if isinstance(kind, T.DateType):
        return f"DATE'{date.fromisoformat(str(value)[:10]).isoformat()}'"
    if isinstance(kind, T.BooleanType):
        return "TRUE" if value else "FALSE"
    if isinstance(kind, T.IntegerType | T.LongType):
        return str(int(value))
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def replace(df: DataFrame, table: Table, settings: Settings | None = None, **where: Any) -> None:
    """Idempotent write: the rows of ``table`` matching ``where`` (see :func:`predicate`; e.g.
    ``as_of=d`` replaces one as-of partition) become exactly ``df``; with no ``where`` the
    whole table is replaced. Creates the table if missing; retried on a write conflict."""
    spark = df.sparkSession
    ensure(spark, table, settings)
    writer = df.select(*table.columns).write.format("delta").mode("overwrite")
    if where:
        writer = writer.option("replaceWhere", predicate(table, where))
    path = table.path(settings)
    conflicts.retrying(lambda: writer.save(path), f"replace in {table.qualified}")


def same_rows(a: DataFrame, b: DataFrame) -> bool:
    """Whether ``a`` and ``b`` (same columns) hold the same rows, duplicates counted, in one
    Spark job: each row is counted +1 from ``a`` and -1 from ``b`` and no group may be left
    over. Writers use it to skip a write that would change nothing, so a re-run leaves the
    table version as it was."""
    tag = "__same_rows_side"
    sides = a.withColumn(tag, F.lit(1)).unionByName(b.select(*a.columns).withColumn(tag, F.lit(-1)))
    left_over = sides.groupBy(*a.columns).agg(F.sum(tag).alias(tag)).where(F.col(tag) != 0)
    return left_over.isEmpty()


def append(df: DataFrame, table: Table, settings: Settings | None = None) -> None:
    """Append ``df`` to ``table`` (for tables that only grow: registries, commitments, audit
    events). Creates the table if missing; retried on a write conflict."""
    ensure(df.sparkSession, table, settings)
    writer = df.select(*table.columns).write.format("delta").mode("append")
    path = table.path(settings)
    conflicts.retrying(lambda: writer.save(path), f"append to {table.qualified}")


def _on_keys(table: Table) -> str:
    """MERGE condition: the stored row ``t`` and the new row ``s`` share the declared keys."""
    return " AND ".join(f"t.{k} = s.{k}" for k in table.keys)


def upsert(df: DataFrame, table: Table, settings: Settings | None, update_when: str) -> None:
    """MERGE ``df`` into ``table`` on its declared keys: insert new keys; replace a stored row
    with its new version where ``update_when`` holds (SQL over ``t.`` the stored row and ``s.``
    the new one, e.g. ``t._record_hash <> s._record_hash``). Retried on a write conflict."""
    on = _on_keys(table)
    source = df.select(*table.columns).alias("s")

    def merge() -> None:
        (
            ensure(df.sparkSession, table, settings)
            .alias("t")
            .merge(source, on)
            .whenMatchedUpdateAll(condition=update_when)
            .whenNotMatchedInsertAll()
            .execute()
        )

    conflicts.retrying(merge, f"merge into {table.qualified}")


def update_matched(
    rows: DataFrame,
    table: Table,
    settings: Settings | None,
    clauses: Sequence[tuple[str, Mapping[str, str]]],
    **within: Any,
) -> None:
    """MERGE ``rows`` into ``table`` on its declared keys among the stored rows ``within``
    selects (see :func:`predicate`), updating a matched row by the first of ``clauses``
    (condition, column → SQL value; ``t.`` the stored row, ``s.`` the new one) whose condition
    holds. Inserts nothing; retried on a write conflict."""
    on = _on_keys(table)
    if within:
        on = f"{predicate(table, within, alias='t')} AND {on}"
    source = rows.alias("s")

    def merge() -> None:
        builder = ensure(rows.sparkSession, table, settings).alias("t").merge(source, on)
        for condition, assignments in clauses:
            builder = builder.whenMatchedUpdate(condition=condition, set=dict(assignments))
        builder.execute()

    conflicts.retrying(merge, f"update {table.qualified}")


def update(
    spark: SparkSession,
    table: Table,
    settings: Settings | None,
    condition: Column,
    assignments: Mapping[str, Column],
) -> int:
    """UPDATE the rows of ``table`` matching ``condition`` with ``assignments``; returns the
    rows changed (0 when nothing matched: Delta then commits nothing)."""
    handle = ensure(spark, table, settings)
    before = handle.history(1).select("version").first()[0]
    handle.update(condition, dict(assignments))
    last = handle.history(1).select("version", "operation", "operationMetrics").first()
    if last["version"] == before or last["operation"] != "UPDATE":
        return 0
    return int((last["operationMetrics"] or {}).get("numUpdatedRows", 0))


def delta(spark: SparkSession, table: Table, settings: Settings | None = None) -> DeltaTable:
    """The ``DeltaTable`` handle of ``table`` (created empty if missing)."""
    return ensure(spark, table, settings)


def run_bronze(
    spark: SparkSession, source: str, run_date: date, settings: Settings | None = None
) -> DataFrame:
    """The bronze rows of ``source`` landed by ``run_date``'s batches (those the ingest log
    records as landed)."""
    from pyspark.sql import functions as F

    log = read(spark, INGEST_LOG, settings).where(
        (F.col("run_date") == F.lit(run_date))
        & (F.col("source") == source)
        & (F.col("status") == "landed")
    )
    bronze = read(spark, BRONZE[source], settings).where(F.col("_run_date") == F.lit(run_date))
    return bronze.join(F.broadcast(log.select(F.col("batch_id").alias("_batch_id"))), "_batch_id")
