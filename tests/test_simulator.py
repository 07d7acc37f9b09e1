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


END = date(2026, 10, 31)


@pytest.fixture(scope="module")
def world_1000():
    from pipelines.simulator.world import build_world

    return build_world(5, 1000, END)


def _mean_p(ev) -> pd.Series:
    """Each enterprise's mean monthly true_p, by enterprise number."""
    return ev.true_risk.groupby("ent")["true_p"].mean()


def test_street_and_licence_signals_at_zero_change_nothing(world_1000) -> None:
    from pipelines.simulator.dynamics import Events, simulate_events

    base = simulate_events(world_1000, 5, 2, END)
    zero = simulate_events(world_1000, 5, 2, END, street_signal=0.0, licence_signal=0.0)
    for f in Events.__dataclass_fields__:
        a, b = getattr(base, f), getattr(zero, f)
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        else:
            np.testing.assert_array_equal(a, b)


def test_districts_share_streets_from_their_own_pool(world_1000) -> None:
    ent, pools = world_1000.ent, world_1000.streets
    sizes = pools.groupby("region_code").size()
    assert set(sizes.index) == REGIONS and sizes.between(25, 40).all()
    assert not pools.duplicated(["region_code", "street"]).any()
    # seen from each enterprise: how many enterprises (itself included) are on its street
    neighbours = ent.groupby(["region_code", "street"])["street"].transform("size")
    print(
        f"\nenterprises on an enterprise's (district, street): median {neighbours.median():.0f}, "
        f"share with another: {(neighbours >= 2).mean():.2f}"
    )
    assert neighbours.median() >= 3 and (neighbours >= 2).mean() > 0.7
    # every address, founding or later, lies on a street of its own district's pool
    reg = world_1000.regions.set_index("region_code")
    prefix = {
        c: (r.province_name if r.province_name != r.city_name else "") + r.city_name + r.region_name
        for c, r in reg.iterrows()
    }
    pool = pools.groupby("region_code")["street"].agg(set).to_dict()
    region = ent["region_code"].to_numpy()
    for i, address in zip(world_1000.versions["ent"], world_1000.versions["address"], strict=True):
        rest = address.removeprefix(prefix[region[i]])
        street = re.match(r"^(.+?)\d+号(\d+室)?$", rest).group(1)
        assert rest != address and street in pool[region[i]], address
    for address, street in zip(ent["address"], ent["street"], strict=True):
        assert street in address


def test_street_signal_makes_streets_differ(world_1000) -> None:
    from pipelines.simulator.dynamics import simulate_events

    ent = world_1000.ent

    def between_streets(ev) -> float:
        p = _mean_p(ev)
        cells = p.groupby(
            [ent["region_code"].to_numpy()[p.index], ent["street"].to_numpy()[p.index]]
        )
        by = cells.agg(["mean", "size"])
        return float(by.loc[by["size"] >= 3, "mean"].var())

    flat = between_streets(simulate_events(world_1000, 5, 2, END))
    varied = between_streets(simulate_events(world_1000, 5, 2, END, street_signal=1.0))
    print(f"\nbetween-street variance of mean true_p: {flat:.5f} -> {varied:.5f}")
    assert varied > 2 * flat


def test_business_scopes_name_their_licensed_trades(world_1000) -> None:
    from pipelines.simulator.world import ACTIVITIES, GENERAL_ACTIVITIES, LICENCE_P, gbk_ok

    ordinary = {a for acts in ACTIVITIES.values() for a in acts} | set(GENERAL_ACTIVITIES)
    assert not [(a, t) for a in ordinary for t in LICENCE_P if t in a]
    ent = world_1000.ent
    assert ent["business_scope"].map(gbk_ok).all() and (ent["business_scope"] != "").all()
    for scope, trades in zip(ent["business_scope"], ent["licences"], strict=True):
        assert [t for t in LICENCE_P if t in scope] == list(trades), scope
    held = ent["licences"].map(len) > 0
    assert held.groupby(ent["industry"]).mean()["F"] > 0.3 and not held.all()


