"""What every conform model shares: reading a run's bronze rows, checking rules, quarantining,
de-duplicating and merging into silver with "latest delivery wins"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.normalise import parse_amount_yuan, parse_date, token, vocabulary
from pipelines.quarantine import write_quarantine
from quality.engine import CheckResult
from quality.gates import check_incoming
from quality.policy import blocking_rules, policy_for
from quality.regions import regions
from quality.rules import RowRule, first_violation
from warehouse import contracts, tables
from warehouse.contracts import SourceMapping
from warehouse.settings import Settings

# Order of deliveries: a later run, then a later file, then a later row wins.
DELIVERY_ORDER = ("_run_date", "_source_file", "_source_row")
LINEAGE_COLUMNS = [f.name for f in tables.SILVER_LINEAGE]
# Conformed fields checked by rules → the source field they are read from.
RAW_FIELD = {"amount_yuan": "amount", "reg_capital_yuan": "reg_capital", "uscc_region": "uscc"}


@dataclass(frozen=True)
class ConformCounts:
    """One source's conform run: rows in (today's bronze) + replayed (held back earlier for an
    unknown enterprise) = quarantined + duplicates + conformed."""

    source: str
    target: str
    rows_in: int
    rows_quarantined: int
    rows_duplicate: int
    rows_conformed: int
    rows_replayed: int = 0
    inputs_hash: str | None = None  # what it read (pipelines.conform.inputs.fingerprints)
    reused: bool = False  # conformed earlier with the same inputs: these are the logged counts


@dataclass(frozen=True)
class Staging:
    """What typing a source's raw rows needs: the personal-data key and the source mapping
    (date spellings, amount units, vocabularies)."""

    key: str
    mapping: SourceMapping

    def date(self, field: str) -> Column:
        """The raw text of date ``field`` read with the mapping's date spellings."""
        return parse_date(raw(field), self.mapping.formats_of(field))

    def amount(self, field: str) -> Column:
        """The raw text of amount ``field`` in yuan (bare numbers in the mapping's unit)."""
        return parse_amount_yuan(raw(field), self.mapping.unit_of(field))

    def word(self, field: str) -> Column:
        """The canonical value of ``field``'s word under the mapping (NULL if unknown)."""
        return vocabulary(raw(field), self.mapping.words(field))

    def open_word(self, field: str) -> Column:
        """The canonical value of an open vocabulary: unknown words get its default."""
        vocab = self.mapping.canonical.vocabularies[field]
        return F.when(raw(field).isNotNull(), F.coalesce(self.word(field), F.lit(vocab.default)))


def staging(source: str, settings: Settings) -> Staging:
    """The staging context of ``source`` under the mappings in force."""
    return Staging(settings.resolved_pii_key(), contracts.mapping(source, settings))


def with_region_validity(spark: SparkSession, df: DataFrame, field: str) -> DataFrame:
    """``df`` with ``_<field>_from`` / ``_<field>_to``: the first year the GB/T 2260 code in
    ``field`` was in force and the first year it was gone (NULL ``_from``: no such code)."""
    ref = spark.createDataFrame(
        [(r.region_code, r.valid_from_year, r.valid_to_year) for r in regions().values()],
        f"{field} string, _{field}_from int, _{field}_to int",
    )
    return df.join(F.broadcast(ref), field, "left")


def run_bronze(spark: SparkSession, source: str, run_date: date, settings: Settings) -> DataFrame:
    """The bronze rows landed by ``run_date``'s batches of ``source``."""
    return tables.run_bronze(spark, source, run_date, settings)


def raw(field: str) -> Column:
    """The raw text of ``field`` as landed (staged rows keep it as ``<field>__raw``)."""
    return F.col(f"{field}__raw")


def with_raw(bronze: DataFrame, source: str) -> DataFrame:
    """Bronze rows with each source field renamed ``<field>__raw``, the declared attributes
    (``_attributes``) and lineage kept."""
    spec = contracts.canonical(source)
    return bronze.select(
        *(F.col(f).alias(f"{f}__raw") for f in spec.fields),
        "_attributes",
        *(c for c in LINEAGE_COLUMNS if c != "_record_hash"),
    )


