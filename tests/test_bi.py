"""BI end to end: a small simulated world through the real pipeline into the serving marts,
a real Superset server (its own venv) provisioned through its REST API, per-district
row-level security, and every dashboard opened in a real headless Chromium.

Set ``RISK_INSIGHT_UPDATE_DOCS=1`` to refresh the screenshots kept under ``docs/bi/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from risk_insight.superset import SupersetClient, SupersetError, districts, provision
from risk_insight.superset.assets import dataset_specs, load_spec
from tests.conftest import free_port, make_settings
from warehouse import serving
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SPEC = load_spec()
USERS_PASSWORD = "district-test-pw"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # the Superset frontend calls outside hosts (telemetry, web fonts): keep it on loopback
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
EMPTY_TEXTS = ("此查询没有数据返回", "没有数据", "No results were returned", "No data")


@pytest.fixture(scope="module")
def lake(spark, delivered_world, tmp_path_factory) -> Settings:
    """A copy of the session's delivered world, then a LightGBM model trained and registered on
    a short schedule, two monthly scorings and insight runs, and the marts."""
    from models.demo import next_month
    from models.score import score
    from models.train import data_span, make_schedule, train_and_register
    from pipelines.marts import build_marts
    from risk_insight.insight import run_insight
    from risk_insight.plan import load_roster

    root = tmp_path_factory.mktemp("bi") / "world"
    shutil.copytree(delivered_world.root, root)
    s = make_settings(root).model_copy(update={"outputs_root": str(root / "outputs")})
    load_roster(spark, root / "sim" / "reference" / "inspectors.csv", s)
    first, last = data_span(spark, s)
    schedule = make_schedule(
        first, last, horizon_days=90, n_folds=2, fold_step_months=3, train_step_months=2,
        warmup_months=3,
    )  # fmt: skip
    decision = train_and_register(
        spark, s, num_rounds=20, horizon_days=90, schedule=schedule,
        truth_dir=str(root / "sim" / "truth"),
    )  # fmt: skip
    this_month = next_month(last)
    previous = date(this_month.year - (this_month.month == 1), (this_month.month - 2) % 12 + 1, 1)
    for as_of in (previous, this_month):  # two runs: a trend, and warnings against the first
        score(spark, as_of, s, decision.challenger)
        run_insight(spark, as_of, s)
    build_marts(spark, None, s)
    return s


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


def _query_context(chart: dict[str, Any], dataset_id: int, columns=None, metrics=None) -> dict:
    """The query a chart of ``dashboards.yaml`` sends (what the frontend builds from it)."""
    cols = columns if columns is not None else (
        ([chart["x_axis"]] if chart.get("x_axis") else []) + chart.get("groupby", [])
    )  # fmt: skip
    mets = metrics if metrics is not None else [
        {"expressionType": "SQL", "sqlExpression": m["sql"], "label": m["label"]}
        for m in chart.get("metrics", [])
    ]  # fmt: skip
    where = " AND ".join(f"({w})" for w in chart.get("where", []))
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": True,
        "queries": [{"columns": cols, "metrics": mets, "filters": [], "orderby": [],
                     "extras": {"where": where} if where else {}, "row_limit": 50000}],
        "result_format": "json",
        "result_type": "full",
    }  # fmt: skip


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
    rows = client.chart_data(_query_context(chart, done.datasets[chart["dataset"]]))
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
        ctx = _query_context({}, done.datasets[key], columns=["region_code"], metrics=count)
        seen_by_district = {r["region_code"] for r in district.chart_data(ctx)}
        seen_by_analyst = {r["region_code"] for r in analyst.chart_data(ctx)}
        assert seen_by_district <= {code}, key
        assert len(seen_by_analyst) > 1, key
    lists = _query_context({}, done.datasets["target_list"], columns=["region_code"], metrics=count)
    assert {r["region_code"] for r in district.chart_data(lists)} == {code}
    # datasets without a district (quality, model) are not granted to district roles at all
    quality = _query_context({}, done.datasets["quality_trend"], columns=["source"], metrics=count)
    with pytest.raises(SupersetError, match="403"):
        district.chart_data(quality)
    assert analyst.chart_data(quality)


def _login(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/superset/welcome/**", timeout=60_000)


def test_every_dashboard_renders_in_chromium_without_errors_or_empty_charts(
    provisioned, superset, lake
):
    from playwright.sync_api import sync_playwright

    _, done = provisioned
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    out = REPO / "docs" / "bi" if os.environ.get("RISK_INSIGHT_UPDATE_DOCS") else Path(
        tempfile.mkdtemp(prefix="bi-shots-")
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
        _login(page, superset.url, superset.username, superset.password)
        for key, dash in SPEC["dashboards"].items():
            started = time.monotonic()
            page.goto(f"{superset.url}/superset/dashboard/{dash['slug']}/?standalone=1")
            holders = page.locator(".dashboard-component-chart-holder")
            holders.first.wait_for(timeout=60_000)
            page.wait_for_function(
                "document.querySelectorAll('.dashboard-component-chart-holder .loading')"
                ".length === 0",
                timeout=90_000,
            )
            page.wait_for_timeout(1500)  # let ECharts finish drawing before the screenshot
            expected = sum(len(row) for row in dash["rows"])
            if holders.count() != expected:
                problems.append(f"{key}: {holders.count()} charts, expected {expected}")
            for i in range(holders.count()):
                h = holders.nth(i)
                title = h.locator(".header-title, [data-test=editable-title]").first
                name = title.inner_text() if title.count() else f"chart {i}"
                if h.locator("[role=alert], .alert-danger").count():
                    problems.append(f"{key} / {name}: error: {h.inner_text()[:200]}")
                text = h.inner_text()
                if any(t in text for t in EMPTY_TEXTS):
                    problems.append(f"{key} / {name}: renders empty")
            page.screenshot(path=str(out / f"{dash['slug']}.png"), full_page=True)
            assert (out / f"{dash['slug']}.png").stat().st_size > 20_000
            print(f"{key}: {time.monotonic() - started:.1f} s")

        # a district user's list: the table's district column holds only that district
        code, name = sorted(districts(lake).items())[0]
        page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
        _login(page, superset.url, f"district_{code}", USERS_PASSWORD)
        page.goto(f"{superset.url}/superset/dashboard/target-list/?standalone=1")
        cells = page.locator(".dashboard-component-chart-holder table tbody tr td:first-child")
        cells.first.wait_for(timeout=90_000)
        page.wait_for_timeout(1500)
        seen = {c.strip() for c in cells.all_inner_texts()}
        page.screenshot(path=str(out / f"target-list-district-{code}.png"), full_page=True)
        browser.close()
    assert not problems, problems
    assert seen == {name}, seen
