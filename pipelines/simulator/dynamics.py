"""The monthly latent-risk process and the enforcement events it generates.

Vectorised over enterprises, looped over months. Each month every active enterprise has a true
probability ``p`` that an inspection finds a problem: the sigmoid of a hidden propensity, a
legal-representative effect shared by associated enterprises, industry / age / capital effects
and its observable history (penalties, list entries, late reports, complaints, associates).

Drift (``drift`` > 0, off by default): the world's risk changes over the simulated span, so a
model trained on its early years ranks later months worse. With a = drift x (month / last
month), the weight of complaints fades to (1 - a) of its value, the weight of past penalties
and late reports grows by a, and every industry's effect turns towards its opposite
(x (1 - 2a)). At drift 0 every weight is exactly the undrifted one.

Street signal (``street_signal`` > 0, off by default): every street of a district carries a
log-odds effect, normal with s.d. ``street_signal`` and centred over all streets, added to the
static risk of the enterprises whose founding address lies on it (a run-down market street,
a block of back-street workshops). Licence signal (``licence_signal`` > 0, off by default):
every licensed trade named in an enterprise's business scope (经营范围) adds its effect in
LICENCE_EFFECT (食品经营 +0.6, 危险化学品经营 +0.8, ... 烟草制品零售 0), summed and times
``licence_signal``; trades vary within an industry, so this is more than the industry effect.
The street effects come from a stream of their own ([seed, 9]) and the scopes from the world,
so at 0 the events are exactly the ones without these knobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from pipelines.simulator.world import INDUSTRIES, LICENCE_P, World

NAT = np.datetime64("NaT", "D")
FAR = np.datetime64("2999-12-31", "D")

# Logit model of the monthly finding probability.
BASE = -4.4
W_U = 1.3  # hidden propensity
W_PEN = 0.55  # log1p(decayed penalty count)
W_ABN = 0.6  # on abnormal list
W_SER = 0.9  # on serious list
W_LATE = 0.35  # decayed count of late / missing annual reports
W_COMPL = 0.35  # log1p(complaints in the last 12 months)
W_ASSOC = 0.45  # log1p(associated enterprises' decayed records)
NOISE = 0.25
# Log-odds effect of each licensed trade (world.LICENCE_P) named in a business scope.
LICENCE_EFFECT: dict[str, float] = {
    "食品经营": 0.6,
    "餐饮服务": 0.5,
    "药品零售": 0.5,
    "医疗器械经营": 0.3,
    "危险化学品经营": 0.8,
    "成品油零售": 0.6,
    "特种设备": 0.4,
    "烟草制品零售": 0.0,
}
assert set(LICENCE_EFFECT) == set(LICENCE_P)
PEN_DECAY = 0.95
LATE_DECAY = 0.97

PENALTY_CATEGORIES = (
    "虚假宣传",
    "产品质量违法",
    "食品安全违法",
    "价格违法",
    "无照经营",
    "商标侵权",
    "不正当竞争",
    "计量违法",
    "未按规定公示信息",
    "侵害消费者权益",
)
PENALTY_CAT_P = (0.16, 0.14, 0.14, 0.1, 0.06, 0.07, 0.06, 0.05, 0.08, 0.14)
SERIOUS_CATS = ("产品质量违法", "食品安全违法")
ABN_REASONS = (
    "未按照《企业信息公示暂行条例》第八条规定的期限公示年度报告",
    "通过登记的住所或者经营场所无法联系",
)
ABN_REMOVALS = ("补报未报年份的年度报告并公示", "依法办理住所或者经营场所变更登记")
SER_REASON = "因{cat}受到较重行政处罚"


@dataclass(frozen=True)
class Events:
    """Typed event tables (enterprise numbers, numpy dates) plus the monthly truth."""

    months: np.ndarray  # datetime64[M] of each simulated month
    true_risk: pd.DataFrame  # ent, month (index into months), true_p
    complaints: pd.DataFrame  # ent, received_on
    annual: pd.DataFrame  # ent, report_year, filed_on
    inspections: pd.DataFrame  # ent, inspected_on, mode, found, inspector
    penalties: pd.DataFrame  # ent, decided_on, category, amount
    abnormal: pd.DataFrame  # ent, entered_on, reason, removed_on, removal_reason
    serious: pd.DataFrame  # ent, entered_on, reason, removed_on


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def rep_by_month(world: World, months: np.ndarray) -> np.ndarray:
    """Person index of each enterprise's legal representative at the start of each month."""
    n = len(world.ent)
    starts = months.astype("datetime64[D]")
    reps = np.repeat(world.ent["person"].to_numpy()[:, None], len(months), axis=1)
    v = world.versions
    ch = v[v["kind"] == "legal_rep"]
    cut = np.searchsorted(starts, ch["changed_on"].to_numpy().astype("datetime64[D]"), "right")
    for e, k, person in zip(ch["ent"], cut, ch["person"], strict=True):
        reps[e, k:] = person
    assert reps.shape == (n, len(months))
    return reps


