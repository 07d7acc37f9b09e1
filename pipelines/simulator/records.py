"""Turn world and events into clean source rows with report and landing dates.

Every table returned here has the source's canonical fields as clean strings (dates
YYYY-MM-DD, amounts like ``12500.00``, empty string for a missing optional value) and meta
columns that start with ``_``: ``_landing`` (day the row reaches the landing zone) and
``_event`` (the event date a late arrival is judged on), both as day numbers since 1970-01-01;
``_ent`` (enterprise number), ``_first`` (registry founding version), ``_nver`` (versions
delivered for the row's natural key) and ``_late`` (the row's report was months late).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from pipelines.simulator.dynamics import Events
from pipelines.simulator.exports import SCOPE_FIELD
from pipelines.simulator.world import World

NAT = np.datetime64("NaT", "D")
LATE_MIN, LATE_MAX = 30, 150  # extra days of a months-late report
LATE_THRESHOLD = 30  # an increment row whose event is this many days older is a late arrival
CITY_ABBR = {"110100": "京", "310100": "沪", "330100": "杭", "440300": "深", "510100": "蓉"}
REVENUE_BANDS = ("100万元以下", "100万-500万元", "500万-2000万元", "2000万元以上")


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return int(np.datetime64(d, "D").astype(np.int64))


def iso(arr: np.ndarray) -> np.ndarray:
    """Days as ``YYYY-MM-DD`` strings; NaT as empty string."""
    arr = np.asarray(arr, dtype="datetime64[D]")
    out = np.datetime_as_string(arr, unit="D").astype(object)
    out[np.isnat(arr)] = ""
    return out


def money(arr: np.ndarray) -> np.ndarray:
    """Amounts in yuan as plain ``12500.00`` strings."""
    return np.array([f"{x:.2f}" for x in np.asarray(arr, dtype=float)], dtype=object)


def _d(series: pd.Series) -> np.ndarray:
    return series.to_numpy().astype("datetime64[D]")


def _lag(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    return rng.integers(lo, hi + 1, size=n).astype("timedelta64[D]")


def _late(rng: np.random.Generator, rate: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which rows report months late, and their extra delay."""
    late = rng.random(n) < rate
    return late, np.where(late, _lag(rng, LATE_MIN, LATE_MAX, n), np.timedelta64(0, "D"))


def _meta(df: pd.DataFrame, landing, event, ent, late=None, first=None) -> pd.DataFrame:
    df["_landing"] = np.asarray(landing, dtype="datetime64[D]").astype(np.int64)
    df["_event"] = np.asarray(event, dtype="datetime64[D]").astype(np.int64)
    df["_ent"] = np.asarray(ent, dtype=int)
    df["_late"] = np.zeros(len(df), bool) if late is None else late
    df["_first"] = np.zeros(len(df), bool) if first is None else first
    df["_nver"] = 1
    return df


def _place(world: World) -> pd.DataFrame:
    """Per region: city name, authority names and case-number prefix."""
    r = world.regions.set_index("region_code")
    return pd.DataFrame(
        {
            "district_authority": r["city_name"] + r["region_name"] + "市场监督管理局",
            "city_authority": r["city_name"] + "市场监督管理局",
            "case_prefix": r["city_code"].map(CITY_ABBR) + r["region_name"].str[:-1] + "市监罚",
        }
    )


def registry_rows(world: World, rng: np.random.Generator, scope: bool = False) -> pd.DataFrame:
    """One row per registry version (change history); with ``scope``, each row also carries
    the enterprise's business scope (SCOPE_FIELD)."""
    v, ent, persons = world.versions, world.ent, world.persons
    e = ent.iloc[v["ent"].to_numpy()].reset_index(drop=True)
    who = persons.iloc[v["person"].to_numpy()].reset_index(drop=True)
    changed = _d(v["changed_on"])
    closing = (v["kind"] == "close").to_numpy()
    df = pd.DataFrame(
        {
            "uscc": e["uscc"],
            "name": e["name"],
            "ent_type": e["ent_type"],
            "reg_capital": money(v["reg_capital"]),
            "founded_on": iso(_d(e["founded_on"])),
            "region_code": e["region_code"],
            "industry": e["industry"],
            "status": v["status"],
            "legal_rep": who["name"],
            "legal_rep_id": who["id_no"],
            "phone": v["phone"],
            "address": v["address"],
            "changed_on": iso(changed),
            "closed_on": np.where(closing, iso(changed), ""),
        }
    )
    if scope:
        df[SCOPE_FIELD] = e["business_scope"].to_numpy()
    landing = changed + _lag(rng, 0, 3, len(df))
    return _meta(df, landing, changed, v["ent"], first=v["first"].to_numpy())


