"""The plan calendar: which plan period a date falls in, and its plan id.

A period is a calendar month or quarter (``policy.plan.period``). Its plan id is
``CJ-<first day of the period>`` (``CJ-20261101`` for November 2026), so every daily run inside
a period finds the same plan, and the id follows from the calendar alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

MONTHS = {"monthly": 1, "quarterly": 3}


@dataclass(frozen=True)
class Period:
    """One plan period: first and last day (inclusive) and its plan id."""

    start: date
    end: date
    kind: str

    @property
    def plan_id(self) -> str:
        return plan_id_for(self.start)

    def __contains__(self, d: date) -> bool:
        return self.start <= d <= self.end


def plan_id_for(start: date) -> str:
    """The plan id of the period starting at ``start`` (``CJ-YYYYMMDD``)."""
    return f"CJ-{start:%Y%m%d}"


def _add_months(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


def period_of(d: date, kind: str = "monthly") -> Period:
    """The period of kind ``monthly`` or ``quarterly`` that contains ``d``."""
    if kind not in MONTHS:
        raise ValueError(f"unknown plan period {kind!r}; known: {', '.join(MONTHS)}")
    step = MONTHS[kind]
    start = date(d.year, (d.month - 1) // step * step + 1, 1)
    return Period(start, _add_months(start, step) - timedelta(days=1), kind)


def next_period(p: Period) -> Period:
    """The period right after ``p``."""
    return period_of(p.end + timedelta(days=1), p.kind)


def previous_period(p: Period) -> Period:
    """The period right before ``p``."""
    return period_of(p.start - timedelta(days=1), p.kind)
