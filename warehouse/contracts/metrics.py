"""The model metrics contract: the populations a backtest is judged on, as ``models/`` writes
them into a model's ``metrics.json`` and the model-performance mart reads them back."""

from __future__ import annotations

# drawn: random-draw inspections weighted by 1 / inclusion probability (unbiased);
# drawn_unweighted: the same, unweighted; inspected: every inspection that took place (biased
# by past targeting); all: uninspected count as 0 (recall of every recorded finding).
POPULATIONS = ("drawn", "drawn_unweighted", "inspected", "all")
HEADLINE = "drawn"  # the population the gate and the dashboards lead with
