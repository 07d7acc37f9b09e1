"""Personal data in bronze: retention (raw fields nulled after N days) and erasure of a person.

Only bronze holds raw personal values (the fields a source declares personal: legal
representative name and ID number, phones); silver, gold, quarantine payloads, reports, lists
and the Data Docs hold keyed tokens or nothing (``tests/test_privacy.py`` scans them all).
Both operations here are Delta UPDATEs that null the raw fields (and recompute the row's
landed-content hash, which would otherwise confirm a guessed ID number), followed by a VACUUM
that deletes the data files that still hold the old values: after the policy's time-travel
window for retention, at once for an erasure. Bronze tables keep no column statistics of
personal fields in their Delta log (``warehouse.tables``), so no raw value survives there.

Both hold the lake lock and leave an ``audit.events`` row (an erasure names the person by
token, never by the raw value).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from delta.tables import DeltaTable
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from pipelines.normalise import clean_code, clean_text, token
from warehouse import audit, caches, tables
from warehouse.lock import lake_lock
from warehouse.settings import Settings, get_settings

POLICY_YAML = Path(__file__).with_name("retention.yaml")
LINEAGE_NAMES = frozenset(f.name for f in tables.LINEAGE)

# How a person is identified in each source: each tuple is one identity, the first non-empty
# field of it (the registry's representative is her ID number, or her name when no ID number
# was delivered: the same rule as silver.dim_enterprise.legal_rep_token). Sources not listed
# identify a person by each personal field alone.
IDENTITIES: dict[str, tuple[tuple[str, ...], ...]] = {
    "registry": (("legal_rep_id", "legal_rep"), ("phone",)),
    "complaint": (("complainant_phone",),),
}


@dataclass(frozen=True)
class SourceRetention:
    source: str
    null_after_days: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RetentionPolicy:
    """Parsed ``retention.yaml``: per bronze source, which raw fields are nulled after how
    many days; and the Delta time-travel window VACUUM keeps."""

    version: str
    time_travel_hours: int
    sources: dict[str, SourceRetention]


def parse_policy(data: dict[str, Any]) -> RetentionPolicy:
    """Validate and build the policy: every bronze source with personal fields has an entry,
    entries name only personal fields of known sources; ValueError otherwise."""
    hours = int(data.get("time_travel_hours", 168))
    if hours < 0:
        raise ValueError("retention: time_travel_hours must be >= 0")
    out: dict[str, SourceRetention] = {}
    for name, entry in (data.get("sources") or {}).items():
        table = tables.BRONZE.get(name)
        if table is None:
            raise ValueError(f"retention: unknown source {name!r}; known: {sorted(tables.BRONZE)}")
        if not table.personal:
            raise ValueError(f"retention: source {name} has no personal fields to null")
        fields = tuple(entry.get("fields") or table.personal)
        if not set(fields) <= set(table.personal):
            raise ValueError(
                f"retention: {name}.fields may only name its personal fields {table.personal}, "
                f"got {fields}"
            )
        days = int(entry["null_after_days"])
        if days < 1:
            raise ValueError(f"retention: {name}.null_after_days must be >= 1")
        out[name] = SourceRetention(name, days, fields)
    missing = [n for n, t in tables.BRONZE.items() if t.personal and n not in out]
    if missing:
        raise ValueError(f"retention: no entry for sources with personal data: {missing}")
    return RetentionPolicy(str(data.get("version", "unversioned")), hours, out)


def load_policy(path: str | Path | None = None) -> RetentionPolicy:
    """The policy in ``path`` (default: the reviewed ``pipelines/retention.yaml``)."""
    return parse_policy(yaml.safe_load(Path(path or POLICY_YAML).read_text(encoding="utf-8")))


@caches.per_run(maxsize=4)
def _cached(path: str | None) -> RetentionPolicy:
    return load_policy(path)


def policy_for(settings: Settings) -> RetentionPolicy:
    """The policy of ``settings.retention_policy``, else the reviewed default."""
    return _cached(settings.retention_policy)


def business_fields(table: tables.Table) -> list[str]:
    """A bronze table's canonical source fields, in the order the landed-content hash
    covers them (lineage, the unmapped columns' ``_extra`` map and the declared attributes'
    ``_attributes`` map are not hashed)."""
    return [c for c in table.columns if c not in (*LINEAGE_NAMES, "_extra", "_attributes")]


def hash_after_nulling(fields: list[str], nulled: set[str]) -> Column:
    """The landed-content hash of a row once ``nulled`` are NULL: the formula of
    :func:`pipelines.ingest.record_hash` (kept equal by a test)."""
    parts = (F.lit(None).cast("string") if f in nulled else F.col(f) for f in fields)
    return F.sha2(F.concat_ws("\u001f", *(F.coalesce(p, F.lit("\u0000")) for p in parts)), 256)


def _null_fields(
    spark: SparkSession,
    table: tables.Table,
    condition: Column,
    nulled: set[str],
    s: Settings,
    erase_extra: bool = False,
) -> int:
    """UPDATE the rows matching ``condition`` with ``nulled`` set to NULL; rows changed."""
    fields = business_fields(table)
    assignments = {f: F.lit(None).cast("string") for f in nulled}
    if erase_extra:  # unmapped columns (and attributes) may hold the erased person's data
        assignments["_extra"] = F.lit(None).cast("map<string,string>")
        assignments["_attributes"] = F.lit(None).cast("map<string,string>")
    assignments["_record_hash"] = hash_after_nulling(fields, nulled)
    return tables.update(spark, table, s, condition, assignments)


@contextlib.contextmanager
def _short_retention(spark: SparkSession, hours: int) -> Iterator[None]:
    """Allow VACUUM below Delta's 7-day safety check for this block (the lake lock keeps
    other writers out, which is what the check protects)."""
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, "true")
    if hours < 168:
        spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def vacuum(
    spark: SparkSession, table: tables.Table, hours: int, s: Settings, dry_run: bool = False
) -> int:
    """VACUUM ``table`` keeping ``hours`` of time travel; returns the data files deleted (or,
    with ``dry_run``, that would be)."""
    path = table.path(s)
    with _short_retention(spark, hours):
        doomed = spark.sql(f"VACUUM delta.`{path}` RETAIN {hours} HOURS DRY RUN").count()
        if doomed and not dry_run:
            spark.sql(f"VACUUM delta.`{path}` RETAIN {hours} HOURS")
    return doomed


@dataclass
class RetentionResult:
    source: str
    cutoff: date
    fields: tuple[str, ...]
    rows_nulled: int
    files_removed: int


def apply_retention(
    spark: SparkSession,
    settings: Settings | None = None,
    today: date | None = None,
    dry_run: bool = False,
) -> list[RetentionResult]:
    """Null each source's raw personal fields in bronze rows delivered before ``today`` minus
    its ``null_after_days``, then VACUUM with the policy's time-travel window. With
    ``dry_run`` only count what would change. Holds the lake lock; recorded in audit.events."""
    s = settings or get_settings()
    pol = policy_for(s)
    today = today or date.today()
    results: list[RetentionResult] = []
    with lake_lock(s, "retention apply"):
        for name, rule in pol.sources.items():
            table = tables.BRONZE[name]
            cutoff = date.fromordinal(today.toordinal() - rule.null_after_days)
            if not DeltaTable.isDeltaTable(spark, table.path(s)):
                results.append(RetentionResult(name, cutoff, rule.fields, 0, 0))
                continue
            present = F.lit(False)
            for f in rule.fields:
                present = present | F.col(f).isNotNull()
            old = (F.col("_run_date") < F.lit(cutoff)) & present
            if dry_run:
                n = tables.read(spark, table, s).where(old).count()
            else:
                n = _null_fields(spark, table, old, set(rule.fields), s)
            removed = vacuum(spark, table, pol.time_travel_hours, s, dry_run)
            results.append(RetentionResult(name, cutoff, rule.fields, n, removed))
        if not dry_run:
            audit.record(
                spark, s, "retention", "apply", "succeeded", f"retention {today}",
                inputs={"tables": audit.table_versions(s, tuple(tables.BRONZE.values()))},
                versions={"retention_policy": pol.version},
                details={r.source: {"cutoff": r.cutoff.isoformat(), "rows_nulled": r.rows_nulled,
                                    "files_removed": r.files_removed, "fields": list(r.fields)}
                         for r in results},
            )  # fmt: skip
    return results


def _literal_token(spark: SparkSession, value: str, key: str) -> str:
    return spark.range(1).select(token(F.lit(value), key)).first()[0]


def person_token(
    spark: SparkSession,
    settings: Settings,
    *,
    person: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
) -> tuple[str, str]:
    """(token, how it was given) for exactly one of a silver token (``legal_rep_token``,
    ``complainant_token``), a raw ID number or a raw phone number."""
    given = [(k, v) for k, v in (("token", person), ("id_number", id_number), ("phone", phone))
             if v]  # fmt: skip
    if len(given) != 1:
        raise ValueError("name the person by exactly one of a token, an ID number or a phone")
    kind, value = given[0]
    if kind == "token":
        if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"not a personal-data token (32 hex digits): {value!r}")
        return value, kind
    return _literal_token(spark, value, settings.resolved_pii_key()), kind


def identity_match(source: str, table: tables.Table, wanted: str, key: str) -> Column:
    """TRUE for a bronze row of ``source`` whose person (any of its identities) has token
    ``wanted``."""
    identities = IDENTITIES.get(source) or tuple((f,) for f in table.personal)
    match = F.lit(False)
    for fields in identities:
        first = F.coalesce(
            *(clean_code(F.col(f)) if f.endswith("_id") else clean_text(F.col(f)) for f in fields)
        )
        match = match | F.coalesce(token(first, key) == F.lit(wanted), F.lit(False))
    return match


@dataclass
class ErasureResult:
    token: str
    given_as: str
    rows_nulled: dict[str, int] = field(default_factory=dict)
    files_removed: dict[str, int] = field(default_factory=dict)
    event_id: str = ""


def erase(
    spark: SparkSession,
    settings: Settings | None = None,
    *,
    person: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
    keep_history: bool = False,
    reason: str = "",
) -> ErasureResult:
    """Remove one person's raw personal data from bronze: every personal field of every row
    that identifies them is nulled (Delta UPDATE), then, unless ``keep_history``, the touched
    tables are VACUUMed with no time travel kept, so no data file with the old values remains.
    Derived data holds only tokens (kept: they are pseudonymous and carry the association
    features). Holds the lake lock; the ``audit.events`` row names the person's token."""
    s = settings or get_settings()
    key = s.resolved_pii_key()
    wanted, given_as = person_token(spark, s, person=person, id_number=id_number, phone=phone)
    result = ErasureResult(wanted, given_as)
    with lake_lock(s, f"erase person {wanted[:8]}…"):
        for name, table in tables.BRONZE.items():
            if not table.personal or not DeltaTable.isDeltaTable(spark, table.path(s)):
                continue
            match = identity_match(name, table, wanted, key)
            n = _null_fields(spark, table, match, set(table.personal), s, erase_extra=True)
            if n:
                result.rows_nulled[table.qualified] = n
                if not keep_history:
                    result.files_removed[table.qualified] = vacuum(spark, table, 0, s)
            left = tables.read(spark, table, s).where(match).count()
            if left:
                raise RuntimeError(f"erasure left {left} rows of the person in {table.qualified}")
        result.event_id = audit.record(
            spark, s, "erasure", "apply", "succeeded", f"person {wanted}",
            inputs={"given_as": given_as},
            details={"rows_nulled": result.rows_nulled, "files_removed": result.files_removed,
                     "history_kept": keep_history, "reason": reason},
        )  # fmt: skip
    return result
