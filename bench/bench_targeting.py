"""Bench: how well targeting holds when inspectors differ (#19), side by side.

For each inspector spread (the simulator's ``inspector_spread``: 0 = every inspector finds what
is there), one synthetic world is simulated and run through the real pipeline (every
delivery through run_day, gold features), then the same backtest schedule is run for each
recipe: the history features as recorded, and the same with inspector effects taken out of
learning and judging (models/inspectors.py). Reported per world and recipe, as means over the
folds on random draws (weighted): AUC, precision at the C+D budget on the outcomes as recorded
and inspector-adjusted, the oracle's precision, model / oracle, and the spread of the
inspectors' estimated effects. Writes the ``## Targeting: inspector effects`` section of
bench/RESULTS.md.

    .venv/bin/python bench/bench_targeting.py [--enterprises 3000 --years 4 --spreads 0,1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._results import write_section  # noqa: E402
from models.retrain import ensure_features, frame_source  # noqa: E402
from models.train import backtest, data_span, schedule_for_span  # noqa: E402
from pipelines.run import delivery_dates, run_day  # noqa: E402
from pipelines.simulator import SimulationConfig, simulate  # noqa: E402
from warehouse.contracts.model_policy import load_model_policy  # noqa: E402
from warehouse.settings import Settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402

HEADER = (
    "| spread | recipe | folds | AUC | precision at budget | adjusted | oracle | model / oracle "
    "| s.d. of effects | backtest s |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
RECIPES = {
    "history features, labels as recorded": None,
    "history features, inspector-adjusted": "policy",
}


def world(spark, root: Path, enterprises: int, years: int, spread: float, seed: int) -> Settings:
    """Simulate and land one world; its settings."""
    s = Settings(lake_root=str(root / "lake"), landing_root=str(root / "landing"),
                 pii_key="bench-key-not-secret", secrets_dir=str(root / "secrets"))  # fmt: skip
    config = SimulationConfig(enterprises=enterprises, years=years, seed=seed,
                              inspector_spread=spread)  # fmt: skip
    simulate(config, root / "sim")
    landing = root / "sim" / "landing"
    for day in delivery_dates(landing):
        run_day(spark, landing, day, s, docs=False)
    return s


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enterprises", type=int, default=3_000)
    ap.add_argument("--years", type=int, default=4)
    ap.add_argument("--spreads", default="0,1")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    prior = load_model_policy().inspectors.prior_findings
    spark = get_spark(Settings())
    rows = []
    for spread in (float(x) for x in args.spreads.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-targeting-") as tmp:
            t0 = time.perf_counter()
            s = world(spark, Path(tmp), args.enterprises, args.years, spread, args.seed)
            schedule = schedule_for_span(*data_span(spark, s))
            ensure_features(spark, schedule.all_dates(), s)
            frames = frame_source(spark, s, schedule.horizon_days)
            built = time.perf_counter() - t0
            print(f"spread {spread}: world built in {built:,.0f} s", flush=True)
            for name, how in RECIPES.items():
                t1 = time.perf_counter()
                m = backtest(frames, schedule, truth_dir=str(Path(tmp) / "sim" / "truth"),
                             inspector_prior=prior if how else None)  # fmt: skip
                su = m["summary"]
                effects = [v for f in m["folds"].values() for v in f["inspector_effects"].values()]
                row = (spread, name, len(m["folds"]), su["drawn.model.auc"],
                       su["drawn.model.precision_at_k"], su["drawn.model.precision_at_k_adjusted"],
                       su["drawn.oracle.precision_at_k"], su["drawn.model_to_oracle"],
                       float(np.std(effects)) if effects else float("nan"),
                       time.perf_counter() - t1)  # fmt: skip
                print(row, flush=True)
                rows.append(row)
    table = "\n".join(
        f"| {sp:g} | {n} | {k} | {auc:.3f} | {p:.3f} | {pa:.3f} | {o:.3f} | {mo:.2f} | "
        f"{sd:.2f} | {t:,.0f} |"
        for sp, n, k, auc, p, pa, o, mo, sd, t in rows
    )
    write_section(
        "Targeting: inspector effects",
        f"""`bench/bench_targeting.py --enterprises {args.enterprises} --years {args.years}
--spreads {args.spreads}`: one simulated world per inspector spread (log-scale s.d. of each
inspector's detection; 0 = inspectors alike), landed through run_day, backtested on the model
policy's schedule. Means over folds, random-draw inspections, weighted. "adjusted" = precision
on outcomes adjusted for the inspector (what the gate judges when the policy adjusts);
"backtest s" of a world's first recipe includes loading its frames (cached for the second).

{HEADER}
{table}
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
