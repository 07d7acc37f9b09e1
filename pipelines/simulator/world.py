"""The static world: regions, persons, enterprises, their registry history and inspectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

from pipelines.simulator import codes

# The simulated bureau's 27 districts in five cities (real GB/T 2260 codes).
REGIONS_CSV = Path(__file__).with_name("districts.csv")

# GB/T 4754-2017 sections: (weight, risk effect, complaint multiplier, name descriptors).
INDUSTRIES: dict[str, tuple[float, float, float, tuple[str, ...]]] = {
    "A": (0.02, -0.2, 0.3, ("农业科技", "生态农业", "种植")),
    "B": (0.002, 0.2, 0.3, ("矿业",)),
    "C": (0.10, 0.25, 0.7, ("机械制造", "电子", "服装", "食品")),
    "D": (0.004, -0.3, 0.3, ("能源",)),
    "E": (0.05, 0.3, 0.8, ("建筑工程", "建设工程")),
    "F": (0.30, 0.15, 1.6, ("商贸", "贸易", "百货", "五金")),
    "G": (0.04, 0.0, 0.8, ("物流", "运输")),
    "H": (0.07, 0.45, 1.8, ("餐饮管理", "酒店管理")),
    "I": (0.09, -0.2, 0.8, ("网络科技", "信息技术", "软件")),
    "J": (0.01, 0.1, 1.0, ("投资管理",)),
    "K": (0.03, 0.1, 1.2, ("房地产开发", "物业管理")),
    "L": (0.10, 0.0, 0.6, ("商务咨询", "企业管理", "人力资源")),
    "M": (0.09, -0.35, 0.5, ("科技", "设计", "检测技术")),
    "N": (0.01, -0.1, 0.3, ("环保科技", "园林绿化")),
    "O": (0.04, 0.2, 1.3, ("家政服务", "汽车维修")),
    "P": (0.02, 0.2, 1.4, ("教育科技", "培训")),
    "Q": (0.01, 0.3, 1.2, ("医疗科技", "健康管理")),
    "R": (0.02, 0.0, 1.0, ("文化传媒", "体育发展")),
    "S": (0.001, -0.5, 0.2, ("公共服务",)),
    "T": (0.001, -0.5, 0.2, ("国际交流",)),
}
# Enterprise type -> (USCC chars 1-2, name suffix).
ENT_TYPES: dict[str, tuple[str, str]] = {
    "有限责任公司": ("91", "有限公司"),
    "股份有限公司": ("91", "股份有限公司"),
    "个人独资企业": ("91", "经营部"),
    "合伙企业": ("91", "合伙企业"),
    "个体工商户": ("92", ""),
    "农民专业合作社": ("93", "专业合作社"),
}
SHOPS = ("便利店", "小吃店", "餐馆", "理发店", "五金店", "服装店", "超市", "维修部", "水果店")
AREA_CODES = {"110100": "010", "310100": "021", "330100": "0571", "440300": "0755", "510100": "028"}
ZIHAO_EXTRA = "鑫华泰丰盛源兴达隆宏恒瑞祥安康海天中金永昌嘉和益德信诚佳利通远新正"


@dataclass(frozen=True)
class World:
    """Everything about enterprises that does not change with the monthly risk process."""

    regions: pd.DataFrame  # regions.csv
    persons: pd.DataFrame  # person_id, name, id_no, phone, effect, region_code
    ent: pd.DataFrame  # one row per enterprise (index = enterprise number)
    versions: pd.DataFrame  # registry change history, typed, one row per version
    inspectors: pd.DataFrame  # inspector_id, name, region_code


def gbk_ok(text: str) -> bool:
    """True when ``text`` can be written in a GBK-encoded extract."""
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def faker_pool(fake: Faker, method: str, n: int) -> list[str]:
    """``n`` GBK-safe values of a Faker method (duplicates possible, as in life)."""
    make = getattr(fake, method)
    return [v for v in (make() for _ in range(n)) if gbk_ok(v)]


def days(d: date) -> np.datetime64:
    """A date as numpy day."""
    return np.datetime64(d, "D")


def load_regions() -> pd.DataFrame:
    """GB/T 2260 districts of the simulated cities."""
    return pd.read_csv(REGIONS_CSV, dtype=str)


def _persons(
    rng: np.random.Generator, names: list[str], regions: pd.DataFrame, n: int, end: date
) -> pd.DataFrame:
    codes_ = regions["region_code"].to_numpy()
    home = rng.choice(codes_, size=n)
    birth = days(date(1955, 1, 1)) + rng.integers(0, 48 * 365, size=n)
    birth = np.minimum(birth, days(end) - 18 * 366)
    births = [str(b).replace("-", "") for b in birth]
    male = rng.random(n) < 0.62
    return pd.DataFrame(
        {
            "person_id": [f"P{i:07d}" for i in range(n)],
            "name": rng.choice(np.array(names), size=n),
            "id_no": codes.resident_ids(rng, list(home), births, male),
            "phone": codes.mobiles(rng, n),
            "effect": rng.normal(0.0, 0.75, size=n),
            "region_code": home,
        }
    )


def _addresses(
    rng: np.random.Generator, streets: list[str], regions: pd.DataFrame, region_codes: np.ndarray
) -> np.ndarray:
    """Street addresses inside each enterprise's district."""
    reg = regions.set_index("region_code")
    prefix = {
        code: (r.province_name if r.province_name != r.city_name else "")
        + r.city_name
        + r.region_name
        for code, r in reg.iterrows()
    }
    n = len(region_codes)
    street = rng.choice(np.array(streets), size=n)
    number = rng.integers(1, 999, size=n)
    room = rng.integers(101, 2999, size=n)
    has_room = rng.random(n) < 0.6
    return np.array(
        [
            f"{prefix[c]}{s}{num}号" + (f"{r}室" if h else "")
            for c, s, num, r, h in zip(region_codes, street, number, room, has_room, strict=True)
        ]
    )


