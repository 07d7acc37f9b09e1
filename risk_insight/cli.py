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
        drift=args.drift,
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
    from quality.gates import GateBlocked

    try:
        run = run_day(spark, landing, date.fromisoformat(args.date), settings,
                      progress=console.log, reconform=args.reconform)  # fmt: skip
    except GateBlocked as blocked:
        console.print(f"[red]{blocked}[/]")
        return 3
    _print_day(run)
    _print_pairs("quality checks of the day / 当日质量检查", run.quality)
    console.print(f"data docs / 质量文档: {run.docs_index}")
    return 0


def cmd_sources_check(args: argparse.Namespace) -> int:
    """Dry run of the source mappings over a landing folder: per file the source it matched,
    encoding, header mapping, unmapped and missing columns and the rows each rule would
    quarantine, with examples; a CSV + HTML report; no table is written."""
    from pipelines.sources_check import check_folder, problem_rows, write_report
    from warehouse import contracts
    from warehouse.settings import get_settings

    settings = get_settings()
    folder = Path(args.dir)
    if not folder.is_dir():
        console.print(f"[red]no folder {folder}[/]")
        return 2
    try:
        found = contracts.mappings(settings)
    except contracts.MappingError as exc:
        console.print(f"[red]source mappings in {contracts.mappings_dir(settings)}:[/]\n{exc}")
        return 2
    console.print(f"mappings: {contracts.mappings_dir(settings)} ({', '.join(found)})")
    started = time.monotonic()
    checks = check_folder(_spark(), folder, settings)
    _print_rows(
        f"sources check of {folder} / 数据源映射检查",
        ["file", "source", "status", "encoding", "rows", "would quarantine", "unmapped",
         "missing"],
        [[f"{c.file.parent.name}/{c.file.name}", c.source or "-", c.status, c.encoding, c.rows,
          c.would_quarantine, ", ".join(c.unmapped), ", ".join(c.missing)] for c in checks],
    )  # fmt: skip
    _print_rows(
        "rows each rule would quarantine (block) or warn about / 规则命中",
        ["file", "rule", "gate", "rows", "examples"],
        problem_rows(checks),
    )
    for c in checks:
        if c.headers:
            _print_rows(
                f"{c.file.name} → {c.source}: header mapping / 表头映射",
                ["header / 表头", "field / 字段"],
                [[h, f or "(unmapped / 未映射)"] for h, f in c.headers],
            )
    out = Path(args.out) if args.out else Path(settings.reports_dir()) / "sources_check"
    csv_path, html_path = write_report(checks, out)
    console.print(
        f"{len(checks)} files in {time.monotonic() - started:,.1f} s; report: {html_path} "
        f"and {csv_path}; nothing was written to the lake"
    )
    bad = [c for c in checks if c.status != "ok"]
    return 1 if bad else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate the default world (once per size), run every delivery date, print a summary."""
    from pipelines.simulator import SimulationConfig, simulate
    from warehouse.settings import get_settings

    settings = get_settings()
    started = time.monotonic()
    out = Path(args.out)
    config = SimulationConfig(enterprises=args.enterprises, years=args.years, seed=args.seed)
    stamp = out / "simulation.json"
    wanted = {"enterprises": config.enterprises, "years": config.years, "seed": config.seed}
    if not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        from warehouse import storage

        if not storage.is_empty(settings.lake_root):
            console.print(
                f"[yellow]a lake from another world exists at {settings.lake_root}; "
                "remove it (make clean) or point RISK_INSIGHT_LAKE_ROOT elsewhere[/]"
            )
            return 2
        console.rule(f"simulating {config.enterprises:,} enterprises × {config.years} years")
        simulate(config, out, progress=lambda m: console.log(m))
        stamp.write_text(json.dumps(wanted))
    landing = out / "landing"
    from warehouse.lock import lake_lock

    with lake_lock(settings, "risk-insight demo", say=console.log):
        return _demo_on(settings, landing, out, started)


def _demo_on(settings, landing: Path, out: Path, started: float) -> int:
    from pipelines.run import delivery_dates, run_day
    from risk_insight import summary

    spark = _spark()
    days, last = delivery_dates(landing), None
    for day in days:
        console.rule(f"delivery {day}")
        last = run_day(spark, landing, day, settings, progress=console.log, docs=day == days[-1])
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
    _print_quality(spark, settings, last.docs_index if last else None)
    as_of = _model_stage(spark, settings, out / "truth")
    plan_id = _insight_stage(spark, settings, as_of, out / "reference" / "inspectors.csv")
    _outcome_cycle(spark, settings, plan_id, as_of, out / "truth")
    _as_of_steps(spark, settings, as_of, ["serving_marts"])
    console.print(f"lake at {settings.lake_root}; demo took {time.monotonic() - started:,.0f} s")
    return 0 if all(r["balanced"] for r in recon) else 1


def _print_quality(spark, settings, docs_index) -> None:
    """Quality gates over all runs: checks by outcome, quarantined rows per defect class."""
    from pipelines.recall import quarantined_per_class
    from quality.ledger import run_summary

    checks = run_summary(spark, None, settings)
    _print_pairs("quality checks, all runs / 质量检查（全部批次）", checks)
    _print_rows(
        "quarantined rows per defect class / 隔离行（按缺陷类别）",
        ["defect class", "check", "rows"],
        quarantined_per_class(spark, settings),
    )
    console.print(f"data docs / 质量文档: {docs_index}")


def cmd_quality_report(args: argparse.Namespace) -> int:
    """Write the rectification report of one source and delivery date (CSV + HTML)."""
    from quality.reports import write_report
    from warehouse.settings import get_settings

    report = write_report(_spark(), args.source, date.fromisoformat(args.date), get_settings())
    console.print(f"{report.problems:,} problems / 问题行 → {report.csv} and {report.html}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Run the retrain graph (``risk_insight.graph.RETRAIN``, the monthly DAG's steps): backtest,
    register and gate a challenger, then re-score with it if promoted and ``--rescore``; print
    its backtest table and the decision."""
    from models.evaluate import backtest_table
    from models.registry import read_artifact
    from warehouse.settings import get_settings

    settings = get_settings()
    options = {"seed": args.seed, "truth_dir": args.truth, "margin": args.margin,
               "tolerance": args.tolerance, "fairness_bound": args.fairness_bound}  # fmt: skip
    done = _retrain(_spark(), settings, options, rescore=args.rescore)
    decision = done["backtest_train_and_gate"]
    metrics = json.loads(read_artifact(settings, decision["challenger"], "metrics.json"))
    _print_backtest(backtest_table(metrics))
    verdict = "[green]promoted[/]" if decision["promoted"] else "[yellow]not promoted[/]"
    console.print(f"{decision['challenger']}: {verdict} — " + "; ".join(decision["reasons"]))
    return 0


