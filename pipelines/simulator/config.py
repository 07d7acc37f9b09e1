"""Configuration and result types of the source simulator."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path

# How the pipeline is expected to handle each defect class (written to truth/defects.csv).
HANDLING: dict[str, str] = {
    "full_width": "normalise",
    "whitespace": "normalise",
    "date_format": "normalise",
    "amount_format": "normalise",
    "duplicate_row": "dedupe",
    "late_correction": "merge",
    "late_arrival": "merge",
    "bad_check_digit": "quarantine",
    "unknown_region": "quarantine",
    "removal_before_entry": "quarantine",
    "orphan_enterprise": "quarantine",
    "unparseable_date": "quarantine",
    "future_date": "quarantine",
    "before_founding": "quarantine",
    "negative_amount": "quarantine",
    "missing_key": "quarantine",
    "malformed_row": "quarantine",
}


@dataclass(frozen=True)
class DefectRates:
    """Per-row probability of injecting each defect class into a row eligible for it.

    When a rate is positive and eligible rows exist, at least one row gets the defect, so that
    every enabled class shows up even in a tiny world.
    """

    full_width: float = 0.004
    whitespace: float = 0.005
    date_format: float = 0.008
    amount_format: float = 0.01
    duplicate_row: float = 0.005
    late_correction: float = 0.01
    late_arrival: float = 0.01
    bad_check_digit: float = 0.003
    unknown_region: float = 0.003
    removal_before_entry: float = 0.01
    orphan_enterprise: float = 0.003
    unparseable_date: float = 0.003
    future_date: float = 0.003
    before_founding: float = 0.003
    negative_amount: float = 0.005
    missing_key: float = 0.003
    malformed_row: float = 0.003

    @classmethod
    def none(cls) -> DefectRates:
        """A clean world: every rate zero."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def as_dict(self) -> dict[str, float]:
        """Rates by class name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SimulationConfig:
    """Size, seed and time span of the simulated world."""

    enterprises: int = 50_000
    years: int = 5
    seed: int = 42
    end_date: date = date(2026, 10, 31)  # last day of the simulated world
    increment_days: int = 3  # daily increment folders after the history cut
    defects: DefectRates = field(default_factory=DefectRates)
    drift: float = 0.0  # the risk process changes over the span (dynamics.py); 0 = stationary
    inspector_spread: float = 0.0  # inspectors differ in strictness (dynamics.py); 0 = alike
    street_signal: float = 0.0  # s.d. of a per-street log-odds risk effect (dynamics.py); 0 = none
    # licensed trades in the business scope raise risk (dynamics.py) and the registry extract
    # carries a 经营范围 column; 0 = neither
    licence_signal: float = 0.0

    @property
    def history_date(self) -> date:
        """Date of the history (cut-over) delivery."""
        return date.fromordinal(self.end_date.toordinal() - self.increment_days)


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation run wrote."""

    out: Path
    history_date: date
    increment_dates: list[date]
    rows_per_source: dict[str, int]
    defects_per_class: dict[str, int]
