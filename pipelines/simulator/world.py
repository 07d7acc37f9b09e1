"""The static world: regions, persons, enterprises, their registry history and inspectors.

Each district has its own few dozen streets (some busier than others), so enterprises of a
district share streets as they do in life. Every enterprise has a business scope (经营范围)
built from its industry, naming the licensed trades (食品经营, 危险化学品经营, ...) it holds.
Both are drawn from streams of their own: the rest of the world is the one drawn before.
"""

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
STREETS_PER_DISTRICT = (25, 40)  # size of a district's street pool (inclusive)
STREET_POPULARITY_SD = 1.0  # log-scale spread of how many enterprises a street draws

# Licensed trades (许可项目) that a business scope may name: trade -> {industry: probability}.
# Each trade's name appears verbatim in the scope text.
LICENCE_P: dict[str, dict[str, float]] = {
    "食品经营": {"F": 0.40, "H": 0.55, "C": 0.08, "A": 0.05, "Q": 0.05, "O": 0.04, "R": 0.04,
             "P": 0.03, "G": 0.03, "K": 0.02, "L": 0.02, "I": 0.01, "M": 0.01},
    "餐饮服务": {"H": 0.80, "F": 0.06, "R": 0.06, "O": 0.03, "P": 0.03, "A": 0.02, "K": 0.02,
             "L": 0.01},
    "药品零售": {"F": 0.05, "Q": 0.30},
    "医疗器械经营": {"Q": 0.45, "F": 0.07, "M": 0.04, "I": 0.02},
    "危险化学品经营": {"C": 0.08, "B": 0.05, "F": 0.04, "G": 0.03},
    "成品油零售": {"F": 0.02, "G": 0.02},
    "特种设备": {"E": 0.18, "C": 0.05, "K": 0.02, "O": 0.02},
    "烟草制品零售": {"F": 0.18, "H": 0.06},
}  # fmt: skip
# How a trade is worded in a scope where it differs from its name, by industry.
LICENCE_TEXT: dict[tuple[str, str], str] = {("特种设备", "C"): "特种设备制造"}
LICENCE_DEFAULT_TEXT: dict[str, str] = {"特种设备": "特种设备安装改造修理"}
# Ordinary activities (一般项目) by GB/T 4754 section; none names a licensed trade.
ACTIVITIES: dict[str, tuple[str, ...]] = {
    "A": ("谷物种植", "蔬菜种植", "花卉种植", "农业技术推广服务", "林木育苗", "农业机械服务"),
    "B": ("非金属矿及制品销售", "金属矿石销售", "建筑用石加工", "选矿"),
    "C": ("电子元器件制造", "服装制造", "塑料制品制造", "五金产品制造", "金属制品销售",
          "机械零件、零部件加工", "通用设备制造"),
    "D": ("太阳能发电技术服务", "合同能源管理", "储能技术服务", "新兴能源技术研发"),
    "E": ("园林绿化工程施工", "土石方工程施工", "建筑材料销售", "对外承包工程", "工程管理服务",
          "建筑装饰材料销售"),
    "F": ("日用百货销售", "五金产品零售", "服装服饰零售", "家用电器销售", "电子产品销售",
          "文具用品零售", "化妆品零售", "建筑材料销售", "办公用品销售", "食用农产品零售"),
    "G": ("国内货物运输代理", "装卸搬运", "普通货物仓储服务", "国际货物运输代理", "信息咨询服务"),
    "H": ("酒店管理", "餐饮管理", "会议及展览服务", "外卖递送服务", "礼仪服务"),
    "I": ("软件开发", "信息系统集成服务", "信息技术咨询服务", "数据处理服务", "网络技术服务",
          "技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广"),
    "J": ("以自有资金从事投资活动", "自有资金投资的资产管理服务", "融资咨询服务", "财务咨询"),
    "K": ("物业管理", "房地产经纪", "非居住房地产租赁", "住房租赁", "停车场服务"),
    "L": ("企业管理咨询", "信息咨询服务（不含许可类信息咨询服务）", "市场营销策划",
          "会议及展览服务", "广告设计、代理", "组织文化艺术交流活动"),
    "M": ("工程和技术研究和试验发展", "专业设计服务", "工业设计服务", "标准化服务",
          "技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广"),
    "N": ("环境保护监测", "园林绿化工程施工", "水污染治理", "大气污染治理", "城市绿化管理"),
    "O": ("家政服务", "机动车修理和维护", "洗染服务", "理发服务", "日用电器修理", "摄影扩印服务"),
    "P": ("教育咨询服务（不含涉许可审批的教育培训活动）", "组织文化艺术交流活动",
          "业务培训（不含教育培训、职业技能培训等需取得许可的培训）", "教学专用仪器销售"),
    "Q": ("健康咨询服务（不含诊疗服务）", "养生保健服务（非医疗）", "远程健康管理服务",
          "中医养生保健服务（非医疗）"),
    "R": ("组织文化艺术交流活动", "文艺创作", "体育赛事策划", "健身休闲活动", "广告制作"),
    "S": ("社会经济咨询服务", "社区公共服务"),
    "T": ("组织文化艺术交流活动", "翻译服务"),
}  # fmt: skip
GENERAL_ACTIVITIES = ("货物进出口", "技术进出口", "广告发布", "日用百货销售", "互联网销售")
LICENSED_NOTE = "（依法须经批准的项目，经相关部门批准后方可开展经营活动）"
LICENSED_NOTE_LONG = (
    "（依法须经批准的项目，经相关部门批准后方可开展经营活动，"
    "具体经营项目以相关部门批准文件或许可证件为准）"
)
GENERAL_NOTE = "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）"
NEW_SCOPE_FORMAT_FROM = np.datetime64("2021-01-01", "D")  # 许可项目 / 一般项目 wording
APPROVAL_NOTE_FROM = np.datetime64("2014-03-01", "D")  # registration reform: the note is usual
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
    streets: pd.DataFrame  # region_code, street, weight: each district's street pool


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


