"""Lakehouse spine benchmark: simulate a world, land and conform every delivery, re-run a day.

    .venv/bin/python bench/bench_pipeline.py --enterprises 50000 --years 5

Prints the figures and writes them to bench/RESULTS.md under "Lakehouse spine".
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import write_section  # noqa: E402
from pipelines.run import delivery_dates, run_day  # noqa: E402
from pipelines.simulator import SimulationConfig, simulate  # noqa: E402
from warehouse import tables  # noqa: E402
from warehouse.settings import Settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402


class StepClock:
    """A ``run_day`` progress callback that times each step (from its progress line to the
    next one's)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, message: str) -> None:
        title = message.split(": ", 1)[-1].split(" (")[0]
        self.marks.append((title, time.monotonic()))

    def stop(self) -> dict[str, float]:
        """Seconds per step title, the last step ending now."""
        ends = [t for _, t in self.marks[1:]] + [time.monotonic()]
        out: dict[str, float] = {}
        for (title, start), end in zip(self.marks, ends, strict=True):
            if title.startswith("data docs at"):  # the docs are built: the run's summary
                title = "run summary and audit row"
            out[title] = out.get(title, 0.0) + end - start
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--enterprises", type=int, default=50_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_spine_"))
    settings = Settings(lake_root=str(root / "lakehouse"), pii_key="bench-key-not-secret")
    try:
        t0 = time.monotonic()
        sim = simulate(
            SimulationConfig(enterprises=args.enterprises, years=args.years), root / "sim"
        )
        t_sim = time.monotonic() - t0
        spark = get_spark(settings)
        landing = root / "sim" / "landing"
        days = delivery_dates(landing)
        timings = []
        for day in days:
            t = time.monotonic()
            run = run_day(spark, landing, day, settings)
            rows = sum(r.rows_read for r in run.ingested)
            timings.append((day, rows, time.monotonic() - t))
        # the same no-op re-run twice: every source conformed again (the behaviour before
        # conform reused its inputs' fingerprint), then as a re-run now goes
        reruns = {}
        for label, force in (("conform forced (--reconform)", True), ("conform reused", False)):
            clock = StepClock()
            run_day(spark, landing, days[1], settings, progress=clock, reconform=force)
            reruns[label] = clock.stop()
        silver = {
            t_.qualified: tables.read(spark, t_, settings).count()
            for t_ in (tables.DIM_ENTERPRISE, *tables.SILVER_FACTS)
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        f"World: {args.enterprises:,} enterprises × {args.years} years "
        f"({sum(sim.rows_per_source.values()):,} source rows); Spark local mode.",
        "",
        "| step | rows read | seconds | rows/s |",
        "|---|---:|---:|---:|",
        f"| simulate (all files) | {sum(sim.rows_per_source.values()):,} | {t_sim:,.1f} | |",
    ]
    for day, rows, secs in timings:
        lines.append(f"| land + conform {day} | {rows:,} | {secs:,.1f} | {rows / secs:,.0f} |")
    for label, steps in reruns.items():
        lines.append(f"| re-run {days[1]} (no-op), {label} | 0 | {sum(steps.values()):,.1f} | |")
    total = sum(s for _, _, s in timings)
    lines += [
        "",
        f"Total land + conform: {total:,.0f} s. Driver process peak RSS {peak_mb:,.0f} MiB "
        "(Spark's JVM not included).",
        "",
        "Silver rows: " + ", ".join(f"{k} {v:,}" for k, v in silver.items()),
        "",
        f"The no-op re-run of {days[1]} step by step (seconds):",
        "",
        "| step | " + " | ".join(reruns) + " |",
        "|---|" + "---:|" * len(reruns),
    ]
    for step in next(iter(reruns.values())):
        lines.append(f"| {step} | " + " | ".join(f"{r.get(step, 0):,.1f}" for r in reruns.values())
                     + " |")  # fmt: skip
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Lakehouse spine", body)


if __name__ == "__main__":
    main()
