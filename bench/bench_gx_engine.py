"""Bench: one GX validation of a day's incoming rows on Spark and on pandas (the batch
collected in one Spark job with Spark's verdict on each row rule, ``quality_pandas_max_rows``),
for batch sizes from a quiet day to a cutover. Six row rules and a key-uniqueness check, as on
penalties. Writes the ``## Quality engine`` section of bench/RESULTS.md.

    .venv/bin/python bench/bench_gx_engine.py [--rows 150,5000,50000,200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._results import write_section  # noqa: E402
from quality.engine import validate  # noqa: E402
from quality.expectations import ExpectNaturalKeyUnique  # noqa: E402
from quality.policy import parse_policy  # noqa: E402
from quality.rules import (  # noqa: E402
    known_enterprise,
    known_region,
    non_negative,
    removal_after_entry,
    required,
    valid_uscc,
)
from quality.suites import incoming_expectations  # noqa: E402
from warehouse.settings import Settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402

RULES = [
    required("uscc"),
    valid_uscc(),
    known_region("region_code"),
    non_negative("amount_yuan"),
    removal_after_entry(),
    known_enterprise(),
]


def rows(spark, n: int):
    """``n`` staged rows; about one in fifty breaks each rule."""
    return spark.range(n).selectExpr(
        "CASE WHEN id % 53 = 0 THEN NULL ELSE '91110105MA01ABCDEB' END AS uscc",
        "CASE WHEN id % 59 = 0 THEN '110199' ELSE '110105' END AS region_code",
        "CASE WHEN id % 59 = 0 THEN NULL ELSE 1980 END AS _region_code_from",
        "CASE WHEN id % 61 = 0 THEN -5.0 ELSE CAST(id AS DOUBLE) END AS amount_yuan",
        "DATE'2024-01-01' AS entered_on",
        "CASE WHEN id % 67 = 0 THEN DATE'2023-12-01' ELSE NULL END AS removed_on",
        "id % 71 <> 0 AS _known_enterprise",
        "id AS _source_row",
        "'2024-01-02/penalty.csv' AS _source_file",
    )


def timed(spark, settings: Settings, df, repeat: int = 3) -> tuple[float, int]:
    """Best of ``repeat`` validations (seconds) and the uscc check's unexpected count."""
    policy = parse_policy({"version": "bench"})
    best, found = float("inf"), -1
    for _ in range(repeat):
        exps = incoming_expectations("t", RULES, df, policy) + [
            ExpectNaturalKeyUnique(
                column_list=["_source_file", "_source_row"],
                meta={"name": "key_unique", "gate": "block", "threshold": "0"},
            )
        ]
        started = time.monotonic()
        out = validate(
            settings, suite_name="bench.incoming", dataset="bench.incoming", df=df,
            expectations=exps, run_date=date(2024, 1, 2), table_name="t", source="bench",
            policy_version=policy.version,
        )  # fmt: skip
        best = min(best, time.monotonic() - started)
        found = next(r.unexpected_count for r in out if r.expectation == "required_uscc")
    return best, found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", default="150,5000,50000,200000")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_gx_"))
    base = Settings(data_docs_root=str(work / "docs"), spark_master="local[2]",
                    shuffle_partitions=4)  # fmt: skip
    spark = get_spark(base)
    lines = [
        "| rows | Spark (s) | pandas (s) | speed-up | same counts |",
        "|---:|---:|---:|---:|:-:|",
    ]
    for n in sizes:
        df = rows(spark, n).cache()
        df.count()
        on_spark, a = timed(spark, base.model_copy(update={"quality_pandas_max_rows": 0}), df)
        on_pandas, b = timed(spark, base.model_copy(update={"quality_pandas_max_rows": n}), df)
        df.unpersist()
        line = (
            f"| {n:,} | {on_spark:.2f} | {on_pandas:.2f} | {on_spark / on_pandas:.1f}× | {a == b} |"
        )
        print(line, flush=True)
        lines.append(line)
    body = (
        "Measured by `bench/bench_gx_engine.py`: one validation (best of 3) of six row rules "
        "and a key-uniqueness check on cached staged rows, `local[2]`. pandas: the batch "
        "collected to the driver in one Spark job, each rule's verdict computed by Spark "
        "first (the rule stays one Spark predicate).\n\n" + "\n".join(lines) + "\n\n"
        "The default `quality_pandas_max_rows` is 200,000: a day's delivery of a bureau is "
        "validated on pandas; a cutover load bigger than that on Spark."
    )
    if not args.no_write:
        write_section("Quality engine", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