class _Lists:
    """Append-only columns collected month by month."""

    def __init__(self, *names: str) -> None:
        self.cols: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **arrays: np.ndarray) -> None:
        for name, arr in arrays.items():
            self.cols[name].append(np.asarray(arr))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({n: np.concatenate(a) if a else [] for n, a in self.cols.items()})


def _days_in(rng: np.random.Generator, start: np.datetime64, end: np.datetime64, n: int):
    return start + rng.integers(0, (end - start).astype(int) + 1, size=n)


def street_effects(world: World, seed: int, street_signal: float) -> np.ndarray:
    """Log-odds effect of each enterprise's founding street: one normal draw per street of
    ``world.streets`` (s.d. ``street_signal``, centred over all streets)."""
    draw = np.random.default_rng([seed, 9]).normal(0.0, 1.0, len(world.streets))
    effect = street_signal * (draw - draw.mean())
    key = pd.MultiIndex.from_frame(world.streets[["region_code", "street"]])
    at = key.get_indexer(pd.MultiIndex.from_frame(world.ent[["region_code", "street"]]))
    assert (at >= 0).all(), "an enterprise's street is not in its district's pool"
    return effect[at]


def licence_effects(world: World, licence_signal: float) -> np.ndarray:
    """Log-odds effect of each enterprise's licensed trades (LICENCE_EFFECT, summed) times
    ``licence_signal``."""
    total = [sum(LICENCE_EFFECT[t] for t in ts) for ts in world.ent["licences"]]
    return licence_signal * np.array(total, dtype=float)