@dataclass(frozen=True)
class FactModel:
    """A silver fact built from one source: how to type a row, which rules block it."""

    target: tables.Table
    source: str
    stage: Callable[[DataFrame, Staging], DataFrame]  # bronze with __raw fields -> typed
    rules: list[RowRule]

    @property
    def business_columns(self) -> list[str]:
        return [c for c in self.target.columns if c not in LINEAGE_COLUMNS]


@dataclass(frozen=True)
class Outcome:
    """What a conform's checked rows hold: rows in (replayed ones included), rows quarantined,
    rows passing, distinct keys passing, rows replayed."""

    rows: int
    quarantined: int
    passing: int
    keys: int
    replayed: int


def count_outcome(checked: DataFrame, keys: tuple[str, ...]) -> Outcome:
    """The :class:`Outcome` of ``checked`` in one Spark job (``replayed``: rows whose
    ``_replay`` is true, 0 without that column)."""
    passing = F.col("_first").isNull()
    replayed = F.when(F.col("_replay"), 1) if "_replay" in checked.columns else F.lit(None)
    row = checked.agg(
        F.count("*"),
        F.count("_first"),
        F.count(F.when(passing, 1)),
        F.count_distinct(F.when(passing, F.struct(*keys))),
        F.count(replayed),
    ).first()
    return Outcome(*(int(v) for v in row))


def conform_fact(
    spark: SparkSession,
    model: FactModel,
    run_date: date,
    settings: Settings,
    enterprises: DataFrame | None = None,
    ledger_rows: list[CheckResult] | None = None,
) -> ConformCounts:
    """Bronze rows of ``run_date`` → checked, de-duplicated, merged into the model's target;
    rows quarantined earlier only because their enterprise was not registered yet are
    replayed with them once it is (:func:`replay_candidates`).

    ``enterprises`` is :func:`enterprise_facts` (computed once per run by the caller); the
    GX results go to ``ledger_rows`` when given (the caller writes them), else to the ledger.
    """
    bronze = run_bronze(spark, model.source, run_date, settings)
    earlier = replay_candidates(spark, model.source, run_date, settings)
    if enterprises is None:
        enterprises = enterprise_facts(spark, settings)
    incoming = (
        with_raw(bronze, model.source)
        .withColumn("_replay", F.lit(False))
        .unionByName(with_raw(earlier, model.source).withColumn("_replay", F.lit(True)))
    )
    staged = (
        model.stage(incoming, staging(model.source, settings))
        .join(F.broadcast(enterprises), "uscc", "left")
        .fillna({"_known_enterprise": False})
        # a replayed row whose enterprise is still unknown stays as it was quarantined
        .where(~F.col("_replay") | F.col("_known_enterprise"))
    )
    # Only `block` rules quarantine; GX records every rule (block and warn) in the ledger.
    blocking = blocking_rules(model.target.qualified, model.rules, policy_for(settings))
    good, bad = split_by_rules(staged, blocking)
    checked = good.unionByName(bad).cache()
    try:
        # One job counts everything and fills the cache; the steps below skip on its figures.
        out = count_outcome(checked, model.target.keys)
        if out.rows == 0:  # nothing delivered, nothing to replay
            return ConformCounts(model.source, model.target.qualified, 0, 0, 0, 0)
        check_incoming(spark, checked, model.target, model.source, model.rules, run_date, settings,
                       ledger_rows, rows=out.rows)  # fmt: skip
        good = checked.where(F.col("_first").isNull())
        bad = checked.where(F.col("_first").isNotNull())
        quarantine(spark, bad.where(~F.col("_replay")), blocking, model.source, run_date, settings)
        # Held-back rows whose enterprise is still unknown were dropped above: most days none
        # is left to mark, and a MERGE of no rows would still cost its jobs.
        if out.replayed:
            mark_replayed(checked.where(F.col("_replay")), blocking, model.source, run_date,
                          settings)  # fmt: skip
        if out.keys:
            rows = latest_per_key(good, model.target.keys).withColumn(
                "_record_hash", silver_hash(model.business_columns)
            )
            merge_latest(spark, model.target, rows, settings)
    finally:
        checked.unpersist()
    return ConformCounts(
        model.source, model.target.qualified, out.rows - out.replayed, out.quarantined,
        out.passing - out.keys, out.keys, out.replayed,
    )  # fmt: skip