def _retrain(spark, settings, options: dict, rescore: bool) -> dict:
    """The retrain graph's steps in-process (without the re-score unless ``rescore``)."""
    from pipelines.steps import Run, run_steps
    from risk_insight import graph

    chosen = [s for s in graph.RETRAIN if rescore or s.name != "rescore_with_champion"]
    run = Run(settings, date.today(), options=options, say=console.log, _spark=spark)
    return run_steps(chosen, run)


def cmd_score(args: argparse.Namespace) -> int:
    """Score every active enterprise at --as-of with the champion into gold.risk_scores."""
    from models.score import score
    from warehouse.settings import get_settings

    spark = _spark()
    result = score(spark, date.fromisoformat(args.as_of), get_settings(), args.model)
    _print_pairs("scored", {k: str(v) for k, v in result.items()})
    return 0


def cmd_tiers(args: argparse.Namespace) -> int:
    """Tier the scores at --as-of into gold.credit_tiers (hard rules, then model shares)."""
    from risk_insight.tiers import build_tiers
    from warehouse.settings import get_settings

    _print_pairs(
        "tiers / 信用风险分类",
        build_tiers(_spark(), date.fromisoformat(args.as_of), get_settings()),
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Draw the period's 双随机 plan at --as-of (or find it already drawn) and publish it."""
    if getattr(args, "plan_command", None) == "verify":
        return cmd_plan_verify(args)
    if not args.as_of:
        console.print("[red]plan needs --as-of (or: plan verify PUBLIC_PLAN)[/]")
        return 2
    from risk_insight.plan import build_plan, load_roster
    from warehouse.settings import get_settings

    settings, spark = get_settings(), _spark()
    if args.roster:
        load_roster(spark, args.roster, settings)
    plan = build_plan(spark, date.fromisoformat(args.as_of), settings, args.seed)
    how = f"reused, drawn at {plan.drawn_at}" if plan.reused else "drawn now"
    if not plan.reused:
        from warehouse import audit
        from warehouse.contracts.tier_policy import policy_for

        audit.record_plan_draw(spark, settings, plan, policy_for(settings).version)
    _print_rows(
        f"plan {plan.plan_id} (seed {plan.seed}, {how}) / 双随机抽查计划",
        ["region", "tier", "drawn"],
        [[r, t, n] for (r, t), n in plan.size.items()],
    )
    if plan.unassigned:
        console.print(f"[yellow]{plan.unassigned} drawn enterprises have no inspectors[/]")
    console.print(f"public plan / 一公开: {plan.public_csv}; manifest {plan.manifest}")
    return 0


def cmd_plan_verify(args: argparse.Namespace) -> int:
    """Recompute a published plan from its public files and revealed seed (no lake needed)."""
    from risk_insight.plan import verify_plan

    v = verify_plan(args.path, args.commitment)
    for c in v.checks:
        console.print(f"[green]✓[/] {c}")
    for p in v.problems:
        console.print(f"[red]✗ {p}[/]")
    console.print(
        f"plan {v.plan_id}: "
        + ("[green]verified / 核验通过[/]" if v.ok else "[red]NOT verified[/]")
    )
    return 0 if v.ok else 1


def cmd_outcomes_template(args: argparse.Namespace) -> int:
    """Write the outcome file of a plan (XLSX) for the inspectors to fill in."""
    from risk_insight.outcomes import write_template
    from warehouse.settings import get_settings

    path = write_template(_spark(), args.plan, get_settings(), args.region, args.out)
    console.print(f"outcome file / 检查结果登记表: {path}")
    return 0


def cmd_outcomes_simulate(args: argparse.Namespace) -> int:
    """Synthetic worlds: the simulator plays the inspectors and fills a plan's outcome file."""
    from pyspark.sql import functions as F

    from pipelines.simulator.outcomes import fill_outcome_file
    from risk_insight.outcomes import write_template
    from risk_insight.plan import plan_rows
    from warehouse.contracts.tier_policy import policy_for
    from warehouse.settings import get_settings

    settings, spark = get_settings(), _spark()
    template = args.template or write_template(spark, args.plan, settings)
    as_of = plan_rows(spark, args.plan, settings).agg(F.min("as_of")).first()[0]
    done = fill_outcome_file(
        template, args.truth, args.out, as_of, args.seed,
        policy_for(settings).draw.inspection_window_days, args.unreachable, args.not_inspected,
    )  # fmt: skip
    _print_pairs("simulated outcomes / 模拟检查结果", done["result"].value_counts().to_dict())
    last = max(done["inspected_on"]) if len(done) else as_of
    console.print(f"filled outcome file: {args.out} (last inspection {last})")
    return 0


def cmd_outcomes_import(args: argparse.Namespace) -> int:
    """Deliver a filled outcome file as an inspection extract and land it (run_day)."""
    from quality.gates import GateBlocked
    from risk_insight.outcomes import OutcomeFileError, import_outcomes
    from warehouse.settings import get_settings

    day = date.fromisoformat(args.delivery_date) if args.delivery_date else None
    try:
        done = import_outcomes(
            _spark(), args.file, get_settings(), day, run=not args.no_run, progress=console.log
        )
    except OutcomeFileError as bad:
        console.print(f"[red]{bad}[/]")
        return 2
    except GateBlocked as blocked:
        console.print(f"[red]{blocked}[/]")
        return 3
    _print_pairs(f"outcomes of {done.plan_id} / 检查结果", done.by_result)
    console.print(
        f"{done.filled} filled rows delivered as {done.extract} ({done.delivery_date}); "
        f"{done.open_rows} rows still open / 尚未填写"
    )
    if done.run is not None:
        state = "already landed (same file)" if done.skipped else "landed"
        console.print(
            f"inspection delivery {state}: {done.landed} rows conformed, {done.quarantined} "
            "quarantined (see the rectification report)"
        )
    return 0


def cmd_outcomes_status(args: argparse.Namespace) -> int:
    """Completion of a plan per district and per inspector."""
    from risk_insight.outcomes import plan_completion
    from warehouse.settings import get_settings

    by_district, by_inspector = plan_completion(_spark(), args.plan, get_settings())
    cols = ["drawn", "inspected", "found_problem", "unreachable", "not_inspected", "not_yet"]
    _print_rows(
        f"plan {args.plan}: completion by district / 区县完成情况",
        ["district", *cols],
        [[r["region_name"] or r["region_code"], *(int(r[c]) for c in cols)]
         for _, r in by_district.iterrows()],
    )  # fmt: skip
    _print_rows(
        f"plan {args.plan}: completion by inspector / 检查人员完成情况",
        ["district", "inspector", *cols],
        [[r["region_name"] or r["region_code"], f"{r['inspector_id']} {r['inspector_name']}",
          *(int(r[c]) for c in cols)] for _, r in by_inspector.iterrows()],
    )  # fmt: skip
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Why an enterprise has its tier, with the source records behind each reason."""
    from risk_insight.explain import explain, render_explanation
    from warehouse.settings import get_settings

    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    try:
        e = explain(_spark(), args.uscc, as_of, get_settings())
    except LookupError as missing:
        console.print(f"[red]{missing}[/]")
        return 2
    print(render_explanation(e))
    return 0


def cmd_lists(args: argparse.Namespace) -> int:
    """Rebuild gold.target_list at --as-of and write one district's list from it (CSV with BOM
    + XLSX, Chinese headers)."""
    from risk_insight.lists import HEADERS, build_target_list, write_district_list
    from warehouse.settings import get_settings

    spark, settings, as_of = _spark(), get_settings(), date.fromisoformat(args.as_of)
    build_target_list(spark, as_of, settings)
    files = write_district_list(spark, args.region, as_of, settings)
    from warehouse import audit
    from warehouse.contracts.tier_policy import policy_for

    audit.record_list_export(spark, settings, as_of, [files], policy_for(settings).version)
    console.print(f"{files.rows:,} enterprises / 家 → {files.csv} and {files.xlsx}")
    import pandas as pd

    head = pd.read_csv(files.csv, encoding="utf-8-sig", nrows=args.show)
    cols = [HEADERS[c] for c in ("rank", "uscc", "name", "tier", "credit_score", "reasons")]
    _print_rows(f"top {args.show}", cols, head[cols].values.tolist())
    return 0


def cmd_warnings(args: argparse.Namespace) -> int:
    """Early warnings at --as-of against the previous run into gold.warnings."""
    from risk_insight.warnings import build_warnings
    from warehouse.settings import get_settings

    counts = build_warnings(_spark(), date.fromisoformat(args.as_of), get_settings())
    _print_pairs("early warnings / 风险预警", counts)
    return 0


def cmd_inspectors_consistency(args: argparse.Namespace) -> int:
    """Each inspector's findings against those expected from the enterprises they visited
    (执法尺度统一) into audit.inspector_consistency; prints the table."""
    from risk_insight.consistency import FLAGS, build_consistency
    from warehouse.settings import get_settings

    out = build_consistency(
        _spark(), get_settings(), period=args.period, modes=tuple(args.modes.split(",")),
        min_inspections=args.min_inspections,
    )  # fmt: skip
    _print_rows(
        "执法尺度统一 / inspector consistency (random draws)",
        ["期间 period", "检查人员 inspector", "检查 inspections", "发现 findings",
         "预期 expected", "相对比 relative", "区间 interval", "判断 flag"],
        [[r.period, r.inspector_id, int(r.inspections), int(r.findings),
          f"{r.expected_findings:.1f}", f"{r.relative_ratio:.2f}",
          f"{r.relative_low:.2f}–{r.relative_high:.2f}", " / ".join(FLAGS[r.flag])]
         for r in out.itertuples()],
    )  # fmt: skip
    return 0


def _as_of_steps(spark, settings, as_of: date, names: list[str]) -> dict:
    """Run the daily graph's steps ``names`` (``risk_insight.graph.AS_OF``) at ``as_of``, the
    runner and order the DAG uses (gates keyed on the as-of date: the demo has no delivery
    that day); print each step's summary; returns the results by step name."""
    from pipelines.steps import Run, run_steps, select
    from risk_insight import graph

    run = Run(settings, as_of, as_of=as_of, say=console.log, _spark=spark)
    done = run_steps(select(graph.AS_OF, names), run)
    if "score" in done:
        console.print(f"scored {done['score']['rows']:,} enterprises as of {as_of} with "
                      f"{done['score']['model_version']} into gold.risk_scores")  # fmt: skip
    if "serving_marts" in done:
        _print_pairs(f"rows per mart in {done['serving_marts'].url}", done["serving_marts"].rows)
    return done


