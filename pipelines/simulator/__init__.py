"""Synthetic agency extracts for a credit-based market-supervision world.

``simulate(SimulationConfig(), out)`` writes ``out/landing/<date>/<file>`` for every source of
the demo bureau's source mappings (``warehouse/contracts/mappings``; a history cut plus daily
increments), ``out/truth/`` (monthly true risk, enterprises, the defect manifest) and
``out/reference/inspectors.csv``.
"""

from pipelines.simulator.config import DefectRates, SimulationConfig, SimulationSummary
from pipelines.simulator.core import simulate

__all__ = ["DefectRates", "SimulationConfig", "SimulationSummary", "simulate"]
