"""Dashboards under load: concurrent district users against a local Superset's chart-data API.

    .venv/bin/python bench/bench_bi.py --users 50 --seconds 60      (make bench-bi)

Starts a throw-away Superset from ``.venv-bi`` on 127.0.0.1 only, provisions the dashboards on
a small lake's serving marts (built once under ``bench/out/bi_world`` unless ``--lake`` names a
lake that has them), gives every district user its own password, then lets ``--users``
virtual users, spread over the districts, post the chart-data queries of the dashboards'
district-scoped charts as fast as answers come back, for ``--seconds``. Every query carries
the district column, and every row of every answer is checked against the user's district:
one row of another district is a leak (the run fails). Queries are sent with ``force`` (no
result cache), the worst case for the server.

Prints requests/s, latency percentiles and errors, and writes them to bench/RESULTS.md under
"Dashboards under load". Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._results import write_section  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

OUT = Path(__file__).with_name("out") / "bi_world"


def build_world(root: Path, enterprises: int) -> Settings:
    """A simulated world through the whole pipeline to the serving marts (minutes; cached)."""
    from models.demo import next_month
    from models.retrain import train_and_register
    from models.score import score
    from models.train import data_span, make_schedule
    from pipelines.marts import build_marts
    from pipelines.run import delivery_dates, run_day
    from pipelines.simulator import SimulationConfig, simulate
    from risk_insight.insight import run_insight
    from risk_insight.plan import load_roster
    from warehouse.spark import get_spark

    s = Settings(
        lake_root=str(root / "lakehouse"), landing_root=str(root / "sim" / "landing"),
        outputs_root=str(root / "outputs"), pii_key="bench-key-not-secret",
        spark_master="local[2]", shuffle_partitions=4,
    )  # fmt: skip
    simulate(SimulationConfig(enterprises=enterprises, years=2, seed=11, increment_days=30),
             root / "sim")  # fmt: skip
    spark = get_spark(s)
    landing = root / "sim" / "landing"
    for day in delivery_dates(landing):
        run_day(spark, landing, day, s, docs=False)
    load_roster(spark, root / "sim" / "reference" / "inspectors.csv", s)
    first, last = data_span(spark, s)
    schedule = make_schedule(first, last, horizon_days=90, n_folds=2, fold_step_months=3,
                             train_step_months=2, warmup_months=3)  # fmt: skip
    decision = train_and_register(spark, s, num_rounds=20, schedule=schedule)
    as_of = next_month(last)
    score(spark, as_of, s, decision.challenger)
    run_insight(spark, as_of, s)
    build_marts(spark, None, s)
    (root / "ready").write_text(date.today().isoformat())
    return s


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)  # one message per error kind
    leaks: list[str] = field(default_factory=list)
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _queries(spec, datasets) -> list[tuple[str, dict]]:
    """(chart key, chart-data query with the district column) of every district-scoped chart."""
    from risk_insight.superset.assets import dataset_specs
    from risk_insight.superset.gallery import chart_query
    from warehouse import serving

    specs = dataset_specs(spec)
    regional = {k for k, d in specs.items()
                if next(m for m in serving.MARTS if m.name == d.mart).region_column}  # fmt: skip
    out = []
    for key, chart in spec["charts"].items():
        if chart["dataset"] not in regional:
            continue
        q = chart_query(chart, datasets[chart["dataset"]])
        cols = q["queries"][0]["columns"]
        if "region_code" not in cols:
            cols.append("region_code")
        if not q["queries"][0]["metrics"] and not cols[:-1]:
            continue
        out.append((key, q))
    return out


def _user(client, code: str, queries, stop: float, tally: Tally) -> None:
    rng = random.Random(code)
    while time.monotonic() < stop:
        key, query = rng.choice(queries)
        t = time.monotonic()
        try:
            r = client.session.post(f"{client.url}/api/v1/chart/data", json=query, timeout=120)
            took = time.monotonic() - t
            if r.status_code != 200:
                with tally.lock:
                    tally.errors[f"HTTP {r.status_code}"] = tally.errors.get(
                        f"HTTP {r.status_code}", 0) + 1  # fmt: skip
                continue
            data = r.json()["result"][0]["data"]
            foreign = {row.get("region_code") for row in data} - {code}
            with tally.lock:
                tally.latencies.append(took)
                tally.rows += len(data)
                if foreign:
                    tally.leaks.append(f"district_{code} got rows of {sorted(foreign)[:3]} ({key})")
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            with tally.lock:
                name = type(exc).__name__
                tally.errors[name] = tally.errors.get(name, 0) + 1
                tally.samples.setdefault(name, str(exc)[:160])


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--lake", help="lake root with serving marts (default: a small world)")
    parser.add_argument("--enterprises", type=int, default=1500, help="size of the built world")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    from risk_insight.superset import SupersetClient, districts, provision
    from risk_insight.superset.assets import load_spec
    from risk_insight.superset.server import start, user_passwords
    from warehouse import serving

    if args.lake:
        s = Settings(lake_root=args.lake)
        world = f"lake {args.lake}"
    else:
        if not (OUT / "ready").exists():
            shutil.rmtree(OUT, ignore_errors=True)
            build_world(OUT, args.enterprises)
        s = Settings(lake_root=str(OUT / "lakehouse"))
        world = f"simulated world of {args.enterprises:,} enterprises × 2 years"
    if not serving.store_columns(s):
        print(f"no serving marts in {s.lake_root}", file=sys.stderr)
        return 2
    spec = load_spec()
    codes = sorted(districts(s))
    listed = serving.query("SELECT COUNT(*) FROM mart_target_list WHERE as_of = "
                           "(SELECT MAX(as_of) FROM mart_target_list)", s).iat[0, 0]  # fmt: skip
    load_before = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="superset-bench-"))
    server = start(home, args.port)
    try:
        admin = SupersetClient(server.url, server.username, server.password)
        users = ["analyst", *(f"district_{c}" for c in codes)]
        passwords, _ = user_passwords(home, users)
        done = provision(admin, s, users_password=passwords)
        queries = _queries(spec, done.datasets)
        # the check can fail: the analyst's answer to the same queries spans districts
        analyst = SupersetClient(server.url, "analyst", passwords["analyst"])
        spans = {row["region_code"] for row in analyst.chart_data(queries[0][1])}
        assert len(spans) > 1, spans
        sessions = []
        for i in range(args.users):
            code = codes[i % len(codes)]
            sessions.append((SupersetClient(server.url, f"district_{code}",
                                            passwords[f"district_{code}"]), code))  # fmt: skip
        tally = Tally()
        stop = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [threading.Thread(target=_user, args=(c, code, queries, stop, tally))
                   for c, code in sessions]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()[0]
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    ok = len(tally.latencies)
    errors = sum(tally.errors.values())
    lat = tally.latencies or [0.0]
    body = "\n".join([
        f"{args.users} concurrent district users ({len(codes)} districts, each user logged in "
        f"with its own password) for {elapsed:.0f} s against Superset 6 on 127.0.0.1 "
        "(gunicorn, 2 workers × 4 threads, metadata in SQLite, marts in the embedded DuckDB "
        f"file), {world} ({listed:,} enterprises on the latest lists). Each request is one of "
        f"the {len(queries)} district-scoped "
        "dashboard charts' chart-data queries (plus the district column, `force`: no cache).",
        "",
        "| requests | requests/s | p50 s | p95 s | p99 s | max s | errors | rows checked | "
        "rows of another district |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {ok + errors:,} | {ok / elapsed:,.1f} | {statistics.median(lat):.3f} | "
        f"{_pct(lat, 95):.3f} | {_pct(lat, 99):.3f} | {max(lat):.3f} | {errors} | "
        f"{tally.rows:,} | {len(tally.leaks)} |",
        "",
        "Errors by kind: " + (", ".join(f"{k} {v}" for k, v in tally.errors.items()) or "none")
        + ". Control: the analyst's answer to the same query spans "
        f"{len(spans)} districts. Load average (1 min) {load_before:.1f} before, "
        f"{load_after:.1f} at the end (the machine is shared; client and server on it).",
        *(f"- {k}: {v}" for k, v in tally.samples.items()),
    ])  # fmt: skip
    print(body)
    for leak in tally.leaks[:10]:
        print("LEAK", leak)
    if not args.no_write:
        write_section("Dashboards under load", body)
    return 1 if tally.leaks or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
