"""Great Expectations as the engine of record: one file context per Data Docs folder, suites
validated through GX's Spark datasource, or its pandas one for a batch small enough to collect
(``quality_pandas_max_rows``: a Spark job per metric costs seconds where the rows cost
milliseconds), results turned into ledger rows. Row rules are Spark predicates either way."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402 (analytics must be off before the import)
import pandas as pd  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402

from quality.expectations import RULES, ExpectRowRule, verdict_column  # noqa: E402
from warehouse import caches  # noqa: E402
from warehouse.settings import Settings  # noqa: E402

DATASOURCE = "lakehouse"
PANDAS_DATASOURCE = "lakehouse_collected"
LINEAGE_INDEX = ["_source_file", "_source_row"]


@dataclass(frozen=True)
class CheckResult:
    """One expectation's result on one run: a row of ``audit.quality_results``."""

    run_date: date
    table_name: str
    source: str
    expectation: str
    expectation_type: str
    suite: str
    column_name: str | None
    defect_class: str | None
    gate: str
    outcome: str  # passed | warned | quarantined | blocked
    success: bool
    observed_value: str | None
    threshold: str | None
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    rows_quarantined: int
    policy_version: str


def docs_root(settings: Settings) -> Path:
    """Folder of the GX project and its Data Docs (``data_docs_root`` or beside the lake)."""
    return Path(settings.data_docs_dir())


_CONTEXTS: dict[str, Any] = caches.remember({})


def context(settings: Settings) -> Any:
    """The GX file context under :func:`docs_root` (one per folder and process)."""
    root = str(docs_root(settings))
    if root not in _CONTEXTS:
        Path(root).mkdir(parents=True, exist_ok=True)
        ctx = gx.get_context(mode="file", project_root_dir=root)
        ctx.variables.progress_bars = {"globally": False}
        _CONTEXTS[root] = ctx
    return _CONTEXTS[root]


def _batch_definition(ctx: Any, dataset: str, on_pandas: bool = False) -> Any:
    name = PANDAS_DATASOURCE if on_pandas else DATASOURCE
    try:
        source = ctx.data_sources.get(name)
    except (KeyError, LookupError, ValueError):
        source = (
            ctx.data_sources.add_pandas(name) if on_pandas else ctx.data_sources.add_spark(name)
        )
    try:
        asset = source.get_asset(dataset)
    except LookupError:
        asset = source.add_dataframe_asset(dataset)
    try:
        return asset.get_batch_definition("whole")
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_whole_dataframe("whole")


def collected(df: DataFrame, expectations: list[Any], max_rows: int) -> pd.DataFrame | None:
    """``df`` as pandas, with Spark's verdict on each row rule of ``expectations`` in its
    :func:`~quality.expectations.verdict_column`, when it has at most ``max_rows`` rows;
    None when it is bigger (or ``max_rows`` is 0): validate it on Spark."""
    if max_rows <= 0:
        return None
    rules = {e.rule for e in expectations if isinstance(e, ExpectRowRule)}
    verdicts = {verdict_column(r): RULES[r].column() for r in sorted(rules)}
    read = _columns_read(expectations, df.columns)
    keep = [c for c in df.columns if c in read] or df.columns[:1]
    # One Spark job: collect one row more than allowed, and give up when it is there.
    rows = df.withColumns(verdicts).select(*keep, *verdicts).limit(max_rows + 1).toArrow()
    return None if rows.num_rows > max_rows else rows.to_pandas()


def _columns_read(expectations: list[Any], columns: list[str]) -> set[str]:
    """The columns ``expectations`` look at (every column when one of them does not say)."""
    read = set(LINEAGE_INDEX)
    for e in expectations:
        named = getattr(e, "column_list", None) or [getattr(e, "column", None)]
        declared = getattr(type(e), "reads", None)
        if declared is not None:
            read |= set(declared)
        elif named != [None]:
            read |= set(named)
        elif not isinstance(e, gx.expectations.ExpectTableRowCountToBeBetween):
            return set(columns)
    return read


def _outcome(success: bool, gate: str, row_level: bool) -> str:
    if success:
        return "passed"
    if gate == "warn":
        return "warned"
    return "quarantined" if row_level else "blocked"


def validate(
    settings: Settings,
    *,
    suite_name: str,
    dataset: str,
    df: DataFrame | pd.DataFrame,
    expectations: list[Any],
    run_date: date,
    table_name: str,
    source: str,
    policy_version: str,
) -> list[CheckResult]:
    """Validate ``df`` with a suite of ``expectations`` (each with meta name, gate, threshold and
    ``row_level`` for row rules); return one :class:`CheckResult` per expectation. ``df`` is a
    Spark DataFrame (collected when small, see :func:`collected`) or, for a suite without row
    rules, a pandas one the caller collected.

    A failed ``block`` row rule has outcome ``quarantined`` (conform holds its rows back); a
    failed ``block`` table-level check has outcome ``blocked``; a failed ``warn`` one ``warned``.
    """
    ctx = context(settings)
    suite = ctx.suites.add_or_update(
        gx.ExpectationSuite(
            name=suite_name,
            expectations=expectations,
            meta={"policy_version": policy_version, "table": table_name, "source": source},
        )
    )
    local = (
        df
        if isinstance(df, pd.DataFrame)
        else collected(df, expectations, settings.quality_pandas_max_rows)
    )
    data = _batch_definition(ctx, dataset, on_pandas=local is not None)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=data, suite=suite)
    )
    index = [c for c in LINEAGE_INDEX if c in df.columns]
    fmt: dict[str, Any] = {"result_format": "SUMMARY"}
    if index:
        fmt["unexpected_index_column_names"] = index
    result = vd.run(
        batch_parameters={"dataframe": df if local is None else local},
        result_format=fmt,
        run_id=RunIdentifier(run_name=f"{run_date.isoformat()} {suite_name}"),
    )
    by_name = {e.meta["name"]: e for e in expectations}
    out = []
    for r in result.results:
        meta = r.expectation_config.meta or {}
        name = meta["name"]
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {name} on {table_name} raised: "
                f"{r.exception_info.get('exception_message')}"
            )
        res = r.result or {}
        row_level = bool(meta.get("row_level"))  # a row rule: failing rows are quarantined
        gate = meta["gate"]
        unexpected = res.get("unexpected_count")
        observed = (
            f"{unexpected} of {res.get('element_count')} rows"
            if "unexpected_count" in res and "observed_value" not in res
            else (None if res.get("observed_value") is None else str(res["observed_value"]))
        )
        out.append(
            CheckResult(
                run_date=run_date,
                table_name=table_name,
                source=source,
                expectation=name,
                expectation_type=r.expectation_config.type,
                suite=suite_name,
                column_name=r.expectation_config.kwargs.get("column"),
                defect_class=meta.get("defect_class"),
                gate=gate,
                outcome=_outcome(bool(r.success), gate, row_level),
                success=bool(r.success),
                observed_value=observed,
                threshold=meta.get("threshold"),
                element_count=res.get("element_count"),
                unexpected_count=unexpected,
                unexpected_percent=res.get("unexpected_percent"),
                rows_quarantined=int(unexpected or 0) if row_level and gate == "block" else 0,
                policy_version=policy_version,
            )
        )
        by_name.pop(name, None)
    if by_name:
        raise RuntimeError(f"GX returned no result for {sorted(by_name)} in {suite_name}")
    return out


def build_docs(settings: Settings) -> Path:
    """Rebuild the Data Docs site from the stored suites and results; return its index.html."""
    urls = context(settings).build_data_docs()
    url = next(iter(urls.values()))
    return Path(url.removeprefix("file://"))
