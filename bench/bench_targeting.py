"""Bench: targeting side by side (#19): history features, + a bureau's extra attributes,
+ its licensing events, + neighbourhood, each with and without inspector adjustment.

For each inspector spread (the simulator's ``inspector_spread``: 0 = every inspector finds what
is there), one synthetic world is simulated in which licensed trades (``licence_signal``) and
streets (``street_signal``) carry risk, and run through the real pipeline (every delivery
through run_day, gold features). The bureau's registry mapping here is the shipped one plus
the attribute ``business_scope`` read from the 经营范围 column through keywords
(:data:`SCOPE_ATTRIBUTE`), exactly as a bureau would declare it, and its licensing export read
as the event source (the simulator's ``licensing.yaml``: licences granted, licences revoked).
Then the same backtest schedule is run for each recipe: the feature set (history = the
built-in catalogue without the neighbourhood, attribute and event families; + attributes;
+ events; + neighbourhood, each adding to the one before) as recorded, and with inspector effects
taken out of learning and judging (models/inspectors.py). Reported per world and recipe, as
means over the folds on random draws (weighted): AUC, precision at the C+D budget on the
outcomes as recorded and inspector-adjusted, the oracle's precision, model / oracle, and the
spread of the inspectors' estimated effects. Writes the ``## Targeting: features and
inspector effects`` section of bench/RESULTS.md.

    .venv/bin/python bench/bench_targeting.py [--enterprises 3000 --years 4 --spreads 0,1]
"""

from __future__ import annotations

import argparse
import shutil
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
from pipelines.simulator.exports import LICENSING_MAPPING  # noqa: E402
from warehouse.contracts import SHIPPED_MAPPINGS, catalogue  # noqa: E402
from warehouse.contracts.model_policy import load_model_policy  # noqa: E402
from warehouse.settings import Settings  # noqa: E402
from warehouse.spark import get_spark  # noqa: E402

HEADER = (
    "| spread | recipe | folds | AUC | precision at budget | adjusted | oracle | model / oracle "
    "| s.d. of effects | backtest s |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
FEATURE_SETS = ("history", "+ attributes", "+ events", "+ neighbourhood")
LICENCE_SIGNAL = 1.0  # the simulator's licensed-trade effects at full strength
STREET_SIGNAL = 0.8  # s.d. of a street's log-odds effect
# How a bureau would declare its 经营范围 column (appended to the shipped registry mapping).
SCOPE_ATTRIBUTE = """
attributes:
  business_scope:
    headers: [经营范围]
    kind: categorical
    keywords:
      食品: [食品经营]
      餐饮: [餐饮服务]
      药品: [药品零售]
      医疗器械: [医疗器械]
      危险化学品: [危险化学品]
      成品油: [成品油]
      特种设备: [特种设备]
      烟草: [烟草]
    otherwise: 一般项目
    risky: [食品, 餐饮, 药品, 医疗器械, 危险化学品, 成品油, 特种设备]
    zh: 经营范围涉及{v}（许可经营项目）
    en: business scope covers {v} (a licensed trade)
"""


def feature_sets(s: Settings) -> dict[str, dict]:
    """The catalogue of each recipe's features, by name."""
    full = catalogue(s)
    left_out = (("neighbourhood", "event", "attribute"), ("neighbourhood", "event"),
                ("neighbourhood",), ())  # fmt: skip
    sets = [{n: f for n, f in full.items() if f.family not in out} for out in left_out]
    return dict(zip(FEATURE_SETS, sets, strict=True))


def world(spark, root: Path, enterprises: int, years: int, spread: float, seed: int) -> Settings:
    """Simulate and land one world (its bureau declaring the business-scope attribute); its
    settings."""
    sources = root / "mappings"
    shutil.copytree(SHIPPED_MAPPINGS, sources)
    registry = sources / "registry.yaml"
    registry.write_text(registry.read_text(encoding="utf-8") + SCOPE_ATTRIBUTE, encoding="utf-8")
    shutil.copy(LICENSING_MAPPING, sources / "event.yaml")
    s = Settings(lake_root=str(root / "lake"), landing_root=str(root / "landing"),
                 sources_dir=str(sources), pii_key="bench-key-not-secret",
                 secrets_dir=str(root / "secrets"))  # fmt: skip
    config = SimulationConfig(enterprises=enterprises, years=years, seed=seed,
                              inspector_spread=spread, licence_signal=LICENCE_SIGNAL,
                              street_signal=STREET_SIGNAL)  # fmt: skip
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
            recipes = [(f, cat, adjust) for f, cat in feature_sets(s).items()
                       for adjust in (False, True)]  # fmt: skip
            for features, cat, adjust in recipes:
                name = f"{features}, {'inspector-adjusted' if adjust else 'labels as recorded'}"
                t1 = time.perf_counter()
                # the recipe's features named: without them fit takes every built-in feature
                m = backtest(frames, schedule, features=list(cat),
                             truth_dir=str(Path(tmp) / "sim" / "truth"),
                             inspector_prior=prior if adjust else None,
                             catalogue=cat)  # fmt: skip
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
        "Targeting: features and inspector effects",
        f"""`bench/bench_targeting.py --enterprises {args.enterprises} --years {args.years}
--spreads {args.spreads}`: one simulated world per inspector spread (log-scale s.d. of each
inspector's detection; 0 = inspectors alike), with licensed trades in the business scope
(licence_signal {LICENCE_SIGNAL:g}) and streets (street_signal {STREET_SIGNAL:g}) carrying
risk; landed through run_day with the bureau's registry mapping declaring `business_scope`
(经营范围 keywords) and its licensing export read as the event source (licences granted;
licences revoked or business suspended, which follow hidden risk), backtested on the model
policy's schedule. Recipes: history = the built-in features without the neighbourhood family;
+ attributes adds `attr_business_scope`; + events adds `evt_licence_granted` and
`evt_licence_revoked`; + neighbourhood adds the street rates. Means over folds, random-draw
inspections, weighted.
"adjusted" = precision on outcomes adjusted for the inspector (what the gate judges when the
policy adjusts); "backtest s" of a world's first recipe includes loading its frames.

{HEADER}
{table}
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