def simulate_events(
    world: World,
    seed: int,
    years: int,
    end: date,
    drift: float = 0.0,
    inspector_spread: float = 0.0,
    street_signal: float = 0.0,
    licence_signal: float = 0.0,
) -> Events:
    """Run the monthly process over ``years`` years ending at ``end`` (``drift``,
    ``street_signal``, ``licence_signal``: see the module docstring). ``inspector_spread``: the
    log-scale s.d. of how much of an enterprise's problem each inspector finds (执法尺度: 0 =
    every inspector finds what is there; 1 puts the strictest of a district's inspectors at
    several times the most lenient)."""
    rng = np.random.default_rng([seed, 2])
    # drawn apart from the main stream, so a world without spread is the same world as before
    detect = np.exp(
        np.random.default_rng([seed, 7]).normal(0.0, 1.0, len(world.inspectors)) * inspector_spread
        - inspector_spread**2 / 2
    )
    ent = world.ent
    n = len(ent)
    end_m = np.datetime64(end, "M")
    months = np.arange(end_m - years * 12 + 1, end_m + 1)
    reps = rep_by_month(world, months)
    person_eff = world.persons["effect"].to_numpy()
    n_persons = len(person_eff)

    founded = ent["founded_on"].to_numpy().astype("datetime64[D]")
    closed = ent["closed_on"].to_numpy().astype("datetime64[D]")
    closed = np.where(np.isnat(closed), FAR, closed)
    industry = ent["industry"].to_numpy()
    ind_eff = np.array([INDUSTRIES[i][1] for i in industry])
    c_mult = np.array([INDUSTRIES[i][2] for i in industry])
    cap_eff = -0.12 * (np.log10(ent["reg_capital"].to_numpy()) - 6.0)
    static = BASE + W_U * ent["u"].to_numpy() + ind_eff + cap_eff
    if street_signal:
        static = static + street_effects(world, seed, street_signal)
    if licence_signal:
        static = static + licence_effects(world, licence_signal)
    region = ent["region_code"].to_numpy()
    roster = world.inspectors.groupby("region_code").indices
    ins_ids = world.inspectors["inspector_id"].to_numpy()

    pen_decay = np.zeros(n)
    late_score = np.zeros(n)
    compl_hist = np.zeros((12, n), dtype=np.int32)
    ab_on = np.zeros(n, bool)
    ab_rid = np.full(n, -1)
    ab_remove = np.full(n, FAR)
    ser_on = np.zeros(n, bool)
    ser_rid = np.full(n, -1)
    ser_remove = np.full(n, FAR)
    ar_outcome = np.full(n, -1)  # this year's report: 0 on time, 1 late, 2 never
    ar_year = 0

    truth = _Lists("ent", "month", "true_p")
    complaints = _Lists("ent", "received_on")
    annual = _Lists("ent", "report_year", "filed_on")
    inspections = _Lists("ent", "inspected_on", "mode", "found", "inspector")
    penalties = _Lists("ent", "decided_on", "category", "amount")
    abn = _Lists("ent", "entered_on", "reason")
    abn_removed: dict[int, np.datetime64] = {}
    ser = _Lists("ent", "entered_on", "reason")
    ser_removed: dict[int, np.datetime64] = {}
    n_abn = n_ser = 0
    pend_pen = (np.empty(0, int), np.empty(0, "datetime64[D]"))
    pend_abn = (np.empty(0, int), np.empty(0, "datetime64[D]"))
    pend_ser = (np.empty(0, int), np.empty(0, "datetime64[D]"), np.empty(0, object))

    for m, month in enumerate(months):
        s = month.astype("datetime64[D]")
        e = (month + 1).astype("datetime64[D]") - 1
        mo = int(str(month)[5:7])
        active = (founded < s) & (closed > e)
        idx = np.flatnonzero(active)
        age = (s - founded).astype(int)
        age_eff = np.select([age < 365, age < 3 * 365, age > 15 * 365], [0.35, 0.2, -0.15], 0.0)
        rep = reps[:, m]
        score = pen_decay + 0.5 * ab_on + 1.5 * ser_on
        assoc = np.bincount(rep, weights=score, minlength=n_persons)[rep] - score
        a = drift * m / max(len(months) - 1, 1)
        z = (
            static
            - 2.0 * a * ind_eff  # exactly zero without drift
            + person_eff[rep]
            + age_eff
            + W_PEN * (1.0 + a) * np.log1p(pen_decay)
            + W_ABN * ab_on
            + W_SER * ser_on
            + W_LATE * (1.0 + a) * late_score
            + W_COMPL * (1.0 - a) * np.log1p(compl_hist.sum(axis=0))
            + W_ASSOC * np.log1p(np.maximum(assoc, 0.0))
            + rng.normal(0.0, NOISE, size=n)
        )
        p = sigmoid(z)
        truth.add(ent=idx, month=np.full(len(idx), m), true_p=p[idx])

        # Complaints: Poisson with a rate rising with risk.
        lam = np.where(active, 0.021 * c_mult * np.exp(0.55 * (z + 3.6)), 0.0)
        n_c = rng.poisson(np.minimum(lam, 3.0))
        c_ent = np.repeat(np.arange(n), n_c)
        c_day = _days_in(rng, s, e, len(c_ent))
        complaints.add(ent=c_ent, received_on=c_day)
        first_c = np.full(n, FAR)
        np.minimum.at(first_c, c_ent, c_day)

        # Annual reports for last year, decided in January.
        if mo == 1:
            ar_year = int(str(month)[:4]) - 1
            r = rng.random(n)
            on_time = sigmoid(2.9 - 0.8 * (z + 3.6))
            never = on_time + (1 - on_time) * sigmoid(-0.6 + 0.7 * (z + 3.6))
            ar_outcome = np.where(active, np.select([r < on_time, r < never], [0, 2], 1), -1)
            ok = np.flatnonzero(ar_outcome == 0)
            filed = s + (181 * rng.beta(2.2, 1.1, size=len(ok))).astype(int)
            keep = filed < closed[ok]
            annual.add(ent=ok[keep], report_year=np.full(keep.sum(), ar_year), filed_on=filed[keep])
        if mo == 7:
            miss = np.flatnonzero((ar_outcome > 0) & active)
            late_score[miss] += 1.0
            entered = _days_in(rng, s, s + 14, len(miss))
            filed = entered + 3 + rng.exponential(100.0, size=len(miss)).astype(int)
            filed_ok = (ar_outcome[miss] == 1) & (filed < closed[miss])
            annual.add(
                ent=miss[filed_ok],
                report_year=np.full(filed_ok.sum(), ar_year),
                filed_on=filed[filed_ok],
            )
            fresh = ~ab_on[miss]
            new = miss[fresh]
            abn.add(ent=new, entered_on=entered[fresh], reason=np.full(len(new), 0))
            ab_on[new] = True
            ab_rid[new] = np.arange(n_abn, n_abn + len(new))
            n_abn += len(new)
            removal = filed[fresh] + rng.integers(1, 11, len(new))
            ab_remove[new] = np.where(filed_ok[fresh], removal, FAR)
            ar_outcome[:] = -1

        # Inspections: complaint checks, targeted on listed enterprises, random draws.
        r = rng.random(n)
        by_compl = active & (n_c > 0) & (r < 0.25)
        by_list = active & ~by_compl & ((ab_on & (r > 0.985)) | (ser_on & (r > 0.96)))
        by_draw = active & ~by_compl & ~by_list & (rng.random(n) < 0.05 / 12)
        for mask, mode in ((by_compl, "投诉核查"), (by_list, "定向检查"), (by_draw, "双随机抽查")):
            i_ent = np.flatnonzero(mask)
            day = _days_in(rng, s, e, len(i_ent))
            if mode == "投诉核查":
                day = np.minimum(
                    np.maximum(day, first_c[i_ent] + rng.integers(0, 8, len(i_ent))), e
                )
            u = rng.random(len(i_ent))
            who = np.array(
                [roster[region[i]][rng.integers(len(roster[region[i]]))] for i in i_ent], int
            )
            found = u < p[i_ent] * (detect[who] if len(who) else 1.0)
            inspections.add(
                ent=i_ent,
                inspected_on=day,
                mode=np.full(len(i_ent), mode),
                found=found,
                inspector=ins_ids[who] if len(who) else np.empty(0, object),
            )
            f_ent, f_day = i_ent[found], day[found]
            to_pen = rng.random(len(f_ent)) < 0.8
            pend_pen = (
                np.concatenate([pend_pen[0], f_ent[to_pen]]),
                np.concatenate([pend_pen[1], f_day[to_pen] + rng.integers(14, 76, to_pen.sum())]),
            )
            to_abn = rng.random(len(f_ent)) < 0.1
            pend_abn = (
                np.concatenate([pend_abn[0], f_ent[to_abn]]),
                np.concatenate([pend_abn[1], f_day[to_abn] + rng.integers(3, 21, to_abn.sum())]),
            )

        lost = np.flatnonzero(active & (rng.random(n) < 0.012 * p))
        pend_abn = (
            np.concatenate([pend_abn[0], lost]),
            np.concatenate([pend_abn[1], _days_in(rng, s, e, len(lost))]),
        )

        # Penalties from other enforcement channels (tip-offs, special campaigns).
        other = np.flatnonzero(active & (rng.random(n) < 0.09 * p))
        pend_pen = (
            np.concatenate([pend_pen[0], other]),
            np.concatenate([pend_pen[1], _days_in(rng, s, e, len(other))]),
        )

        # Decide the penalties due this month.
        due = pend_pen[1] <= e
        d_ent, d_day = pend_pen[0][due], pend_pen[1][due]
        pend_pen = (pend_pen[0][~due], pend_pen[1][~due])
        alive = d_day < closed[d_ent]
        d_ent, d_day = d_ent[alive], d_day[alive]
        cat = rng.choice(len(PENALTY_CATEGORIES), size=len(d_ent), p=PENALTY_CAT_P)
        amount = np.round(rng.lognormal(np.log(3000) + 0.35 * (z[d_ent] + 3.6), 1.3), -2)
        amount = np.maximum(amount, 200.0)
        penalties.add(
            ent=d_ent,
            decided_on=d_day,
            category=np.array(PENALTY_CATEGORIES)[cat],
            amount=amount,
        )
        np.add.at(pen_decay, d_ent, 1.0)
        serious_cat = np.isin(np.array(PENALTY_CATEGORIES)[cat], SERIOUS_CATS)
        heavy = ((amount >= 30_000) & serious_cat) | (amount >= 200_000)
        go = heavy & (rng.random(len(d_ent)) < 0.7)
        reasons = np.array(
            [SER_REASON.format(cat=PENALTY_CATEGORIES[c]) for c in cat[go]], dtype=object
        )
        pend_ser = (
            np.concatenate([pend_ser[0], d_ent[go]]),
            np.concatenate([pend_ser[1], d_day[go] + rng.integers(30, 91, go.sum())]),
            np.concatenate([pend_ser[2], reasons]),
        )

        # Abnormal-list entries for unreachable addresses.
        due = pend_abn[1] <= e
        a_ent, a_day = pend_abn[0][due], pend_abn[1][due]
        pend_abn = (pend_abn[0][~due], pend_abn[1][~due])
        ok = (a_day < closed[a_ent]) & ~ab_on[a_ent]
        a_ent, first = np.unique(a_ent[ok], return_index=True)
        a_day = a_day[ok][first]
        abn.add(ent=a_ent, entered_on=a_day, reason=np.full(len(a_ent), 1))
        ab_on[a_ent] = True
        ab_rid[a_ent] = np.arange(n_abn, n_abn + len(a_ent))
        n_abn += len(a_ent)
        fix = rng.random(len(a_ent)) < 0.6
        ab_remove[a_ent] = np.where(fix, a_day + rng.integers(60, 301, len(a_ent)), FAR)

        # Serious-list entries due this month.
        due = pend_ser[1] <= e
        s_ent, s_day, s_why = pend_ser[0][due], pend_ser[1][due], pend_ser[2][due]
        pend_ser = (pend_ser[0][~due], pend_ser[1][~due], pend_ser[2][~due])
        ok = (s_day < closed[s_ent]) & ~ser_on[s_ent]
        s_ent, first = np.unique(s_ent[ok], return_index=True)
        s_day, s_why = s_day[ok][first], s_why[ok][first]
        ser.add(ent=s_ent, entered_on=s_day, reason=s_why)
        ser_on[s_ent] = True
        ser_rid[s_ent] = np.arange(n_ser, n_ser + len(s_ent))
        n_ser += len(s_ent)
        lift = rng.random(len(s_ent)) < 0.4
        ser_remove[s_ent] = np.where(lift, s_day + rng.integers(365, 1096, len(s_ent)), FAR)

        # Removals due this month (only while the enterprise still exists).
        for i in np.flatnonzero(ab_on & (ab_remove <= e)):
            if ab_remove[i] < closed[i]:
                abn_removed[int(ab_rid[i])] = ab_remove[i]
            ab_on[i], ab_remove[i] = False, FAR
        for i in np.flatnonzero(ser_on & (ser_remove <= e)):
            if ser_remove[i] < closed[i]:
                ser_removed[int(ser_rid[i])] = ser_remove[i]
            ser_on[i], ser_remove[i] = False, FAR

        pen_decay *= PEN_DECAY
        late_score *= LATE_DECAY
        compl_hist[m % 12] = n_c

    abnormal = abn.frame()
    rid = np.arange(len(abnormal))
    abnormal["removed_on"] = np.array([abn_removed.get(i, NAT) for i in rid], "datetime64[D]")
    abnormal["removal_reason"] = np.where(
        np.isnat(abnormal["removed_on"].to_numpy()),
        "",
        np.array(ABN_REMOVALS)[abnormal["reason"].to_numpy().astype(int)],
    )
    abnormal["reason"] = np.array(ABN_REASONS)[abnormal["reason"].to_numpy().astype(int)]
    serious = ser.frame()
    serious["removed_on"] = np.array(
        [ser_removed.get(i, NAT) for i in range(len(serious))], "datetime64[D]"
    )
    return Events(
        months=months,
        true_risk=truth.frame(),
        complaints=complaints.frame(),
        annual=annual.frame(),
        inspections=inspections.frame(),
        penalties=penalties.frame(),
        abnormal=abnormal,
        serious=serious,
    )
