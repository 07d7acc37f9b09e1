"""Quality governance end to end on simulated worlds: recall against the defect manifest, the
ledger, Data Docs, rectification reports, blocking vs warning gates, and replay of a corrected
row. Real Spark, Delta and Great Expectations throughout."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pipelines import recall
from pipelines.conform import FACT_MODELS, delivered_models, dim_enterprise
from pipelines.run import delivery_dates, run_day
from pipelines.simulator import SimulationConfig, simulate
from quality import ledger, suites
from quality.gates import SILVER_TABLES, GateBlocked
from quality.reports import HEADERS, write_report
from tests.conftest import make_settings
from warehouse import contracts, tables


@pytest.fixture(scope="module")
def world(delivered_world):
    """The session's shared world (tests/conftest.py): every delivery through the gates."""
    w = delivered_world
    return w.settings, w.root / "sim", w.runs


def test_recall_and_false_quarantine_per_defect_class(spark, world):
    settings, out, _ = world
    scores = recall.score(spark, out / "truth" / "defects.csv", settings)
    print("\n" + recall.markdown_table(scores))
    assert {s.defect_class for s in scores} >= {"bad_check_digit", "missing_key", "malformed_row"}
    for s in scores:
        assert s.recall >= 0.99, f"{s.defect_class}: {s.caught}/{s.injected} caught"
        assert s.false_rate <= 0.001, f"{s.defect_class}: {s.false_quarantined} clean rows"


def test_ledger_has_one_row_per_expectation_per_run(spark, world):
    settings, _, runs = world
    df = ledger.read(spark, settings)
    assert df.count() == df.select(*tables.QUALITY_RESULTS.keys).distinct().count()
    per_suite = {
        (r.run_date, r.suite): r["count"] for r in df.groupBy("run_date", "suite").count().collect()
    }
    day = runs[0].run_date
    n_rules = {m.target.qualified + ".incoming." + m.source: len(m.rules) for m in FACT_MODELS}
    n_rules["silver.dim_enterprise.incoming.registry"] = len(dim_enterprise.rules())
    for suite, n in n_rules.items():
        if (day, suite) in per_suite:  # a source with rows that day
            assert per_suite[(day, suite)] == n, suite
    assert (
        per_suite[(day, "silver.dim_enterprise.incoming.registry")]
        == n_rules["silver.dim_enterprise.incoming.registry"]
    )
    for t in SILVER_TABLES:
        if t is tables.FCT_EVENT:  # the demo bureau delivers no events: never created, not gated
            assert (day, t.qualified) not in per_suite
            continue
        assert per_suite[(day, t.qualified)] == len(t.keys) + 1
    bronze = len(suites.bronze_expectations("penalty", [], ledger_policy()))
    assert per_suite[(day, "bronze.penalty")] == bronze
    assert {r.outcome for r in df.select("outcome").distinct().collect()} <= {
        "passed",
        "warned",
        "quarantined",
    }
    # Every row rule that failed on a day quarantined exactly the rows GX counted.
    q = tables.read(spark, tables.REJECTED_ROWS, settings).where("stage = 'conform'")
    failing = df.where("outcome = 'quarantined'").collect()
    assert failing
    for r in failing[:5]:
        n = q.where(
            (F.col("_run_date") == F.lit(r.run_date))
            & (F.col("source") == r.source)
            & F.array_contains("checks", r.expectation)
        ).count()
        assert n == r.unexpected_count == r.rows_quarantined, r.expectation


def ledger_policy():
    from quality.policy import default_policy

    return default_policy()


def test_data_docs_index_is_html(world):
    _, _, runs = world
    index = runs[-1].docs_index
    assert index is not None and index.name == "index.html" and index.is_file()
    text = index.read_text(encoding="utf-8")
    assert "<html" in text.lower()
    assert "silver.fct_penalty.incoming.penalty" in text


def test_rectification_report_names_rows_without_personal_data(spark, world, monkeypatch):
    settings, out, runs = world
    day = runs[0].run_date
    report = write_report(spark, "registry", day, settings)
    expected = (
        tables.read(spark, tables.REJECTED_ROWS, settings)
        .where((F.col("source") == "registry") & (F.col("_run_date") == F.lit(day)))
        .count()
    )
    assert report.problems == expected > 0
    raw = report.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM so Excel reads the Chinese headers
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == list(HEADERS.values())
    assert all(r[0] == f"{day}/registry.csv" and int(r[1]) > 0 for r in rows[1:])
    # No legal-representative name, ID number or phone of the delivery appears in the report.
    with (out / "landing" / day.isoformat() / "registry.csv").open(encoding="gbk") as fh:
        delivered = list(csv.DictReader(fh))
    registry = contracts.mapping("registry")
    personal = {
        v.strip()
        for row in delivered
        for h in (registry.header_of(f) for f in registry.canonical.pii)
        if (v := row.get(h)) and len(v.strip()) >= 2
    }
    text = report.csv.read_text(encoding="utf-8-sig") + report.html.read_text(encoding="utf-8")
    assert not [p for p in personal if p in text]
    assert "<table>" in report.html.read_text(encoding="utf-8")