def replay_candidates(
    spark: SparkSession, source: str, run_date: date, settings: Settings
) -> DataFrame:
    """Bronze rows of earlier runs quarantined (first or among others) because their enterprise
    was not in the registry and not released since — and those this run date replayed before,
    so a re-run of the date replays the same rows."""
    rejected = tables.read(spark, tables.REJECTED_ROWS, settings).where(
        (F.col("source") == source)
        & (F.col("stage") == "conform")
        & (F.col("_run_date") < F.lit(run_date))
        & (
            (F.array_contains("checks", "enterprise_known") & F.col("replayed_on").isNull())
            | (F.col("replayed_on") == F.lit(run_date))
        )
    )
    held = rejected.select("_batch_id", "_source_row", "_run_date")
    bronze = tables.read(spark, tables.BRONZE[source], settings)
    return bronze.join(F.broadcast(held), ["_batch_id", "_source_row", "_run_date"], "left_semi")


def mark_replayed(
    replayed: DataFrame,
    rules: list[RowRule],
    source: str,
    run_date: date,
    settings: Settings,
) -> None:
    """Record on the quarantine rows of ``replayed`` (checked replay rows) that ``run_date``
    re-checked them: ``released`` when they now pass (they are conformed), otherwise their
    check and reason become the rule they break now."""
    rows = quarantine_rows(replayed, rules, source, settings).select(
        *[c for c in tables.REJECTED_ROWS.columns if c not in ("replayed_on", "released")],
        F.lit(run_date).alias("replayed_on"),
        F.col("check_name").isNull().alias("released"),
    )
    marked = "t.replayed_on <=> s.replayed_on AND t.released <=> s.released"
    broken = ("check_name", "checks", "field", "value", "reason")
    same_check = " AND ".join(f"t.{c} <=> s.{c}" for c in broken)
    tables.update_matched(
        rows,
        tables.REJECTED_ROWS,
        settings,
        [
            # released: the row keeps the check that held it back, and says when it was let go
            (f"s.released AND NOT ({marked})",
             {"replayed_on": "s.replayed_on", "released": "s.released"}),
            (f"NOT s.released AND NOT ({marked} AND {same_check})",
             {c: f"s.{c}" for c in (*broken, "replayed_on", "released")}),
        ],
        source=source,
    )  # fmt: skip


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


def quarantine_rows(
    bad: DataFrame, rules: list[RowRule], source: str, settings: Settings
) -> DataFrame:
    """Conform-stage quarantine rows of ``bad`` (checked rows; ``check_name`` NULL for a row
    that breaks none of ``rules``): the first broken rule, its reason, the field as the source
    delivered it and its raw value (personal data never shown), the payload with personal
    data tokenised, and the lineage."""
    spec = contracts.canonical(source)
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
    return bad.select(
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
        F.lit(None).cast("date").alias("replayed_on"),
        F.lit(None).cast("boolean").alias("released"),
    )


def quarantine(
    spark: SparkSession,
    bad: DataFrame,
    rules: list[RowRule],
    source: str,
    run_date: date,
    settings: Settings,
) -> None:
    """Write this run's conform-stage rejects of ``source`` (replacing any earlier attempt)."""
    rows = quarantine_rows(bad, rules, source, settings)
    write_quarantine(spark, rows, settings, source, stage="conform", _run_date=run_date)


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
    changed = f"t._record_hash <> s._record_hash AND {later_delivery()}"
    tables.upsert(rows, target, settings, update_when=changed)


def log_counts(
    spark: SparkSession, run_date: date, counts: list[ConformCounts], settings: Settings
) -> None:
    """Record per source and target: rows in = quarantined + duplicates + conformed, and the
    fingerprint of the inputs (reused counts are already recorded)."""
    rows = [
        (
            run_date,
            c.source,
            c.target,
            c.rows_in,
            c.rows_replayed,
            c.rows_quarantined,
            c.rows_duplicate,
            c.rows_conformed,
            datetime.now(),
            c.inputs_hash,
        )
        for c in counts
        if not c.reused
    ]
    if not rows:
        return
    df = spark.createDataFrame(rows, tables.CONFORM_LOG.schema)
    counted = ("rows_in", "rows_replayed", "rows_quarantined", "rows_duplicate", "rows_conformed")
    changed = " OR ".join([*(f"t.{c} <> s.{c}" for c in counted),
                           "NOT (t.inputs_hash <=> s.inputs_hash)"])  # fmt: skip
    tables.upsert(df, tables.CONFORM_LOG, settings, update_when=changed)
