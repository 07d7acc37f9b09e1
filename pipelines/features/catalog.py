"""The feature catalogue: every gold feature once, with its family, the direction a regulator
expects (the model's monotone constraint) and how it reads in a reason, in Chinese and English.

Kept free of Spark and warehouse imports so the table registry, the model and the reasons can
all read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """One model input. ``direction`` +1: more never lowers risk; 0: no constraint."""

    name: str
    family: str
    direction: int
    zh: str  # reason template; ``{v}`` is the rendered value
    en: str
    fmt: str = "{:.0f}"
    categorical: bool = False
    none_zh: str = "无记录"  # how a missing value reads
    none_en: str = "no record"


FEATURES: tuple[Feature, ...] = (
    # basic attributes
    Feature("age_years", "basic", 0, "成立{v}年", "founded {v} years ago", "{:.1f}"),
    Feature(
        "reg_capital_10k", "basic", 0, "注册资本{v}万元", "registered capital {v}0k yuan", "{:,.0f}"
    ),
    Feature("ent_type", "basic", 0, "企业类型：{v}", "enterprise type: {v}", "{}", True),
    Feature("industry", "basic", 0, "行业门类{v}", "industry section {v}", "{}", True),
    Feature("region_code", "basic", 0, "所在区县{v}", "district {v}", "{}", True),
    # dynamic behaviour
    Feature(
        "reports_late_3y",
        "dynamic",
        1,
        "近3年年报逾期报送{v}次",
        "{v} annual reports filed late in 3 years",
    ),
    Feature(
        "reports_missing_3y",
        "dynamic",
        1,
        "近3年年报未报送{v}次",
        "{v} annual reports not filed in 3 years",
    ),
    Feature(
        "employees",
        "dynamic",
        0,
        "年报从业人数{v}人",
        "{v} employees in the last annual report",
        none_zh="无年报从业人数",
        none_en="no annual report on file",
    ),
    Feature(
        "insured_share",
        "dynamic",
        0,
        "参保人数占从业人数{v}",
        "insured staff share {v} of employees",
        "{:.0%}",
        none_zh="年报未填参保人数",
        none_en="insured staff not reported",
    ),
    Feature(
        "address_changes_2y", "dynamic", 1, "近2年变更住所{v}次", "{v} address changes in 2 years"
    ),
    Feature(
        "legal_rep_changes_2y",
        "dynamic",
        1,
        "近2年变更法定代表人{v}次",
        "{v} legal-representative changes in 2 years",
    ),
    Feature(
        "capital_changes_2y",
        "dynamic",
        0,
        "近2年变更注册资本{v}次",
        "{v} capital changes in 2 years",
    ),
    # supervision history
    Feature(
        "penalties_1y", "supervision", 1, "近1年行政处罚{v}次", "{v} penalties in the last year"
    ),
    Feature(
        "penalties_2y", "supervision", 1, "近2年行政处罚{v}次", "{v} penalties in the last 2 years"
    ),
    Feature(
        "penalties_5y", "supervision", 1, "近5年行政处罚{v}次", "{v} penalties in the last 5 years"
    ),
    Feature(
        "penalty_recency_score",
        "supervision",
        1,
        "近期行政处罚加权{v}次",
        "recency-weighted penalties {v}",
        "{:.1f}",
    ),
    Feature(
        "penalty_amount_2y",
        "supervision",
        1,
        "近2年罚没金额{v}元",
        "penalties of {v} yuan in 2 years",
        "{:,.0f}",
    ),
    Feature(
        "months_since_penalty",
        "supervision",
        0,
        "距上次行政处罚{v}个月",
        "{v} months since the last penalty",
        none_zh="无行政处罚记录",
        none_en="no penalty on record",
    ),
    Feature(
        "on_abnormal_list", "supervision", 1, "在经营异常名录中", "on the abnormal-operation list"
    ),
    Feature(
        "on_serious_list", "supervision", 1, "在严重违法失信名单中", "on the serious-violation list"
    ),
    Feature(
        "list_entries_3y",
        "supervision",
        1,
        "近3年列入异常或失信名录{v}次",
        "{v} list entries in 3 years",
    ),
    Feature("inspections_3y", "supervision", 0, "近3年接受检查{v}次", "{v} inspections in 3 years"),
    Feature(
        "findings_3y",
        "supervision",
        1,
        "近3年检查发现问题{v}次",
        "{v} inspections found problems in 3 years",
    ),
    Feature(
        "months_since_finding",
        "supervision",
        0,
        "距上次检查发现问题{v}个月",
        "{v} months since an inspection last found a problem",
        none_zh="检查未发现过问题",
        none_en="no inspection has found a problem",
    ),
    # social signals
    Feature("complaints_3m", "social", 1, "近3个月投诉举报{v}件", "{v} complaints in 3 months"),
    Feature("complaints_12m", "social", 1, "近12个月投诉举报{v}件", "{v} complaints in 12 months"),
    Feature(
        "complaint_trend",
        "social",
        0,
        "近6个月投诉较前6个月增加{v}件",
        "complaints up {v} on the previous 6 months",
    ),
    # associations (tokenised legal representative and address)
    Feature(
        "rep_associates",
        "association",
        0,
        "法定代表人另有关联企业{v}家",
        "legal representative runs {v} other enterprises",
    ),
    Feature(
        "rep_assoc_penalised_2y",
        "association",
        1,
        "同一法定代表人的关联企业{v}家近2年受处罚",
        "{v} enterprises with the same legal representative penalised in 2 years",
    ),
    Feature(
        "rep_assoc_listed",
        "association",
        1,
        "同一法定代表人的关联企业{v}家在异常/失信名录",
        "{v} enterprises with the same legal representative on a list",
    ),
    Feature(
        "rep_assoc_score",
        "association",
        1,
        "法定代表人关联企业失信加权分{v}",
        "associated enterprises' weighted record {v}",
        "{:.1f}",
    ),
    Feature(
        "addr_associates",
        "association",
        0,
        "同一住所另有企业{v}家",
        "{v} other enterprises at the same address",
    ),
    Feature(
        "addr_assoc_penalised_2y",
        "association",
        1,
        "同一住所的企业{v}家近2年受处罚",
        "{v} enterprises at the same address penalised in 2 years",
    ),
    Feature(
        "addr_assoc_listed",
        "association",
        1,
        "同一住所的企业{v}家在异常/失信名录",
        "{v} enterprises at the same address on a list",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)
NUMERIC: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.categorical)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
# Descriptive columns kept beside the features for fairness audits (not model inputs).
SEGMENTS: tuple[str, ...] = ("size_band",)


def render(feature: Feature, value: object) -> tuple[str, str]:
    """The (Chinese, English) phrase of ``feature`` at ``value``; missing reads as 无 / none."""
    if value is None or (isinstance(value, float) and value != value):
        return feature.none_zh, feature.none_en
    shown = feature.fmt.format(value)
    return feature.zh.format(v=shown), feature.en.format(v=shown)