def annual_rows(world: World, ev: Events, rng: np.random.Generator) -> pd.DataFrame:
    """One row per filed annual report."""
    a = ev.annual
    ent = world.ent.iloc[a["ent"].to_numpy()]
    n = len(a)
    solo = (ent["ent_type"] == "个体工商户").to_numpy()
    base = np.exp(1.4 + 0.3 * np.log(ent["reg_capital"].to_numpy() / 1e6) + rng.normal(0, 0.9, n))
    employees = np.where(solo, 1 + rng.poisson(1.5, n), np.maximum(1, np.round(base))).astype(int)
    revenue = employees * rng.lognormal(np.log(30e4), 0.8, n)
    band = np.digitize(revenue, [1e6, 5e6, 2e7])
    share = 1 / (1 + np.exp(-(1.2 - 0.8 * ent["u"].to_numpy())))
    insured = rng.binomial(employees, share)
    filed = _d(a["filed_on"])
    df = pd.DataFrame(
        {
            "uscc": ent["uscc"].to_numpy(),
            "report_year": a["report_year"].astype(int).astype(str).to_numpy(),
            "filed_on": iso(filed),
            "employees": employees.astype(str),
            "revenue_band": np.array(REVENUE_BANDS)[band],
            "insured_staff": np.where(solo & (rng.random(n) < 0.3), "", insured.astype(str)),
        }
    )
    late, extra = _late(rng, 0.0, n)  # a filing date is the report itself: never late
    return _meta(df, filed + _lag(rng, 0, 1, n) + extra, filed, a["ent"], late)


def penalty_rows(world: World, ev: Events, rng: np.random.Generator, late_rate: float):
    """One row per penalty decision, numbered per authority and year."""
    p = ev.penalties.sort_values(["decided_on", "ent"], kind="stable").reset_index(drop=True)
    ent = world.ent.iloc[p["ent"].to_numpy()]
    region = ent["region_code"].to_numpy()
    place = _place(world).loc[region]
    decided = _d(p["decided_on"])
    year = decided.astype("datetime64[Y]").astype(int) + 1970
    seq = pd.DataFrame({"r": region, "y": year}).groupby(["r", "y"]).cumcount() + 1
    case_no = [
        f"{pre}〔{y}〕{s}号"
        for pre, y, s in zip(place["case_prefix"], year, seq.to_numpy(), strict=True)
    ]
    n = len(p)
    late, extra = _late(rng, late_rate, n)
    reported = decided + _lag(rng, 1, 20, n) + extra
    df = pd.DataFrame(
        {
            "case_no": case_no,
            "uscc": ent["uscc"].to_numpy(),
            "decided_on": iso(decided),
            "category": p["category"].to_numpy(),
            "amount": money(p["amount"]),
            "authority": place["district_authority"].to_numpy(),
            "reported_on": iso(reported),
        }
    )
    return _meta(df, reported + _lag(rng, 0, 2, n), decided, p["ent"], late)


def list_rows(
    world: World, events: pd.DataFrame, serious: bool, rng: np.random.Generator, late_rate: float
) -> pd.DataFrame:
    """List versions: the entry, and a second version of the same key once removed."""
    ev = events.sort_values(["entered_on", "ent"], kind="stable").reset_index(drop=True)
    ent = world.ent.iloc[ev["ent"].to_numpy()]
    place = _place(world).loc[ent["region_code"].to_numpy()]
    authority = place["city_authority" if serious else "district_authority"].to_numpy()
    entered, removed = _d(ev["entered_on"]), _d(ev["removed_on"])
    n = len(ev)
    has_removal = ~np.isnat(removed)
    late, extra = _late(rng, late_rate, n)
    late &= ~has_removal
    extra = np.where(late, extra, np.timedelta64(0, "D"))
    rep_in = entered + _lag(rng, 0, 10, n) + extra
    rep_out = removed + _lag(rng, 0, 10, n)
    frames = []
    for version in ("entry", "removal"):
        rows = np.arange(n) if version == "entry" else np.flatnonzero(has_removal)
        out = version == "removal"
        cols = {
            "uscc": ent["uscc"].to_numpy()[rows],
            "entered_on": iso(entered[rows]),
            "entry_reason": ev["reason"].to_numpy()[rows],
            "removed_on": iso(removed[rows]) if out else np.full(len(rows), "", object),
        }
        if not serious:
            reason = ev["removal_reason"].to_numpy()[rows]
            cols["removal_reason"] = reason if out else np.full(len(rows), "", object)
        cols["authority"] = authority[rows]
        reported = (rep_out if out else rep_in)[rows]
        cols["reported_on"] = iso(reported)
        df = pd.DataFrame(cols)
        event = (removed if out else entered)[rows]
        landing = reported + _lag(rng, 0, 1, len(rows))
        frames.append(_meta(df, landing, event, ev["ent"].to_numpy()[rows], late[rows]))
    df = pd.concat(frames, ignore_index=True)
    df["_nver"] = df.groupby(["uscc", "entered_on"])["uscc"].transform("size")
    return df


