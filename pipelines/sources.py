"""The source contract: what each agency extract looks like on disk.

One entry per source system. The simulator writes files to this contract and ingest reads
them by it, so this module is the single place that names a source's file, format, headers
(Chinese, as agencies export them), natural key and personal-data columns.

Landing layout: ``<landing>/<YYYY-MM-DD>/<file_stem>.<csv|xlsx>``; a day's folder holds the
extracts delivered that day. The first (history) delivery holds every record known up to the
cut-over date; later folders hold increments: new records, corrections and late arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class SourceSpec:
    """One source system's extract: file, format, columns and keys."""

    name: str
    title_zh: str
    title_en: str
    owner_zh: str
    file_stem: str
    fmt: Literal["csv", "xlsx"]
    export_encoding: str  # what the agency's export uses; ingest detects it per file anyway
    columns: dict[str, str]  # canonical field name -> Chinese header in the extract
    natural_key: tuple[str, ...]
    pii: tuple[str, ...] = ()
    date_fields: tuple[str, ...] = ()
    amount_fields: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.file_stem}.{self.fmt}"

    @property
    def headers_zh(self) -> list[str]:
        return list(self.columns.values())

    @property
    def fields(self) -> list[str]:
        return list(self.columns)


REGISTRY = SourceSpec(
    name="registry",
    title_zh="企业登记注册信息",
    title_en="enterprise registration",
    owner_zh="登记注册科",
    file_stem="registry",
    fmt="csv",
    export_encoding="gbk",
    columns={
        "uscc": "统一社会信用代码",
        "name": "企业名称",
        "ent_type": "企业类型",
        "reg_capital": "注册资本",
        "founded_on": "成立日期",
        "region_code": "住所行政区划代码",
        "industry": "行业门类",
        "status": "登记状态",
        "legal_rep": "法定代表人",
        "legal_rep_id": "法定代表人证件号码",
        "phone": "联系电话",
        "address": "住所",
        "changed_on": "核准日期",
        "closed_on": "注销吊销日期",
    },
    natural_key=("uscc", "changed_on"),
    pii=("legal_rep", "legal_rep_id", "phone"),
    date_fields=("founded_on", "changed_on", "closed_on"),
    amount_fields=("reg_capital",),
)

ANNUAL_REPORT = SourceSpec(
    name="annual_report",
    title_zh="企业年度报告",
    title_en="annual reports",
    owner_zh="信用监管科",
    file_stem="annual_report",
    fmt="csv",
    export_encoding="utf-8-sig",
    columns={
        "uscc": "统一社会信用代码",
        "report_year": "报告年度",
        "filed_on": "报送日期",
        "employees": "从业人数",
        "revenue_band": "营业收入区间",
        "insured_staff": "社保参保人数",
    },
    natural_key=("uscc", "report_year"),
    date_fields=("filed_on",),
)

PENALTY = SourceSpec(
    name="penalty",
    title_zh="行政处罚信息",
    title_en="administrative penalties",
    owner_zh="执法稽查局",
    file_stem="penalty",
    fmt="csv",
    export_encoding="gbk",
    columns={
        "case_no": "处罚决定书文号",
        "uscc": "统一社会信用代码",
        "decided_on": "处罚决定日期",
        "category": "违法行为类型",
        "amount": "罚没金额",
        "authority": "处罚机关",
        "reported_on": "公示日期",
    },
    natural_key=("case_no",),
    date_fields=("decided_on", "reported_on"),
    amount_fields=("amount",),
)

ABNORMAL_LIST = SourceSpec(
    name="abnormal_list",
    title_zh="经营异常名录",
    title_en="abnormal-operation list",
    owner_zh="信用监管科",
    file_stem="abnormal_list",
    fmt="csv",
    export_encoding="utf-8-sig",
    columns={
        "uscc": "统一社会信用代码",
        "entered_on": "列入日期",
        "entry_reason": "列入原因",
        "removed_on": "移出日期",
        "removal_reason": "移出原因",
        "authority": "作出决定机关",
        "reported_on": "公示日期",
    },
    natural_key=("uscc", "entered_on"),
    date_fields=("entered_on", "removed_on", "reported_on"),
)

SERIOUS_LIST = SourceSpec(
    name="serious_list",
    title_zh="严重违法失信名单",
    title_en="serious-violation list",
    owner_zh="信用监管科",
    file_stem="serious_list",
    fmt="xlsx",
    export_encoding="xlsx",
    columns={
        "uscc": "统一社会信用代码",
        "entered_on": "列入日期",
        "entry_reason": "列入原因",
        "removed_on": "移出日期",
        "authority": "作出决定机关",
        "reported_on": "公示日期",
    },
    natural_key=("uscc", "entered_on"),
    date_fields=("entered_on", "removed_on", "reported_on"),
)

INSPECTION = SourceSpec(
    name="inspection",
    title_zh="抽查检查结果",
    title_en="inspections and outcomes",
    owner_zh="综合执法科",
    file_stem="inspection",
    fmt="csv",
    export_encoding="gbk",
    columns={
        "inspection_id": "检查编号",
        "uscc": "统一社会信用代码",
        "inspected_on": "检查日期",
        "mode": "检查方式",
        "result": "检查结果",
        "inspector_id": "检查人员编号",
        "plan_id": "抽查计划编号",
        "reported_on": "录入日期",
    },
    natural_key=("inspection_id",),
    date_fields=("inspected_on", "reported_on"),
)

COMPLAINT = SourceSpec(
    name="complaint",
    title_zh="投诉举报信息",
    title_en="complaints (12315)",
    owner_zh="消费者权益保护科",
    file_stem="complaint",
    fmt="csv",
    export_encoding="utf-8-sig",
    columns={
        "complaint_id": "投诉举报编号",
        "uscc": "统一社会信用代码",
        "received_on": "登记日期",
        "category": "投诉类别",
        "channel": "来源渠道",
        "complainant_phone": "投诉人电话",
    },
    natural_key=("complaint_id",),
    pii=("complainant_phone",),
    date_fields=("received_on",),
)

SOURCES: dict[str, SourceSpec] = {
    s.name: s
    for s in (REGISTRY, ANNUAL_REPORT, PENALTY, ABNORMAL_LIST, SERIOUS_LIST, INSPECTION, COMPLAINT)
}


def source(name: str) -> SourceSpec:
    """Return the spec of source ``name``; raise KeyError naming the known sources."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None
