"""Lakehouse spine benchmark at one or more world sizes: simulate, land and conform every
delivery step by step, re-run the latest day (conform and gates reused, then forced), and the
Spark floor of the same files (read them with Spark's CSV reader or openpyxl and append them
to Delta, nothing else), so the engine's overhead is a ratio. Then, as the daily DAG goes after
the latest delivery: the model retrain (its graph without the re-score) and the as-of steps
(features, scores with reasons, gates, tiers, plan, lists, warnings, marts, BI refresh) of the
last two deliveries, each timed, and the latest's once more on the same inputs.

    .venv/bin/python bench/bench_pipeline.py --enterprises 10000 100000 --years 5

Prints the figures, writes them to bench/RESULTS.md under "Lakehouse spine" and plots cost
against size (docs/bench_spine.png).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import commit, write_section  # noqa: E402
from pipelines.ingest import match  # noqa: E402
from pipelines.ingest.readers import detect_encoding  # noqa: E402
from pipelines.run import delivery_dates, run_day  # noqa: E402
from pipelines.simulator import SimulationConfig, simulate  # noqa: E402
from pipelines.steps import Run, Step, run_steps  # noqa: E402
from risk_insight import graph  # noqa: E402
from risk_insight.plan import load_roster  # noqa: E402
from warehouse import contracts, tables  # noqa: E402
from warehouse.settings import Settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402

PLOT = Path(__file__).resolve().parents[1] / "docs" / "bench_spine.png"


class StepClock:
    """A progress callback that times each step (from its progress line to the next one's).
    With ``titles``, other lines (a step's own progress) are not steps."""

    def __init__(self, titles: set[str] | None = None) -> None:
        self.marks: list[tuple[str, float]] = []
        self.titles = titles

    def __call__(self, message: str) -> None:
        title = message.split(": ", 1)[-1].split(" (")[0]
        if self.titles is None or title in self.titles:
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


def spark_floor(spark, folder: Path, lake: Path, settings: Settings) -> float:
    """Seconds to read every file of one delivery folder with Spark's CSV reader (openpyxl
    for XLSX, as the engine reads them) and append each to a Delta table: nothing else."""
    from openpyxl import load_workbook

    mappings = contracts.mappings(settings)
    started = time.monotonic()
    for path in sorted(folder.iterdir()):
        claims = match(path.name, mappings)
        if not claims or not path.is_file():
            continue
        m = claims[0]
        if path.suffix.lower() == ".xlsx":
            sheet = load_workbook(path, read_only=True).worksheets[0]
            rows = sheet.iter_rows(values_only=True)
            values = [[None if v is None else str(v) for v in r] for r in rows]
            names = [f"c{i}" for i in range(len(values[0]))]
            df = spark.createDataFrame(values[1:], ", ".join(f"{n} string" for n in names))
        else:
            encoding = detect_encoding(path) if m.encoding == "auto" else m.encoding
            df = spark.read.csv(
                str(path),
                header=True,
                sep=m.csv.delimiter,
                quote=m.csv.quote,
                escape=m.csv.escape or m.csv.quote,
                encoding=encoding,
            )
            df = df.toDF(*[f"c{i}" for i in range(len(df.columns))])  # Delta-safe names
        df.write.format("delta").mode("append").save(str(lake / path.stem))
    return time.monotonic() - started


@dataclasses.dataclass
class SizeResult:
    enterprises: int
    years: int
    source_rows: int
    simulate_s: float
    history_rows: int
    history: dict[str, float]
    daily_rows: int
    daily: dict[str, float]
    later_days: list[tuple[str, int, float]]
    noop_reused: dict[str, float]
    noop_forced: dict[str, float]
    floor_history_s: float
    floor_daily_s: float
    silver: dict[str, int]
    latest: dict[str, float]  # the latest delivery's spine, step by step
    training: dict[str, float]
    as_of_first: dict[str, float]  # the as-of steps after the delivery before the latest
    as_of: dict[str, float]  # after the latest delivery: a day after the first
    as_of_again: dict[str, float]
    scored: int
    score_plain_s: float  # scoring alone into Spark's noop sink, without reasons
    score_reasons_s: float  # the same with the top-5 reasons, every contribution computed
    score_reused_s: float  # the same taking unchanged reasons from the day before
    reasons_computed: int  # the daily as-of's enterprises whose contributions were computed
    promoted: bool  # the retrain's challenger passed the gate (else it scored all the same)
    python_peak_mb: float = 0.0  # this process's peak RSS so far (the simulator runs apart)
    jvm_peak_mb: float = 0.0  # the Spark driver JVM's (in local mode: the executors' too)


def peak_rss_mb(spark) -> tuple[float, float]:
    """Peak resident memory so far (MiB) of this Python process and of Spark's driver JVM
    (``VmHWM``; 0 where /proc does not tell)."""
    python = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        status = Path(f"/proc/{pid}/status").read_text()
        jvm = int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        jvm = 0.0
    return python, jvm


def scoring_alone(spark, settings: Settings, as_of, before, model_version: str) -> list[float]:
    """Seconds to score the as-of features with ``model_version`` into Spark's ``noop`` sink
    (no Delta write): without reasons, with every reason computed, and with the unchanged
    reasons taken from the scores of as-of ``before``."""
    from models.score import previous_scores, score_frame
    from pipelines.features.build import read_features

    out = []
    for with_reasons, previous in ((False, None), (True, None), (True, before)):
        started = time.monotonic()
        earlier = previous_scores(spark, previous, model_version, settings) if previous else None
        frame = score_frame(read_features(spark, [as_of], settings), settings, model_version,
                            with_reasons, earlier)  # fmt: skip
        frame.write.format("noop").mode("overwrite").save()
        out.append(time.monotonic() - started)
    return out


def timed_steps(spark, steps: list[Step], settings: Settings, run_date, **kw) -> tuple:
    """Run ``steps`` with the graphs' runner; (seconds per step title, results by step)."""
    clock = StepClock({s.title for s in steps})
    run = Run(settings, run_date, say=clock, _spark=spark, **kw)
    done = run_steps(steps, run)
    seconds = clock.stop()
    print(f"{steps[0].name} … {steps[-1].name}: {sum(seconds.values()):,.1f} s", flush=True)
    return seconds, done


def measure(enterprises: int, years: int) -> SizeResult:
    """One world size, in a scratch folder removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="bench_spine_"))
    settings = Settings(lake_root=str(root / "lakehouse"), outputs_root=str(root / "outputs"),
                        pii_key="bench-key-not-secret")  # fmt: skip
    try:
        t0 = time.monotonic()
        # in a child process: the simulator's memory is not the engine's (peak RSS below)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as child:
            config = SimulationConfig(enterprises=enterprises, years=years)
            sim = child.submit(simulate, config, root / "sim").result()
        t_sim = time.monotonic() - t0
        spark = get_spark(settings)
        landing = root / "sim" / "landing"
        days = delivery_dates(landing)

        def timed(day, **kw) -> tuple[int, dict[str, float]]:
            clock = StepClock()
            run = run_day(spark, landing, day, settings, progress=clock, **kw)
            steps = clock.stop()
            print(f"{enterprises:,}: {day} {kw or ''} {sum(steps.values()):,.1f} s", flush=True)
            return sum(r.rows_read for r in run.ingested), steps

        history_rows, history = timed(days[0])
        daily_rows, daily = timed(days[1])
        later, latest = [], daily
        for day in days[2:]:
            rows, latest = timed(day)
            later.append((day.isoformat(), rows, sum(latest.values())))
        # the latest day again: as a re-run goes now, then every source conformed and gated again
        _, reused = timed(days[-1])
        _, forced = timed(days[-1], reconform=True)
        # the model, then the daily DAG's as-of steps after the latest delivery, twice
        retrain = [s for s in graph.RETRAIN if s.name != "rescore_with_champion"]
        truth = {"truth_dir": str(root / "sim" / "truth")}
        training, done = timed_steps(spark, retrain, settings, days[-1], options=truth)
        # a world too small to beat the baselines has no champion: score with the challenger
        model = {"model_version": None if done["record_decision"]["promoted"]
                 else done["record_decision"]["challenger"]}  # fmt: skip
        load_roster(spark, root / "sim" / "reference" / "inspectors.csv", settings)
        as_of_first, _ = timed_steps(spark, list(graph.AS_OF), settings, days[-2], **model)
        as_of, done = timed_steps(spark, list(graph.AS_OF), settings, days[-1], **model)
        as_of_again, _ = timed_steps(spark, list(graph.AS_OF), settings, days[-1], **model)
        model_version = done["score"]["model_version"]
        alone = scoring_alone(spark, settings, days[-1] + timedelta(days=1),
                              days[-2] + timedelta(days=1), model_version)  # fmt: skip
        floor = root / "floor"
        floor_history = spark_floor(spark, landing / days[0].isoformat(), floor, settings)
        floor_daily = spark_floor(spark, landing / days[1].isoformat(), floor, settings)
        silver = {
            t_.qualified: tables.read(spark, t_, settings).count()
            for t_ in (tables.DIM_ENTERPRISE, *tables.SILVER_FACTS)
        }
        python_mb, jvm_mb = peak_rss_mb(spark)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return SizeResult(enterprises, years, sum(sim.rows_per_source.values()), t_sim, history_rows,
                      history, daily_rows, daily, later, reused, forced, floor_history,
                      floor_daily, silver, latest, training, as_of_first, as_of, as_of_again,
                      int(done["score"]["rows"]), *alone, int(done["score"]["reasons_computed"]),
                      model["model_version"] is None, python_mb, jvm_mb)  # fmt: skip


def report(results: list[SizeResult]) -> str:
    """The RESULTS.md section: per size the three runs against the floor, then each step."""
    lines = [
        "Spark local mode, one session for every size (start-up excluded). *history*: the first",
        "delivery (the cutover load); *daily*: the next delivery; *no-op*: the latest delivery",
        "run again (conform and gates reused) and forced (`--reconform`: conformed and gated",
        "again). *floor*: the same files read with Spark's CSV reader (openpyxl for XLSX) and",
        "appended to Delta, nothing else.",
        "",
        "| enterprises × years | source rows | history rows | history s | floor s | ratio "
        "| daily rows | daily s | floor s | ratio | no-op s | no-op forced s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        h, d = sum(r.history.values()), sum(r.daily.values())
        lines.append(
            f"| {r.enterprises:,} × {r.years} | {r.source_rows:,} | {r.history_rows:,} | {h:,.1f} "
            f"| {r.floor_history_s:,.1f} | {h / r.floor_history_s:,.1f}× | {r.daily_rows:,} "
            f"| {d:,.1f} | {r.floor_daily_s:,.1f} | {d / r.floor_daily_s:,.1f}× "
            f"| {sum(r.noop_reused.values()):,.1f} | {sum(r.noop_forced.values()):,.1f} |"
        )
    lines += [
        "",
        "Then, as the daily DAG goes on: the model retrain (backtests, final fit, gate; once), "
        "the as-of steps of the delivery before the latest (*first as-of*: every reason "
        "computed, the month's plan drawn), those of the latest delivery a day later (the "
        "columns from *features* on), and those again on the same inputs. *to marts*: the "
        "latest delivery's spine plus its as-of steps, landing to published marts. *Scoring "
        "alone*: the champion on the latest as-of features into Spark's `noop` sink, without "
        "reasons, with every reason computed, and taking the unchanged ones from the day before.",
        "",
        "| enterprises | scored | training s | first as-of s | features s | scores + reasons s "
        "| rows/s | tiers, plan, lists, warnings s | marts s | as-of steps s | to marts s "
        "| as-of again s | scoring alone: plain rows/s | with reasons rows/s "
        "| reasons reused rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        a = r.as_of
        score_s = a.get("risk scores", 0.0)
        lines.append(
            f"| {r.enterprises:,} | {r.scored:,} "
            f"| {sum(r.training.values()):,.1f}{'' if r.promoted else ' (not promoted)'} "
            f"| {sum(r.as_of_first.values()):,.1f} "
            f"| {a.get('gold features', 0):,.1f} | {score_s:,.1f} ({r.reasons_computed:,} "
            "computed) "
            f"| {r.scored / score_s if score_s else 0:,.0f} "
            f"| {a.get('tiers, plans, lists, warnings', 0):,.1f} "
            f"| {a.get('serving marts', 0):,.1f} | {sum(a.values()):,.1f} "
            f"| {sum(r.latest.values()) + sum(a.values()):,.1f} "
            f"| {sum(r.as_of_again.values()):,.1f} | {r.scored / r.score_plain_s:,.0f} "
            f"| {r.scored / r.score_reasons_s:,.0f} | {r.scored / r.score_reused_s:,.0f} |"
        )
    lines += [
        "",
        "Driver peak resident memory (the simulator runs in a child process and is not counted): "
        + ", ".join(
            f"{r.enterprises:,} enterprises: Python {r.python_peak_mb:,.0f} MiB + Spark "
            f"driver JVM {r.jvm_peak_mb:,.0f} MiB"
            for r in results
        )  # fmt: skip
        + " (sizes run in ascending order in one process, so each is the peak up to that size).",
        "",
    ]
    for r in results:
        runs = {"history": r.history, "daily": r.daily, "no-op": r.noop_reused,
                "no-op forced": r.noop_forced}  # fmt: skip
        lines += [
            f"{r.enterprises:,} enterprises, step by step (seconds); later deliveries: "
            + ", ".join(f"{day} {rows:,} rows {sec:,.1f} s" for day, rows, sec in r.later_days)
            + ". Silver rows: "
            + ", ".join(f"{k} {v:,}" for k, v in r.silver.items())
            + ".",
            "",
            "| step | " + " | ".join(runs) + " |",
            "|---|" + "---:|" * len(runs),
        ]
        for step in r.history:
            cells = " | ".join(f"{v.get(step, 0):,.1f}" for v in runs.values())
            lines.append(f"| {step} | {cells} |")
        lines += ["", "| model and as-of step | first as-of | daily | again |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {step} | {sec:,.1f} | | |" for step, sec in r.training.items()]
        for step, sec in r.as_of.items():
            first, again = r.as_of_first.get(step, 0), r.as_of_again.get(step, 0)
            lines.append(f"| {step} | {first:,.1f} | {sec:,.1f} | {again:,.1f} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: list[SizeResult], path: Path) -> None:
    """Seconds against enterprises (log-log): each run of the engine and its Spark floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r.enterprises for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = {
        "history (engine)": [sum(r.history.values()) for r in results],
        "history (Spark floor)": [r.floor_history_s for r in results],
        "daily (engine)": [sum(r.daily.values()) for r in results],
        "daily (Spark floor)": [r.floor_daily_s for r in results],
        "no-op re-run": [sum(r.noop_reused.values()) for r in results],
        "latest delivery to marts": [
            sum(r.latest.values()) + sum(r.as_of.values()) for r in results
        ],
        "model retrain": [sum(r.training.values()) for r in results],
    }
    for label, y in series.items():
        ax.plot(x, y, marker="o", linestyle="--" if "floor" in label else "-", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("enterprises")
    ax.set_ylabel("seconds")
    ax.set_title(f"Engine cost by world size ({commit()})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, nargs="+", default=[50_000])
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    results = []
    for n in sorted(args.enterprises):  # each size written as it is measured
        results.append(measure(n, args.years))
        body = report(results)
        print(body, flush=True)
        if not args.no_write:
            write_section("Lakehouse spine", body)
            plot(results, PLOT)


if __name__ == "__main__":
    main()