def _insight_stage(spark, settings, as_of: date, roster: Path) -> str:
    """The daily graph from features to the gold gate over risk insight: features, scores,
    gold gate, tiers, the random-draw plan, every district's list and warnings, the gate again;
    then their summary; returns the plan id."""
    from risk_insight.insight import print_insight_summary
    from risk_insight.plan import load_roster

    load_roster(spark, roster, settings)
    steps = ["features", "score", "gold_gate", "tiers_plans_lists_warnings", "insight_gate"]
    done = _as_of_steps(spark, settings, as_of, steps)
    summary = done["tiers_plans_lists_warnings"]
    print_insight_summary(summary, console)
    return summary.plan.plan_id


def deliver_simulated_outcomes(
    spark, settings, plan_id: str, as_of: date, truth: Path, progress=None
):
    """Synthetic worlds: the simulator plays the inspectors of plan ``plan_id`` (drawn at
    ``as_of``) and fills its outcome file under ``<outputs>/outcomes/``, which is imported
    through run_day three days after the last inspection. Returns the OutcomeImport."""
    from datetime import timedelta

    from pipelines.simulator.outcomes import fill_outcome_file
    from risk_insight.outcomes import import_outcomes, write_template
    from warehouse.contracts.tier_policy import policy_for

    template = write_template(spark, plan_id, settings)
    filled = Path(settings.outputs_root) / "outcomes" / f"{plan_id}-filled.xlsx"
    filled.parent.mkdir(parents=True, exist_ok=True)
    window = policy_for(settings).draw.inspection_window_days
    done = fill_outcome_file(template, truth, filled, as_of, seed=0, window_days=window)
    day = max(done["inspected_on"]) + timedelta(days=3)
    return import_outcomes(spark, filled, settings, delivery_date=day, progress=progress)


