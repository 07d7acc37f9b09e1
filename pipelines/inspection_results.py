"""What an inspection's recorded result says happened: one helper for every reader.

Silver keeps an inspection's result as the source wrote it (``fct_inspection.result``, e.g.
发现问题 / 未发现问题 / 无法联系 / 未检查). Labels, plan completion, evaluation weights and the
outcome files all need the same four-way reading of it, so it is derived here and nowhere
else:

* ``found`` — the inspection took place and found a problem (发现问题);
* ``clean`` — it took place and found none (未发现问题);
* ``unreachable`` — the inspectors could not reach the enterprise (无法联系): no observation;
* ``not_inspected`` — the drawn inspection did not take place (未检查): no observation.

Only ``found`` and ``clean`` are observations of the enterprise. An unreachable or
not-inspected enterprise is *not* "no problem found": it stays unlabelled. A row without a
result text falls back to the conformed ``found_problem`` flag (sources that carry a flag
only). When the source mappings gain a result vocabulary, :data:`RESULT_RULES` is the one
place to point at it.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

FOUND, CLEAN, UNREACHABLE, NOT_INSPECTED = "found", "clean", "unreachable", "not_inspected"
OUTCOMES = (FOUND, CLEAN, UNREACHABLE, NOT_INSPECTED)
TOOK_PLACE = (FOUND, CLEAN)  # outcomes that observed the enterprise
# The wording an outcome file offers (the data-validation list of the result column).
RESULT_TEXT: dict[str, str] = {
    FOUND: "发现问题",
    CLEAN: "未发现问题",
    UNREACHABLE: "无法联系",
    NOT_INSPECTED: "未检查",
}
RESULT_EN: dict[str, str] = {
    FOUND: "problem found",
    CLEAN: "no problem found",
    UNREACHABLE: "could not be reached",
    NOT_INSPECTED: "not inspected",
}
# Substring rules, first match wins: 未发现 before 发现, since 未发现问题 contains 发现.
RESULT_RULES: tuple[tuple[str, str], ...] = (
    ("未发现", CLEAN),
    ("无法联系", UNREACHABLE),
    ("联系不上", UNREACHABLE),
    ("失联", UNREACHABLE),
    ("未检查", NOT_INSPECTED),
    ("未开展", NOT_INSPECTED),
    ("未实施", NOT_INSPECTED),
    ("发现", FOUND),
)


def outcome(result: str | None, found_problem: bool | None = None) -> str | None:
    """The outcome of one result text (None when it says nothing we can read)."""
    text = (result or "").strip()
    if text:
        for needle, out in RESULT_RULES:
            if needle in text:
                return out
        return None
    if found_problem is None:
        return None
    return FOUND if found_problem else CLEAN


def outcome_col(result: Column, found_problem: Column | None = None) -> Column:
    """Spark twin of :func:`outcome`: a string column (NULL when unreadable)."""
    text = F.trim(F.coalesce(result, F.lit("")))
    expr = None
    for needle, out in RESULT_RULES:
        cond = text.contains(needle)
        expr = F.when(cond, F.lit(out)) if expr is None else expr.when(cond, F.lit(out))
    fallback = F.lit(None).cast("string")
    if found_problem is not None:
        fallback = F.when(found_problem, F.lit(FOUND)).when(~found_problem, F.lit(CLEAN))
    return F.when(text != "", expr).otherwise(fallback)


def took_place(outcome_column: Column) -> Column:
    """TRUE where the outcome observed the enterprise (found or clean), FALSE otherwise."""
    return F.coalesce(outcome_column.isin(*TOOK_PLACE), F.lit(False))


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
