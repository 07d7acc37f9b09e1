"""Outcome feedback: the results of a drawn plan come back as an ordinary inspection extract.

The extract is written in the format of the inspection mapping in force
(:mod:`warehouse.contracts.extract`: the bureau's headers, delimiter, encoding and words) and
carries the plan id, so ``pipelines.run.run_day`` lands and conforms it like any other
delivery (quality rules included), and the labels code (``pipelines/features/labels.py``)
counts its rows that took place as random-draw inspections (``drawn``) with their finding as
the label of the next training run. The outcomes come from the file the inspectors filled in
(:mod:`risk_insight.outcomes`); on a synthetic world the simulator fills that file
(``pipelines.simulator.outcomes.fill_outcome_file``; only the CLI and tests call it).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.inspection_results import RESULT_CODE, TOOK_PLACE
from risk_insight.plan import read_plan
from warehouse import contracts
from warehouse.contracts.extract import extract_csv, extract_name
from warehouse.settings import Settings

REPORT_LAG_DAYS = 3


def plan_frame(spark: SparkSession, as_of: date, settings: Settings | None = None) -> pd.DataFrame:
    """The plan of ``as_of`` as pandas (a plan is small: a few per cent of the population)."""
    cols = ["as_of", "plan_id", "uscc", "region_code", "tier", "inspector_id", "inspector_2_id",
            "draw_rank"]  # fmt: skip
    pdf = read_plan(spark, as_of, settings).select(*cols).orderBy("uscc").toPandas()
    pdf["as_of"] = pd.to_datetime(pdf["as_of"]).dt.date
    return pdf


def inspection_extract(outcomes: pd.DataFrame, reported_on: date | None = None) -> pd.DataFrame:
    """Outcome rows (plan_id, uscc, inspector_id, inspected_on, result) as the inspection
    source's canonical fields, as strings; ``result`` and ``mode`` as canonical values (a
    result may come as the outcome file's wording or as its canonical value).
    ``inspected_on`` may be a date or the text an inspector typed (conform reads or
    quarantines it); ``inspector_id`` may list both inspectors separated by ';'.
    ``reported_on`` defaults to ``REPORT_LAG_DAYS`` after each inspection."""

    def text(d: object) -> str:
        if d is None or (isinstance(d, float) and d != d) or d is pd.NaT:
            return ""
        return d.isoformat()[:10] if hasattr(d, "isoformat") else str(d)

    if reported_on is None:
        inspected = pd.to_datetime(outcomes["inspected_on"]).dt.date
        reported = [(d + timedelta(days=REPORT_LAG_DAYS)).isoformat() for d in inspected]
    else:
        reported = [reported_on.isoformat()] * len(outcomes)
    return pd.DataFrame(
        {
            "inspection_id": [
                f"JC{p}-{u}" for p, u in zip(outcomes["plan_id"], outcomes["uscc"], strict=True)
            ],
            "uscc": outcomes["uscc"].astype(str),
            "inspected_on": [text(d) for d in outcomes["inspected_on"]],
            "mode": "random_draw",
            "result": [RESULT_CODE.get(r, r) for r in outcomes["result"].astype(str)],
            "inspector_id": outcomes["inspector_id"].fillna("").astype(str),
            "plan_id": outcomes["plan_id"].astype(str),
            "reported_on": reported,
        }
    )


def write_inspection_extract(
    outcomes: pd.DataFrame,
    settings: Settings,
    delivery_date: date | None = None,
    reported_on: date | None = None,
    tag: str = "outcomes",
) -> tuple[Path, date]:
    """Write the outcomes as ``<landing>/<date>/<name>`` in the inspection mapping's format
    (``extract_name(mapping, tag)``); the delivery date defaults to the day the last result
    was reported. Returns (file, date). Refuses to overwrite a different file already
    delivered under that name that day."""
    extract = inspection_extract(outcomes, reported_on)
    last = max(date.fromisoformat(d) for d in extract["reported_on"])
    day = delivery_date or last
    if day < last:
        raise ValueError(f"delivery {day} is before the last result reported on {last}")
    mapping = contracts.mapping("inspection", settings)
    needed = ("inspection_id", "uscc", "inspected_on", "result", "plan_id")
    extract = extract[[c for c in extract.columns if c in needed or c in mapping.fields]]
    path = Path(settings.landing_root) / day.isoformat() / extract_name(mapping, tag)
    data = extract_csv(mapping, extract.to_dict("records"), list(extract.columns))
    if path.exists() and path.read_bytes() != data:
        raise FileExistsError(
            f"{path} already holds another inspection delivery; deliver these outcomes on "
            "another date (--delivery-date)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, day


def hit_rate_by_tier(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per tier: inspections that took place, problems found, hit rate and the mean true
    probability (unreachable / not-inspected rows are not inspections)."""
    if "outcome" in outcomes:
        outcomes = outcomes[outcomes["outcome"].isin(TOOK_PLACE)]
    g = outcomes.groupby("tier")
    out = pd.DataFrame(
        {
            "inspected": g.size(),
            "found": g["found"].sum().astype(int),
            "mean_true_p": g["true_p"].mean() if "true_p" in outcomes else float("nan"),
        }
    )
    out["hit_rate"] = out["found"] / out["inspected"]
    return out.reindex([t for t in ("D", "C", "B", "A") if t in out.index]).reset_index()


def plan_outcomes_in_silver(spark: SparkSession, plan_id: str, settings: Settings):
    """The plan's inspections as conformed in silver.fct_inspection (lazy)."""
    from warehouse import tables

    return tables.read(spark, tables.FCT_INSPECTION, settings).where(
        F.col("plan_id") == F.lit(plan_id)
    )
