"""The feature catalogue: every gold feature once, with its family, the direction a regulator
expects (the model's monotone constraint), how it reads in a reason (Chinese and English) and
which of its values can be a reason at all.

A reason is an attribute that raised the risk: its contribution to the score is positive *and*
its value is one a regulator reads as risk-raising (``risky``): a penalty count above zero, a
district or industry the model found riskier, an enterprise founded less than three years ago —
never a neutral fact such as "founded 12 years ago" or "inspected twice". Categorical codes are
shown by name (districts from silver.dim_region, industries from GB/T 4754), see :func:`render`.

Kept free of Spark and warehouse imports so the table registry, the model and the reasons can
all read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def _positive(v: float) -> bool:
    return v > 0


def _any(_v: object) -> bool:
    return True


@dataclass(frozen=True)
class Feature:
    """One model input. ``direction`` +1: more never lowers risk; 0: no constraint.

    ``zh`` / ``en`` are reason templates (``{v}`` the rendered value, or the name of a code;
    ``{code}`` the code itself); ``zero_zh`` / ``zero_en`` replace them at value 0 where "0
    months ago" would read oddly. ``risky`` says which values can be a reason (None: never;
    default for +1 features: above zero), ``risky_none`` whether a missing value can."""

    name: str
    family: str
    direction: int
    zh: str
    en: str
    fmt: str = "{:.0f}"
    categorical: bool = False
    none_zh: str = "无记录"  # how a missing value reads
    none_en: str = "no record"
    risky: Callable[[object], bool] | None = None
    risky_none: bool = False
    zero_zh: str | None = None
    zero_en: str | None = None

    def can_raise(self, value: object) -> bool:
        """Whether ``value`` of this feature reads as raising the risk (see module doc)."""
        if value is None or (isinstance(value, float) and value != value):
            return self.risky_none
        test = self.risky
        if test is None and self.direction > 0:
            test = _positive
        if test is None:
            return False
        try:
            return bool(test(value))
        except TypeError:
            return False


FEATURES: tuple[Feature, ...] = (
    # basic attributes
    Feature(
        "age_years",
        "basic",
        0,
        "成立仅{v}年（新设企业）",
        "founded only {v} years ago",
        "{:.1f}",
        risky=lambda v: v < 3,
    ),
    Feature(
        "reg_capital_10k",
        "basic",
        0,
        "注册资本仅{v}万元",
        "registered capital only {v}0k yuan",
        "{:,.0f}",
        risky=lambda v: v < 10,
    ),
    Feature(
        "ent_type",
        "basic",
        0,
        "企业类型为{v}（该类型问题发现率偏高）",
        "enterprise type {v} (a type with more findings)",
        "{}",
        True,
        risky=_any,
    ),
    Feature(
        "industry",
        "basic",
        0,
        "所属行业：{v}（该行业问题发现率偏高）",
        "industry {v} (an industry with more findings)",
        "{}",
        True,
        risky=_any,
    ),
    Feature(
        "region_code",
        "basic",
        0,
        "所在区县：{v}（该区县问题发现率偏高）",
        "district {v} (a district with more findings)",
        "{}",
        True,
        risky=_any,
    ),
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
        "年报从业人数为{v}人",
        "{v} employees in the last annual report",
        none_zh="无年报从业人数",
        none_en="no annual report on file",
        risky=lambda v: v <= 0,
        risky_none=True,
    ),
    Feature(
        "insured_share",
        "dynamic",
        0,
        "参保人数仅占从业人数{v}",
        "insured staff only {v} of employees",
        "{:.0%}",
        none_zh="年报未填参保人数",
        none_en="insured staff not reported",
        risky=lambda v: v < 0.5,
        risky_none=True,
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
        risky=_positive,
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
        "近年受过行政处罚（按时间加权{v}）",
        "penalised in recent years (recency-weighted {v})",
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
        "{v}个月前受到行政处罚",
        "penalised {v} months ago",
        none_zh="无行政处罚记录",
        none_en="no penalty on record",
        risky=lambda v: v <= 24,
        zero_zh="本月受到行政处罚",
        zero_en="penalised within the last month",
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
        "{v}个月前检查发现问题",
        "an inspection found a problem {v} months ago",
        none_zh="检查未发现过问题",
        none_en="no inspection has found a problem",
        risky=lambda v: v <= 36,
        zero_zh="本月检查发现问题",
        zero_en="an inspection found a problem within the last month",
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
        risky=_positive,
    ),
    # associations (tokenised legal representative and address)
    Feature(
        "rep_associates",
        "association",
        0,
        "法定代表人另有关联企业{v}家",
        "legal representative runs {v} other enterprises",
        risky=lambda v: v >= 3,
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
        "同一住所另有企业{v}家（集中登记地址）",
        "{v} other enterprises registered at the same address",
        risky=lambda v: v >= 5,
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
    # neighbourhood: the other enterprises on the same street (shrunk towards the lake's rates)
    Feature(
        "street_neighbours",
        "neighbourhood",
        0,
        "同一街道另有企业{v}家",
        "{v} other enterprises on the same street",
    ),
    Feature(
        "street_finding_rate_3y",
        "neighbourhood",
        1,
        "所在街道其他企业近3年检查问题发现率{v}",
        "inspections of other enterprises on the same street found problems {v} of the time "
        "in 3 years",
        "{:.0%}",
    ),
    Feature(
        "street_complaints_12m",
        "neighbourhood",
        1,
        "所在街道其他企业近12个月平均投诉举报{v}件",
        "other enterprises on the same street drew {v} complaints each in 12 months",
        "{:.2f}",
    ),
    Feature(
        "street_penalised_share_2y",
        "neighbourhood",
        1,
        "所在街道其他企业近2年受处罚比例{v}",
        "{v} of other enterprises on the same street penalised in 2 years",
        "{:.0%}",
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)
NUMERIC: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.categorical)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
# Descriptive columns kept beside the features for fairness audits (not model inputs).
SEGMENTS: tuple[str, ...] = ("size_band",)


def render(
    feature: Feature, value: object, names: dict[str, tuple[str, str]] | None = None
) -> tuple[str, str]:
    """The (Chinese, English) phrase of ``feature`` at ``value``; missing reads as 无 / none.

    ``names`` maps a categorical code to its (Chinese, English) name (a district, an
    industry), so a reason reads 所在区县：东城区 rather than 所在区县110101."""
    if value is None or (isinstance(value, float) and value != value):
        return feature.none_zh, feature.none_en
    if not feature.categorical and feature.zero_zh and float(value) == 0:
        return feature.zero_zh, feature.zero_en or feature.en
    shown = feature.fmt.format(value)
    zh = en = shown
    if names and str(value) in names:
        zh, en = names[str(value)]
    return feature.zh.format(v=zh, code=shown), feature.en.format(v=en, code=shown)