def _names(
    rng: np.random.Generator,
    zihao: list[str],
    regions: pd.DataFrame,
    region_codes: np.ndarray,
    industry: np.ndarray,
    ent_type: np.ndarray,
) -> np.ndarray:
    """Enterprise names: city + trade name + industry word + type suffix; made unique."""
    reg = regions.set_index("region_code")
    city = {c: r.city_name.removesuffix("市") for c, r in reg.iterrows()}
    district = {c: r.region_name for c, r in reg.iterrows()}
    n = len(region_codes)
    base = rng.choice(np.array(zihao), size=n)
    extra = np.array(list(ZIHAO_EXTRA))
    out = []
    for i in range(n):
        words = INDUSTRIES[industry[i]][3]
        word = words[rng.integers(len(words))]
        suffix = ENT_TYPES[ent_type[i]][1]
        if ent_type[i] == "个体工商户":
            out.append(f"{district[region_codes[i]]}{base[i]}{SHOPS[rng.integers(len(SHOPS))]}")
        elif ent_type[i] == "农民专业合作社":
            out.append(f"{district[region_codes[i]]}{base[i]}{word}{suffix}")
        else:
            out.append(f"{city[region_codes[i]]}{base[i]}{word}{suffix}")
    names = pd.Series(out)
    for _ in range(10):
        dup = names.duplicated()
        if not dup.any():
            break
        picks = rng.choice(extra, size=(int(dup.sum()), 2))
        tags = ["".join(p) for p in picks]
        fixed = []
        for name, tag in zip(names[dup], tags, strict=True):
            k = 2 if name[:2] in city.values() else 3
            fixed.append(name[:k] + tag + name[k:])
        names[dup] = fixed
    return names.to_numpy()


