"""Nothing unexpected passes silently: a rejected file, a file no mapping claims and a missing
expected delivery each get a ledger row and a line in the owner's rectification report; by
default a rejected or unmatched file stops the run, naming the file and the reason."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pipelines.run import run_day
from quality import ledger
from quality.gates import GateBlocked
from quality.reports import write_run_reports
from warehouse import audit, contracts

DAY = date(2026, 10, 28)

pytestmark = pytest.mark.slow


def _penalty_without_dates(folder: Path) -> None:
    m = contracts.mapping("penalty")
    headers = [m.header_of(f) for f in m.fields if f != "decided_on"]
    with (folder / "penalty.csv").open("w", encoding="gbk", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(headers)
        w.writerow(["罚字1号", "91110105MA01ABCD13", "其他", "100", "朝阳区", "2026-10-01"])


def test_rejected_and_unmatched_files_block_and_are_reported(spark, settings, tmp_path):
    folder = tmp_path / "landing" / DAY.isoformat()
    folder.mkdir(parents=True)
    _penalty_without_dates(folder)
    (folder / "XZCF_20261028.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(GateBlocked) as caught:
        run_day(spark, tmp_path / "landing", DAY, settings, docs=False)
    message = str(caught.value)
    assert "penalty.csv" in message and "处罚决定日期 (decided_on)" in message
    assert "XZCF_20261028.csv" in message and "no source mapping" in message

    # the same deliveries again: the gate reuses its decision, and it blocks the same way
    with pytest.raises(GateBlocked) as again:
        run_day(spark, tmp_path / "landing", DAY, settings, docs=False)
    assert str(again.value) == message
    decisions = [
        json.loads(r.details)
        for r in audit.read(spark, settings)
        .where((F.col("event") == "gate") & (F.col("run_date") == F.lit(DAY)))
        .orderBy("occurred_at")
        .collect()
    ]
    assert [d["reused_from"] is not None for d in decisions] == [False, True]
    assert decisions[0]["counts"] == decisions[1]["counts"]

    led = ledger.read(spark, settings).where(F.col("run_date") == F.lit(DAY))
    rows = {(r.table_name, r.expectation): r for r in led.collect()}
    assert rows[("bronze.penalty", "file_accepted")].outcome == "blocked"
    assert rows[("landing", "file_accepted")].outcome == "blocked"
    # only the penalty file came: every other source the mappings expect daily is missing
    missing = rows[("landing", "delivery_expected")]
    assert missing.outcome == "warned" and "registry" in missing.observed_value

    reports = {r.source: r for r in write_run_reports(spark, DAY, settings)}
    assert {"penalty", "_unmatched", "registry"} <= set(reports)
    penalty = reports["penalty"].csv.read_text(encoding="utf-8-sig")
    assert "file_accepted" in penalty and "处罚决定日期" in penalty
    assert "XZCF_20261028.csv" in reports["_unmatched"].csv.read_text(encoding="utf-8-sig")
    assert "delivery_expected" in reports["registry"].csv.read_text(encoding="utf-8-sig")


def test_a_warn_policy_lets_the_run_go_on(spark, settings, tmp_path):
    folder = tmp_path / "landing" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("本批说明", encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: lenient\ndefault: block\nexpectations:\n  file_accepted: warn\n"
        "  delivery_expected: warn\n  volume: warn\n  freshness: warn\n",
        encoding="utf-8",
    )
    lenient = settings.replace(quality_policy=str(policy))
    run = run_day(spark, tmp_path / "landing", DAY, lenient, docs=False)
    assert run.quality["blocked"] == 0 and run.quality["warned"] >= 2
    assert [(r.source, r.status) for r in run.ingested] == [("_unmatched", "unmatched")]
