"""Inspector effects (执法尺度) taken out of learning and judging.

Inspectors differ in how often they find a problem in the same kind of enterprise. Under 双随机
the inspector is drawn after the enterprise, so who inspects says nothing about the
enterprise's risk; but an inspector serves one district, so a strict district's findings would
teach the model that the district is risky, and a lenient one's would hide risk. The labels
carry who observed them (``inspectors`` from ``pipelines/features/labels.py``), and:

* **Effect.** An inspector's effect is how far their findings sit from those a first,
  unadjusted model expects of the enterprises they inspected, relative to everybody's:
  ``θ = log((O + k·r) / (E + k)) − log r``, with ``O`` their labelled findings, ``E`` the
  expected ones, ``r = ΣO / ΣE`` and ``k`` expected findings of prior that shrink a thinly
  seen inspector towards 0 (a Poisson–gamma estimate). A row's effect is the mean over its
  inspectors; a row nobody inspected (a penalty from another channel) has 0.
* **Learning.** The model is fitted again starting each row at its effect (LightGBM's
  ``init_score``, on the log-odds scale), so the trees learn the enterprise's risk net of who
  looked. Scoring uses the booster alone: the risk as an average inspector would find it.
  Inspectors are never a feature, so they can never raise a rank.
* **Judging.** A finding counts ``exp(−θ)`` of a finding (``adjusted_labels``): a strict
  inspector's finding counts less, a lenient one's more, so hit rates compare targeting, not
  the inspectors it happened to meet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pandas as pd

PRIOR_FINDINGS = 10.0  # k: expected findings of prior weight per inspector


def _teams(frame: pd.DataFrame) -> list[list[str]]:
    """Each row's inspectors as a list (empty where none is recorded)."""
    if "inspectors" not in frame:
        return [[] for _ in range(len(frame))]
    return [
        [str(i) for i in team] if isinstance(team, Iterable) and not isinstance(team, str) else []
        for team in frame["inspectors"]
    ]


def inspector_effects(
    frame: pd.DataFrame, expected: np.ndarray, prior: float = PRIOR_FINDINGS
) -> dict[str, float]:
    """θ per inspector id (see the module doc) from the rows' ``label`` and the probabilities
    ``expected`` of an unadjusted model; {} when no row names an inspector or nothing was
    found."""
    found, exp_ = defaultdict(float), defaultdict(float)
    labels = frame["label"].to_numpy(float)
    for team, y, e in zip(_teams(frame), labels, np.asarray(expected, float), strict=True):
        for who in team:
            found[who] += y
            exp_[who] += e
    total_o, total_e = sum(found.values()), sum(exp_.values())
    if not found or total_o <= 0 or total_e <= 0:
        return {}
    r = total_o / total_e
    return {w: float(np.log((found[w] + prior * r) / (exp_[w] + prior)) - np.log(r)) for w in found}


def row_effects(frame: pd.DataFrame, effects: dict[str, float]) -> np.ndarray:
    """Each row's effect: the mean θ of its inspectors (0 for none, or for ids not in
    ``effects``)."""
    return np.array(
        [np.mean([effects.get(w, 0.0) for w in team]) if team else 0.0 for team in _teams(frame)]
    )


def adjusted_labels(frame: pd.DataFrame, effects: dict[str, float]) -> np.ndarray:
    """``label · exp(−θ)``: each finding as it would count for an average inspector."""
    return frame["label"].to_numpy(float) * np.exp(-row_effects(frame, effects))


__all__ = ["PRIOR_FINDINGS", "adjusted_labels", "inspector_effects", "row_effects"]