def _outcome_cycle(spark, settings, plan_id: str, as_of: date, truth: Path) -> None:
    """The supervision cycle's way back on a synthetic world (:func:`deliver_simulated_outcomes`),
    then inspector consistency (执法尺度统一) recomputed over the random draws it brought."""
    from risk_insight.consistency import FLAGS, build_consistency

    console.rule(f"outcomes of plan {plan_id} / 检查结果回传")
    imp = deliver_simulated_outcomes(spark, settings, plan_id, as_of, truth, console.log)
    console.print(
        f"{imp.filled:,} outcomes delivered on {imp.delivery_date}: {imp.landed:,} landed, "
        f"{imp.quarantined:,} quarantined / 检查结果已导入"
    )
    judged = build_consistency(spark, settings)
    counts = judged["flag"].value_counts().to_dict() if len(judged) else {}
    _print_pairs("inspector consistency / 执法尺度统一",
                 {" / ".join(FLAGS[k]): int(v) for k, v in counts.items()})  # fmt: skip


def _model_stage(spark, settings, truth_dir: Path) -> date:
    """Train a model with the retrain graph if none is champion, print the champion's
    backtests; return the as-of date to score (the month after the data)."""
    from models import registry
    from models.demo import model_stage

    console.rule("risk model / 风险模型")
    if registry.champion(spark, settings) is None:
        decision = _retrain(spark, settings, {"truth_dir": str(truth_dir)}, rescore=False)[
            "backtest_train_and_gate"
        ]
        console.log(("promoted " if decision["promoted"] else "not promoted ")
                    + decision["challenger"])  # fmt: skip
        if not decision["promoted"]:
            raise RuntimeError(f"no model passed the promotion gate: {decision['reasons']}")
    stage = model_stage(spark, settings)
    _print_backtest(stage["table"])
    console.print(f"champion {stage['champion']}; scoring as of {stage['as_of']}")
    return stage["as_of"]


