"""Outcomes of a drawn inspection plan on a synthetic world: the simulator plays the
inspectors and fills in the plan's outcome file (``risk-insight outcomes template``) the way
they would, for ``risk-insight outcomes import`` to land.

Each planned inspection takes place on a day within ``window_days`` after the plan's as-of
date and finds a problem with the enterprise's true monthly finding probability
(``truth/true_risk.parquet``: the latest month at or before the inspection), as the simulator's
own inspections do. A share of the drawn enterprises cannot be reached (无法联系) or is not
inspected at all (未检查). Deterministic in (seed, plan_id, uscc).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.inspection_results import (
    CLEAN,
    FOUND,
    NOT_INSPECTED,
    OUTCOME_HEADERS,
    RESULT_TEXT,
    UNREACHABLE,
    outcome_header_row,
)

RESULT_FOUND = RESULT_TEXT[FOUND]
RESULT_CLEAN = RESULT_TEXT[CLEAN]
NOTES = {
    FOUND: "现场检查发现问题，已责令整改",
    CLEAN: "现场检查未发现问题",
    UNREACHABLE: "通过登记的住所无法联系",
    NOT_INSPECTED: "企业已停业，未实施检查",
}


def _month(d: date) -> date:
    return date(d.year, d.month, 1)


def true_probability(truth_dir: str | Path, uscc: pd.Series, on: pd.Series) -> np.ndarray:
    """The true finding probability of each enterprise at its date (latest month <= date;
    NaN where the truth has none)."""
    truth = pd.read_parquet(
        Path(truth_dir) / "true_risk.parquet", columns=["uscc", "month", "true_p"]
    )
    truth = truth[truth["uscc"].isin(set(uscc))]
    truth["month"] = pd.to_datetime(truth["month"])
    want = pd.DataFrame({"uscc": uscc.to_numpy(), "month": pd.to_datetime(on.map(_month))})
    want["_i"] = np.arange(len(want))
    merged = pd.merge_asof(
        want.sort_values("month"), truth.sort_values("month"), on="month", by="uscc"
    )
    return merged.sort_values("_i")["true_p"].to_numpy()


def simulate_outcomes(
    plan: pd.DataFrame,
    truth_dir: str | Path,
    seed: int = 0,
    window_days: int = 60,
    unreachable: float = 0.0,
    not_inspected: float = 0.0,
) -> pd.DataFrame:
    """One outcome per plan row (columns ``as_of, plan_id, uscc``): adds ``inspected_on``,
    ``true_p``, ``outcome`` (found / clean / unreachable / not_inspected), ``found`` and
    ``result`` (the text an inspector writes)."""
    out = plan.sort_values(["plan_id", "uscc"], kind="stable").reset_index(drop=True).copy()
    if out.empty:
        return out.assign(inspected_on=[], true_p=[], outcome=[], found=[], result=[])
    rngs = [
        np.random.default_rng([seed, *(ord(c) for c in f"{p}|{u}")])
        for p, u in zip(out["plan_id"], out["uscc"], strict=True)
    ]
    draws = np.array([(r.integers(1, window_days + 1), r.random(), r.random()) for r in rngs])
    out["inspected_on"] = [
        d + timedelta(days=int(k)) for d, k in zip(out["as_of"], draws[:, 0], strict=True)
    ]
    out["true_p"] = true_probability(truth_dir, out["uscc"], out["inspected_on"])
    found = draws[:, 1] < np.nan_to_num(out["true_p"].to_numpy(), nan=0.0)
    q = draws[:, 2]
    out["outcome"] = np.select(
        [q < not_inspected, q < not_inspected + unreachable, found],
        [NOT_INSPECTED, UNREACHABLE, FOUND],
        CLEAN,
    )
    out["found"] = out["outcome"] == FOUND
    out["result"] = out["outcome"].map(RESULT_TEXT)
    return out


def fill_outcome_file(
    template: str | Path,
    truth_dir: str | Path,
    out: str | Path,
    as_of: date,
    seed: int = 0,
    window_days: int = 60,
    unreachable: float = 0.03,
    not_inspected: float = 0.02,
) -> pd.DataFrame:
    """Fill the outcome file ``template`` (one row per drawn enterprise) with simulated
    results, dates and notes, as the inspectors would, and save it as ``out``. ``as_of`` is
    the date the plan was drawn at. Returns the simulated outcomes."""
    from openpyxl import load_workbook

    wb = load_workbook(template)
    ws = wb.active
    top = [list(r) for r in ws.iter_rows(min_row=1, max_row=30, values_only=True)]
    h = outcome_header_row(top)
    if h is None:
        raise ValueError(f"{template} is not an outcome file: no header row found")
    col = {str(v).strip(): j for j, v in enumerate(top[h]) if v is not None}
    idx = {k: col[v] for k, v in OUTCOME_HEADERS.items() if v in col}
    rows = []
    for r in range(h + 2, ws.max_row + 1):
        uscc = ws.cell(row=r, column=idx["uscc"] + 1).value
        if uscc:
            plan_id = ws.cell(row=r, column=idx["plan_id"] + 1).value
            rows.append((r, str(plan_id), str(uscc).lstrip("'")))
    plan = pd.DataFrame(rows, columns=["sheet_row", "plan_id", "uscc"]).assign(as_of=as_of)
    done = simulate_outcomes(plan, truth_dir, seed, window_days, unreachable, not_inspected)
    for r in done.itertuples():
        ws.cell(row=r.sheet_row, column=idx["result"] + 1, value=r.result)
        day = r.inspected_on
        ws.cell(
            row=r.sheet_row,
            column=idx["inspected_on"] + 1,
            value=datetime(day.year, day.month, day.day),
        )
        ws.cell(row=r.sheet_row, column=idx["note"] + 1, value=NOTES[r.outcome])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return done.drop(columns=["sheet_row"])
