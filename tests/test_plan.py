"""双随机 plans: reproducible by seed, independent of partitioning, exact stratum sizes,
never the same inspector twice in a row, excluded enterprises never drawn."""

from __future__ import annotations

from datetime import date

import pytest

from risk_insight.plan import draw_plan, draw_value
from risk_insight.policy import load_policy
from risk_insight.tiers import round_half_up

T = date(2026, 11, 1)
TIER_SCHEMA = "uscc string, region_code string, tier string, excluded boolean, model_version string"
ROSTER_SCHEMA = "inspector_id string, region_code string"
INSP_SCHEMA = "inspection_id string, uscc string, inspected_on date, inspector_id string"


@pytest.fixture(scope="module")
def frames(spark):
    tiers = []
    for region, n in (("110101", 400), ("110102", 230)):
        for i in range(n):
            tier = "D" if i % 20 == 0 else "C" if i % 7 == 0 else "A" if i % 5 == 0 else "B"
            tiers.append((f"{region}{i:05d}", region, tier, False, "m1"))
    tiers += [(f"X{i:03d}", "110101", None, True, "m1") for i in range(30)]  # excluded
    roster = [("I1", "110101"), ("I2", "110101"), ("I3", "110101"), ("J1", "110102")]
    # every 110101 enterprise was last inspected by I1 (an older one by I2); 110102 by J1
    insp = [(f"A{u}", u, date(2026, 3, 1), "I1") for u, r, *_ in tiers if r == "110101"]
    insp += [(f"B{u}", u, date(2025, 3, 1), "I2") for u, r, *_ in tiers if r == "110101"]
    insp += [(f"C{u}", u, date(2026, 3, 1), "J1") for u, r, *_ in tiers if r == "110102"]
    insp += [
        (f"D{u}", u, date(2026, 12, 1), "I3") for u, r, *_ in tiers if r == "110101"
    ]  # after T
    return (
        spark.createDataFrame(tiers, TIER_SCHEMA),
        spark.createDataFrame(roster, ROSTER_SCHEMA),
        spark.createDataFrame(insp, INSP_SCHEMA),
    )


def _plan(frames, seed, policy=None, tiers=None):
    t, roster, insp = frames
    df = draw_plan(tiers or t, roster, insp, T, "CJ-20261101", seed, policy or load_policy())
    return sorted(tuple(r) for r in df.collect())


def test_same_seed_same_plan_other_seed_other_plan(frames):
    a = _plan(frames, 7)
    assert a == _plan(frames, 7)
    # the draw does not depend on how Spark splits the input
    assert a == _plan(frames, 7, tiers=frames[0].repartition(5, "tier"))
    b = _plan(frames, 8)
    assert {r[3] for r in a} != {r[3] for r in b}
    assert len(a) == len(b)  # same stratum sizes, other enterprises


def test_stratum_sizes_follow_the_ratios_and_the_draw_is_auditable(frames):
    pol = load_policy()
    rows = _plan(frames, 7)
    tiers = frames[0].where("NOT excluded").collect()
    for region in ("110101", "110102"):
        for tier, ratio in pol.draw.ratios.items():
            n = sum(r["region_code"] == region and r["tier"] == tier for r in tiers)
            got = [r for r in rows if r[1] == region and r[2] == tier]
            assert len(got) == round_half_up(ratio * n), (region, tier, n)
            # the drawn are exactly the lowest draw values, recomputable outside Spark
            pop = sorted(
                (draw_value(7, "CJ-20261101", r["uscc"]), r["uscc"])
                for r in tiers
                if r["region_code"] == region and r["tier"] == tier
            )
            assert sorted(r[3] for r in got) == sorted(u for _, u in pop[: len(got)])
            for r in got:
                assert r[4] == pytest.approx(draw_value(7, "CJ-20261101", r[3]), abs=0)


def test_never_the_same_inspector_twice_in_a_row(frames):
    rows = _plan(frames, 7)
    by_region = {}
    for r in rows:
        by_region.setdefault(r[1], []).append((r[9], r[10]))
    # 110101: the previous inspector is I1 (the I3 inspection is after T), so I2 or I3
    assert {prev for _, prev in by_region["110101"]} == {"I1"}
    assert {ins for ins, _ in by_region["110101"]} == {"I2", "I3"}
    # 110102: the only inspector is the previous one, so nobody is assigned
    assert by_region["110102"] and all(ins is None for ins, _ in by_region["110102"])


def test_excluded_enterprises_are_never_drawn(frames):
    pol = load_policy().model_copy(deep=True)
    pol.draw.ratios = {t: 1.0 for t in "ABCD"}
    rows = _plan(frames, 7, pol)
    assert len(rows) == 630 and not any(r[3].startswith("X") for r in rows)
