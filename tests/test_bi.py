"""BI end to end: a small simulated world through the real pipeline into the serving marts,
a real Superset server (its own venv) provisioned through its REST API, per-district
row-level security, and every dashboard opened in a real headless Chromium.

Set ``RISK_INSIGHT_UPDATE_DOCS=1`` to refresh the screenshots kept under ``docs/bi/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from models.registry import read_artifact
from risk_insight.superset import SupersetClient, SupersetError, districts, provision
from risk_insight.superset.assets import dataset_specs, load_spec
from risk_insight.superset.gallery import (
    capture,
    chart_query,
    compare_figures,
    district_view,
    recorded_metrics,
    shown_model_figures,
)
from tests.conftest import free_port
from warehouse import serving
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SPEC = load_spec()
USERS_PASSWORD = "district-test-pw"


@pytest.fixture(scope="module")
def lake(downstream_world) -> Settings:
    """The session's downstream world (tests/conftest.py): delivered world + model, scores,
    insight runs and marts."""
    return downstream_world


def test_marts_reconcile_with_the_lake_and_a_rebuild_changes_nothing(spark, lake):
    from pyspark.sql import functions as F

    from pipelines.marts import build_marts
    from warehouse import tables

    def q(sql: str):
        return serving.query(sql, lake)

    tiers = tables.read(spark, tables.CREDIT_TIERS, lake).where(~F.col("excluded"))
    by_date = {r["as_of"]: r["count"] for r in tiers.groupBy("as_of").count().collect()}
    assert len(by_date) == 2
    dist = q("SELECT as_of, SUM(enterprises) AS n FROM mart_tier_distribution GROUP BY as_of")
    assert {r.as_of.date(): r.n for r in dist.itertuples()} == by_date
    listed = q("SELECT as_of, COUNT(*) AS n FROM mart_target_list GROUP BY as_of")
    with_region = tiers.where(F.col("region_code").isNotNull()).groupBy("as_of").count()
    assert {r.as_of.date(): r.n for r in listed.itertuples()} == {
        r["as_of"]: r["count"] for r in with_region.collect()
    }
    stats = q("SELECT SUM(penalties), SUM(inspections), SUM(complaints) FROM "
              "mart_enforcement_stats").iloc[0].tolist()  # fmt: skip
    counted = (tables.FCT_PENALTY, tables.FCT_INSPECTION, tables.FCT_COMPLAINT)
    facts = [tables.read(spark, t, lake).count() for t in counted]
    assert stats == facts
    assert q("SELECT SUM(checks) FROM mart_quality_trend").iat[0, 0] == (
        tables.read(spark, tables.QUALITY_RESULTS, lake).count()
    )
    assert q("SELECT SUM(rows) FROM mart_quarantine").iat[0, 0] == (
        tables.read(spark, tables.REJECTED_ROWS, lake).count()
    )
    assert q("SELECT COUNT(*) FROM mart_model_backtest WHERE is_current").iat[0, 0] >= 2 * 3

    def snapshot() -> dict:
        return {m.name: serving.read_mart(m, lake).astype(str).sort_values(
            list(serving.read_mart(m, lake).columns)).reset_index(drop=True)
            for m in serving.MARTS}  # fmt: skip

    before = snapshot()
    build_marts(spark, max(by_date), lake)  # the latest run again
    after = snapshot()
    for name, df in before.items():
        pd.testing.assert_frame_equal(df, after[name], obj=name)


@pytest.fixture(scope="module")
def superset(lake):
    from risk_insight.superset.server import start

    home = Path(tempfile.mkdtemp(prefix="superset-test-"))
    server = start(home, free_port(), password="admin-test-pw")
    yield server
    server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def provisioned(superset, lake):
    client = SupersetClient(superset.url, superset.username, superset.password)
    return client, provision(client, lake, users_password=USERS_PASSWORD)


def _snapshot(client: SupersetClient, done) -> dict[str, Any]:
    """Everything provisioning defines, without the modification stamps."""

    def stamp(key: str) -> bool:  # when and by whom, not what
        return key.startswith(("changed_", "created_")) or key in ("owners", "thumbnail_url")

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if not stamp(k)}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    return {
        "counts": {
            r: client.get(f"/api/v1/{r}/", page_size=1)["count"]
            for r in ("database", "dataset", "chart", "dashboard", "rowlevelsecurity")
        },
        "charts": {i: clean(client.get(f"/api/v1/chart/{i}")["result"])
                   for i in done.charts.values()},
        "datasets": {i: clean(client.get(f"/api/v1/dataset/{i}")["result"])
                     for i in done.datasets.values()},
        "dashboards": {i: clean(client.get(f"/api/v1/dashboard/{i}")["result"])
                       for i in done.dashboards.values()},
        "rls": {i: clean(client.get(f"/api/v1/rowlevelsecurity/{i}")["result"])
                for i in done.rls_rules.values()},
        "roles": sorted((r["name"], r["id"]) for r in
                        client.get("/api/v1/security/roles/", page_size=100)["result"]),
    }  # fmt: skip


def test_provisioning_twice_changes_nothing(provisioned, lake):
    client, done = provisioned
    assert set(done.dashboards) == set(SPEC["dashboards"])
    assert len(done.charts) == len(SPEC["charts"]) and len(done.datasets) == len(SPEC["datasets"])
    districts = serving.query(
        f"SELECT COUNT(DISTINCT region_code) FROM {serving.MART_TIER_DISTRIBUTION.name}", lake
    ).iat[0, 0]
    assert len(done.rls_rules) == districts > 1
    before = _snapshot(client, done)
    again = provision(client, lake, users_password=USERS_PASSWORD)
    assert (again.charts, again.datasets, again.dashboards, again.rls_rules, again.roles) == (
        done.charts, done.datasets, done.dashboards, done.rls_rules, done.roles
    )  # fmt: skip
    assert _snapshot(client, done) == before
    assert before["counts"]["chart"] == len(SPEC["charts"])


def _direct(chart: dict[str, Any], lake: Settings) -> set[tuple]:
    """The same numbers straight from the serving store with DuckDB."""
    ds = dataset_specs(SPEC)[chart["dataset"]]
    source = f"({ds.sql})" if ds.sql else ds.mart
    cols = ([chart["x_axis"]] if chart.get("x_axis") else []) + chart.get("groupby", [])
    mets = [m["sql"] for m in chart["metrics"]]
    where = " AND ".join(f"({w})" for w in chart.get("where", [])) or "TRUE"
    sql = (f"SELECT {', '.join([*cols, *mets])} FROM {source} AS t WHERE {where}"
           + (f" GROUP BY {', '.join(cols)}" if cols else ""))  # fmt: skip
    with duckdb.connect(str(serving.duckdb_path(lake.serving_store())), read_only=True) as con:
        return {_norm(r) for r in con.execute(sql).fetchall()}


def _norm(row) -> tuple:
    return tuple(round(float(v), 6) if isinstance(v, int | float) else str(v) for v in row)


@pytest.mark.parametrize(
    "chart_key",
    ["tier_share", "tiers_by_district", "tier_trend", "enforcement_trend", "quarantine_table",
     "hit_rate_by_method", "calibration", "drawn_total"],
)  # fmt: skip
def test_chart_data_api_returns_the_marts_numbers(provisioned, lake, chart_key):
    client, done = provisioned
    chart = SPEC["charts"][chart_key]
    rows = client.chart_data(chart_query(chart, done.datasets[chart["dataset"]]))
    got = {_norm(r.values()) for r in rows}
    assert got, f"{chart_key}: no rows"
    assert got == _direct(chart, lake)


def test_a_district_user_sees_only_its_districts_rows(provisioned, superset, lake):
    client, done = provisioned
    codes = serving.query(
        f"SELECT DISTINCT region_code FROM {serving.MART_TARGET_LIST.name} ORDER BY 1", lake
    )["region_code"].tolist()
    code = codes[len(codes) // 2]
    district = SupersetClient(superset.url, f"district_{code}", USERS_PASSWORD)
    analyst = SupersetClient(superset.url, "analyst", USERS_PASSWORD)
    count = [{"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}]
    regional = [k for k, d in dataset_specs(SPEC).items()
                if next(m for m in serving.MARTS if m.name == d.mart).region_column]  # fmt: skip
    assert len(regional) >= 5
    for key in regional:
        ctx = chart_query({}, done.datasets[key], columns=["region_code"], metrics=count)
        seen_by_district = {r["region_code"] for r in district.chart_data(ctx)}
        seen_by_analyst = {r["region_code"] for r in analyst.chart_data(ctx)}
        assert seen_by_district <= {code}, key
        assert len(seen_by_analyst) > 1, key
    lists = chart_query({}, done.datasets["target_list"], columns=["region_code"], metrics=count)
    assert {r["region_code"] for r in district.chart_data(lists)} == {code}
    # datasets without a district (quality, model) are not granted to district roles at all
    quality = chart_query({}, done.datasets["quality_trend"], columns=["source"], metrics=count)
    with pytest.raises(SupersetError, match="403"):
        district.chart_data(quality)
    assert analyst.chart_data(quality)


def test_every_dashboard_renders_in_chromium_without_errors_or_empty_charts(
    provisioned, superset, lake
):
    _, done = provisioned
    out = REPO / "docs" / "bi" if os.environ.get("RISK_INSIGHT_UPDATE_DOCS") else Path(
        tempfile.mkdtemp(prefix="bi-shots-")
    )  # fmt: skip
    seen = capture(superset.url, superset.username, superset.password, SPEC, out)
    assert not seen.problems, seen.problems
    assert set(seen.screenshots) == set(SPEC["dashboards"])
    for shot in seen.screenshots.values():
        assert shot.stat().st_size > 20_000
    print({k: round(v, 1) for k, v in seen.seconds.items()})
    # the model dashboard shows the recorded metrics of the model behind the lists
    current = serving.query(
        "SELECT DISTINCT model_version FROM mart_model_backtest WHERE is_current", lake
    )["model_version"].tolist()
    assert len(current) == 1
    recorded = recorded_metrics(read_artifact(lake, current[0], "metrics.json"))
    shown_auc = seen.texts["model_performance"]
    auc_text = next(t for name, t in shown_auc.items() if "AUC" in name)
    assert f"{recorded['auc']:.3f}" in auc_text, (auc_text, recorded["auc"])

    # a district user's list: the table's district column holds only that district
    code, name = sorted(districts(lake).items())[0]
    values, shot = district_view(
        superset.url, f"district_{code}", USERS_PASSWORD, "target-list", out
    )
    assert values == {name}, values
    shot.rename(out / f"target-list-district-{code}.png")


def test_model_dashboard_figures_equal_the_recorded_metrics(provisioned, lake):
    client, done = provisioned
    current = serving.query(
        "SELECT DISTINCT model_version FROM mart_model_backtest WHERE is_current", lake
    )["model_version"].iat[0]
    recorded = recorded_metrics(read_artifact(lake, current, "metrics.json"))
    shown = shown_model_figures(client, SPEC, done.datasets)
    assert not compare_figures(shown, recorded)
    assert len(shown) >= 1 + 2 * 3  # AUC and at least model / rules / random on two folds


def test_every_demo_user_gets_its_own_password(provisioned, superset, lake, tmp_path):
    """What ``make bi`` does: one generated password per demo user; a user's password opens
    only that user's account. (Runs last: it restores the shared test password after.)"""
    from risk_insight.superset.server import user_passwords

    client, done = provisioned
    users = sorted(done.roles)
    passwords, new = user_passwords(tmp_path, users)
    assert new == users and len(set(passwords.values())) == len(users)
    try:
        provision(client, lake, users_password=passwords)
        a, b = users[0], users[1]
        assert (
            SupersetClient(superset.url, a, passwords[a]).get("/api/v1/me/")["result"]["username"]
            == a
        )
        for user, password in ((a, passwords[b]), (b, USERS_PASSWORD)):
            with pytest.raises(SupersetError, match="401"):
                SupersetClient(superset.url, user, password)
    finally:
        provision(client, lake, users_password=USERS_PASSWORD)