def street_pools(
    rng: np.random.Generator, streets: list[str], region_codes: np.ndarray
) -> pd.DataFrame:
    """Each district's streets (region_code, street, weight): 25-40 distinct names of
    ``streets`` with lognormal popularity weights that sum to 1 per district."""
    lo, hi = STREETS_PER_DISTRICT
    parts = []
    for code in region_codes:
        k = int(rng.integers(lo, hi + 1))
        names = rng.choice(np.array(streets), size=min(k, len(streets)), replace=False)
        w = rng.lognormal(0.0, STREET_POPULARITY_SD, size=len(names))
        parts.append(pd.DataFrame({"region_code": code, "street": names, "weight": w / w.sum()}))
    return pd.concat(parts, ignore_index=True)


def _addresses(
    rng: np.random.Generator,
    street_rng: np.random.Generator,
    pools: pd.DataFrame,
    n_streets: int,
    regions: pd.DataFrame,
    region_codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Street addresses inside each enterprise's district, and their streets.

    The street comes from the district's pool, drawn by ``street_rng``; ``rng`` draws the
    house and room numbers, and the index into all ``n_streets`` names that once chose the
    street (now discarded), so that the main stream stays the one it was.
    """
    reg = regions.set_index("region_code")
    prefix = {
        code: (r.province_name if r.province_name != r.city_name else "")
        + r.city_name
        + r.region_name
        for code, r in reg.iterrows()
    }
    n = len(region_codes)
    rng.integers(0, n_streets, size=n)
    street = np.empty(n, dtype=object)
    by_region = pools.groupby("region_code").indices
    names, weights = pools["street"].to_numpy(), pools["weight"].to_numpy()
    for code, rows in pd.Series(np.arange(n)).groupby(np.asarray(region_codes)).indices.items():
        pool = by_region[code]
        street[rows] = names[pool][street_rng.choice(len(pool), size=len(rows), p=weights[pool])]
    number = rng.integers(1, 999, size=n)
    room = rng.integers(101, 2999, size=n)
    has_room = rng.random(n) < 0.6
    addresses = np.array(
        [
            f"{prefix[c]}{s}{num}号" + (f"{r}室" if h else "")
            for c, s, num, r, h in zip(region_codes, street, number, room, has_room, strict=True)
        ]
    )
    return addresses, street


def business_scopes(
    rng: np.random.Generator, industry: np.ndarray, founded: np.ndarray
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Business scope (经营范围) text and licensed trades (a tuple each) of every enterprise.

    Scopes of enterprises founded since 2021 mostly use the standard 许可项目 / 一般项目
    wording; older ones list items with 、 or ； and often end with the approval note.
    """
    n = len(industry)
    held = {
        t: rng.random(n) < np.array([p.get(i, 0.0) for i in industry]) for t, p in LICENCE_P.items()
    }
    k_items = rng.integers(2, 6, size=n)
    widest = max(len(a) for a in ACTIVITIES.values())
    width = np.array([len(ACTIVITIES[i]) for i in industry])
    # a random order of each enterprise's industry activities (its first k_items are taken)
    order = np.argsort(
        np.where(np.arange(widest) < width[:, None], rng.random((n, widest)), 2.0), axis=1
    )
    general = rng.random(n) < 0.35
    general_pick = rng.integers(len(GENERAL_ACTIVITIES), size=n)
    new_style = rng.random(n) < np.where(founded >= NEW_SCOPE_FORMAT_FROM, 0.9, 0.15)
    comma = rng.random(n) < 0.5
    note = rng.random(n) < np.where(founded >= APPROVAL_NOTE_FROM, 0.85, 0.3)
    scopes: list[str] = []
    licences: list[tuple[str, ...]] = []
    for i in range(n):
        ind = industry[i]
        trades = tuple(t for t in LICENCE_P if held[t][i])
        words = [LICENCE_TEXT.get((t, ind), LICENCE_DEFAULT_TEXT.get(t, t)) for t in trades]
        pool = ACTIVITIES[ind]
        items = [pool[j] for j in order[i, : min(int(k_items[i]), len(pool))]]
        extra = GENERAL_ACTIVITIES[general_pick[i]]
        if general[i] and extra not in items:
            items.append(extra)
        if new_style[i]:
            text = f"一般项目：{'；'.join(items)}。{GENERAL_NOTE}"
            if words:
                text = f"许可项目：{'；'.join(words)}。{LICENSED_NOTE_LONG}" + text
        else:
            text = ("、" if comma[i] else "；").join(items + words)
            if words or note[i]:
                text += "。" + LICENSED_NOTE
        scopes.append(text)
        licences.append(trades)
    return np.array(scopes, dtype=object), licences


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

    # the streets have streams of their own: the rest of the world stays the one drawn before
    street_rng = np.random.default_rng([seed, 8])
    pools = street_pools(street_rng, streets, region_codes)
    address, street = _addresses(rng, street_rng, pools, len(streets), regions, region)
    agent = rng.random(n) < 0.06
    agent_addr = {
        c: _addresses(rng, street_rng, pools, len(streets), regions, np.array([c] * 4))
        for c in region_codes
    }
    pick = rng.integers(0, 4, size=n)
    address = np.where(
        agent, [agent_addr[c][0][k] for c, k in zip(region, pick, strict=True)], address
    )
    street = np.where(
        agent, [agent_addr[c][1][k] for c, k in zip(region, pick, strict=True)], street
    )
    scope, licences = business_scopes(np.random.default_rng([seed, 10]), industry, founded)

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
            "street": street,
            "agent_address": agent,
            "phone": phone,
            "person": person_of,
            "u": u,
            "business_scope": scope,
            "licences": licences,
        }
    )
    versions = _versions(
        rng, street_rng, ent, persons, n_owners, pools, len(streets), regions, end_d
    )
    inspectors = _inspectors(rng, names, region_codes)
    return World(regions, persons, ent, versions, inspectors, pools)


def _versions(
    rng: np.random.Generator,
    street_rng: np.random.Generator,
    ent: pd.DataFrame,
    persons: pd.DataFrame,
    n_owners: int,
    pools: pd.DataFrame,
    n_streets: int,
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
    region = ent["region_code"].to_numpy()
    new_addr, _ = _addresses(rng, street_rng, pools, n_streets, regions, region)
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