def build_world(seed: int, n: int, end: date) -> World:
    """Generate regions, persons, enterprises and registry versions for ``n`` enterprises."""
    rng = np.random.default_rng([seed, 1])
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    names = faker_pool(fake, "name", 4000)
    streets = sorted(set(faker_pool(fake, "street_name", 600)))
    zihao = sorted({z for z in faker_pool(fake, "company_prefix", 3000) if len(z) <= 4})
    regions = load_regions()
    region_codes = regions["region_code"].to_numpy()
    region_w = rng.lognormal(0.0, 0.6, size=len(regions))
    region_w /= region_w.sum()

    # Legal representatives: most run one enterprise, some run 2-6.
    mult = rng.choice(np.arange(1, 7), size=n, p=[0.86, 0.09, 0.025, 0.012, 0.008, 0.005])
    owners = np.repeat(np.arange(n), mult)[:n]
    n_owners = int(owners.max()) + 1
    person_of = rng.permutation(owners)
    n_persons = n_owners + n // 5 + 10  # spare persons become new representatives on change
    persons = _persons(rng, names, regions, n_persons, end)
    home = persons["region_code"].to_numpy()

    own_region = rng.random(n) < 0.75
    region = np.where(own_region, home[person_of], rng.choice(region_codes, size=n, p=region_w))
    letters = np.array(list(INDUSTRIES))
    ind_w = np.array([v[0] for v in INDUSTRIES.values()])
    industry = rng.choice(letters, size=n, p=ind_w / ind_w.sum())
    shop_like = np.isin(industry, ["F", "H", "O"])
    r = rng.random(n)
    ent_type = np.select(
        [
            shop_like & (r < 0.35),
            (industry == "A") & (r < 0.4),
            r < 0.80,
            r < 0.84,
            r < 0.93,
        ],
        ["个体工商户", "农民专业合作社", "有限责任公司", "股份有限公司", "个人独资企业"],
        default="合伙企业",
    )
    prefix = np.array([ENT_TYPES[t][0] for t in ent_type])
    uscc = codes.unique_usccs(rng, list(prefix), list(region))

    u = rng.normal(0.0, 1.0, size=n)
    years_old = rng.exponential(14.0, size=n) % 36.0
    end_d = days(end)
    founded = end_d - np.maximum(1, (years_old * 365.25).astype(int))
    founded = np.maximum(founded, days(date(1990, 1, 2)))
    hazard = np.where(ent_type == "个体工商户", 0.05, 0.025) * np.exp(0.35 * u)
    to_close = (rng.exponential(1.0, size=n) / hazard * 365.25).astype(int) + 60
    closed = founded + to_close
    is_closed = closed <= end_d - 1
    closed = np.where(is_closed, closed, np.datetime64("NaT"))
    revoked = rng.random(n) < 1 / (1 + np.exp(-(-1.2 + 0.8 * u)))
    close_status = np.where(is_closed, np.where(revoked, "吊销", "注销"), "")
    open_status = np.where(ent_type == "个体工商户", "在业", "存续")

    cap = np.where(
        ent_type == "个体工商户",
        np.round(rng.lognormal(np.log(5e4), 0.8, size=n), -3),
        np.round(rng.lognormal(np.log(1e6), 1.2, size=n), -4),
    )
    cap = np.maximum(cap, 1000.0) * np.where(ent_type == "股份有限公司", 10, 1)

    address = _addresses(rng, streets, regions, region)
    agent = rng.random(n) < 0.06
    agent_addr = {c: _addresses(rng, streets, regions, np.array([c] * 4)) for c in region_codes}
    pick = rng.integers(0, 4, size=n)
    address = np.where(
        agent, [agent_addr[c][k] for c, k in zip(region, pick, strict=True)], address
    )

    city_of = regions.set_index("region_code")["city_code"]
    area = [AREA_CODES[city_of[c]] for c in region]
    rep_phone = persons["phone"].to_numpy()[person_of]
    r = rng.random(n)
    phone = np.where(r < 0.6, rep_phone, np.where(r < 0.95, codes.landlines(rng, area), ""))

    ent = pd.DataFrame(
        {
            "uscc": uscc,
            "name": _names(rng, zihao, regions, region, industry, ent_type),
            "ent_type": ent_type,
            "region_code": region,
            "industry": industry,
            "reg_capital": cap,
            "founded_on": founded,
            "closed_on": closed,
            "status_final": np.where(is_closed, close_status, open_status),
            "open_status": open_status,
            "address": address,
            "agent_address": agent,
            "phone": phone,
            "person": person_of,
            "u": u,
        }
    )
    versions = _versions(rng, ent, persons, n_owners, streets, regions, end_d)
    inspectors = _inspectors(rng, names, region_codes)
    return World(regions, persons, ent, versions, inspectors)


