"""The engine's canonical sources: what conform expects from each kind of extract.

A bureau's files differ in names, headers, encodings, date spellings, units and words; a
source mapping (:mod:`warehouse.contracts.mapping`, one YAML per source) says how to read
them. What does not differ is defined here, once: the canonical fields each source lands in
bronze, which of them a file must carry, the natural key, the personal-data fields, and the
closed vocabularies (registry status, inspection result) that a mapping must translate the
bureau's words into.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Canonical vocabulary values with their Chinese and English labels.
STATUS = {
    "active": ("存续（在营、开业、在册）", "active"),
    "suspended": ("歇业", "suspended"),
    "deregistered": ("注销", "deregistered"),
    "revoked": ("吊销", "revoked"),
    "moved_out": ("迁出", "moved out of the jurisdiction"),
    "cancelled": ("撤销登记", "registration cancelled"),
}
RESULT = {
    "found": ("发现问题", "problem found"),
    "clean": ("未发现问题", "no problem found"),
    "unreachable": ("无法联系（查无下落）", "could not be reached"),
    "not_inspected": ("未检查", "not inspected"),
}
MODE = {
    "random_draw": ("双随机抽查", "random draw (双随机)"),
    "targeted": ("定向检查", "targeted inspection"),
    "complaint_check": ("投诉举报核查", "complaint follow-up"),
    "other": ("其他检查", "other inspection"),
}
# Results that observed the enterprise: only these are inspections in labels and judging.
OBSERVED_RESULTS = ("found", "clean")
# Statuses that take an enterprise out of tiers, plans and lists.
CLOSED_STATUSES = ("deregistered", "revoked", "moved_out", "cancelled")


@dataclass(frozen=True)
class Vocabulary:
    """Canonical values of a field and what a word outside the mapping does: ``closed``
    quarantines the row; otherwise the row gets ``default`` and a warning."""

    values: dict[str, tuple[str, str]]  # code -> (Chinese label, English label)
    closed: bool = True
    default: str | None = None
    # the values are the kinds the source mapping declares (its ``events``), not fixed here
    declared: bool = False


@dataclass(frozen=True)
class CanonicalSource:
    """One kind of source as conform reads it.

    ``fields`` land in bronze as raw text, in this order. A file without a column for each of
    ``required`` is rejected; other missing columns land as NULL and are reported.
    ``vocabularies`` are closed: a mapping must translate the bureau's words onto exactly these
    values, and a row with a word outside the mapping is quarantined.
    """

    name: str
    fields: tuple[str, ...]
    key: tuple[str, ...]
    required: tuple[str, ...]
    pii: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()
    vocabularies: dict[str, Vocabulary] = field(default_factory=dict)


REGISTRY = CanonicalSource(
    name="registry",
    fields=(
        "uscc",
        "name",
        "ent_type",
        "reg_capital",
        "founded_on",
        "region_code",
        "industry",
        "status",
        "legal_rep",
        "legal_rep_id",
        "phone",
        "address",
        "changed_on",
        "closed_on",
    ),  # fmt: skip
    key=("uscc", "changed_on"),
    required=("uscc", "name", "founded_on", "region_code", "status", "changed_on"),
    pii=("legal_rep", "legal_rep_id", "phone"),
    dates=("founded_on", "changed_on", "closed_on"),
    amounts=("reg_capital",),
    vocabularies={"status": Vocabulary(STATUS)},
)
ANNUAL_REPORT = CanonicalSource(
    name="annual_report",
    fields=("uscc", "report_year", "filed_on", "employees", "revenue_band", "insured_staff"),
    key=("uscc", "report_year"),
    required=("uscc", "report_year", "filed_on"),
    dates=("filed_on",),
)
PENALTY = CanonicalSource(
    name="penalty",
    fields=("case_no", "uscc", "decided_on", "category", "amount", "authority", "reported_on"),
    key=("case_no",),
    required=("case_no", "uscc", "decided_on"),
    dates=("decided_on", "reported_on"),
    amounts=("amount",),
)
ABNORMAL_LIST = CanonicalSource(
    name="abnormal_list",
    fields=(
        "uscc",
        "entered_on",
        "entry_reason",
        "removed_on",
        "removal_reason",
        "authority",
        "reported_on",
    ),  # fmt: skip
    key=("uscc", "entered_on"),
    required=("uscc", "entered_on"),
    dates=("entered_on", "removed_on", "reported_on"),
)
SERIOUS_LIST = CanonicalSource(
    name="serious_list",
    fields=("uscc", "entered_on", "entry_reason", "removed_on", "authority", "reported_on"),
    key=("uscc", "entered_on"),
    required=("uscc", "entered_on"),
    dates=("entered_on", "removed_on", "reported_on"),
)
INSPECTION = CanonicalSource(
    name="inspection",
    fields=(
        "inspection_id",
        "uscc",
        "inspected_on",
        "mode",
        "result",
        "inspector_id",
        "plan_id",
        "reported_on",
    ),  # fmt: skip
    key=("inspection_id",),
    required=("inspection_id", "uscc", "inspected_on", "result"),
    dates=("inspected_on", "reported_on"),
    vocabularies={
        "result": Vocabulary(RESULT),
        "mode": Vocabulary(MODE, closed=False, default="other"),
    },
)
COMPLAINT = CanonicalSource(
    name="complaint",
    fields=("complaint_id", "uscc", "received_on", "category", "channel", "complainant_phone"),
    key=("complaint_id",),
    required=("complaint_id", "uscc", "received_on"),
    pii=("complainant_phone",),
    dates=("received_on",),
)
# Enterprise events of kinds the other sources do not hold (许可准予 / 吊销许可证 / 行政奖励 …):
# the mapping declares each kind (its words, window, direction and reason templates) and each
# becomes a point-in-time model feature ``evt_<kind>``; see mapping.EventKind.
EVENT = CanonicalSource(
    name="event",
    fields=("event_id", "uscc", "kind", "event_on", "detail", "authority", "reported_on"),
    key=("event_id", "kind", "event_on"),
    required=("event_id", "uscc", "kind", "event_on"),
    dates=("event_on", "reported_on"),
    vocabularies={"kind": Vocabulary({}, declared=True)},
)

CANONICAL: dict[str, CanonicalSource] = {
    s.name: s
    for s in (
        REGISTRY, ANNUAL_REPORT, PENALTY, ABNORMAL_LIST, SERIOUS_LIST, INSPECTION, COMPLAINT, EVENT
    )
}  # fmt: skip


def canonical(name: str) -> CanonicalSource:
    """The canonical source ``name``; KeyError naming the known ones."""
    try:
        return CANONICAL[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(CANONICAL)}") from None