def _print_backtest(df) -> None:
    cols = ["fold (as-of)", "n judged", "model", "rules", "random", "oracle", "lift",
            "model/oracle"]  # fmt: skip
    _print_rows(
        "backtest on random-draw inspections: hit rate at the C+D budget (top 20 %)",
        ["fold", "n", "model", "rules", "random", "oracle", "lift", "÷oracle"],
        [
            [
                v if isinstance(v, str) else f"{v:,.0f}" if c == "n judged" else f"{v:.3f}"
                for c, v in zip(cols, row, strict=True)
            ]
            for row in df[cols].values.tolist()
        ],
    )


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
        ["file", "source", "status", "read", "landed", "quarantined", "encoding", "message"],
        [
            [Path(r.file).name, r.source, r.status, r.rows_read, r.rows_landed,
             r.rows_quarantined, r.encoding, r.message[:120]]
            for r in run.ingested
        ],
    )  # fmt: skip
    _print_rows(
        "conformed",
        ["source", "target", "in", "quarantined", "duplicates", "conformed"],
        [
            [c.source, c.target, c.rows_in, c.rows_quarantined, c.rows_duplicate, c.rows_conformed]
            for c in run.conformed
        ],
    )


def _marts_stage(spark, settings, as_of: date | None) -> None:
    from pipelines.marts import build_marts

    console.rule("serving marts / 服务数据集市")
    done = build_marts(spark, as_of, settings)
    _print_pairs(f"rows per mart in {done.url}", done.rows)


def cmd_marts(args: argparse.Namespace) -> int:
    from warehouse.settings import get_settings

    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    _marts_stage(_spark(), get_settings(), as_of)
    return 0


def cmd_bi_serve(args: argparse.Namespace) -> int:
    """Start a local Superset (own venv), provision the dashboards with one generated password
    per demo user, wait until Ctrl-C."""
    from risk_insight.superset import SupersetClient, districts, provision
    from risk_insight.superset.server import start, user_passwords
    from warehouse import serving
    from warehouse.lock import lake_lock
    from warehouse.settings import get_settings

    settings = get_settings()
    if not serving.store_columns(settings):
        console.print("[yellow]no serving marts yet: building them from the lake[/]")
        with lake_lock(settings, "risk-insight bi serve (marts)", say=console.log):
            _marts_stage(_spark(), settings, None)
    with console.status("starting Superset (first start initialises it, ~1 min)…"):
        server = start(Path(args.home).resolve(), args.port)
    client = SupersetClient(server.url, server.username, server.password)
    users = ["analyst", *(f"district_{code}" for code in districts(settings))]
    passwords, new = user_passwords(server.home, users)
    done = provision(client, settings, users_password=passwords)
    console.print(
        f"Superset: [bold]{server.url}[/]  user [bold]{server.username}[/]  "
        f"password [bold]{server.password}[/] (kept in {server.home}/admin_password)"
    )
    if new:
        console.print("demo users, each with its own password (shown once; kept, mode 0600, in "
                      f"{server.home}/user_passwords.json):")  # fmt: skip
        for user in new:
            console.print(f"  {user}: {passwords[user]}")
    else:
        console.print(f"demo users: analyst and one per district ({len(users) - 1}); "
                      f"passwords in {server.home}/user_passwords.json (mode 0600)")  # fmt: skip
    for key, i in done.dashboards.items():
        console.print(f"  {key}: {server.url}/superset/dashboard/{i}/")
    console.print("Ctrl-C stops Superset.")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_bi_gallery(args: argparse.Namespace) -> int:
    """The README's screenshots: a throw-away local Superset on this lake's marts, every
    dashboard opened in Chromium and checked (no errors, no empty charts, the model dashboard
    equal to the champion's recorded metrics), PNGs written to --out."""
    import secrets
    import shutil
    import tempfile

    from models.registry import read_artifact
    from risk_insight.superset import SupersetClient, districts, provision
    from risk_insight.superset.assets import load_spec
    from risk_insight.superset.gallery import (
        capture,
        compare_figures,
        district_view,
        recorded_metrics,
        shown_model_figures,
    )
    from risk_insight.superset.server import start
    from warehouse import serving
    from warehouse.settings import get_settings

    settings = get_settings()
    shown = serving.query(
        "SELECT DISTINCT model_version, is_champion FROM mart_model_backtest WHERE is_current",
        settings,
    )
    if len(shown) != 1 or not bool(shown["is_champion"].iat[0]):
        console.print(
            "[red]the lists are not scored by a promoted champion: the gallery shows only a "
            "champion's figures (run make demo first)[/]"
        )
        return 2
    champion = str(shown["model_version"].iat[0])
    out = Path(args.out)
    home = Path(tempfile.mkdtemp(prefix="superset-gallery-"))
    users_password = secrets.token_urlsafe(12)
    spec = load_spec()
    with console.status("starting a throw-away Superset…"):
        server = start(home, args.port)
    try:
        client = SupersetClient(server.url, server.username, server.password)
        done = provision(client, settings, users_password=users_password)
        problems = compare_figures(
            shown_model_figures(client, spec, done.datasets),
            recorded_metrics(read_artifact(settings, champion, "metrics.json")),
        )
        seen = capture(server.url, server.username, server.password, spec, out)
        problems += seen.problems
        code = sorted(districts(settings))[0]
        _, shot = district_view(server.url, f"district_{code}", users_password, "target-list", out)
        shot.rename(out / f"target-list-district-{code}.png")
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    for p in problems:
        console.print(f"[red]{p}[/]")
    console.print(f"{len(seen.screenshots) + 1} screenshots in {out} (champion {champion})")
    return 1 if problems else 0


