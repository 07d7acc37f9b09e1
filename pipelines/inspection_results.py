"""What an inspection's outcome says happened, and the outcome file inspectors fill in.

Silver carries each inspection's canonical ``outcome`` (``fct_inspection.outcome``), read from
the bureau's words by its inspection mapping (``warehouse/contracts``):

* ``found`` — the inspection took place and found a problem;
* ``clean`` — it took place and found none;
* ``unreachable`` — the inspectors could not reach the enterprise: no observation;
* ``not_inspected`` — the drawn inspection did not take place: no observation.

Only ``found`` and ``clean`` are observations of the enterprise. An unreachable or
not-inspected enterprise is *not* "no problem found": it stays unlabelled.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from warehouse.contracts import OBSERVED_RESULTS

FOUND, CLEAN, UNREACHABLE, NOT_INSPECTED = "found", "clean", "unreachable", "not_inspected"
OUTCOMES = (FOUND, CLEAN, UNREACHABLE, NOT_INSPECTED)
TOOK_PLACE = OBSERVED_RESULTS  # outcomes that observed the enterprise
# The wording an outcome file offers (the data-validation list of its result column) and how
# the import reads it back; the extract it delivers uses the bureau's own words.
RESULT_TEXT: dict[str, str] = {
    FOUND: "发现问题",
    CLEAN: "未发现问题",
    UNREACHABLE: "无法联系",
    NOT_INSPECTED: "未检查",
}
RESULT_CODE: dict[str, str] = {text: code for code, text in RESULT_TEXT.items()}
RESULT_EN: dict[str, str] = {
    FOUND: "problem found",
    CLEAN: "no problem found",
    UNREACHABLE: "could not be reached",
    NOT_INSPECTED: "not inspected",
}


def took_place(outcome_column: Column) -> Column:
    """TRUE where the outcome observed the enterprise (found or clean), FALSE otherwise."""
    return F.coalesce(outcome_column.isin(*TOOK_PLACE), F.lit(False))


def inspector_ids(inspector_column: Column) -> Column:
    """The inspectors on one inspection record as an array of ids: a team is recorded as
    'A;B' (or with the full-width '；' typed in Chinese); blanks are dropped, NULL stays NULL."""
    parts = F.transform(F.split(inspector_column, "[;；]"), lambda x: F.trim(x))
    return F.filter(parts, lambda x: x != "")


# ---- the outcome file an inspector fills in (written by risk_insight.outcomes; the simulator
# fills it the same way an inspector would) --------------------------------------------------
OUTCOME_SHEET = "检查结果登记"
OUTCOME_HEADERS: dict[str, str] = {
    "plan_id": "抽查计划编号 / plan id",
    "uscc": "统一社会信用代码 / USCC",
    "name": "企业名称 / name",
    "region_name": "所在区县 / district",
    "address": "注册地址 / registered address",
    "inspectors": "检查人员 / inspectors",
    "inspector_ids": "检查人员编号 / inspector ids",
    "result": "检查结果 / result",
    "inspected_on": "检查日期 / date",
    "note": "备注 / note",
}
OUTCOME_FILLED = ("inspector_ids", "result", "inspected_on", "note")  # what an inspector edits


def outcome_header_row(rows: list[list[object]]) -> int | None:
    """The 0-based index of the header row among the first rows of an outcome sheet (the row
    whose cells include the plan-id and USCC headers), or None."""
    wanted = {OUTCOME_HEADERS["plan_id"], OUTCOME_HEADERS["uscc"]}
    for i, row in enumerate(rows):
        if wanted <= {str(c).strip() for c in row if c is not None}:
            return i
    return None
