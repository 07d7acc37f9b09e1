"""``simulate``: world -> monthly risk process -> source rows -> defects -> files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.simulator.config import HANDLING, SimulationConfig, SimulationSummary
from pipelines.simulator.defects import Context, inject
from pipelines.simulator.dynamics import Events, simulate_events
from pipelines.simulator.exports import Export, exports, licensing_export, written_exports
from pipelines.simulator.records import all_rows, day_number, deliveries, licensing_rows
from pipelines.simulator.world import World, build_world
from pipelines.simulator.writer import write_extract

MANIFEST_COLUMNS = [
    "source",
    "landing_date",
    "file",
    "source_row",
    "defect_class",
    "field",
    "handling",
]


def _day_str(d: int) -> str:
    return str(np.datetime64(int(d), "D"))


def _write_landing(
    out: Path, frames: dict[str, pd.DataFrame], folders: list[int], specs: dict[str, Export]
) -> pd.DataFrame:
    """Write every source for every landing day as ``specs`` lay it out; return the defect
    manifest."""
    manifest = []
    for name, spec in specs.items():
        df = frames[name].sort_values(["_folder", "_seq"], kind="stable").reset_index(drop=True)
        df["_row"] = df.groupby("_folder").cumcount() + 1
        by_folder = dict(tuple(df.groupby("_folder")))
        for folder in folders:
            part = by_folder.get(folder, df.iloc[:0])
            write_extract(out / "landing" / _day_str(folder), spec, part, _day_str(folder))
        bad = df[df["_defect"] != ""]
        manifest.append(
            pd.DataFrame(
                {
                    "source": name,
                    "landing_date": [_day_str(f) for f in bad["_folder"]],
                    "file": spec.file_name,
                    "source_row": bad["_row"].to_numpy(),
                    "defect_class": bad["_defect"].to_numpy(),
                    "field": bad["_dfield"].to_numpy(),
                    "handling": bad["_defect"].map(HANDLING).to_numpy(),
                }
            )
        )
    return pd.concat(manifest, ignore_index=True)[MANIFEST_COLUMNS]


def _write_truth(out: Path, world: World, ev: Events, manifest: pd.DataFrame) -> None:
    truth = out / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    ent, persons = world.ent, world.persons
    tr = ev.true_risk
    months = ev.months[tr["month"].to_numpy().astype(int)].astype("datetime64[D]")
    risk = pa.table(
        {
            "uscc": pa.array(ent["uscc"].to_numpy()[tr["ent"].to_numpy().astype(int)], pa.string()),
            "month": pa.array(months, pa.date32()),
            "true_p": pa.array(tr["true_p"].to_numpy(), pa.float64()),
        }
    )
    pq.write_table(risk, truth / "true_risk.parquet")
    v = world.versions
    changes = v[~v["first"]].groupby(["ent", "kind"]).size().unstack(fill_value=0)
    changes = changes.reindex(index=range(len(ent)), columns=["address", "legal_rep", "capital"])
    person = ent["person"].to_numpy()
    table = pa.table(
        {
            "uscc": ent["uscc"].to_numpy(),
            "name": ent["name"].to_numpy(),
            "ent_type": ent["ent_type"].to_numpy(),
            "region_code": ent["region_code"].to_numpy(),
            "industry": ent["industry"].to_numpy(),
            "reg_capital": ent["reg_capital"].to_numpy(),
            "founded_on": pa.array(
                ent["founded_on"].to_numpy().astype("datetime64[D]"), pa.date32()
            ),
            "closed_on": pa.array(ent["closed_on"].to_numpy().astype("datetime64[D]"), pa.date32()),
            "status": ent["status_final"].to_numpy(),
            "address": ent["address"].to_numpy(),
            "street": ent["street"].to_numpy(),
            "agent_address": ent["agent_address"].to_numpy(),
            "latent_u": ent["u"].to_numpy(),
            "legal_rep_person_id": persons["person_id"].to_numpy()[person],
            "legal_rep_id_no": persons["id_no"].to_numpy()[person],
            "legal_rep_effect": persons["effect"].to_numpy()[person],
            "address_changes": changes["address"].fillna(0).astype(int).to_numpy(),
            "legal_rep_changes": changes["legal_rep"].fillna(0).astype(int).to_numpy(),
            "capital_changes": changes["capital"].fillna(0).astype(int).to_numpy(),
            "business_scope": ent["business_scope"].to_numpy(),
            "licences": ["；".join(ts) for ts in ent["licences"]],
        }
    )
    pq.write_table(table, truth / "enterprises.parquet")
    manifest.to_csv(truth / "defects.csv", index=False, encoding="utf-8", lineterminator="\n")


def simulate(
    config: SimulationConfig, out: Path, progress: Callable[[str], None] | None = None
) -> SimulationSummary:
    """Simulate the world of ``config`` and write landing extracts, truth and reference data.

    Existing ``landing``, ``truth`` and ``reference`` folders under ``out`` are replaced.
    """
    say = progress or (lambda _msg: None)
    out = Path(out)
    for sub in ("landing", "truth", "reference"):
        shutil.rmtree(out / sub, ignore_errors=True)
    history, end = day_number(config.history_date), day_number(config.end_date)

    world = build_world(config.seed, config.enterprises, config.end_date)
    say(f"world: {len(world.ent)} enterprises, {len(world.versions)} registry versions")
    ev = simulate_events(
        world,
        config.seed,
        config.years,
        config.end_date,
        config.drift,
        config.inspector_spread,
        config.street_signal,
        config.licence_signal,
    )
    say(f"events: {config.years * 12} months simulated")

    scope = config.licence_signal > 0
    rows = all_rows(world, ev, config.seed, config.defects.late_arrival, scope)
    frames = {
        name: deliveries(rows[name], spec.natural_key, config.history_date, config.end_date)
        for name, spec in exports().items()
    }
    roster = world.inspectors.groupby("region_code")["inspector_id"].agg(list).to_dict()
    ctx = Context(
        rng=np.random.default_rng([config.seed, 4]),
        history=history,
        end=end,
        founded=world.ent["founded_on"].to_numpy().astype("datetime64[D]").astype(np.int64),
        usccs=set(world.ent["uscc"]),
        regions=list(world.regions["region_code"]),
        roster=roster,
    )
    # defects pick their fields among the mapped ones (exports()): the scope column stays clean
    inject(frames, config.defects, ctx)
    say("defects injected")
    if scope:  # the licensing export, clean (defects are drawn before it joins)
        events = deliveries(
            licensing_rows(world, ev, config.seed),
            licensing_export().natural_key,
            config.history_date,
            config.end_date,
        )
        frames["event"] = events.assign(_defect="", _dfield="", _malformed="", _busy=False)

    folders = list(range(history, end + 1))
    manifest = _write_landing(out, frames, folders, written_exports(scope))
    say(f"landing: {len(folders)} folders written")
    _write_truth(out, world, ev, manifest)
    ref = out / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    world.inspectors.to_csv(
        ref / "inspectors.csv", index=False, encoding="utf-8", lineterminator="\n"
    )
    say("truth and reference written")

    counts = manifest["defect_class"].value_counts()
    return SimulationSummary(
        out=out,
        history_date=config.history_date,
        increment_dates=[np.datetime64(d, "D").astype(object) for d in folders[1:]],
        rows_per_source={n: len(df) for n, df in frames.items()},
        defects_per_class={c: int(counts.get(c, 0)) for c in HANDLING},
    )
