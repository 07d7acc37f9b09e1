"""What every conform model shares: reading a run's bronze rows, checking rules, quarantining,
de-duplicating and merging into silver with "latest delivery wins"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.ingest import write_quarantine
from pipelines.normalise import token
from pipelines.sources import SOURCES
from quality.gates import check_incoming
from quality.policy import blocking_rules, policy_for
from quality.rules import RowRule, first_violation
from warehouse import tables
from warehouse.settings import Settings

# Order of deliveries: a later run, then a later file, then a later row wins.
DELIVERY_ORDER = ("_run_date", "_source_file", "_source_row")
LINEAGE_COLUMNS = [f.name for f in tables.SILVER_LINEAGE]
# Conformed fields checked by rules → the source field they are read from.
RAW_FIELD = {"amount_yuan": "amount", "reg_capital_yuan": "reg_capital", "uscc_region": "uscc"}


@dataclass(frozen=True)
class ConformCounts:
    source: str
    target: str
    rows_in: int
    rows_quarantined: int
    rows_duplicate: int
    rows_conformed: int


def run_bronze(spark: SparkSession, source: str, run_date: date, settings: Settings) -> DataFrame:
    """The bronze rows landed by ``run_date``'s batches of ``source``."""
    log = tables.read(spark, tables.INGEST_LOG, settings).where(
        (F.col("run_date") == F.lit(run_date))
        & (F.col("source") == source)
        & (F.col("status") == "landed")
    )
    bronze = tables.read(spark, tables.BRONZE[source], settings).where(
        F.col("_run_date") == F.lit(run_date)
    )
    return bronze.join(F.broadcast(log.select(F.col("batch_id").alias("_batch_id"))), "_batch_id")


def raw(field: str) -> Column:
    """The raw text of ``field`` as landed (staged rows keep it as ``<field>__raw``)."""
    return F.col(f"{field}__raw")


def with_raw(bronze: DataFrame, source: str) -> DataFrame:
    """Bronze rows with each source field renamed ``<field>__raw``, lineage kept."""
    spec = SOURCES[source]
    return bronze.select(
        *(F.col(f).alias(f"{f}__raw") for f in spec.fields),
        *(c for c in LINEAGE_COLUMNS if c != "_record_hash"),
    )


@dataclass(frozen=True)
class FactModel:
    """A silver fact built from one source: how to type a row, which rules block it."""

    target: tables.Table
    source: str
    stage: Callable[[DataFrame, str], DataFrame]  # (bronze with __raw fields, pii key) -> typed
    rules: list[RowRule]

    @property
    def business_columns(self) -> list[str]:
        return [c for c in self.target.columns if c not in LINEAGE_COLUMNS]


def count_outcome(checked: DataFrame, keys: tuple[str, ...]) -> tuple[int, int, int, int]:
    """(rows in, rows quarantined, rows passing, distinct keys passing) in one Spark job."""
    passing = F.col("_first").isNull()
    row = checked.agg(
        F.count("*"),
        F.count("_first"),
        F.count(F.when(passing, 1)),
        F.count_distinct(F.when(passing, F.struct(*keys))),
    ).first()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def conform_fact(
    spark: SparkSession,
    model: FactModel,
    run_date: date,
    settings: Settings,
    enterprises: DataFrame | None = None,
) -> ConformCounts:
    """Bronze rows of ``run_date`` → checked, de-duplicated, merged into the model's target.

    ``enterprises`` is :func:`enterprise_facts` (computed once per run by the caller).
    """
    bronze = run_bronze(spark, model.source, run_date, settings)
    if bronze.isEmpty():  # the source delivered nothing that day: nothing to check or merge
        return ConformCounts(model.source, model.target.qualified, 0, 0, 0, 0)
    if enterprises is None:
        enterprises = enterprise_facts(spark, settings)
    staged = (
        model.stage(with_raw(bronze, model.source), settings.resolved_pii_key())
        .join(F.broadcast(enterprises), "uscc", "left")
        .fillna({"_known_enterprise": False})
    )
    # Only `block` rules quarantine; GX records every rule (block and warn) in the ledger.
    blocking = blocking_rules(model.target.qualified, model.rules, policy_for(settings))
    good, bad = split_by_rules(staged, blocking)
    checked = good.unionByName(bad).cache()
    try:
        check_incoming(spark, checked, model.target, model.source, model.rules, run_date, settings)
        good = checked.where(F.col("_first").isNull())
        bad = checked.where(F.col("_first").isNotNull())
        quarantine(spark, bad, blocking, model.source, run_date, settings)
        rows = latest_per_key(good, model.target.keys).withColumn(
            "_record_hash", silver_hash(model.business_columns)
        )
        merge_latest(spark, model.target, rows, settings)
        n_in, n_bad, n_good, n_rows = count_outcome(checked, model.target.keys)
    finally:
        checked.unpersist()
    return ConformCounts(model.source, model.target.qualified, n_in, n_bad, n_good - n_rows, n_rows)


def silver_hash(columns: list[str]) -> Column:
    """Hash of a silver row's conformed business values: equal content, equal hash."""
    return F.sha2(
        F.concat_ws(
            "\u001f", *(F.coalesce(F.col(c).cast("string"), F.lit("\u0000")) for c in columns)
        ),
        256,
    )


