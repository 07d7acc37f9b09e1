"""Tests of the source simulator on a small world (1,000 enterprises, 2 years)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from pipelines.simulator import DefectRates, SimulationConfig, SimulationSummary, simulate
from pipelines.simulator.codes import id_check_char, org_check_char
from pipelines.simulator.exports import Export, exports
from quality.uscc import is_valid_uscc

REGIONS = set(
    pd.read_csv(Path(__file__).parents[1] / "pipelines/simulator/districts.csv", dtype=str)[
        "region_code"
    ]
)
SMALL = SimulationConfig(enterprises=1000, years=2, seed=7)
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PLAIN_AMOUNT = re.compile(r"^\d+\.\d{2}$")
EVENT_FIELD = {
    "registry": "changed_on",
    "annual_report": "filed_on",
    "penalty": "decided_on",
    "abnormal_list": "entered_on",
    "serious_list": "entered_on",
    "inspection": "inspected_on",
    "complaint": "received_on",
}


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> SimulationSummary:
    return simulate(SMALL, tmp_path_factory.mktemp("dirty"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> SimulationSummary:
    config = SimulationConfig(enterprises=1000, years=2, seed=7, defects=DefectRates.none())
    return simulate(config, tmp_path_factory.mktemp("clean"))


def read_rows(path: Path, spec: Export) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of one extract, decoded strictly in its declared encoding."""
    if spec.fmt == "xlsx":
        ws = load_workbook(path, read_only=True).worksheets[0]
        rows = [["" if v is None else v for v in row] for row in ws.iter_rows(values_only=True)]
        assert all(isinstance(v, str) for row in rows for v in row)
        return rows[0], rows[1:]
    text = path.read_bytes().decode(spec.export_encoding)
    assert not text.startswith("\ufeff"), "BOM must be consumed by the declared encoding"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def load(summary: SimulationSummary) -> dict[tuple[str, date], list[list[str]]]:
    folders = [summary.history_date, *summary.increment_dates]
    out = {}
    for day in folders:
        for name, spec in exports().items():
            header, rows = read_rows(
                summary.out / "landing" / day.isoformat() / spec.file_name, spec
            )
            assert header == spec.headers_zh
            out[name, day] = rows
    return out


def records(summary: SimulationSummary, name: str) -> list[tuple[date, dict[str, str]]]:
    """Well-formed rows of one source as (landing day, field dict)."""
    spec = exports()[name]
    out = []
    for (source, day), rows in load(summary).items():
        if source == name:
            out += [(day, dict(zip(spec.fields, r, strict=True))) for r in rows]
    return out


def test_check_digit_helpers_against_hand_computed_examples() -> None:
    # GB 11714: D2143569 -> weights 3,7,9,10,5,8,4,2 give 13*3+2*7+1*9+4*10+3*5+5*8+6*4+9*2 = 199,
    # 11 - 199 % 11 = 11 - 1 = 10 -> 'X'.
    assert org_check_char("D2143569") == "X"
    # GB 11643 published example 11010519491231002X.
    assert id_check_char("11010519491231002") == "X"


def test_layout_encodings_and_headers(dirty: SimulationSummary) -> None:
    assert dirty.history_date == date(2026, 10, 28)
    assert dirty.increment_dates == [date(2026, 10, 29), date(2026, 10, 30), date(2026, 10, 31)]
    data = load(dirty)
    assert len(data) == 4 * len(exports())
    for name in exports():
        assert data[name, dirty.history_date], f"empty history extract for {name}"
    assert (dirty.out / "truth" / "true_risk.parquet").exists()
    assert (dirty.out / "truth" / "enterprises.parquet").exists()
    inspectors = pd.read_csv(dirty.out / "reference" / "inspectors.csv", dtype=str)
    per_district = inspectors.groupby("region_code").size()
    assert set(per_district.index) == REGIONS and per_district.between(3, 6).all()


def test_deterministic(dirty: SimulationSummary, tmp_path: Path) -> None:
    again = simulate(SMALL, tmp_path)
    files = sorted(p.relative_to(dirty.out) for p in dirty.out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.out) for p in again.out.rglob("*") if p.is_file())
    for rel in files:
        assert (dirty.out / rel).read_bytes() == (again.out / rel).read_bytes(), rel