def _versions(
    rng: np.random.Generator,
    ent: pd.DataFrame,
    persons: pd.DataFrame,
    n_owners: int,
    streets: list[str],
    regions: pd.DataFrame,
    end_d: np.datetime64,
) -> pd.DataFrame:
    """Registry change history: founding version, ~30 % later changes, closure version."""
    n = len(ent)
    n_persons = len(persons)
    changes = np.where(rng.random(n) < 0.3, 1 + rng.binomial(2, 0.25, size=n), 0)
    founded = ent["founded_on"].to_numpy().astype("datetime64[D]")
    closed = ent["closed_on"].to_numpy().astype("datetime64[D]")
    last = np.where(np.isnat(closed), end_d, closed)
    span = (last - founded).astype(int) - 31
    new_addr = _addresses(rng, streets, regions, ent["region_code"].to_numpy())
    spare = iter(range(n_owners, n_persons))
    rows: list[tuple] = []
    rep_phones = persons["phone"].to_numpy()
    for i, e in enumerate(ent.itertuples(index=False)):
        state = {
            "address": e.address,
            "person": int(e.person),
            "reg_capital": float(e.reg_capital),
            "phone": e.phone,
        }
        rows.append((i, founded[i], "found", *state.values(), e.open_status))
        k = int(changes[i]) if span[i] > 60 else 0
        if k:
            offsets = np.unique(rng.integers(30, span[i], size=k))
            for off in offsets:
                kind = rng.choice(np.array(["address", "legal_rep", "capital"]), p=[0.4, 0.3, 0.3])
                if kind == "address":
                    moved = state["address"] != new_addr[i]
                    state["address"] = str(new_addr[i] if moved else e.address)
                elif kind == "legal_rep":
                    old = state["person"]
                    new = next(spare, None) if rng.random() < 0.7 else None
                    state["person"] = int(new if new is not None else rng.integers(0, n_owners))
                    if state["phone"] == rep_phones[old]:
                        state["phone"] = rep_phones[state["person"]]
                else:
                    factor = rng.choice(np.array([0.5, 2.0, 5.0, 10.0]))
                    state["reg_capital"] = float(max(1000.0, round(state["reg_capital"] * factor)))
                rows.append((i, founded[i] + off, kind, *state.values(), e.open_status))
        if not np.isnat(closed[i]):
            rows.append((i, closed[i], "close", *state.values(), e.status_final))
    cols = ["ent", "changed_on", "kind", "address", "person", "reg_capital", "phone", "status"]
    v = pd.DataFrame(rows, columns=cols)
    v["changed_on"] = np.array(v["changed_on"].tolist(), dtype="datetime64[D]")
    v["first"] = v["kind"] == "found"
    return v.sort_values(["ent", "changed_on"], kind="stable").reset_index(drop=True)


def _inspectors(
    rng: np.random.Generator, names: list[str], region_codes: np.ndarray
) -> pd.DataFrame:
    """Roster: 3-6 inspectors per district."""
    rows = []
    for code in region_codes:
        for k in range(int(rng.integers(3, 7))):
            rows.append((f"ZF{code}{k + 1:02d}", str(rng.choice(np.array(names))), code))
    return pd.DataFrame(rows, columns=["inspector_id", "name", "region_code"])
