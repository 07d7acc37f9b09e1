"""The audit trail (warehouse/audit.py), Delta conflict handling (warehouse/conflicts.py and
tables.ensure) and the lake comparison behind ``risk-insight lake diff`` (warehouse/lakediff.py).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from warehouse import audit, conflicts, lakediff, tables


class ConcurrentAppendException(Exception):  # named like Delta's: what conflict_kind reads
    pass


def test_conflicts_are_retried_then_reported_and_other_errors_pass_through():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentAppendException("Files were added to partition [_run_date=...]")
        return "committed"

    said: list[str] = []
    assert conflicts.retrying(flaky, "merge x", base_delay=0, say=said.append) == "committed"
    assert len(calls) == 3 and len(said) == 2 and "ConcurrentAppendException" in said[0]

    def always() -> None:
        raise ConcurrentAppendException("again")

    with pytest.raises(conflicts.WriteConflict, match="merge y: ConcurrentAppendException on each"):
        conflicts.retrying(always, "merge y", attempts=3, base_delay=0)

    calls.clear()

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError, match="not a conflict"):
        conflicts.retrying(broken, "z", base_delay=0)
    assert len(calls) == 1
    assert conflicts.conflict_kind(RuntimeError("[DELTA_METADATA_CHANGED] ...")) is None
    assert conflicts.conflict_kind(RuntimeError("x MetadataChangedException y")) == (
        "MetadataChangedException"
    )


def _merge_during_an_append(spark, path: str) -> Exception | None:
    """Run a MERGE into ``path`` whose source takes a while, and append to the table with
    another writer (the ``deltalake`` library) as soon as the MERGE's first job runs, i.e.
    after it took its snapshot; returns what the MERGE raised (None: it committed first)."""
    import threading
    import time

    import pandas as pd
    from delta.tables import DeltaTable
    from deltalake import write_deltalake

    sc = spark.sparkContext
    slow = spark.range(30_000_000).agg(F.sum("id").alias("s"))
    src = slow.select(F.lit(1).alias("k"), F.concat(F.lit("A"), F.substring(
        F.col("s").cast("string"), 1, 0)).alias("v"))  # fmt: skip
    raised: list[Exception] = []

    def merge() -> None:
        sc.setJobGroup("merge-under-test", "merge racing an append", True)
        try:
            (DeltaTable.forPath(spark, path).alias("t").merge(src.alias("s"), "t.k = s.k")
             .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=merge)
    thread.start()
    while thread.is_alive() and not sc.statusTracker().getJobIdsForGroup("merge-under-test"):
        time.sleep(0.02)
    other = pd.DataFrame({"k": [9], "v": ["other writer"]}).astype({"k": "int32"})
    write_deltalake(path, other, mode="append")
    thread.join()
    return raised[0] if raised else None


def test_a_real_concurrent_append_is_recognised_and_the_retry_commits(spark, tmp_path):
    """Another writer appends to the table a MERGE is reading, after the MERGE took its
    snapshot: Delta refuses the MERGE's commit (nothing of it lands); the retry commits."""
    from delta.tables import DeltaTable

    for attempt in range(3):  # the other writer must land while the MERGE runs
        path = str(tmp_path / f"t{attempt}")
        spark.createDataFrame([(1, "a"), (2, "b")], "k INT, v STRING").write.format(
            "delta").save(path)  # fmt: skip
        refused = _merge_during_an_append(spark, path)
        if refused is not None:
            break
    assert refused is not None, "the MERGE committed before the other writer three times"
    assert conflicts.conflict_kind(refused) == "ConcurrentAppendException", repr(refused)[:500]
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert rows == [(1, "a"), (2, "b"), (9, "other writer")]  # the refused MERGE wrote nothing

    def merge() -> None:
        src = spark.createDataFrame([(1, "A")], "k INT, v STRING")
        (DeltaTable.forPath(spark, path).alias("t").merge(src.alias("s"), "t.k = s.k")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())  # fmt: skip

    conflicts.retrying(merge, "merge", base_delay=0)
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert rows == [(1, "A"), (2, "b"), (9, "other writer")]


def test_constraint_added_by_another_process_first_is_accepted_if_the_same(spark, settings):
    t = tables.CONFORM_LOG
    tables.ensure(spark, t, settings)
    path = t.path(settings)
    # what a second process creating the same table sees: the constraint is already there
    tables.add_constraint(spark, path, "reconciles", t.checks["reconciles"])
    with pytest.raises(ValueError, match="already has a constraint reconciles"):
        tables.add_constraint(spark, path, "reconciles", "rows_in >= 0")
    tables._ENSURED.pop(path, None)
    tables.ensure(spark, t, settings)  # an existing table with its constraints: nothing to do