def cmd_bi_provision(args: argparse.Namespace) -> int:
    from risk_insight.superset import refresh
    from warehouse.settings import get_settings

    console.print(refresh(get_settings()))
    return 0


def cmd_lake_diff(args: argparse.Namespace) -> int:
    """Compare two lakes' Delta tables by content (wall-clock stamps and audit.events left
    out, and any --ignore column / --skip table); exit 1 when they differ."""
    from warehouse import lakediff

    result = lakediff.diff(
        args.lake_a,
        args.lake_b,
        lakediff.AUDIT_STAMPS | frozenset(args.ignore),
        lakediff.APPEND_ONLY | frozenset(args.skip),
    )
    console.print(result.report())
    return 0 if result.same else 1


def cmd_lock_status(args: argparse.Namespace) -> int:
    from warehouse import lock
    from warehouse.settings import get_settings

    settings = get_settings()
    info = lock.holder(settings)
    where = lock.lock_path(settings)
    if info is None:
        console.print(f"free / 空闲 ({where})")
        return 0
    state = "stale (holder gone) / 已失效" if lock.stale(info) else "held / 占用中"
    console.print(f"{state}: {info.describe()} ({where})")
    return 0


def cmd_lock_break(args: argparse.Namespace) -> int:
    from warehouse import lock
    from warehouse.settings import get_settings

    removed = lock.break_stale(get_settings(), force=args.force)
    console.print(f"removed the lock of {removed.describe()}" if removed else "no lock to remove")
    return 0


