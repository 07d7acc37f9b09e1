"""Quality gates of one run: validate with GX, write the ledger, stop the run on a blocking
table-level failure.

Row rules never stop a run: their rows are quarantined by conform (a Spark filter over the
``block`` rules, :func:`quality.policy.blocking_rules`). Table-level checks with gate ``block``
raise :class:`GateBlocked` after the ledger rows that explain them are written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from quality import ledger, suites
from quality.engine import CheckResult, validate
from quality.policy import Policy, policy_for
from quality.rules import RowRule
from warehouse import audit, contracts, tables
from warehouse.settings import Settings

UNMATCHED = "_unmatched"  # the ingest log's source of a file no mapping claims


class GateBlocked(RuntimeError):
    """A ``block`` table-level expectation failed: downstream steps must not run."""

    audit_outcome = "blocked"  # how audit.events records a run that stopped here

    def __init__(self, failures: list[CheckResult]):
        self.failures = failures
        first = failures[0]
        detail = "; ".join(
            f"{f.table_name} {f.expectation}: observed {f.observed_value}, expected {f.threshold}"
            for f in failures
        )
        super().__init__(f"质量闸门阻断 / quality gate blocked on {first.run_date}: {detail}")


def _record_decision(
    settings: Settings,
    spark: SparkSession,
    gate: str,
    run_date: date,
    results: list[CheckResult],
    checked: tuple[tables.Table, ...],
    fingerprint: str,
    reused_from: str | None = None,
) -> None:
    """The gate's decision as an ``audit.events`` row: outcome, counts, blocked checks, the
    suites whose ledger rows hold its results, the Delta versions it read, the policy version
    and the fingerprint of its inputs (``reused_from``: the event of the decision it reused)."""
    blocked = [r for r in results if r.outcome == "blocked"]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    audit.record(
        spark, settings, "gate", "decision", "blocked" if blocked else "passed",
        f"{gate} gate {run_date}", run_date=run_date,
        inputs={"tables": audit.table_versions(settings, checked), "fingerprint": fingerprint},
        versions={"quality_policy": policy_for(settings).version},
        details={"counts": counts, "suites": sorted({r.suite for r in results}),
                 "reused_from": reused_from, "blocked": [
            f"{r.table_name} {r.expectation}: observed {r.observed_value}, expected {r.threshold}"
            for r in blocked]},
    )  # fmt: skip


def _fingerprint(gate: str, run_date: date, settings: Settings, **inputs: object) -> str:
    """What a gate's decision of ``run_date`` depends on besides ``inputs``: the gate policy
    and the quality code (checks, suites, reference lists)."""
    text = json.dumps(
        {"gate": gate, "run_date": run_date, "policy": dataclasses.asdict(policy_for(settings)),
         "code": audit.source_fingerprint("quality"), **inputs},
        sort_keys=True, default=str,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def decided_before(
    spark: SparkSession, gate: str, run_date: date, fingerprint: str, settings: Settings
) -> tuple[str, list[CheckResult]] | None:
    """(event id, results) of the latest decision of ``gate`` for ``run_date`` when it was
    taken on inputs with ``fingerprint`` and its results are all still in the ledger; else
    None (the gate must validate)."""
    events = (
        audit.read(spark, settings)
        .where(
            (F.col("event") == "gate") & (F.col("action") == "decision")
            & (F.col("subject") == f"{gate} gate {run_date}")
        )
        .select("event_id", "occurred_at", "inputs", "details")
        .collect()
    )  # fmt: skip
    if not events:
        return None
    latest = max(events, key=lambda e: e["occurred_at"])
    details = json.loads(latest["details"])
    if json.loads(latest["inputs"]).get("fingerprint") != fingerprint or "suites" not in details:
        return None
    rows = (
        ledger.read(spark, settings)
        .where((F.col("run_date") == F.lit(run_date)) & F.col("suite").isin(details["suites"]))
        .drop("validated_at")
        .collect()
    )
    if len(rows) != sum(details["counts"].values()):
        return None  # ledger rows gone (retention) or rewritten since: validate again
    return latest["event_id"], [CheckResult(**r.asDict()) for r in rows]


def _reuse(
    spark: SparkSession,
    gate: str,
    run_date: date,
    fingerprint: str,
    checked: tuple[tables.Table, ...],
    settings: Settings,
) -> list[CheckResult] | None:
    """The earlier decision's results when one was taken on the same inputs (recorded again,
    as reused; raises :class:`GateBlocked` when it blocked); None when the gate must run."""
    earlier = decided_before(spark, gate, run_date, fingerprint, settings)
    if earlier is None:
        return None
    event_id, results = earlier
    _record_decision(settings, spark, gate, run_date, results, checked, fingerprint, event_id)
    _raise_if_blocked(results)
    return results


def _raise_if_blocked(results: list[CheckResult]) -> None:
    blocked = [r for r in results if r.outcome == "blocked"]
    if blocked:
        raise GateBlocked(blocked)


def check_incoming(
    spark: SparkSession,
    staged: DataFrame,
    target: tables.Table,
    source: str,
    rules: list[RowRule],
    run_date: date,
    settings: Settings,
    ledger_rows: list[CheckResult] | None = None,
    rows: int | None = None,
) -> list[CheckResult]:
    """Validate a source's staged rows of ``run_date`` against every rule (block and warn) and
    record the results (in the ledger, or in ``ledger_rows`` for the caller to write with a
    day's others: one ledger commit per stage); quarantining is conform's Spark filter, so
    nothing is raised here. A source with no rows that day gets no rows in the ledger.
    ``rows``: the staged rows' count when the caller has it (saves a Spark job)."""
    if (rows == 0) if rows is not None else staged.isEmpty():
        return []  # the source delivered nothing today: freshness covers that
    policy = policy_for(settings)
    results = validate(
        settings,
        suite_name=f"{target.qualified}.incoming.{source}",
        dataset=f"{target.qualified}.incoming.{source}",
        df=staged,
        expectations=suites.incoming_expectations(target.qualified, rules, staged, policy),
        run_date=run_date,
        table_name=target.qualified,
        source=source,
        policy_version=policy.version,
    )
    if ledger_rows is None:
        ledger.write(spark, results, settings)
    else:
        ledger_rows.extend(results)
    return results


def _previous_volumes(log: pd.DataFrame, run_date: date, policy: Policy) -> dict[str, list[int]]:
    """Per source, the rows landed by each of its latest runs before ``run_date`` (newest
    first, at most ``window_runs``; its first run, the cutover, left out unless configured),
    from the ingest log up to ``run_date``."""
    landed = log[log["status"] == "landed"]
    per_run = landed.groupby(["source", "run_date"])["rows_landed"].sum()
    runs: dict[str, list[tuple[date, int]]] = {}
    for (source, day), rows in per_run.items():
        runs.setdefault(source, []).append((day, int(rows)))
    window = int(policy.param("volume", "window_runs", 7))
    skip_cutover = policy.param("volume", "exclude_cutover", True)
    out = {}
    for source, dated in runs.items():
        first = min(d for d, _ in dated)
        earlier = sorted(
            ((d, n) for d, n in dated if d < run_date and not (skip_cutover and d == first)),
            reverse=True,
        )
        out[source] = [n for _, n in earlier[:window]]
    return out


def _log_digest(log: pd.DataFrame) -> str:
    """A hash of the ingest-log rows (what landed, skipped or was rejected, with its counts),
    leaving out when they were written: the same deliveries, the same digest."""
    rows = log.drop(columns=["ingested_at"]).sort_values("batch_id")
    text = json.dumps(rows.to_dict(orient="records"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_bronze(
    spark: SparkSession, run_date: date, settings: Settings, force: bool = False
) -> list[CheckResult]:
    """Bronze gate of ``run_date``: per source with files that day, every file landed (none
    rejected or unmatched) and every column mapped; per source landed, lineage, row identity
    and volume; every source the mappings expect that day delivered; every source's
    freshness. Raises :class:`GateBlocked` on a blocking failure (by default a rejected or
    unmatched file: the message names the file and the reason).

    Everything it reads follows from the ingest log up to ``run_date`` (batches are immutable),
    the mappings, the policy and the quality code: when a decision of this date was taken on
    the same, its results are reused (no validation), unless ``force``."""
    policy = policy_for(settings)
    # The ingest log is a row per file: collected once, checked per source on pandas.
    upto = (
        tables.read(spark, tables.INGEST_LOG, settings)
        .where(F.col("run_date") <= F.lit(run_date))
        .toArrow()
        .to_pandas()
    )
    log = upto[upto["run_date"] == run_date].reset_index(drop=True)
    today = {
        source: bool((files["status"] == "landed").any()) for source, files in log.groupby("source")
    }
    bronze = tuple(tables.BRONZE[s] for s in contracts.CANONICAL if today.get(s))
    bronze += (tables.INGEST_LOG,)
    mappings = {n: m.model_dump(mode="json") for n, m in contracts.mappings(settings).items()}
    fingerprint = _fingerprint("bronze", run_date, settings, ingest=_log_digest(upto),
                               mappings=mappings)  # fmt: skip
    if not force and (reused := _reuse(spark, "bronze", run_date, fingerprint, bronze, settings)):
        return reused
    results: list[CheckResult] = []
    volumes = _previous_volumes(upto, run_date, policy)
    order = [*contracts.CANONICAL, UNMATCHED]
    for source in (s for s in order if s in today):
        table = "landing" if source == UNMATCHED else tables.BRONZE[source].qualified
        results += validate(
            settings,
            suite_name=f"{table}.files" if source != UNMATCHED else "landing.unmatched",
            dataset=f"{table}.files" if source != UNMATCHED else "landing.unmatched",
            df=log[log["source"] == source].reset_index(drop=True),
            expectations=suites.file_expectations(table, policy),
            run_date=run_date,
            table_name=table,
            source=source,
            policy_version=policy.version,
        )
    for source in (s for s in contracts.CANONICAL if today.get(s)):
        table = tables.BRONZE[source]
        results += validate(
            settings,
            suite_name=table.qualified,
            dataset=table.qualified,
            df=tables.run_bronze(spark, source, run_date, settings),
            expectations=suites.bronze_expectations(source, volumes.get(source, []), policy),
            run_date=run_date,
            table_name=table.qualified,
            source=source,
            policy_version=policy.version,
        )
    results += check_deliveries(spark, run_date, set(today), settings, policy)
    results += check_freshness(spark, run_date, settings, policy)
    ledger.write(spark, results, settings)
    _record_decision(settings, spark, "bronze", run_date, results, bronze, fingerprint)
    _raise_if_blocked(results)
    return results


def expected_sources(run_date: date, settings: Settings) -> list[str]:
    """The sources whose mapping expects a delivery on ``run_date``."""
    return [n for n, m in contracts.mappings(settings).items() if m.delivery.expects(run_date)]


def check_deliveries(
    spark: SparkSession, run_date: date, delivered: set[str], settings: Settings, policy: Policy
) -> list[CheckResult]:
    """One check: every source expected on ``run_date`` delivered a file (``delivered``: the
    sources with an ingest-log row that day); the observed value names the missing ones."""
    expected = expected_sources(run_date, settings)
    if not expected:
        return []
    rows = [(s, s in delivered) for s in expected]
    results = validate(
        settings,
        suite_name="landing.deliveries",
        dataset="landing.deliveries",
        df=spark.createDataFrame(rows, "source string, delivered boolean"),
        expectations=suites.delivery_expectations(policy),
        run_date=run_date,
        table_name="landing",
        source="-",
        policy_version=policy.version,
    )
    missing = [s for s, ok in rows if not ok]
    observed = f"missing: {', '.join(missing)}" if missing else f"{len(rows)} delivered"
    return [dataclasses.replace(r, observed_value=observed) for r in results]


def check_freshness(
    spark: SparkSession, run_date: date, settings: Settings, policy: Policy
) -> list[CheckResult]:
    """Age in days of each source's latest landed delivery up to ``run_date`` (one small
    batch: one row per source that ever delivered)."""
    latest = (
        tables.read(spark, tables.INGEST_LOG, settings)
        .where(F.col("status").isin("landed", "skipped") & (F.col("run_date") <= F.lit(run_date)))
        .groupBy("source")
        .agg(F.max("run_date").alias("latest_delivery"))
        .withColumn("age_days", F.datediff(F.lit(run_date), "latest_delivery"))
    )
    return validate(
        settings,
        suite_name="audit.ingest_log.freshness",
        dataset="audit.ingest_log.freshness",
        df=latest,
        expectations=suites.freshness_expectations(policy),
        run_date=run_date,
        table_name="audit.ingest_log",
        source="-",
        policy_version=policy.version,
    )


def check_tables(
    spark: SparkSession,
    run_date: date,
    checked: tuple[tables.Table, ...],
    settings: Settings,
    force: bool = False,
) -> list[CheckResult]:
    """Table-level gate (key present, key unique) over whole silver or gold tables; tables not
    created yet are skipped. Raises :class:`GateBlocked` on a blocking failure. A decision of
    ``run_date`` taken on the same table versions (policy, quality code) is reused, unless
    ``force``."""
    policy = policy_for(settings)
    layers = "+".join(sorted({t.layer for t in checked}))
    fingerprint = _fingerprint(layers, run_date, settings,
                               tables=audit.table_versions(settings, checked))  # fmt: skip
    if not force and (reused := _reuse(spark, layers, run_date, fingerprint, checked, settings)):
        return reused
    results: list[CheckResult] = []
    for table in checked:
        if not DeltaTable.isDeltaTable(spark, table.path(settings)):
            continue
        results += validate(
            settings,
            suite_name=table.qualified,
            dataset=table.qualified,
            df=tables.read(spark, table, settings),
            expectations=suites.table_expectations(table, policy),
            run_date=run_date,
            table_name=table.qualified,
            source="-",
            policy_version=policy.version,
        )
    ledger.write(spark, results, settings)
    _record_decision(settings, spark, layers, run_date, results, checked, fingerprint)
    _raise_if_blocked(results)
    return results


SILVER_TABLES: tuple[tables.Table, ...] = (tables.DIM_ENTERPRISE, *tables.SILVER_FACTS)


def check_gold(spark: SparkSession, run_date: date, settings: Settings) -> list[CheckResult]:
    """Gold gate: key present and unique in every gold table built so far — features and
    scores, and risk insight's tiers, plans, target lists and warnings (call after the gold
    steps of a run; raises :class:`GateBlocked` on a blocking failure)."""
    return check_tables(spark, run_date, tables.layer_tables("gold"), settings)