def test_a_lake_from_an_older_release_gains_the_declared_new_columns(spark, settings):
    from dataclasses import replace

    from pyspark.sql import types as T

    old = tables.CONFORM_LOG
    tables.append(spark.createDataFrame([tuple(_row(old).values())], old.schema), old, settings)
    added = T.StructField("locality", T.StringType())
    newer = replace(old, schema=T.StructType([*old.schema.fields, added]))
    tables._ENSURED.pop(old.path(settings), None)
    got = tables.read(spark, newer, settings).collect()
    assert len(got) == 1 and got[0]["locality"] is None  # kept, NULL in the new column
    required = T.StructField("n", T.LongType(), False)
    strict = replace(old, schema=T.StructType([*newer.schema.fields, required]))
    tables._ENSURED.pop(old.path(settings), None)
    with pytest.raises(ValueError, match="lacks the NOT NULL column"):
        tables.ensure(spark, strict, settings)


def _row(table: tables.Table) -> dict:
    """One row that satisfies ``table``'s types, NOT NULLs and checks (zeros and stamps)."""
    from datetime import date, datetime

    from pyspark.sql import types as T

    values = {T.StringType: "x", T.LongType: 0, T.IntegerType: 0, T.DoubleType: 0.0,
              T.BooleanType: True, T.DateType: date(2026, 1, 1),
              T.TimestampType: datetime(2026, 1, 1)}  # fmt: skip
    return {f.name: values.get(type(f.dataType)) for f in table.schema.fields}


def test_recorded_writes_start_and_end_with_outcome_and_who(spark, settings):
    class Blocked(RuntimeError):
        audit_outcome = "blocked"

    with audit.recorded(spark, settings, "run", "delivery 2026-10-29", inputs={"f": 1}) as rec:
        rec.details["rows"] = 5
    with pytest.raises(Blocked), audit.recorded(spark, settings, "run", "delivery 2026-10-30"):
        raise Blocked("gate said no")
    rows = audit.read(spark, settings).orderBy("occurred_at").collect()
    assert [(r.subject, r.action, r.outcome) for r in rows] == [
        ("delivery 2026-10-29", "start", "started"),
        ("delivery 2026-10-29", "end", "succeeded"),
        ("delivery 2026-10-30", "start", "started"),
        ("delivery 2026-10-30", "end", "blocked"),
    ]
    assert rows[0].run_id == rows[1].run_id != rows[2].run_id
    assert json.loads(rows[1].details) == {"rows": 5} and json.loads(rows[1].inputs) == {"f": 1}
    assert "gate said no" in json.loads(rows[3].details)["error"]
    assert json.loads(rows[0].versions)["code"]
    assert rows[0].pid == os.getpid() and rows[0].os_user and rows[0].host
    assert rows[0].command == " ".join(sys.argv)  # pytest's, or an xdist worker's "-c"


def test_every_delivery_run_left_its_start_end_and_gate_decisions(spark, delivered_world):
    s = delivered_world.settings
    ev = audit.read(spark, s)
    days = {r.run_date for r in delivered_world.runs}
    # (other tests may re-run a day of this world: every start has its end, all succeeded)
    runs = ev.where("event = 'run'").groupBy("run_date", "action", "outcome").count().collect()
    counts = {(r.run_date, r.action, r.outcome): r["count"] for r in runs}
    assert set(counts) == {
        (d, a, o) for d in days for a, o in (("start", "started"), ("end", "succeeded"))
    }
    assert all(counts[(d, "start", "started")] == counts[(d, "end", "succeeded")] for d in days)
    gates = ev.where("event = 'gate'").collect()
    assert {(g.run_date, g.subject.split()[0]) for g in gates} == {
        (d, g) for d in days for g in ("bronze", "silver")
    }
    first = next(g for g in gates if g.subject.startswith("silver"))
    assert set(json.loads(first.inputs)["tables"]) == {t.qualified for t in tables.SILVER_FACTS} | {
        "silver.dim_enterprise"
    }
    assert json.loads(first.versions)["quality_policy"]


def _small_lake(spark, root: Path, v: str = "x", stamp: str = "2026-01-01") -> Path:
    df = spark.createDataFrame(
        [(1, v, stamp), (2, "y", stamp)], "k INT, v STRING, _ingested_at STRING"
    )
    df.write.format("delta").save(str(root / "bronze" / "a"))
    spark.createDataFrame([(1,)], "n INT").write.format("delta").save(
        str(root / "audit" / "events")
    )
    return root


def test_lake_diff_compares_content_not_stamps_or_the_audit_trail(spark, tmp_path):
    from risk_insight.cli import main

    a = _small_lake(spark, tmp_path / "a")
    b = _small_lake(spark, tmp_path / "b", stamp="2026-02-02")
    spark.createDataFrame([(5,)], "n INT").write.format("delta").mode("append").save(
        str(b / "audit" / "events")
    )
    same = lakediff.diff(a, b)
    assert same.same and same.equal == ["bronze/a"], same.report()
    assert main(["lake", "diff", str(a), str(b)]) == 0

    c = _small_lake(spark, tmp_path / "c", v="changed")
    spark.createDataFrame([(1,)], "n INT").write.format("delta").save(str(c / "silver" / "new"))
    other = lakediff.diff(a, c)
    assert not other.same and other.only_b == ["silver/new"]
    assert "columns differing: ['v']" in other.differing["bronze/a"]
    assert main(["lake", "diff", str(a), str(c)]) == 1


