"""Conform's cost follows change (pipelines/conform/inputs.py): a delivery date re-run with the
same inputs reuses its conform (no silver or quarantine commit, the logged counts back) and
its gates' decisions (no ledger commit), and each input that changes how a source conforms
brings that source — only that one, or every fact when the registry changed — back: a
corrected file, a mapping, a forced re-conform.
On bureau B's hand-made extracts (tests/fixtures/bureau_b)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from pipelines.run import run_day
from tests.conftest import make_settings
from warehouse import audit, tables

FIXTURE = Path(__file__).parent / "fixtures" / "bureau_b"
DAY1 = date(2026, 3, 2)

pytestmark = pytest.mark.slow


def _versions(spark, s) -> dict[str, int]:
    """The Delta version of every silver table and of the quarantine."""
    out = {}
    for t in (tables.DIM_ENTERPRISE, *tables.SILVER_FACTS, tables.REJECTED_ROWS):
        path = t.path(s)
        if DeltaTable.isDeltaTable(spark, path):
            out[t.qualified] = DeltaTable.forPath(spark, path).history(1).first()["version"]
    return out


def _gates_reused(spark, s, run) -> dict[str, bool]:
    """Per gate, whether ``run`` (the latest run of its date) reused an earlier decision."""
    rows = (
        audit.read(spark, s)
        .where((F.col("event") == "gate") & (F.col("run_date") == F.lit(run.run_date)))
        .orderBy("occurred_at")
        .collect()
    )
    latest = {r.subject.split()[0]: json.loads(r.details) for r in rows}
    return {gate: d["reused_from"] is not None for gate, d in latest.items()}


def _counts(run) -> dict[str, tuple]:
    return {
        c.target: (c.rows_in, c.rows_quarantined, c.rows_duplicate, c.rows_conformed)
        for c in run.conformed
    }


def test_a_rerun_reuses_the_conform_and_each_changed_input_brings_its_source_back(spark, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURE / "landing", landing)
    mappings = tmp_path / "mappings"
    shutil.copytree(FIXTURE / "mappings", mappings)
    s = make_settings(tmp_path / "lake").replace(
        sources_dir=str(mappings), landing_root=str(landing)
    )

    first = run_day(spark, landing, DAY1, s, docs=False)
    assert first.conformed and not any(c.reused for c in first.conformed)
    versions = _versions(spark, s)

    # 1. nothing new: every source reused with the counts logged, no table written; both
    # gates reuse their decisions, so the ledger is not written either
    ledger_version = tables.delta(spark, tables.QUALITY_RESULTS, s).history(1).first()["version"]
    again = run_day(spark, landing, DAY1, s, docs=False)
    assert all(c.reused for c in again.conformed), again.conformed
    assert _counts(again) == _counts(first)
    assert _versions(spark, s) == versions
    assert _gates_reused(spark, s, again) == {"bronze": True, "silver": True}
    assert again.quality == first.quality
    assert tables.delta(spark, tables.QUALITY_RESULTS, s).history(1).first()["version"] == (
        ledger_version
    )

    # 2. a corrected penalty file for the same day: a new batch of penalty only
    (landing / DAY1.isoformat() / "XZCF_20260302_更正.csv").write_text(
        "行政处罚决定书文号|统一社会信用代码|处罚决定日期|违法行为类型|罚没款金额（万元）|处罚机关|公示日期\n"
        "深市监罚〔2025〕130号|91440305MA5FXXH2KY|20251120|食品安全|3|深圳市市场监督管理局|20251125\n",
        encoding="utf-8",
    )
    corrected = run_day(spark, landing, DAY1, s, docs=False)
    fresh = {c.source for c in corrected.conformed if not c.reused}
    assert fresh == {"penalty"}
    assert _gates_reused(spark, s, corrected) == {"bronze": False, "silver": False}
    cases = tables.read(spark, tables.FCT_PENALTY, s).where(
        F.col("case_no") == "深市监罚〔2025〕130号"
    )
    assert cases.count() == 1

    # 3. the penalty mapping learns a date spelling: penalty again, the others reused
    path = mappings / "penalty.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "date_formats: [yyyyMMdd]", "date_formats: [yyyyMMdd, yyyy-MM-dd]"
        ),
        encoding="utf-8",
    )
    from warehouse import contracts

    contracts._load.cache_clear()  # the mappings are read once per folder and process
    remapped = run_day(spark, landing, DAY1, s, docs=False)
    assert {c.source for c in remapped.conformed if not c.reused} == {"penalty"}

    # 4. forced: every source conformed again, and it changes nothing
    silver = tables.read(spark, tables.FCT_PENALTY, s).collect()
    forced = run_day(spark, landing, DAY1, s, docs=False, reconform=True)
    assert not any(c.reused for c in forced.conformed)
    assert _gates_reused(spark, s, forced) == {"bronze": False, "silver": False}
    assert _counts(forced) == _counts(remapped)
    after = tables.read(spark, tables.FCT_PENALTY, s).collect()
    assert sorted(map(tuple, after)) == sorted(map(tuple, silver))