def test_clean_world_has_no_defects(clean: SimulationSummary) -> None:
    manifest = pd.read_csv(clean.out / "truth" / "defects.csv")
    assert manifest.empty and sum(clean.defects_per_class.values()) == 0
    ents = pd.read_parquet(clean.out / "truth" / "enterprises.parquet")
    founded = dict(zip(ents["uscc"], ents["founded_on"], strict=True))
    registered = set(ents["uscc"])
    for name, spec in exports().items():
        keys = Counter()
        for day, row in records(clean, name):
            for field, value in row.items():
                assert value == value.strip(), (name, field, value)
                assert not re.search(r"[\uff01-\uff5e]", value), (name, field, value)
            for field in spec.date_fields:
                if row[field]:
                    assert ISO.match(row[field]), (name, field, row[field])
                    assert date.fromisoformat(row[field]) <= day, (name, field, row)
            for field in spec.amount_fields:
                assert PLAIN_AMOUNT.match(row[field]), (name, field, row[field])
            assert is_valid_uscc(row["uscc"]) and row["uscc"][2:8] in REGIONS
            assert row["uscc"] in registered
            event = date.fromisoformat(row[EVENT_FIELD[name]])
            assert event >= founded[row["uscc"]], (name, row)
            if name != "registry":
                assert event > founded[row["uscc"]], (name, row)
            if row.get("removed_on"):
                assert row["removed_on"] >= row["entered_on"]
            if name == "registry":
                assert row["region_code"] in REGIONS
            key = tuple(row[k] for k in spec.natural_key)
            assert all(key), (name, row)
            keys[day, key] += 1
        assert max(keys.values(), default=1) == 1, f"duplicate natural key in {name}"


def _date_or_none(text: str) -> date | None:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"):
        try:
            return pd.to_datetime(text, format=fmt).date()
        except (ValueError, TypeError):
            continue
    return None


def test_every_defect_class_is_injected_and_visible(dirty: SimulationSummary) -> None:
    manifest = pd.read_csv(dirty.out / "truth" / "defects.csv", dtype=str, keep_default_na=False)
    assert set(manifest["defect_class"]) == set(DefectRates().as_dict())
    assert manifest.groupby("defect_class").size().to_dict() == {
        k: v for k, v in dirty.defects_per_class.items() if v
    }
    data = load(dirty)
    ents = pd.read_parquet(dirty.out / "truth" / "enterprises.parquet")
    founded = dict(zip(ents["uscc"], ents["founded_on"], strict=True))
    for m in manifest.itertuples(index=False):
        spec = exports()[m.source]
        day = date.fromisoformat(m.landing_date)
        raw = data[m.source, day][int(m.source_row) - 1]
        cls, field = m.defect_class, m.field
        if cls == "malformed_row":
            assert len(raw) != len(spec.fields)
            continue
        row = dict(zip(spec.fields, raw, strict=True))
        value = row.get(field, "")
        if cls == "full_width":
            assert re.search(r"[\uff10-\uff5a]", value)
        elif cls == "whitespace":
            assert value != value.strip()
        elif cls == "date_format":
            assert not ISO.match(value) and _date_or_none(value) is not None
        elif cls == "amount_format":
            assert "," in value or value.endswith("元")
        elif cls == "negative_amount":
            assert value.startswith("-")
        elif cls == "missing_key":
            assert field in spec.natural_key and value == ""
        elif cls == "bad_check_digit":
            assert len(value) == 18 and not is_valid_uscc(value)
        elif cls == "unknown_region":
            code = row["region_code"] if field == "region_code" else value[2:8]
            assert code not in REGIONS
            assert field == "region_code" or is_valid_uscc(value)
        elif cls == "orphan_enterprise":
            assert is_valid_uscc(value) and value not in founded and value[2:8] in REGIONS
        elif cls == "unparseable_date":
            assert _date_or_none(value) is None
        elif cls == "future_date":
            assert date.fromisoformat(value) > day
        elif cls == "before_founding":
            assert date.fromisoformat(value) < founded[row["uscc"]]
        elif cls == "removal_before_entry":
            assert row["removed_on"] < row["entered_on"]
        elif cls == "duplicate_row":
            earlier = [
                r for (s, d), rows in data.items() if s == m.source and d <= day for r in rows
            ]
            assert earlier.count(raw) >= 2
        elif cls == "late_correction":
            key = [row[k] for k in spec.natural_key]
            before = [
                dict(zip(spec.fields, r, strict=True))
                for (s, d), rows in data.items()
                if s == m.source and d < day
                for r in rows
                if len(r) == len(spec.fields)
            ]
            olds = [b for b in before if [b[k] for k in spec.natural_key] == key]
            assert olds and all(b[field] != value for b in olds)
        elif cls == "late_arrival":
            assert day > dirty.history_date
            assert date.fromisoformat(value) <= day - timedelta(days=30)
        else:
            raise AssertionError(cls)


