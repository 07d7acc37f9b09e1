"""双随机 plans: reproducible by seed, independent of partitioning, exact stratum sizes,
never the same inspector twice in a row, excluded enterprises never drawn."""

from __future__ import annotations

from datetime import date

import pytest

from risk_insight.plan import draw_plan, draw_value
from risk_insight.tiers import round_half_up
from warehouse.contracts.tier_policy import load_policy

T = date(2026, 11, 1)
TIER_SCHEMA = "uscc string, region_code string, tier string, excluded boolean, model_version string"
ROSTER_SCHEMA = "inspector_id string, region_code string"
INSP_SCHEMA = (
    "inspection_id string, uscc string, inspected_on date, inspector_id string, mode_code string, "
    "plan_id string"
)


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
    m = "targeted"  # neither in the cool-off window nor counted by the yearly cap
    insp = [(f"A{u}", u, date(2026, 3, 1), "I1", m, None) for u, r, *_ in tiers if r == "110101"]
    insp += [(f"B{u}", u, date(2025, 3, 1), "I2", m, None) for u, r, *_ in tiers if r == "110101"]
    insp += [(f"C{u}", u, date(2026, 3, 1), "J1", m, None) for u, r, *_ in tiers if r == "110102"]
    insp += [
        (f"D{u}", u, date(2026, 12, 1), "I3", m, None) for u, r, *_ in tiers if r == "110101"
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


# ---- the plan calendar, eligibility and the inspectors -----------------------------------------
def test_plan_periods_and_ids():
    from risk_insight.calendar import next_period, period_of, previous_period

    p = period_of(date(2026, 11, 17))
    assert (p.start, p.end, p.plan_id) == (date(2026, 11, 1), date(2026, 11, 30), "CJ-20261101")
    assert date(2026, 11, 30) in p and date(2026, 12, 1) not in p
    assert next_period(p).plan_id == "CJ-20261201" and previous_period(p).end == date(2026, 10, 31)
    q = period_of(date(2026, 12, 31), "quarterly")
    assert (q.start, q.end, q.plan_id) == (date(2026, 10, 1), date(2026, 12, 31), "CJ-20261001")
    assert next_period(q).start == date(2027, 1, 1)
    with pytest.raises(ValueError, match="unknown plan period"):
        period_of(T, "weekly")


def _staff(drawn, roster, previous=None, conflicts=None, cap=40, seed=7):
    import pandas as pd

    from risk_insight.plan import assign_inspectors

    d = pd.DataFrame(drawn, columns=["uscc", "region_code"])
    d["draw_value"] = [draw_value(seed, "CJ-20261101", u) for u in d["uscc"]]
    r = pd.DataFrame(roster, columns=["inspector_id", "region_code"])
    out = assign_inspectors(d, r, previous or {}, conflicts or set(), seed, "CJ-20261101", 2, cap)
    return out.set_index("uscc")


def test_two_inspectors_never_the_previous_ones_and_conflicts_honoured():
    roster = [(f"I{k}", "R1") for k in range(1, 6)] + [("J1", "R2"), ("J2", "R2")]
    drawn = [(f"U{i:03d}", "R1") for i in range(60)] + [("V1", "R2"), ("V2", "R2")]
    previous = {f"U{i:03d}": {"I1", "I2"} for i in range(0, 60, 2)}  # the even ones: I1 + I2
    conflicts = {("I3", "U001"), ("I4", "U001"), ("I5", "U001"), ("J2", "V2")}
    out = _staff(drawn, roster, previous, conflicts, cap=100)
    for u, row in out.iterrows():
        if u in ("U001", "V2"):
            continue
        pair = {row["inspector_id"], row["inspector_2_id"]}
        assert len(pair) == 2 and None not in pair, u
        assert not pair & previous.get(u, set()), u  # neither of the previous pair
        assert not any((i, u) in conflicts for i in pair), u
    # U001: I3, I4, I5 declared a conflict; I1 and I2 remain, so it is staffed by them
    assert {out.at["U001", "inspector_id"], out.at["U001", "inspector_2_id"]} == {"I1", "I2"}
    # V2: only J1 is left in R2 once J2's conflict is honoured: unassigned, with the reason
    assert out.at["V2", "inspector_id"] is None and out.at["V2", "inspector_2_id"] is None
    assert out.at["V2", "unassigned_reason"] == "conflict_of_interest"
    assert out.at["V1", "unassigned_reason"] is None
    # random, not always the same pair: every R1 inspector is used
    used = set(out["inspector_id"]) | set(out["inspector_2_id"])
    assert {f"I{k}" for k in range(1, 6)} <= used


def test_workload_cap_and_small_rosters_leave_enterprises_unassigned_with_a_reason():
    roster = [("I1", "R1"), ("I2", "R1"), ("I3", "R1"), ("K1", "R3")]
    drawn = [(f"U{i:02d}", "R1") for i in range(10)] + [("W1", "R3"), ("X1", "R9")]
    out = _staff(drawn, roster, {"U00": {"I1", "I2"}}, cap=4)
    load: dict[str, int] = {}
    for i in list(out["inspector_id"]) + list(out["inspector_2_id"]):
        if i:
            load[i] = load.get(i, 0) + 1
    assert max(load.values()) <= 4 and sum(load.values()) == 2 * 6  # 3 x 4 slots / 2 = 6
    capped = out[out["unassigned_reason"] == "workload_cap"]
    assert len(capped) == 10 - 6 - (out.at["U00", "unassigned_reason"] is not None)
    # U00 was inspected by I1 + I2: with only I3 left it cannot get two
    assert out.at["U00", "unassigned_reason"] == "previous_inspectors"
    assert out.at["W1", "unassigned_reason"] == "roster_too_small"
    assert out.at["X1", "unassigned_reason"] == "roster_too_small"  # no roster at all
    # staffed in draw-value order: the ones left over are the highest draw values
    staffed = out[out["inspector_id"].notna()].index
    u = {k: draw_value(7, "CJ-20261101", k) for k in out.index}
    assert max(u[k] for k in staffed if k.startswith("U")) < min(u[k] for k in capped.index)


def test_cool_off_and_yearly_cap_exclude_enterprises_from_the_draw(spark):
    pol = load_policy().model_copy(deep=True)
    pol.draw.ratios = {t: 1.0 for t in "ABCD"}  # everyone eligible is drawn
    tiers = [(f"E{i}", "110101", "A", False, "m1") for i in range(6)]
    tiers += [(f"E{i}", "110101", "D", False, "m1") for i in range(6, 12)]
    insp = [
        ("X1", "E0", date(2026, 9, 1), "I1", "投诉核查", None),  # 61 days before T: cool-off
        ("X2", "E1", date(2026, 6, 1), "I1", "random_draw", None),  # a random draw this year
        ("X3", "E6", date(2026, 3, 1), "I1", "random_draw", None),  # D: cap 4, three draws
        ("X4", "E6", date(2026, 5, 1), "I1", "random_draw", "CJ-20260501"),
        ("X5", "E7", date(2025, 6, 1), "I1", "random_draw", None),  # last year: not counted
    ]
    previous = [  # gold.inspection_plan rows of earlier periods
        ("CJ-20260501", date(2026, 5, 1), "E6"),  # the same draw as X4: counted once
        ("CJ-20260701", date(2026, 7, 1), "E6"),
        ("CJ-20261001", date(2026, 10, 1), "E8"),  # drawn 31 days ago: cool-off
    ]
    t = spark.createDataFrame(tiers, TIER_SCHEMA)
    roster = spark.createDataFrame([("I1", "110101"), ("I2", "110101")], ROSTER_SCHEMA)
    i = spark.createDataFrame(insp, INSP_SCHEMA)
    p = spark.createDataFrame(previous, "plan_id string, as_of date, uscc string")
    rows = {r["uscc"]: r for r in draw_plan(t, roster, i, T, "CJ-20261101", 7, pol, p).collect()}
    # E0 (cool-off), E1 (A cap 1), E8 (drawn in the cool-off window) are out; E6 has three
    # draws this year, under D's cap of 4: in
    assert set(rows) == {f"E{k}" for k in range(12)} - {"E0", "E1", "E8"}
    assert rows["E2"]["stratum_size"] == 6 and rows["E2"]["stratum_eligible"] == 4
    assert rows["E2"]["inclusion_prob"] == 1.0 and rows["E9"]["stratum_eligible"] == 5
    pol.plan.yearly_cap["D"] = 3
    capped = draw_plan(t, roster, i, T, "CJ-20261101", 7, pol, p).collect()
    assert "E6" not in {r["uscc"] for r in capped}
    # half the eligible D: the inclusion probability is drawn / eligible, not the policy ratio
    pol.draw.ratios["D"] = 0.5
    half = [r for r in draw_plan(t, roster, i, T, "CJ-20261101", 7, pol, p).collect()
            if r["tier"] == "D"]  # fmt: skip
    assert len(half) == 2 and {r["inclusion_prob"] for r in half} == {0.5}


def test_conflicts_by_enterprise_and_by_legal_representative(spark):
    pol = load_policy().model_copy(deep=True)
    pol.draw.ratios = {t: 1.0 for t in "ABCD"}
    t = spark.createDataFrame([(f"E{i}", "110101", "B", False, "m1") for i in range(4)],
                              TIER_SCHEMA)  # fmt: skip
    roster = spark.createDataFrame([(f"I{k}", "110101") for k in (1, 2, 3)], ROSTER_SCHEMA)
    i = spark.createDataFrame([], INSP_SCHEMA)
    reps = spark.createDataFrame(
        [("E0", "tok-a"), ("E1", "tok-a"), ("E2", "tok-b"), ("E3", None)],
        "uscc string, legal_rep_token string",
    )
    conflicts = spark.createDataFrame(
        [("I1", None, "tok-a", "配偶"), ("I2", "E2", None, "曾任职"), ("I3", "E2", None, "亲属")],
        "inspector_id string, uscc string, legal_rep_token string, reason string",
    )
    plan = draw_plan(t, roster, i, T, "CJ-20261101", 7, pol, None, conflicts, reps)
    rows = {r["uscc"]: r for r in plan.collect()}
    for u in ("E0", "E1"):  # I1 is related to their legal representative
        assert {rows[u]["inspector_id"], rows[u]["inspector_2_id"]} == {"I2", "I3"}
    assert rows["E2"]["inspector_id"] is None  # only I1 left
    assert rows["E2"]["unassigned_reason"] == "conflict_of_interest"
    assert rows["E3"]["inspector_id"] is not None and rows["E3"]["inspector_2_id"] is not None
