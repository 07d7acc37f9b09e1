"""What one source's conform of a run date reads, as one fingerprint, so that a delivery
already conformed from the same inputs is not conformed again: a re-run of a day whose files
were all landed before costs two reads of small audit tables instead of every model's bronze
read, GX validation and MERGE.

A source's fingerprint covers the batches of the run date that landed for it (a new or
corrected file is a new batch), its source mapping, the gate policy, the jurisdiction, the
personal-data key (tokens depend on it) and the code that conforms and checks rows (a new
release conforms again). A fact's covers the registry's too: its enterprise checks, and the
replay of rows held back for an unknown enterprise, read the dimension the registry builds.
What the fingerprint cannot see (a Spark or Delta upgrade, say) needs a forced re-conform
(``risk-insight run --date D --reconform``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.conform import dim_enterprise
from pipelines.conform._common import ConformCounts
from quality.policy import policy_for
from warehouse import audit, contracts, tables
from warehouse.settings import Settings

REGISTRY = dim_enterprise.SOURCE


def fingerprints(
    spark: SparkSession, run_date: date, sources: list[str], settings: Settings
) -> dict[str, str]:
    """Per source of ``sources``, the fingerprint of what its conform of ``run_date`` reads
    (one Spark job over the ingest log)."""
    wanted = sorted({*sources, REGISTRY})
    landed = (
        tables.read(spark, tables.INGEST_LOG, settings)
        .where(
            (F.col("run_date") == F.lit(run_date))
            & (F.col("status") == "landed")
            & F.col("source").isin(wanted)
        )
        .groupBy("source")
        .agg(F.sort_array(F.collect_set("batch_id")).alias("batches"))
        .collect()
    )
    batches = {r["source"]: list(r["batches"]) for r in landed}
    found = contracts.mappings(settings)
    common = {
        "policy": dataclasses.asdict(policy_for(settings)),
        "jurisdiction": list(settings.jurisdiction or []),
        "key": hashlib.sha256(settings.resolved_pii_key().encode()).hexdigest(),
        "code": audit.source_fingerprint("pipelines.conform", "pipelines.normalise", "quality"),
    }

    def of(source: str, **more: str) -> str:
        mapping = found[source].model_dump(mode="json") if source in found else None
        text = json.dumps(
            {"source": source, "batches": batches.get(source, []), "mapping": mapping,
             **common, **more},
            sort_keys=True,
            default=str,
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()

    registry = of(REGISTRY)
    return {s: registry if s == REGISTRY else of(s, registry=registry) for s in sources}


def conformed_before(
    spark: SparkSession, run_date: date, settings: Settings
) -> dict[str, tuple[str | None, list[ConformCounts]]]:
    """Per source, the fingerprint its last conform of ``run_date`` recorded in
    audit.conform_log and that conform's counts (``reused``); empty for a date not conformed
    yet (a conform killed before its log was written left none)."""
    rows = (
        tables.read(spark, tables.CONFORM_LOG, settings)  # an older lake gains inputs_hash
        .where(F.col("run_date") == F.lit(run_date))
        .collect()
    )
    by_source: dict[str, list[ConformCounts]] = {}
    for r in sorted(rows, key=lambda r: (r["source"], r["target"])):
        by_source.setdefault(r["source"], []).append(
            ConformCounts(
                r["source"], r["target"], r["rows_in"], r["rows_quarantined"],
                r["rows_duplicate"], r["rows_conformed"], r["rows_replayed"], r["inputs_hash"],
                reused=True,
            )
        )  # fmt: skip
    # targets of one source logged with different fingerprints: none of them is reusable
    return {
        source: (hashes.pop() if len(hashes := {c.inputs_hash for c in counts}) == 1 else None,
                 counts)
        for source, counts in by_source.items()
    }  # fmt: skip