def inspection_rows(world: World, ev: Events, rng: np.random.Generator, late_rate: float):
    """One row per inspection; ids numbered per district and month."""
    ins = ev.inspections.sort_values(["inspected_on", "ent"], kind="stable")
    ins = ins.reset_index(drop=True)
    ent = world.ent.iloc[ins["ent"].to_numpy()]
    region = ent["region_code"].to_numpy()
    day = _d(ins["inspected_on"])
    ym = np.datetime_as_string(day.astype("datetime64[M]")).astype(object)
    seq = pd.DataFrame({"r": region, "m": ym}).groupby(["r", "m"]).cumcount() + 1
    ids = [f"JC{r}{m.replace('-', '')}{s:04d}" for r, m, s in zip(region, ym, seq, strict=True)]
    quarter = (day.astype("datetime64[M]").astype(int) % 12) // 3 + 1
    drawn = (ins["mode"] == "双随机抽查").to_numpy()
    plan = [
        f"CJ{r}-{m[:4]}Q{q}" if d else ""
        for r, m, q, d in zip(region, ym, quarter, drawn, strict=True)
    ]
    n = len(ins)
    late, extra = _late(rng, late_rate, n)
    reported = day + _lag(rng, 0, 10, n) + extra
    df = pd.DataFrame(
        {
            "inspection_id": ids,
            "uscc": ent["uscc"].to_numpy(),
            "inspected_on": iso(day),
            "mode": ins["mode"].to_numpy(),
            "result": np.where(ins["found"].to_numpy(bool), "发现问题", "未发现问题"),
            "inspector_id": ins["inspector"].to_numpy(),
            "plan_id": plan,
            "reported_on": iso(reported),
        }
    )
    return _meta(df, reported + _lag(rng, 0, 1, n), day, ins["ent"], late)


COMPLAINT_CATEGORIES = (
    "产品质量",
    "售后服务",
    "虚假宣传",
    "价格争议",
    "合同纠纷",
    "食品安全",
    "预付卡消费",
    "网络购物",
)
COMPLAINT_CAT_P = (0.18, 0.16, 0.12, 0.12, 0.1, 0.12, 0.1, 0.1)
CHANNELS = ("全国12315平台", "12315热线", "12345转办", "来信来访")
CHANNEL_P = (0.55, 0.25, 0.15, 0.05)


def complaint_rows(world: World, ev: Events, rng: np.random.Generator, late_rate: float):
    """One row per complaint; ids numbered per day."""
    from pipelines.simulator.codes import mobiles

    c = ev.complaints.sort_values(["received_on", "ent"], kind="stable").reset_index(drop=True)
    ent = world.ent.iloc[c["ent"].to_numpy()]
    day = _d(c["received_on"])
    ds = np.datetime_as_string(day).astype(object)
    seq = pd.Series(ds).groupby(ds).cumcount().to_numpy() + 1
    n = len(c)
    late, extra = _late(rng, late_rate, n)
    df = pd.DataFrame(
        {
            "complaint_id": [
                f"TS{d.replace('-', '')}{s:05d}" for d, s in zip(ds, seq, strict=True)
            ],
            "uscc": ent["uscc"].to_numpy(),
            "received_on": iso(day),
            "category": rng.choice(np.array(COMPLAINT_CATEGORIES), size=n, p=COMPLAINT_CAT_P),
            "channel": rng.choice(np.array(CHANNELS), size=n, p=CHANNEL_P),
            "complainant_phone": mobiles(rng, n),
        }
    )
    return _meta(df, day + _lag(rng, 0, 2, n) + extra, day, c["ent"], late)