def test_licence_signal_raises_risk_within_industry(world_1000) -> None:
    from pipelines.simulator.dynamics import LICENCE_EFFECT, simulate_events

    ent = world_1000.ent
    risky = ent["licences"].map(lambda ts: any(LICENCE_EFFECT[t] > 0 for t in ts)).to_numpy()

    def within_industry_gap(ev) -> float:
        """Mean true_p of risky-licence minus other enterprises of the same industry, averaged
        over industries with at least 5 of each (weighted by the smaller group)."""
        p = _mean_p(ev)
        df = pd.DataFrame({"p": p, "ind": ent["industry"].to_numpy()[p.index], "r": risky[p.index]})
        gaps, weights = [], []
        for _, g in df.groupby("ind"):
            a, b = g.loc[g["r"], "p"], g.loc[~g["r"], "p"]
            if len(a) >= 5 and len(b) >= 5:
                gaps.append(a.mean() - b.mean())
                weights.append(min(len(a), len(b)))
        return float(np.average(gaps, weights=weights))

    off = within_industry_gap(simulate_events(world_1000, 5, 2, END))
    on = within_industry_gap(simulate_events(world_1000, 5, 2, END, licence_signal=1.0))
    print(f"\nwithin-industry gap in mean true_p, risky licence vs none: {off:+.4f} -> {on:+.4f}")
    assert on > 0.01 and on > off + 0.01


def test_registry_carries_business_scope_only_with_licence_signal(
    clean: SimulationSummary, tmp_path: Path
) -> None:
    from pipelines.simulator.exports import SCOPE_HEADER

    spec = exports()["registry"]
    header, _ = read_rows(clean.out / "landing" / "2026-10-28" / spec.file_name, spec)
    assert SCOPE_HEADER not in header
    config = SimulationConfig(enterprises=300, years=1, seed=3, licence_signal=1.0)
    summary = simulate(config, tmp_path)
    ents = pd.read_parquet(summary.out / "truth" / "enterprises.parquet")
    scope_of = dict(zip(ents["uscc"], ents["business_scope"], strict=True))
    rows = 0
    for day in [summary.history_date, *summary.increment_dates]:
        header, data = read_rows(summary.out / "landing" / day.isoformat() / spec.file_name, spec)
        assert header == [*spec.headers_zh, SCOPE_HEADER]
        for row in data:
            if len(row) == len(header) and row[0] in scope_of:
                assert row[-1].strip() == scope_of[row[0]], row
                rows += 1
    assert rows > 300


def test_licensing_export_only_with_licence_signal_and_revocations_follow_risk(
    clean: SimulationSummary, tmp_path: Path
) -> None:
    from pipelines.simulator.exports import LICENSING_MAPPING, licensing_export
    from warehouse.contracts import load_mapping

    spec = licensing_export()
    assert not list((clean.out / "landing").glob(f"*/{spec.file_name}"))
    config = SimulationConfig(enterprises=2000, years=2, seed=3, licence_signal=1.0)
    summary = simulate(config, tmp_path)
    mapping = load_mapping(LICENSING_MAPPING)
    words = mapping.words("kind")
    kinds: Counter[str] = Counter()
    revoked: set[str] = set()
    for day in [summary.history_date, *summary.increment_dates]:
        header, data = read_rows(summary.out / "landing" / day.isoformat() / spec.file_name, spec)
        assert header == [mapping.header_of(f) for f in mapping.fields]
        for row in data:
            kind = words[row[2]]  # every word is one the mapping translates
            kinds[kind] += 1
            if kind == "licence_revoked":
                revoked.add(row[1])
    assert kinds["licence_granted"] > 20 and kinds["licence_revoked"] > 20
    ents = pd.read_parquet(summary.out / "truth" / "enterprises.parquet")
    risk = pd.read_parquet(summary.out / "truth" / "true_risk.parquet")
    mean_p = risk.groupby("uscc")["true_p"].mean()
    licensed = set(ents.loc[ents["licences"] != "", "uscc"])
    assert revoked <= licensed  # only a licence held can be revoked
    hit = mean_p.reindex(sorted(revoked)).mean()
    rest = mean_p.reindex(sorted(licensed - revoked)).mean()  # NaN: never active in the span
    print(f"\nmean true_p, revoked vs other licensed: {hit:.4f} vs {rest:.4f}")
    assert hit > 1.5 * rest