def enterprise_facts(spark: SparkSession, settings: Settings) -> DataFrame:
    """(uscc, _known_enterprise, _founded_on) for every enterprise in the dimension."""
    dim = tables.read(spark, tables.DIM_ENTERPRISE, settings)
    return dim.groupBy("uscc").agg(
        F.lit(True).alias("_known_enterprise"), F.min("founded_on").alias("_founded_on")
    )


def split_by_rules(staged: DataFrame, rules: list[RowRule]) -> tuple[DataFrame, DataFrame]:
    """(rows passing every rule, rows breaking one or more with ``_checks``/``_first``)."""
    names, first = first_violation(rules)
    checked = staged.withColumn("_checks", names).withColumn("_first", first)
    return checked.where(F.col("_first").isNull()), checked.where(F.col("_first").isNotNull())


def quarantine(
    spark: SparkSession,
    bad: DataFrame,
    rules: list[RowRule],
    source: str,
    run_date: date,
    settings: Settings,
) -> None:
    """Write this run's conform-stage rejects of ``source`` (replacing any earlier attempt)."""
    spec = SOURCES[source]
    key = settings.resolved_pii_key()
    by_name = {r.name: r for r in rules}
    # Report the field as the source delivered it (amount, not amount_yuan), so the owners can
    # find it in their extract.
    field_of = F.create_map(
        *(x for r in rules for x in (F.lit(r.name), F.lit(RAW_FIELD.get(r.field, r.field))))
    )
    reason_of = F.create_map(*(x for r in rules for x in (F.lit(r.name), F.lit(r.reason))))
    # The offending raw value, looked up by the failing rule's field; personal data never shown.
    value_cases = F.lit(None).cast("string")
    for r in by_name.values():
        raw_field = RAW_FIELD.get(r.field, r.field)
        src = raw_field if raw_field in spec.fields else None
        if src and src not in spec.pii:
            value_cases = F.when(F.col("_first") == r.name, F.col(f"{src}__raw")).otherwise(
                value_cases
            )
    payload = F.to_json(
        F.struct(
            *(
                token(F.col(f"{f}__raw"), key).alias(f)
                if f in spec.pii
                else F.col(f"{f}__raw").alias(f)
                for f in spec.fields
            )
        )
    )
    rows = bad.select(
        F.lit(source).alias("source"),
        F.lit("conform").alias("stage"),
        F.col("_first").alias("check_name"),
        F.col("_checks").alias("checks"),
        field_of[F.col("_first")].alias("field"),
        value_cases.alias("value"),
        reason_of[F.col("_first")].alias("reason"),
        payload.alias("payload"),
        "_source_file",
        "_source_row",
        "_batch_id",
        "_run_date",
        F.lit(datetime.now()).alias("quarantined_at"),
    )
    write_quarantine(
        spark, rows, f"stage = 'conform' AND _run_date = '{run_date.isoformat()}'", settings, source
    )


def latest_per_key(df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """One row per natural key: the latest delivery (run date, file, row) wins."""
    w = Window.partitionBy(*keys).orderBy(*(F.col(c).desc() for c in DELIVERY_ORDER))
    return df.withColumn("_rank", F.row_number().over(w)).where("_rank = 1").drop("_rank")


def later_delivery(s: str = "s", t: str = "t") -> str:
    """SQL: the source row was delivered at or after the target row (MERGE condition)."""
    a, b, c = DELIVERY_ORDER
    return (
        f"({s}.{a} > {t}.{a} OR ({s}.{a} = {t}.{a} AND ({s}.{b} > {t}.{b} "
        f"OR ({s}.{b} = {t}.{b} AND {s}.{c} >= {t}.{c}))))"
    )


def merge_latest(
    spark: SparkSession, target: tables.Table, rows: DataFrame, settings: Settings
) -> None:
    """Upsert on the natural key: insert new keys; update a key only with changed content from
    an equal or later delivery. Re-running a day therefore changes nothing."""
    on = " AND ".join(f"t.{k} = s.{k}" for k in target.keys)
    (
        tables.delta(spark, target, settings)
        .alias("t")
        .merge(rows.select(*target.columns).alias("s"), on)
        .whenMatchedUpdateAll(condition=f"t._record_hash <> s._record_hash AND {later_delivery()}")
        .whenNotMatchedInsertAll()
        .execute()
    )


def log_counts(
    spark: SparkSession, run_date: date, counts: list[ConformCounts], settings: Settings
) -> None:
    """Record per source and target: rows in = quarantined + duplicates + conformed."""
    if not counts:
        return
    rows = [
        (
            run_date,
            c.source,
            c.target,
            c.rows_in,
            c.rows_quarantined,
            c.rows_duplicate,
            c.rows_conformed,
            datetime.now(),
        )
        for c in counts
    ]
    df = spark.createDataFrame(rows, tables.CONFORM_LOG.schema)
    (
        tables.delta(spark, tables.CONFORM_LOG, settings)
        .alias("t")
        .merge(
            df.alias("s"), "t.run_date = s.run_date AND t.source = s.source AND t.target = s.target"
        )
        .whenMatchedUpdateAll(
            condition="t.rows_in <> s.rows_in OR t.rows_quarantined <> s.rows_quarantined "
            "OR t.rows_duplicate <> s.rows_duplicate OR t.rows_conformed <> s.rows_conformed"
        )
        .whenNotMatchedInsertAll()
        .execute()
    )