# Licensing decisions (written when licences carry risk): each month a licensed enterprise has
# its licence revoked or its business suspended with probability REVOKE_PER_RISK x its true
# finding probability that month, and is granted or renewed a licence at GRANT_RATE (any
# enterprise at UNLICENSED_GRANT_RATE): a revocation is a signal of hidden risk that every
# enterprise carries, inspected or not.
REVOKE_PER_RISK = 0.1
GRANT_RATE = 0.01
UNLICENSED_GRANT_RATE = 0.003
REVOKE_WORDS = ("吊销许可证", "撤销许可", "责令停产停业")
GRANT_WORDS = ("准予许可", "准予延续")


def licensing_rows(world: World, ev: Events, seed: int) -> pd.DataFrame:
    """One row per licensing decision (event source), from a stream of its own ([seed, 12]),
    so the other sources are the same with or without it."""
    rng = np.random.default_rng([seed, 12])
    tr = ev.true_risk
    ent_i = tr["ent"].to_numpy().astype(int)
    licences = world.ent["licences"].to_numpy()
    licensed = np.array([len(ts) > 0 for ts in licences])[ent_i]
    u = rng.random(len(tr))
    revoke = licensed & (u < REVOKE_PER_RISK * tr["true_p"].to_numpy())
    grant = ~revoke & (u > 1 - np.where(licensed, GRANT_RATE, UNLICENSED_GRANT_RATE))
    pick = revoke | grant
    start = ev.months[tr["month"].to_numpy()[pick].astype(int)].astype("datetime64[D]")
    day = start + rng.integers(0, 28, pick.sum()).astype("timedelta64[D]")
    who = ent_i[pick]
    order = np.lexsort((who, day))
    day, who, revoked = day[order], who[order], revoke[pick][order]
    n = len(who)
    ent = world.ent.iloc[who]
    place = _place(world).loc[ent["region_code"].to_numpy()]
    year = day.astype("datetime64[Y]").astype(int) + 1970
    seq = pd.DataFrame({"y": year}).groupby("y").cumcount().to_numpy() + 1
    trade = [(ts[rng.integers(len(ts))] if ts else "食品经营") + "许可证" for ts in licences[who]]
    word = np.where(
        revoked,
        rng.choice(np.array(REVOKE_WORDS), size=n),
        rng.choice(np.array(GRANT_WORDS), size=n),
    )
    reported = day + _lag(rng, 1, 10, n)
    df = pd.DataFrame(
        {
            "event_id": [f"许决〔{y}〕{s:06d}号" for y, s in zip(year, seq, strict=True)],
            "uscc": ent["uscc"].to_numpy(),
            "kind": word,
            "event_on": iso(day),
            "detail": trade,
            "authority": place["district_authority"].to_numpy(),
            "reported_on": iso(reported),
        }
    )
    return _meta(df, reported + _lag(rng, 0, 2, n), day, who)


def all_rows(
    world: World, ev: Events, seed: int, late_rate: float, scope: bool = False
) -> dict[str, pd.DataFrame]:
    """Clean rows of every source, keyed by source name (``scope``: see registry_rows)."""
    rng = np.random.default_rng([seed, 3])
    return {
        "registry": registry_rows(world, rng, scope),
        "annual_report": annual_rows(world, ev, rng),
        "penalty": penalty_rows(world, ev, rng, late_rate),
        "abnormal_list": list_rows(world, ev.abnormal, False, rng, late_rate),
        "serious_list": list_rows(world, ev.serious, True, rng, late_rate),
        "inspection": inspection_rows(world, ev, rng, late_rate),
        "complaint": complaint_rows(world, ev, rng, late_rate),
    }


def deliveries(rows: pd.DataFrame, key: tuple[str, ...], history: date, end: date) -> pd.DataFrame:
    """Assign each known row to its landing folder (history cut or a daily increment).

    Rows landing after ``end`` are not known yet and dropped. Within one folder only the latest
    version of a natural key is delivered. Adds ``_folder`` and ``_seq`` (order in the file).
    """
    h, e = day_number(history), day_number(end)
    df = rows[rows["_landing"] <= e].copy()
    df["_folder"] = np.maximum(df["_landing"].to_numpy(), h)
    df = df.sort_values(["_folder", "_landing", "_event"], kind="stable")
    df = df.drop_duplicates(["_folder", *key], keep="last")
    df = df.sort_values(["_folder", "_event", *key], kind="stable").reset_index(drop=True)
    df["_seq"] = np.arange(len(df), dtype=float)
    return df
