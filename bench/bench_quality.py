"""Bench: recall and false quarantine of the quality gates, per defect class, on a simulated
world; prints the table and writes it into bench/RESULTS.md under ``## Data quality``.

    .venv/bin/python bench/bench_quality.py --enterprises 3000 --years 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import RESULTS, write_section  # noqa: E402
from pipelines import recall  # noqa: E402
from pipelines.run import delivery_dates, run_day  # noqa: E402
from pipelines.simulator import SimulationConfig, simulate  # noqa: E402
from quality import ledger  # noqa: E402
from warehouse.settings import Settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--enterprises", type=int, default=3000)
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", help="work folder (default: a temporary one)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_quality_"))
    config = SimulationConfig(enterprises=args.enterprises, years=args.years, seed=args.seed)
    started = time.monotonic()
    simulate(config, work / "sim")
    settings = Settings(
        lake_root=str(work / "lakehouse"),
        landing_root=str(work / "sim" / "landing"),
        pii_key="bench-key-not-secret",
        spark_master="local[2]",
        shuffle_partitions=4,
    )
    spark = get_spark(settings)
    landing = work / "sim" / "landing"
    days = delivery_dates(landing)
    for day in days:
        run_day(spark, landing, day, settings, docs=day == days[-1])
    pipeline_s = time.monotonic() - started
    scores = recall.score(spark, work / "sim" / "truth" / "defects.csv", settings)
    table = recall.markdown_table(scores)
    checks = ledger.run_summary(spark, None, settings)
    body = (
        "Measured by `bench/bench_quality.py`: "
        f"{args.enterprises:,} enterprises × {args.years} years (seed {args.seed}), "
        f"{len(days)} deliveries, simulate + gated pipeline {pipeline_s:,.0f} s.\n\n"
        "A defective row is caught when it is quarantined (quarantine classes), lands in silver "
        "(normalise, dedupe) or wins its key in silver (merge). False quarantine: clean rows "
        "quarantined, over all clean rows delivered, attributed to the class of the rule.\n\n"
        f"{table}\n\n"
        f"Quality ledger over all runs: {checks['checks']} checks, {checks['passed']} passed, "
        f"{checks['warned']} warned, {checks['quarantined']} quarantined rows' rules failed, "
        f"{checks['blocked']} blocked."
    )
    print(body)
    if not args.no_write:
        write_section("Data quality", body)
        print(f"written to {RESULTS}")
    bad = [s for s in scores if s.recall < 0.99 or s.false_rate > 0.001]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