def cmd_retention_apply(args: argparse.Namespace) -> int:
    """Null raw personal fields older than the retention policy allows, then VACUUM."""
    from pipelines.privacy import apply_retention
    from warehouse.settings import get_settings

    today = date.fromisoformat(args.as_of) if args.as_of else None
    done = apply_retention(_spark(), get_settings(), today, dry_run=args.dry_run)
    _print_rows(
        "retention / 个人信息保留期限" + (" (dry run)" if args.dry_run else ""),
        ["source", "delivered before", "fields", "rows nulled", "files removed"],
        [[r.source, r.cutoff, ", ".join(r.fields), r.rows_nulled, r.files_removed] for r in done],
    )
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase one person's raw personal data from bronze (Delta UPDATE + VACUUM), audited."""
    from pipelines.privacy import erase
    from warehouse.settings import get_settings

    done = erase(
        _spark(), get_settings(), person=args.person, id_number=args.id_number, phone=args.phone,
        keep_history=args.keep_history, reason=args.reason or "",
    )  # fmt: skip
    _print_rows(
        f"erased person {done.token} / 已删除个人信息",
        ["table", "rows nulled", "files removed"],
        [[t, n, done.files_removed.get(t, 0)] for t, n in done.rows_nulled.items()],
    )
    console.print(f"audit event {done.event_id}" + ("" if done.rows_nulled else ": no rows held"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risk-insight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a synthetic jurisdiction's source extracts")
    p.add_argument("--enterprises", type=int, default=50_000)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--increment-days", type=int, default=3)
    p.add_argument("--drift", type=float, default=0.0, help="risk drift over the span (0 = off)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("run", help="land and conform one delivery date (idempotent)")
    p.add_argument("--date", required=True, help="delivery date, YYYY-MM-DD")
    p.add_argument("--landing", help="landing root (default: settings.landing_root)")
    p.add_argument(
        "--reconform",
        action="store_true",
        help="conform and gate every source again, even what was done from the same inputs",
    )
    p.set_defaults(func=cmd_run, writes=True, audited=True)

    p = sub.add_parser("demo", help="simulate the default world and run it end to end")
    p.add_argument("--enterprises", type=int, default=50_000)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="data/sim")
    p.set_defaults(func=cmd_demo)

    sources = sub.add_parser("sources", help="source mappings (数据源映射)").add_subparsers(
        dest="sources_command", required=True
    )
    p = sources.add_parser(
        "check", help="dry run of the mappings over a landing folder (writes no table)"
    )
    p.add_argument("dir", help="a delivery folder, or a landing root of date folders")
    p.add_argument("--out", help="report folder (default: <reports>/sources_check)")
    p.set_defaults(func=cmd_sources_check)

    quality = sub.add_parser("quality", help="data-quality governance (质量治理)").add_subparsers(
        dest="quality_command", required=True
    )
    p = quality.add_parser(
        "report", help="rectification report of a source's delivery (整改反馈: CSV + HTML)"
    )
    p.add_argument("--source", required=True, help="source system, e.g. penalty (or penalties)")
    p.add_argument("--date", required=True, help="delivery date, YYYY-MM-DD")
    p.set_defaults(func=cmd_quality_report, writes=True, audited=False)

    p = sub.add_parser("train", help="backtest, register and gate a challenger risk model")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--truth", help="simulator truth folder, for the oracle baseline")
    p.add_argument("--margin", type=float, help="precision@k another recipe must beat by")
    p.add_argument("--tolerance", type=float, help="how much worse a same-recipe refresh may be")
    p.add_argument("--fairness-bound", type=float, help="max widening of a gap")
    p.add_argument("--rescore", action="store_true", help="re-score with it if promoted")
    p.set_defaults(func=cmd_train, writes=True, audited=False)

    p = sub.add_parser("score", help="score active enterprises at an as-of date (Spark)")
    p.add_argument("--as-of", required=True, help="as-of date, YYYY-MM-DD (first of a month)")
    p.add_argument("--model", help="model version (default: the champion)")
    p.set_defaults(func=cmd_score, writes=True, audited=False)

    p = sub.add_parser("tiers", help="A-D tiers at an as-of date (rules, then model shares)")
    p.add_argument("--as-of", required=True, help="as-of date of the scores, YYYY-MM-DD")
    p.set_defaults(func=cmd_tiers, writes=True, audited=False)

    p = sub.add_parser("plan", help="the period's 双随机 plan and its public file (一公开)")
    p.add_argument("--as-of", help="as-of date of the tiers, YYYY-MM-DD")
    p.add_argument("--seed", type=int, help="a chosen seed (default: the committed one)")
    p.add_argument("--roster", help="inspector roster CSV to load first (inspector_id,name,…)")
    p.set_defaults(func=cmd_plan, writes=True, audited=False)
    plan_sub = p.add_subparsers(dest="plan_command")
    v = plan_sub.add_parser("verify", help="recompute a published plan from its public files")
    v.add_argument("path", help="the plan's public folder or its public_plan.csv")
    v.add_argument("--commitment", help="the commitment file published when the period opened")
    v.set_defaults(func=cmd_plan, writes=False)

    outcomes = sub.add_parser("outcomes", help="record what inspectors found (检查结果)")
    osub = outcomes.add_subparsers(dest="outcomes_command", required=True)
    p = osub.add_parser("template", help="the XLSX an inspector fills in, one row per drawn")
    p.add_argument("--plan", required=True, help="plan id, e.g. CJ-20261101")
    p.add_argument("--region", help="one district only")
    p.add_argument("--out", help="file to write (default <outputs>/outcomes/<plan>/)")
    p.set_defaults(func=cmd_outcomes_template)
    p = osub.add_parser("import", help="land a filled outcome file through the normal run")
    p.add_argument("file", help="the filled XLSX")
    p.add_argument("--delivery-date", help="delivery date, YYYY-MM-DD (default today)")
    p.add_argument("--no-run", action="store_true", help="write the delivery, do not run it")
    p.set_defaults(func=cmd_outcomes_import, writes=True, audited=True)
    p = osub.add_parser("simulate", help="synthetic worlds: fill an outcome file from truth")
    p.add_argument("--plan", required=True)
    p.add_argument("--truth", required=True, help="the simulator's truth folder")
    p.add_argument("--template", help="outcome file to fill (default: write one)")
    p.add_argument("--out", required=True, help="the filled file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unreachable", type=float, default=0.03, help="share 无法联系")
    p.add_argument("--not-inspected", type=float, default=0.02, help="share 未检查")
    p.set_defaults(func=cmd_outcomes_simulate)
    p = osub.add_parser("status", help="plan completion per district and inspector")
    p.add_argument("--plan", required=True)
    p.set_defaults(func=cmd_outcomes_status)

    p = sub.add_parser("explain", help="why an enterprise has its tier, with source records")
    p.add_argument("uscc")
    p.add_argument("--as-of", help="as-of date (default: its latest)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("lists", help="one district's target list (CSV with BOM + XLSX)")
    p.add_argument("--region", required=True, help="district code, e.g. 110101")
    p.add_argument("--as-of", required=True, help="as-of date, YYYY-MM-DD")
    p.add_argument("--show", type=int, default=10, help="rows to print")
    p.set_defaults(func=cmd_lists, writes=True, audited=False)

    p = sub.add_parser("warnings", help="early warnings against the previous run")
    p.add_argument("--as-of", required=True, help="as-of date, YYYY-MM-DD")
    p.set_defaults(func=cmd_warnings, writes=True, audited=False)

    ins = sub.add_parser("inspectors", help="inspectors (执法人员)").add_subparsers(
        dest="inspectors_command", required=True
    )
    p = ins.add_parser("consistency", help="findings vs expected per inspector (执法尺度统一)")
    p.add_argument("--period", default="quarter", choices=["month", "quarter", "year"])
    p.add_argument("--modes", default="random_draw", help="inspection modes, comma-separated")
    p.add_argument("--min-inspections", type=int, default=20)
    p.set_defaults(func=cmd_inspectors_consistency, writes=True, audited=False)

    p = sub.add_parser("marts", help="build the serving marts and publish them (BI store)")
    p.add_argument("--as-of", help="as-of date to refresh (default: every date in gold)")
    p.set_defaults(func=cmd_marts, writes=True, audited=False)

    bi = sub.add_parser("bi", help="Superset dashboards (看板)").add_subparsers(
        dest="bi_command", required=True
    )
    p = bi.add_parser("serve", help="start a local Superset, provision it, wait (make bi)")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--home", default=".superset", help="Superset metadata and logs")
    p.set_defaults(func=cmd_bi_serve)
    p = bi.add_parser("gallery", help="screenshots of every dashboard, checked (make gallery)")
    p.add_argument("--out", default="docs/bi")
    p.add_argument("--port", type=int, default=8089)
    p.set_defaults(func=cmd_bi_gallery)
    p = bi.add_parser("provision", help="provision the Superset of settings.superset_url")
    p.set_defaults(func=cmd_bi_provision)

    lake = sub.add_parser("lake", help="whole-lake tools").add_subparsers(
        dest="lake_command", required=True
    )
    p = lake.add_parser("diff", help="compare two lakes' tables by content (exit 1: differ)")
    p.add_argument("lake_a")
    p.add_argument("lake_b")
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="COLUMN",
        help="also leave out this column everywhere (e.g. model_version)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="LAYER/TABLE",
        help="also leave out this table (e.g. audit/model_registry)",
    )
    p.set_defaults(func=cmd_lake_diff)

    lk = sub.add_parser("lock", help="the lake's writer lock").add_subparsers(
        dest="lock_command", required=True
    )
    p = lk.add_parser("status", help="who holds the lake lock")
    p.set_defaults(func=cmd_lock_status)
    p = lk.add_parser("break", help="remove a stale lock (holder gone); --force: any lock")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_lock_break)

    ret = sub.add_parser("retention", help="personal-data retention").add_subparsers(
        dest="retention_command", required=True
    )
    p = ret.add_parser("apply", help="null raw personal fields past retention, then VACUUM")
    p.add_argument("--as-of", help="today's date for the policy (default: today)")
    p.add_argument("--dry-run", action="store_true", help="only count what would change")
    p.set_defaults(func=cmd_retention_apply, writes=True, audited=True)

    p = sub.add_parser("erase", help="erase one person's raw personal data from bronze")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--person", help="the person's token (legal_rep_token, complainant_token)")
    who.add_argument("--id-number", help="the legal representative's ID number")
    who.add_argument("--phone", help="a phone number (complainant or registry contact)")
    p.add_argument(
        "--keep-history",
        action="store_true",
        help="leave old file versions to the retention VACUUM (time travel kept)",
    )
    p.add_argument("--reason", help="why (recorded in audit.events), e.g. the request's number")
    p.set_defaults(func=cmd_erase, writes=True, audited=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from warehouse.conflicts import WriteConflict
    from warehouse.lock import LockBusy

    try:
        if not getattr(args, "writes", False):
            return args.func(args)
        return _writing(args, argv if argv is not None else sys.argv[1:])
    except LockBusy as busy:
        console.print(str(busy), style="red", markup=False)
        return 4
    except WriteConflict as conflict:
        console.print(str(conflict), style="red", markup=False)
        return 5


def _writing(args: argparse.Namespace, argv: list[str]) -> int:
    """A command that writes the lake: the lake lock is taken before Spark starts (a refused
    command costs no Spark start); commands that do not record their own events leave a
    ``step`` row in audit.events."""
    from datetime import datetime

    from warehouse.lock import lake_lock
    from warehouse.settings import get_settings

    settings = get_settings()
    purpose = " ".join(["risk-insight", *argv])
    started = datetime.now()
    with lake_lock(settings, purpose, say=lambda m: console.log(m, markup=False)):
        if args.audited:
            return args.func(args)
        try:
            code = args.func(args)
        except Exception as exc:
            import contextlib

            with contextlib.suppress(Exception):  # never hide the command's own error
                _audit_step(settings, purpose, started, "failed", repr(exc)[:2000])
            raise
        _audit_step(settings, purpose, started, "succeeded" if code == 0 else f"exit {code}", None)
        return code


def _audit_step(settings, subject: str, started, outcome: str, error: str | None) -> None:
    from pyspark.sql import SparkSession

    from warehouse import audit

    spark = SparkSession.getActiveSession()
    if spark is not None:
        audit.record(spark, settings, "step", "end", outcome, subject, started_at=started,
                     details={"error": error} if error else None)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
