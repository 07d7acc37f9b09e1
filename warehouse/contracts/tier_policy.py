"""The tier policy: one versioned YAML (``tier_policy.yaml``) loaded into a typed object.

Tiers, plans, lists and warnings take a :class:`TierPolicy`; the version they were made under
is written beside every row so a list can be reproduced and explained later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from warehouse import caches
from warehouse.contracts import CLOSED_STATUSES
from warehouse.contracts.canonical import STATUS

DEFAULT_POLICY = Path(__file__).with_name("tier_policy.yaml")
TIERS = ("A", "B", "C", "D")  # low to high risk
TIER_ORDER = {t: i for i, t in enumerate(TIERS)}


class Rules(BaseModel):
    serious_list_tier: str = "D"
    abnormal_list_min_tier: str = "C"
    # canonical registry statuses (warehouse.contracts.canonical.STATUS) out of scope
    excluded_statuses: list[str] = Field(default_factory=lambda: list(CLOSED_STATUSES))


class Draw(BaseModel):
    ratios: dict[str, float]
    seed: int | None = None  # None: a committed random seed per period (risk_insight.seeds)
    inspection_window_days: int = 60


class Plan(BaseModel):
    """The plan calendar: one plan per period, cool-off window, yearly cap per tier."""

    period: Literal["monthly", "quarterly"] = "monthly"
    cool_off_days: int = Field(90, ge=0)
    yearly_cap: dict[str, int] = Field(default_factory=lambda: {"A": 1, "B": 1, "C": 2, "D": 4})


class Inspectors(BaseModel):
    """How inspectors are drawn: how many per enterprise, workload cap, conflict list."""

    per_enterprise: int = Field(2, ge=1)
    workload_cap: int = Field(40, ge=1)  # enterprises per inspector per period
    conflicts: str | None = None  # CSV path; None: <landing>/../reference/conflicts.csv


class Lists(BaseModel):
    top_reasons: int = 3


class Warnings(BaseModel):
    tier_rise: int = 2
    serious_lookback_days: int = 31
    complaint_recent_days: int = 90
    complaint_history_days: int = 365
    complaint_min_recent: int = 3
    complaint_surge_ratio: float = 3.0


class TierPolicy(BaseModel):
    """Tier shares, hard rules, draw ratios, list and warning settings, under one version."""

    version: str
    shares: dict[str, float]
    rules: Rules = Field(default_factory=Rules)
    draw: Draw
    plan: Plan = Field(default_factory=Plan)
    inspectors: Inspectors = Field(default_factory=Inspectors)
    lists: Lists = Field(default_factory=Lists)
    warnings: Warnings = Field(default_factory=Warnings)

    @model_validator(mode="after")
    def _check(self) -> TierPolicy:
        for name, d in (("shares", self.shares), ("draw.ratios", self.draw.ratios)):
            if set(d) != set(TIERS):
                raise ValueError(f"{name} must name exactly the tiers {TIERS}: {sorted(d)}")
            if any(not 0 <= v <= 1 for v in d.values()):
                raise ValueError(f"{name} must lie in [0, 1]: {d}")
        if set(self.plan.yearly_cap) != set(TIERS):
            raise ValueError(f"plan.yearly_cap must name exactly the tiers {TIERS}")
        if abs(sum(self.shares.values()) - 1) > 1e-9:
            raise ValueError(f"tier shares must sum to 1: {self.shares}")
        for t in (self.rules.serious_list_tier, self.rules.abnormal_list_min_tier):
            if t not in TIERS:
                raise ValueError(f"unknown tier {t!r}")
        unknown = sorted(set(self.rules.excluded_statuses) - set(STATUS))
        if unknown:
            raise ValueError(f"excluded_statuses {unknown} are not canonical {list(STATUS)}")
        return self

    @property
    def budget_share(self) -> float:
        """Share of the population in the tiers inspectors are sent to (C and D): the budget
        at which models are judged (precision, recall and lift at k)."""
        return self.shares["C"] + self.shares["D"]

    def cumulative_shares(self) -> list[tuple[str, float]]:
        """(tier, share of the population at or above this tier's risk), D first."""
        out, acc = [], 0.0
        for t in reversed(TIERS):
            acc += self.shares[t]
            out.append((t, acc))
        return out


def load_policy(path: str | Path | None = None) -> TierPolicy:
    """The policy in ``path`` (default: the reviewed ``tier_policy.yaml`` beside this module)."""
    return _load(str(path or DEFAULT_POLICY))


@caches.per_run(maxsize=8)
def _load(path: str) -> TierPolicy:
    return TierPolicy.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def policy_for(settings) -> TierPolicy:
    """The policy named by ``settings.tier_policy`` (or the default one)."""
    return load_policy(getattr(settings, "tier_policy", None))
