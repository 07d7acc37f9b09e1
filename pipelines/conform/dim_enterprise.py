"""silver.dim_enterprise: the enterprise dimension as slowly-changing type 2.

Each registry row is one version of an enterprise, effective from its 核准日期 (``changed_on``).
Versions that arrive late or are corrected re-order that enterprise's history, so the history of
every enterprise touched by a run is rebuilt from its stored versions plus the new ones, and
merged back on (uscc, valid_from).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipelines.conform._common import (
    DELIVERY_ORDER,
    ConformCounts,
    Staging,
    count_outcome,
    later_delivery,
    latest_per_key,
    quarantine,
    raw,
    run_bronze,
    silver_hash,
    split_by_rules,
    staging,
    with_raw,
    with_region_validity,
)
from pipelines.normalise import clean_code, clean_text, token
from quality import rules as R
from quality.engine import CheckResult
from quality.gates import check_incoming
from quality.policy import blocking_rules, policy_for
from quality.regions import jurisdiction_prefixes
from warehouse import tables
from warehouse.settings import Settings

SOURCE = "registry"
TARGET = tables.DIM_ENTERPRISE
# What makes a version: everything but its validity interval and lineage.
VERSION_COLUMNS = [
    "uscc",
    "name",
    "ent_type",
    "reg_capital_yuan",
    "founded_on",
    "region_code",
    "industry",
    "status",
    "status_code",
    "closed_on",
    "legal_rep_token",
    "address",
    "address_token",
    "attributes",
    "valid_from",
]


def attributes(landed: Column, names: list[str]) -> Column:
    """The declared attributes of a version as a map name → cleaned text, sorted by name so
    that equal content hashes equal whatever the file's column order; NULL without any."""
    if not names:
        return F.lit(None).cast("map<string,string>")
    cleaned = F.map_filter(
        F.transform_values(landed, lambda _k, v: clean_text(v)),
        lambda k, v: v.isNotNull() & k.isin(*names),
    )
    entries = F.array_sort(F.map_entries(cleaned))
    return F.when(F.size(entries) > 0, F.map_from_entries(entries))


def stage(rows: DataFrame, st: Staging) -> DataFrame:
    """Typed registry versions; legal representative and phone reduced to tokens; the status
    word translated to its canonical value (``status_code``); the declared attributes
    cleaned (``attributes``); the GB/T 2260 validity of the region codes joined in for the
    rules."""
    uscc = clean_code(raw("uscc"))
    founded = st.date("founded_on")
    address = clean_text(raw("address"))
    # The ID number identifies a person; the name alone does not (namesakes are common).
    person = F.coalesce(clean_code(raw("legal_rep_id")), clean_text(raw("legal_rep")))
    typed = rows.select(
        "*",
        uscc.alias("uscc"),
        clean_text(raw("name")).alias("name"),
        clean_text(raw("ent_type")).alias("ent_type"),
        st.amount("reg_capital").alias("reg_capital_yuan"),
        founded.alias("founded_on"),
        founded.alias("_founded_on"),
        clean_code(raw("region_code")).alias("region_code"),
        F.substring(uscc, 3, 6).alias("uscc_region"),
        clean_code(raw("industry")).alias("industry"),
        clean_text(raw("status")).alias("status"),
        st.word("status").alias("status_code"),
        st.date("closed_on").alias("closed_on"),
        token(person, st.key).alias("legal_rep_token"),
        address.alias("address"),
        token(F.regexp_replace(address, r"\s+", ""), st.key).alias("address_token"),
        attributes(F.col("_attributes"), list(st.mapping.attributes)).alias("attributes"),
        st.date("changed_on").alias("changed_on"),
    ).withColumn("valid_from", F.col("changed_on"))
    spark = rows.sparkSession
    return with_region_validity(spark, with_region_validity(spark, typed, "region_code"),
                                "uscc_region")  # fmt: skip