def test_lake_diff_masks_when_and_where_a_model_was_trained(spark, tmp_path):
    def lake(name: str, trained: str, digest: str) -> Path:
        root = tmp_path / name
        version = f"m{trained}-{digest}"
        rows = [(version, f"{root.resolve()}/models/{version}", f"{root.parent.resolve()}/x.csv")]
        schema = "model_version STRING, artifact_path STRING, note STRING"
        df = spark.createDataFrame(rows, schema)
        df.write.format("delta").save(str(root / "audit" / "model_registry"))
        return root

    a = lake("a", "20261203101500", "0a1b2c3d")
    later = lake("b", "20270101000000", "0a1b2c3d")  # same booster, trained later elsewhere
    assert lakediff.diff(a, later).same, lakediff.diff(a, later).report()
    other = lakediff.diff(a, lake("c", "20261203101500", "ffffffff"))  # another booster
    assert not other.same
    assert "'model_version'" in other.differing["audit/model_registry"]
    seen = lakediff.contents(a)["audit/model_registry"].iloc[0]
    assert seen.artifact_path == "<lake>/models/m<trained_at>-0a1b2c3d"
    assert seen.note == "<lake>/../x.csv"  # a file beside the lake (landing, outputs)


def test_demo_user_passwords_are_generated_per_user_and_kept_private(tmp_path):
    from risk_insight.superset.server import user_passwords

    first, new = user_passwords(tmp_path, ["analyst", "district_110101", "district_110102"])
    assert new == ["analyst", "district_110101", "district_110102"]
    assert len(set(first.values())) == 3 and all(len(p) >= 16 for p in first.values())
    path = tmp_path / "user_passwords.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, new = user_passwords(tmp_path, ["analyst", "district_110101", "district_110105"])
    assert new == ["district_110105"]
    assert again["analyst"] == first["analyst"] and again["district_110105"] not in first.values()
    assert set(json.loads(path.read_text())) == set(first) | {"district_110105"}


def test_insight_runs_recorded_their_plan_draws_and_list_exports(spark, downstream_world):
    s = downstream_world
    ev = audit.read(spark, s)
    plans = ev.where("event = 'plan_draw'").collect()
    lists = ev.where("event = 'list_export'").collect()
    assert len(plans) == 2 and len(lists) == 2  # two insight runs
    plan = json.loads(plans[-1].details)
    assert {"seed", "as_of", "drawn", "public_csv"} <= set(plan) and plan["drawn"] > 0
    assert json.loads(plans[-1].inputs)["tables"]["gold.inspection_plan"] is not None
    assert json.loads(plans[-1].versions)["tier_policy"]
    files = json.loads(lists[-1].details)
    assert len(files) > 1 and all(Path(f["csv"]).is_file() for f in files.values())


def test_a_plan_and_a_list_are_reproduced_from_their_audit_rows(spark, downstream_world):
    """From the audit row alone: the plan's public files recompute the draw under the revealed,
    committed seed the row names, with its drawn count; the tiers it drew from are read back
    at the Delta version the row names and equal the tiers of its as-of date now; each list
    export's district rows equal the district's rows of gold.target_list at that date."""
    import pandas as pd

    from risk_insight.lists import HEADERS, district_list
    from risk_insight.plan import verify_plan

    s = downstream_world
    ev = audit.read(spark, s)
    draw = ev.where("event = 'plan_draw'").orderBy("occurred_at").collect()[-1]
    d = json.loads(draw.details)
    check = verify_plan(d["public_csv"])
    assert check.ok, check.problems
    manifest = json.loads((Path(d["public_csv"]).parent / "manifest.json").read_text("utf-8"))
    assert int(manifest["seed"]) == d["seed"]
    planned = tables.read(spark, tables.INSPECTION_PLAN, s).where(
        F.col("plan_id") == manifest["plan_id"]
    )
    assert planned.count() == d["drawn"]
    version = json.loads(draw.inputs)["tables"]["gold.credit_tiers"]
    path = tables.CREDIT_TIERS.path(s)
    as_of = F.col("as_of") == F.lit(d["as_of"])
    cols = ["uscc", "tier", "probability"]
    then = spark.read.format("delta").option("versionAsOf", version).load(path).where(as_of)
    now = tables.read(spark, tables.CREDIT_TIERS, s).where(as_of)
    assert then.count() > 0 and then.select(cols).exceptAll(now.select(cols)).isEmpty()

    export = ev.where("event = 'list_export'").orderBy("occurred_at").collect()[-1]
    files = json.loads(export.details)
    for region, f in list(files.items())[:3]:
        written = pd.read_csv(f["csv"], dtype=str, encoding="utf-8-sig")
        rebuilt = district_list(spark, region, export.run_date, s)
        assert len(written) == f["rows"] == len(rebuilt)
        assert list(written[HEADERS["uscc"]].str.lstrip("'")) == list(rebuilt["uscc"])