# ---- a small world of its own: gates that block or warn, replay of a corrected row -----------


@pytest.fixture(scope="module")
def small(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("quality_small")
    out = root / "sim"
    simulate(SimulationConfig(enterprises=300, years=1, seed=5, increment_days=1), out)
    settings = make_settings(root)
    landing = out / "landing"
    days = delivery_dates(landing)
    run_day(spark, landing, days[0], settings, docs=False)
    return root, settings, landing, days


def _policy(root: Path, name: str, volume_gate: str) -> str:
    path = root / f"{name}.yaml"
    path.write_text(
        f"version: {name}\ndefault: block\nexpectations:\n  volume: {volume_gate}\n"
        "  freshness: warn\nparams:\n  volume:\n    min_history_runs: 1\n    factor: 2.0\n"
        "    exclude_cutover: false\n",
        encoding="utf-8",
    )
    return str(path)


def test_blocking_gate_stops_downstream_and_warning_does_not(spark, small):
    root, settings, landing, days = small
    day = days[1]  # a daily increment: far fewer rows than the history cut
    blocking = settings.model_copy(update={"quality_policy": _policy(root, "p_block", "block")})
    with pytest.raises(GateBlocked) as caught:
        run_day(spark, landing, day, blocking, docs=False)
    assert any(f.expectation == "volume" for f in caught.value.failures)
    assert "volume" in str(caught.value) and "bronze." in str(caught.value)
    led = ledger.read(spark, settings).where(F.col("run_date") == F.lit(day))
    assert led.where("expectation = 'volume' AND outcome = 'blocked'").count() > 0
    conform_log = tables.read(spark, tables.CONFORM_LOG, settings)
    assert conform_log.where(F.col("run_date") == F.lit(day)).count() == 0  # conform never ran
    assert led.where("suite LIKE '%.incoming.%'").count() == 0
    dim = tables.read(spark, tables.DIM_ENTERPRISE, settings)
    assert dim.where(F.col("_run_date") == F.lit(day)).count() == 0

    warning = settings.model_copy(update={"quality_policy": _policy(root, "p_warn", "warn")})
    run = run_day(spark, landing, day, warning, docs=True)
    assert run.quality["warned"] > 0 and run.quality["blocked"] == 0
    delivered = delivered_models(settings)
    assert conform_log.where(F.col("run_date") == F.lit(day)).count() == len(delivered) + 1
    led = ledger.read(spark, settings).where(F.col("run_date") == F.lit(day))
    assert led.where("expectation = 'volume' AND outcome = 'blocked'").count() == 0
    assert led.where("expectation = 'volume' AND outcome = 'warned'").count() > 0
    assert run.docs_index is not None and run.docs_index.is_file()


def _penalty_file(folder: Path, uscc: str, amount: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    row = {
        "case_no": "TEST-处罚-0001",
        "uscc": uscc,
        "decided_on": "2026-10-01",
        "category": "虚假宣传",
        "amount": amount,
        "authority": "测试市场监督管理局",
        "reported_on": "2026-10-02",
    }
    penalty = contracts.mapping("penalty")
    with (folder / penalty.files[0]).open("w", encoding="gbk", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([penalty.header_of(f) for f in penalty.fields])
        w.writerow([row[f] for f in penalty.fields])


def test_quarantined_row_is_replayed_once_after_correction(spark, small):
    root, settings, _, days = small
    landing = root / "replay"
    dim = tables.read(spark, tables.DIM_ENTERPRISE, settings)
    uscc = dim.where(F.col("founded_on") < F.lit(date(2026, 1, 1))).first().uscc
    bad_day, fixed_day = days[-1] + timedelta(days=5), days[-1] + timedelta(days=6)
    _penalty_file(landing / bad_day.isoformat(), uscc, "-500")
    _penalty_file(landing / fixed_day.isoformat(), uscc, "500")

    run_day(spark, landing, bad_day, settings, docs=False)
    q = tables.read(spark, tables.REJECTED_ROWS, settings).where(
        (F.col("source") == "penalty") & (F.col("_run_date") == F.lit(bad_day))
    )
    (held,) = q.collect()
    assert held.check_name == "non_negative_amount_yuan" and held.value == "-500"
    assert held._source_file.endswith(f"{bad_day}/penalty.csv") and held._source_row == 1
    assert held._batch_id.startswith(f"penalty:{bad_day}:")
    penalties = tables.read(spark, tables.FCT_PENALTY, settings)
    assert penalties.where("case_no = 'TEST-处罚-0001'").count() == 0

    ledgers = []
    for _ in range(2):  # the corrected delivery, and a repeat of it
        run_day(spark, landing, fixed_day, settings, docs=False)
        landed = penalties.where("case_no = 'TEST-处罚-0001'").collect()
        assert len(landed) == 1
        assert float(landed[0].amount_yuan) == 500.0
        assert landed[0]._source_file.endswith(f"{fixed_day}/penalty.csv")
        ledgers.append(set(ledger.read(spark, settings).collect()))
    assert ledgers[0] == ledgers[1]  # a re-run leaves the ledger exactly as it was
    assert q.count() == 1  # the original problem stays on record for its report
