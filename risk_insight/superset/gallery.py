"""Dashboards seen in a real browser: every dashboard opened in headless Chromium, checked for
chart errors and empty charts, saved as a PNG, and the model dashboard's figures compared with
the recorded metrics of the model it shows.

``capture`` is what the BI test and ``risk-insight bi gallery`` (the README's screenshots,
``make gallery``) both run, so the pictures in ``docs/bi`` pass the same checks as the suite.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from risk_insight.superset.client import SupersetClient

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


def chart_query(
    chart: dict[str, Any],
    dataset_id: int,
    columns: list[str] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The chart-data query a chart of ``dashboards.yaml`` sends (what the frontend builds)."""
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


def chromium() -> str:
    """Debian's Chromium (the tests and the gallery never download a browser)."""
    return shutil.which("chromium") or "/usr/bin/chromium"


def login(page: Any, url: str, username: str, password: str) -> None:
    """Log a Playwright page in to Superset."""
    page.goto(f"{url}/login/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/superset/welcome/**", timeout=60_000)


@dataclass
class Capture:
    """What the browser saw: problems found, screenshots written, each chart's text."""

    problems: list[str] = field(default_factory=list)
    screenshots: dict[str, Path] = field(default_factory=dict)
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # dashboard → title → text
    seconds: dict[str, float] = field(default_factory=dict)


def capture(url: str, username: str, password: str, spec: dict[str, Any], out: Path) -> Capture:
    """Open every dashboard of ``spec`` as ``username``, wait for its charts, record chart
    errors, empty charts and each chart's visible text, and save ``<out>/<slug>.png``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    seen = Capture()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
        login(page, url, username, password)
        for key, dash in spec["dashboards"].items():
            started = time.monotonic()
            page.goto(f"{url}/superset/dashboard/{dash['slug']}/?standalone=1")
            holders = page.locator(".dashboard-component-chart-holder")
            holders.first.wait_for(timeout=60_000)
            page.wait_for_function(
                "document.querySelectorAll('.dashboard-component-chart-holder .loading')"
                ".length === 0",
                timeout=90_000,
            )
            try:  # every chart drawn: a canvas, an SVG, a table or a big number in each holder
                page.wait_for_function(
                    "[...document.querySelectorAll('.dashboard-component-chart-holder')].every("
                    "h => h.querySelector('canvas, svg, table, [class*=\"big-number\"]'))",
                    timeout=90_000,
                )
            except PlaywrightTimeout:
                seen.problems.append(f"{key}: some charts were not drawn within 90 s")
            page.wait_for_timeout(1500)  # let ECharts finish drawing before the screenshot
            expected = sum(len(row) for row in dash["rows"])
            if holders.count() != expected:
                seen.problems.append(f"{key}: {holders.count()} charts, expected {expected}")
            seen.texts[key] = {}
            for i in range(holders.count()):
                h = holders.nth(i)
                title = h.locator(".header-title, [data-test=editable-title]").first
                name = title.inner_text() if title.count() else f"chart {i}"
                text = h.inner_text()
                seen.texts[key][name] = text
                if h.locator("[role=alert], .alert-danger").count():
                    seen.problems.append(f"{key} / {name}: error: {text[:200]}")
                if any(t in text for t in EMPTY_TEXTS):
                    seen.problems.append(f"{key} / {name}: renders empty")
            shot = out / f"{dash['slug']}.png"
            # A full-page screenshot of a page taller than the window resizes the window, and a
            # resize makes Superset redraw every chart: the shot caught them blank. So the
            # window is made as tall as the page first, and the redraw is waited for.
            height = page.evaluate("document.documentElement.scrollHeight")
            if height > page.viewport_size["height"]:
                page.set_viewport_size({"width": page.viewport_size["width"], "height": height})
                page.wait_for_timeout(3000)
            page.screenshot(path=str(shot), full_page=True)
            seen.screenshots[key] = shot
            seen.seconds[key] = time.monotonic() - started
        browser.close()
    return seen


def district_view(
    url: str, username: str, password: str, slug: str, out: Path
) -> tuple[set[str], Path]:
    """The first column of the first table on dashboard ``slug`` as ``username`` sees it, and
    the screenshot of that view (``<out>/<slug>-<username>.png``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
        login(page, url, username, password)
        page.goto(f"{url}/superset/dashboard/{slug}/?standalone=1")
        cells = page.locator(".dashboard-component-chart-holder table tbody tr td:first-child")
        cells.first.wait_for(timeout=90_000)
        page.wait_for_timeout(1500)
        values = {c.strip() for c in cells.all_inner_texts()}
        shot = out / f"{slug}-{username}.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    return values, shot


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def model_figures(metrics: dict[str, Any], population: str = "drawn") -> dict[str, float]:
    """What the model dashboard must show for a model with these recorded metrics: its mean
    AUC over folds and the hit rate at the C+D budget of every method on every fold."""
    out = {"auc": _mean([f["populations"][population]["model"].get("auc")
                         for f in metrics["folds"].values()])}  # fmt: skip
    for fold, f in metrics["folds"].items():
        for method, m in f["populations"][population].items():
            if isinstance(m, dict) and "precision_at_k" in m:
                out[f"{fold}/{method}"] = m["precision_at_k"]
    return out


def shown_model_figures(
    client: SupersetClient, spec: dict[str, Any], datasets: dict[str, int]
) -> dict[str, float]:
    """The same figures as the model dashboard's charts return them (chart-data API)."""
    auc_chart, hits_chart = spec["charts"]["model_auc"], spec["charts"]["hit_rate_by_method"]
    auc = client.chart_data(chart_query(auc_chart, datasets[auc_chart["dataset"]]))
    out = {"auc": float(next(iter(auc[0].values())))} if auc else {}
    hits = client.chart_data(chart_query(hits_chart, datasets[hits_chart["dataset"]]))
    method_of = {"模型": "model", "规则": "rules", "随机": "random", "理想(真实风险)": "oracle"}
    label = hits_chart["metrics"][0]["label"]
    for r in hits:
        out[f"{r['fold_as_of']}/{method_of[r['method_zh']]}"] = float(r[label])
    return out


def compare_figures(shown: dict[str, float], recorded: dict[str, float]) -> list[str]:
    """Every figure that differs (beyond rounding) or is missing on either side."""
    problems = []
    for key in sorted(set(shown) | set(recorded)):
        a, b = shown.get(key), recorded.get(key)
        both_nan = a is not None and b is not None and math.isnan(a) and math.isnan(b)
        if a is None or b is None or not (both_nan or math.isclose(a, b, abs_tol=1e-9)):
            problems.append(f"{key}: dashboard {a}, recorded {b}")
    return problems


def recorded_metrics(metrics_json: str) -> dict[str, float]:
    """:func:`model_figures` of a model's ``metrics.json`` text."""
    return model_figures(json.loads(metrics_json))