def rules(jurisdiction: list[str] | None = None) -> list[R.RowRule]:
    """The registry's row rules; with ``jurisdiction`` (settings), rows outside it too."""
    area = [R.in_jurisdiction("region_code", jurisdiction_prefixes(jurisdiction or []))]
    return [
        R.required("uscc"),
        R.valid_uscc(),
        R.known_region("region_code"),
        R.region_in_force("region_code", "changed_on"),
        R.uscc_region_in_force(),
        *(area if jurisdiction else []),
        R.known_value("status", "status_code"),
        R.parseable_date("founded_on"),
        R.parseable_date("changed_on"),
        R.parseable_date("closed_on"),
        R.required("changed_on"),
        R.parseable_number("reg_capital_yuan", "reg_capital"),
        R.non_negative("reg_capital_yuan"),
        R.not_future("changed_on"),
        R.not_future("founded_on"),
        R.not_before_founding("changed_on"),
    ]


def rebuild_history(versions: DataFrame) -> DataFrame:
    """valid_to = next version's valid_from; the last version is current."""
    w = Window.partitionBy("uscc").orderBy("valid_from")
    return versions.withColumn("valid_to", F.lead("valid_from").over(w)).withColumn(
        "is_current", F.col("valid_to").isNull()
    )


def conform(
    spark: SparkSession,
    run_date: date,
    settings: Settings,
    ledger_rows: list[CheckResult] | None = None,
) -> ConformCounts:
    """Registry rows of ``run_date`` → checked versions → SCD2 history merged into silver (GX
    results to ``ledger_rows`` when given, else to the ledger)."""
    bronze = run_bronze(spark, SOURCE, run_date, settings)
    staged = stage(with_raw(bronze, SOURCE), staging(SOURCE, settings))
    the_rules = rules(settings.jurisdiction)
    # Only `block` rules quarantine; GX records every rule (block and warn) in the ledger.
    blocking = blocking_rules(TARGET.qualified, the_rules, policy_for(settings))
    good, bad = split_by_rules(staged, blocking)
    checked = good.unionByName(bad).cache()
    try:
        # One job counts everything and fills the cache; the steps below skip on its figures.
        out = count_outcome(checked, ("uscc", "valid_from"))
        if out.rows == 0:  # no registry delivery that day: no version to check or merge
            return ConformCounts(SOURCE, TARGET.qualified, 0, 0, 0, 0)
        check_incoming(spark, checked, TARGET, SOURCE, the_rules, run_date, settings, ledger_rows,
                       rows=out.rows)  # fmt: skip
        good = checked.where(F.col("_first").isNull())
        bad = checked.where(F.col("_first").isNotNull())
        quarantine(spark, bad, blocking, SOURCE, run_date, settings)
        if out.keys:  # else every row was quarantined: no version to merge
            keep = (
                VERSION_COLUMNS
                + [c for c in DELIVERY_ORDER if c not in VERSION_COLUMNS]
                + ["_batch_id", "_ingested_at"]
            )
            new = latest_per_key(good.select(*keep), ("uscc", "valid_from"))
            dim = tables.read(spark, TARGET, settings)
            stored = dim.join(new.select("uscc").distinct(), "uscc", "left_semi").select(*keep)
            # A stored version is replaced only by a later delivery of the same (uscc, valid_from).
            versions = latest_per_key(stored.unionByName(new), ("uscc", "valid_from"))
            history = rebuild_history(versions).withColumn(
                "_record_hash", silver_hash(VERSION_COLUMNS)
            )
            changed = (
                f"(t._record_hash <> s._record_hash AND {later_delivery()}) "
                "OR NOT (t.valid_to <=> s.valid_to) OR t.is_current <> s.is_current"
            )
            tables.upsert(history, TARGET, settings, update_when=changed)
    finally:
        checked.unpersist()
    return ConformCounts(
        SOURCE, TARGET.qualified, out.rows, out.quarantined, out.passing - out.keys, out.keys
    )