def test_world_realism(clean: SimulationSummary) -> None:
    reg = pd.DataFrame([row for _, row in records(clean, "registry")])
    reps = reg.groupby("legal_rep_id")["uscc"].nunique()
    assert reps.max() >= 2, "some legal representative should run several enterprises"
    addresses = reg.groupby("uscc")["address"].nunique()
    assert (addresses >= 2).any(), "some enterprise should have changed its address"
    shared = reg.drop_duplicates("uscc").groupby("address")["uscc"].nunique()
    assert shared.max() >= 3, "registration-agent addresses are shared"
    assert set(reg["status"]) >= {"存续", "注销"}
    assert reg["uscc"].str[:2].isin(["91", "92", "93"]).all()
    assert (reg["uscc"].str[:2] == "92").any()
    assert reg["industry"].str.match(r"^[A-T]$").all()


def test_oracle_lift_and_hit_rate(clean: SimulationSummary) -> None:
    risk = pd.read_parquet(clean.out / "truth" / "true_risk.parquet")
    assert list(risk.columns) == ["uscc", "month", "true_p"]
    lifts = []
    for _, g in risk.groupby("month"):
        p = np.sort(g["true_p"].to_numpy())[::-1]
        top = p[: max(1, len(p) // 5)]
        lifts.append(top.sum() / p.sum() / (len(top) / len(p)))
    insp = pd.DataFrame([row for _, row in records(clean, "inspection")])
    hit = (insp["result"] == "发现问题").mean()
    print(
        f"\noracle lift@20%: {np.mean(lifts):.2f}, mean true_p: {risk['true_p'].mean():.3f}, "
        f"inspection hit rate: {hit:.3f} over {len(insp)} inspections"
    )
    assert np.mean(lifts) > 3
    assert 0.05 < hit < 0.35


def test_drift_changes_the_risk_process_over_time_and_zero_drift_changes_nothing() -> None:
    from pipelines.simulator.dynamics import simulate_events
    from pipelines.simulator.world import build_world

    world = build_world(5, 400, date(2026, 10, 31))
    base = simulate_events(world, 5, 2, date(2026, 10, 31))
    zero = simulate_events(world, 5, 2, date(2026, 10, 31), drift=0.0)
    pd.testing.assert_frame_equal(base.true_risk, zero.true_risk)
    drifted = simulate_events(world, 5, 2, date(2026, 10, 31), drift=1.0)
    first = base.true_risk["month"] == 0
    # the first month is the undrifted world; later months move away from it
    np.testing.assert_allclose(
        drifted.true_risk.loc[first, "true_p"], base.true_risk.loc[first, "true_p"]
    )
    last_month = base.true_risk["month"].max()
    a = base.true_risk[base.true_risk["month"] == last_month].set_index("ent")["true_p"]
    b = drifted.true_risk[drifted.true_risk["month"] == last_month].set_index("ent")["true_p"]
    common = a.index.intersection(b.index)
    assert len(common) > 100 and (a[common] - b[common]).abs().mean() > 0.005
    # the industry effects turn: at the end the gap between a risky industry (H, +0.45) and a
    # safe one (M, -0.35) is smaller in the drifted world than in the stationary one
    ind = world.ent["industry"].to_numpy()

    def gap(ev) -> float:
        late = ev.true_risk[ev.true_risk["month"] == last_month]
        by = late.assign(ind=ind[late["ent"].to_numpy()]).groupby("ind")["true_p"].mean()
        return float(by["H"] - by["M"])

    assert gap(drifted) < gap(base)


def test_inspector_spread_makes_inspectors_differ_and_zero_spread_changes_nothing() -> None:
    from pipelines.simulator.dynamics import simulate_events
    from pipelines.simulator.world import build_world

    world = build_world(5, 10_000, date(2026, 10, 31))
    base = simulate_events(world, 5, 5, date(2026, 10, 31))
    zero = simulate_events(world, 5, 5, date(2026, 10, 31), inspector_spread=0.0)
    pd.testing.assert_frame_equal(base.inspections, zero.inspections)
    spread = simulate_events(world, 5, 5, date(2026, 10, 31), inspector_spread=1.0)
    rate = {
        name: ev.inspections.groupby("inspector")["found"].agg(["mean", "size"])
        for name, ev in (("alike", base), ("spread", spread))
    }
    busy = rate["alike"]["size"] >= 25
    alike, differ = rate["alike"]["mean"][busy], rate["spread"]["mean"][busy]
    assert differ.std() > 1.2 * alike.std(), (alike.std(), differ.std())
    assert differ.max() / max(differ.min(), 1e-3) > 4
