"""Measure the quality gates against the simulator's defect manifest (``truth/defects.csv``):
the rules live in the conform models, so this sits in pipelines (it reads the manifest file,
not the simulator).

Per defect class, a defective row counts as caught when the pipeline did what the manifest's
``handling`` asks:

* ``quarantine``: its (file, row) is in ``quarantine.rejected_rows`` (any stage);
* ``normalise`` / ``dedupe``: it is not quarantined and its natural key is in silver (one row
  per key by construction, so a duplicate collapses);
* ``merge``: it is not quarantined and the silver row of its key carries its lineage (the later
  delivery won). A correction of a field that silver does not carry (see
  :data:`NOT_IN_SILVER`) cannot change silver, so there it counts when it lands.

Clean rows (delivered, not in the manifest) that were quarantined are false quarantines; they
are attributed to the defect class of the rule that quarantined them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.conform import FACT_MODELS, delivered_models, dim_enterprise
from pipelines.conform._common import staging, with_raw
from warehouse import tables
from warehouse.settings import Settings

INGEST_CHECK_CLASS = {"field_count": "malformed_row", "decodable": "malformed_row"}

# Personal data dropped on the way to silver: the phone is not kept, and the legal
# representative is identified by the token of the ID number, not the name.
NOT_IN_SILVER = {("registry", "phone"), ("registry", "legal_rep")}


@dataclass(frozen=True)
class ClassScore:
    """Recall and false quarantine of one defect class."""

    defect_class: str
    handling: str
    injected: int
    caught: int
    false_quarantined: int  # clean rows quarantined by rules of this class
    clean_rows: int  # all clean rows delivered (the false-quarantine denominator)

    @property
    def recall(self) -> float:
        return self.caught / self.injected if self.injected else 1.0

    @property
    def false_rate(self) -> float:
        return self.false_quarantined / self.clean_rows if self.clean_rows else 0.0


def check_classes() -> dict[str, str]:
    """Rule (check) name → the defect class it is meant to catch, over every conform model."""
    out = dict(INGEST_CHECK_CLASS)
    for rule in dim_enterprise.rules():
        out[rule.name] = rule.defect_class
    for model in FACT_MODELS:
        out.update({r.name: r.defect_class for r in model.rules})
    return out


def _keyed_bronze(spark: SparkSession, settings: Settings) -> DataFrame:
    """(source, day, file, row, key, _source_file, _source_row) of every bronze row."""
    parts = []
    models = [(dim_enterprise.SOURCE, dim_enterprise.stage, dim_enterprise.TARGET)]
    models += [(m.source, m.stage, m.target) for m in delivered_models(settings)]
    for source, stage, target in models:
        bronze = tables.read(spark, tables.BRONZE[source], settings)
        staged = stage(with_raw(bronze, source), staging(source, settings))
        parts.append(
            staged.select(
                F.lit(source).alias("source"),
                F.col("_run_date").cast("string").alias("day"),
                F.element_at(F.split("_source_file", "/"), -1).alias("file"),
                F.col("_source_row").alias("row"),
                F.to_json(F.struct(*target.keys)).alias("key"),
                F.lit(target.qualified).alias("target"),
            )
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def _silver_keys(spark: SparkSession, settings: Settings) -> DataFrame:
    """(target, key, winner file, winner row) of every silver row."""
    parts = []
    for t in (tables.DIM_ENTERPRISE, *(m.target for m in delivered_models(settings))):
        parts.append(
            tables.read(spark, t, settings).select(
                F.lit(t.qualified).alias("target"),
                F.to_json(F.struct(*t.keys)).alias("key"),
                F.col("_source_file").alias("win_file"),
                F.col("_source_row").alias("win_row"),
            )
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def score(spark: SparkSession, manifest_csv: Path, settings: Settings) -> list[ClassScore]:
    """Per defect class of the manifest: injected, caught, recall, false quarantines."""
    manifest = pd.read_csv(manifest_csv, dtype=str).fillna("")
    manifest["source_row"] = manifest["source_row"].astype(int)
    m = spark.createDataFrame(manifest).select(
        "source",
        F.col("landing_date").alias("day"),
        "file",
        F.col("source_row").cast("long").alias("row"),
        "defect_class",
        "handling",
        "field",
    )
    q = (
        tables.read(spark, tables.REJECTED_ROWS, settings)
        .select(
            "source",
            F.col("_run_date").cast("string").alias("day"),
            F.element_at(F.split("_source_file", "/"), -1).alias("file"),
            F.col("_source_row").alias("row"),
            "check_name",
        )
        .dropDuplicates(["source", "day", "file", "row"])
    )
    ids = ["source", "day", "file", "row"]
    keyed = _keyed_bronze(spark, settings)
    silver = _silver_keys(spark, settings)
    landed = keyed.join(silver, ["target", "key"], "left").select(
        *ids,
        F.col("win_file").isNotNull().alias("key_in_silver"),
        (
            (F.element_at(F.split("win_file", "/"), -1) == F.col("file"))
            & (F.col("win_row") == F.col("row"))
            & (F.regexp_extract("win_file", r"(\d{4}-\d{2}-\d{2})/[^/]+$", 1) == F.col("day"))
        ).alias("is_winner"),
    )
    judged = (
        m.join(q.withColumn("quarantined", F.lit(True)), ids, "left")
        .join(landed, ids, "left")
        .fillna({"quarantined": False, "key_in_silver": False, "is_winner": False})
        .withColumn(
            "_not_in_silver",
            F.concat_ws(".", "source", "field").isin([f"{a}.{b}" for a, b in NOT_IN_SILVER]),
        )
        .withColumn(
            "caught",
            F.when(F.col("handling") == "quarantine", F.col("quarantined"))
            .when(
                F.col("handling") == "merge",
                ~F.col("quarantined") & (F.col("is_winner") | F.col("_not_in_silver")),
            )
            .otherwise(~F.col("quarantined") & F.col("key_in_silver")),
        )
    )
    per_class = {
        r["defect_class"]: (r["handling"], r["injected"], r["caught"])
        for r in judged.groupBy("defect_class", "handling")
        .agg(F.count("*").alias("injected"), F.sum(F.col("caught").cast("int")).alias("caught"))
        .collect()
    }
    log = tables.read(spark, tables.INGEST_LOG, settings).where("status = 'landed'")
    delivered = int(log.agg(F.sum("rows_read")).first()[0] or 0)
    clean = delivered - len(manifest)
    classes = check_classes()
    false_q = {
        r["check_name"]: r["count"]
        for r in q.join(m, ids, "left_anti").groupBy("check_name").count().collect()
    }
    false_by_class: dict[str, int] = {}
    for check, n in false_q.items():
        cls = classes.get(check, check)
        false_by_class[cls] = false_by_class.get(cls, 0) + n
    names = sorted(set(per_class) | set(false_by_class))
    return [
        ClassScore(
            c,
            per_class.get(c, ("quarantine", 0, 0))[0],
            int(per_class.get(c, ("", 0, 0))[1]),
            int(per_class.get(c, ("", 0, 0))[2] or 0),
            false_by_class.get(c, 0),
            clean,
        )
        for c in names
    ]


def markdown_table(scores: list[ClassScore]) -> str:
    """The scores as a Markdown table, with a total row."""
    lines = [
        "| defect class | handling | injected | caught | recall | clean rows wrongly "
        "quarantined | false-quarantine rate |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.defect_class} | {s.handling} | {s.injected} | {s.caught} | "
            f"{s.recall:.1%} | {s.false_quarantined} | {s.false_rate:.3%} |"
        )
    inj, caught = sum(s.injected for s in scores), sum(s.caught for s in scores)
    fq = sum(s.false_quarantined for s in scores)
    clean = scores[0].clean_rows if scores else 0
    lines.append(
        f"| **all** | | {inj} | {caught} | {caught / inj if inj else 1:.1%} | {fq} | "
        f"{fq / clean if clean else 0:.3%} |"
    )
    return "\n".join(lines)


def quarantined_per_class(spark: SparkSession, settings: Settings) -> list[tuple[str, str, int]]:
    """(defect class, check, rows) over the whole quarantine, largest first."""
    classes = check_classes()
    rows = (
        tables.read(spark, tables.REJECTED_ROWS, settings)
        .groupBy("check_name")
        .count()
        .orderBy(F.desc("count"))
        .collect()
    )
    return [(classes.get(r["check_name"], "other"), r["check_name"], r["count"]) for r in rows]
