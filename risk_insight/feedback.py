"""Outcome feedback: the results of a drawn plan come back as an ordinary inspection extract.

The extract follows the demo bureau's inspection mapping (Chinese headers, GBK) and carries
the plan id, so ``pipelines.run.run_day`` lands and conforms it like any other delivery, and
the labels code (``pipelines/features/labels.py``) counts its rows as random-draw inspections
(``drawn``) with their finding as the label of the next training run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.simulator.exports import exports
from pipelines.simulator.writer import csv_bytes
from risk_insight.plan import read_plan
from warehouse.settings import Settings, get_settings

RANDOM_DRAW_MODE = "双随机抽查"
REPORT_LAG_DAYS = 3


def plan_frame(spark: SparkSession, as_of: date, settings: Settings | None = None) -> pd.DataFrame:
    """The plan of ``as_of`` as pandas (a plan is small: a few per cent of the population)."""
    cols = ["as_of", "plan_id", "uscc", "region_code", "tier", "inspector_id", "draw_rank"]
    pdf = read_plan(spark, as_of, settings).select(*cols).orderBy("uscc").toPandas()
    pdf["as_of"] = pd.to_datetime(pdf["as_of"]).dt.date
    return pdf


def inspection_extract(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Outcome rows (plan_id, uscc, region_code, tier, draw_rank, inspector_id, inspected_on,
    result) in the INSPECTION contract's canonical fields, as strings."""
    inspected = pd.to_datetime(outcomes["inspected_on"]).dt.date
    reported = [d + timedelta(days=REPORT_LAG_DAYS) for d in inspected]
    return pd.DataFrame(
        {
            "inspection_id": [
                f"JC{p}-{u}" for p, u in zip(outcomes["plan_id"], outcomes["uscc"], strict=True)
            ],
            "uscc": outcomes["uscc"].astype(str),
            "inspected_on": [d.isoformat() for d in inspected],
            "mode": RANDOM_DRAW_MODE,
            "result": outcomes["result"].astype(str),
            "inspector_id": outcomes["inspector_id"].fillna("").astype(str),
            "plan_id": outcomes["plan_id"].astype(str),
            "reported_on": [d.isoformat() for d in reported],
        }
    )[exports()["inspection"].fields]


def write_inspection_extract(
    outcomes: pd.DataFrame, landing_root: str | Path, delivery_date: date | None = None
) -> tuple[Path, date]:
    """Write the outcomes as ``<landing>/<date>/inspection.csv`` (GBK, Chinese headers); the
    delivery date defaults to the day the last result was reported. Returns (file, date).
    Refuses to overwrite a different inspection file already delivered that day."""
    extract = inspection_extract(outcomes)
    last = max(date.fromisoformat(d) for d in extract["reported_on"])
    day = delivery_date or last
    if day < last:
        raise ValueError(f"delivery {day} is before the last result reported on {last}")
    spec = exports()["inspection"]
    path = Path(landing_root) / day.isoformat() / spec.file_name
    data = csv_bytes(spec, extract.to_numpy().tolist())
    if path.exists() and path.read_bytes() != data:
        raise FileExistsError(f"{path} already holds another inspection delivery")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, day


@dataclass
class Feedback:
    """A plan's simulated outcomes and the extract they were delivered in."""

    as_of: date
    plan_id: str
    outcomes: pd.DataFrame
    extract: Path
    delivery_date: date


def feed_back_simulated(
    spark: SparkSession,
    as_of: date,
    truth_dir: str | Path,
    settings: Settings | None = None,
    landing_root: str | Path | None = None,
    seed: int = 0,
) -> Feedback:
    """Synthetic worlds: draw the outcomes of the plan of ``as_of`` from the simulator's truth
    and deliver them to the landing zone; run ``run_day(…, feedback.delivery_date)`` next."""
    from pipelines.simulator.outcomes import simulate_outcomes
    from risk_insight.policy import policy_for

    s = settings or get_settings()
    plan = plan_frame(spark, as_of, s)
    if plan.empty:
        raise ValueError(f"no plan at {as_of}: run `risk-insight plan --as-of {as_of}` first")
    window = policy_for(s).draw.inspection_window_days
    outcomes = simulate_outcomes(plan, truth_dir, seed, window)
    path, day = write_inspection_extract(outcomes, landing_root or s.landing_root)
    return Feedback(as_of, str(plan["plan_id"].iat[0]), outcomes, path, day)


def hit_rate_by_tier(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per tier: inspections, problems found, hit rate and the mean true probability."""
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
