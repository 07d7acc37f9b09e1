"""``risk-insight``: the command line for operators and the demo.

Each sub-command is a thin call into the project packages; ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def _spark():
    from warehouse.spark import get_spark

    with console.status("starting Spark with Delta Lake…"):
        return get_spark()


def cmd_simulate(args: argparse.Namespace) -> int:
    from pipelines.simulator import SimulationConfig, simulate

    config = SimulationConfig(
        enterprises=args.enterprises,
        years=args.years,
        seed=args.seed,
        increment_days=args.increment_days,
    )
    summary = simulate(config, Path(args.out), progress=lambda m: console.log(m))
    console.print(
        f"world written to {summary.out} (history {summary.history_date}, "
        f"{len(summary.increment_dates)} daily increments)"
    )
    _print_pairs("rows per source", summary.rows_per_source)
    _print_pairs("injected defects per class", summary.defects_per_class)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run import run_day
    from warehouse.settings import get_settings

    settings = get_settings()
    landing = Path(args.landing or settings.landing_root)
    spark = _spark()
    run = run_day(spark, landing, date.fromisoformat(args.date), settings, progress=console.log)
    _print_day(run)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate the default world (once per size), run every delivery date, print a summary."""
    from pipelines.run import delivery_dates, run_day
    from pipelines.simulator import SimulationConfig, simulate
    from risk_insight import summary
    from warehouse.settings import get_settings

    settings = get_settings()
    started = time.monotonic()
    out = Path(args.out)
    config = SimulationConfig(enterprises=args.enterprises, years=args.years, seed=args.seed)
    stamp = out / "simulation.json"
    wanted = {"enterprises": config.enterprises, "years": config.years, "seed": config.seed}
    if not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        if Path(settings.lake_root).exists() and any(Path(settings.lake_root).iterdir()):
            console.print(
                f"[yellow]a lake from another world exists at {settings.lake_root}; "
                "remove it (make clean) or point RISK_INSIGHT_LAKE_ROOT elsewhere[/]"
            )
            return 2
        console.rule(f"simulating {config.enterprises:,} enterprises × {config.years} years")
        simulate(config, out, progress=lambda m: console.log(m))
        stamp.write_text(json.dumps(wanted))
    landing = out / "landing"
    spark = _spark()
    for day in delivery_dates(landing):
        console.rule(f"delivery {day}")
        run_day(spark, landing, day, settings, progress=console.log)
    console.rule("lakehouse summary")
    _print_rows("rows per table", ["table", "rows"], summary.rows_per_table(spark, settings))
    _print_rows(
        "quarantined rows per reason",
        ["source", "check", "reason", "rows"],
        summary.quarantine_by_reason(spark, settings),
    )
    recon = summary.reconciliation(spark, settings)
    cols = [
        "source",
        "files",
        "read",
        "landed",
        "ingest_quarantined",
        "conform_quarantined",
        "duplicates",
        "conformed",
        "balanced",
    ]
    _print_rows("reconciliation per source", cols, [[r[c] for c in cols] for r in recon])
    console.print(
        f"lake at {Path(settings.lake_root).resolve()}; demo took "
        f"{time.monotonic() - started:,.0f} s"
    )
    return 0 if all(r["balanced"] for r in recon) else 1


def _print_pairs(title: str, pairs: dict[str, int]) -> None:
    _print_rows(title, ["name", "count"], list(pairs.items()))


def _print_rows(title: str, headers: list[str], rows: list) -> None:
    table = Table(title=title)
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(
            *(f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in row)
        )
    console.print(table)


def _print_day(run) -> None:
    _print_rows(
        f"landed on {run.run_date}",
        ["source", "status", "read", "landed", "quarantined", "encoding"],
        [
            [r.source, r.status, r.rows_read, r.rows_landed, r.rows_quarantined, r.encoding]
            for r in run.ingested
        ],
    )
    _print_rows(
        "conformed",
        ["source", "target", "in", "quarantined", "duplicates", "conformed"],
        [
            [c.source, c.target, c.rows_in, c.rows_quarantined, c.rows_duplicate, c.rows_conformed]
            for c in run.conformed
        ],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risk-insight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a synthetic jurisdiction's source extracts")
    p.add_argument("--enterprises", type=int, default=50_000)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--increment-days", type=int, default=3)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("run", help="land and conform one delivery date (idempotent)")
    p.add_argument("--date", required=True, help="delivery date, YYYY-MM-DD")
    p.add_argument("--landing", help="landing root (default: settings.landing_root)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="simulate the default world and run it end to end")
    p.add_argument("--enterprises", type=int, default=50_000)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="data/sim")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
