"""The model policy (``model_policy.yaml`` beside this module): label horizon, backtest
schedule, promotion gate.

Every number a model is trained or judged by lives in that one reviewed file; the model card
and the registry record the version. It is a contract below the pipelines because labels
(pipelines) and the DAGs need its horizon too.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from warehouse import caches

DEFAULT_POLICY = Path(__file__).with_name("model_policy.yaml")


class ScheduleParams(BaseModel):
    """How backtest folds and training dates are laid on the data span."""

    n_folds: int = Field(3, ge=1)
    min_folds: int = Field(2, ge=1)  # fewer folds than n_folds when the span is short
    fold_step_months: int = Field(6, ge=1)
    train_step_months: int = Field(3, ge=1)
    warmup_months: int = Field(6, ge=0)


class ShortHistory(ScheduleParams):
    """The fallback schedule for short spans, with its own horizon."""

    horizon_days: int = Field(90, ge=30)


class Promotion(BaseModel):
    margin: float = Field(0.005, ge=0)  # another recipe must beat the champion's by this
    tolerance: float = Field(0.01, ge=0)  # a same-recipe refresh may be this much worse
    fairness_bound: float = Field(0.05, ge=0)


class Inspectors(BaseModel):
    """Inspector effects taken out of learning and judging (``models/inspectors.py``)."""

    adjust: bool = True  # learn the risk net of who inspected; judge on adjusted outcomes
    prior_findings: float = Field(10.0, gt=0)  # shrinks a thinly seen inspector towards 0


class ModelPolicy(BaseModel):
    """Horizon, schedules, inspector adjustment and gate parameters under one version."""

    version: str
    horizon_days: int = Field(365, ge=30)
    schedule: ScheduleParams = Field(default_factory=ScheduleParams)
    short_history: ShortHistory = Field(default_factory=ShortHistory)
    promotion: Promotion = Field(default_factory=Promotion)
    inspectors: Inspectors = Field(default_factory=Inspectors)
    # the model card shows the recipe beside variants backtested on the same folds
    compare_recipes: bool = True
    # a model frame (training or judging rows) of more rows is a uniform sample of this many
    frame_max_rows: int = Field(500_000, ge=1000)

    @property
    def inspector_prior(self) -> float | None:
        """k for :func:`models.train.fit` (None: no adjustment)."""
        return self.inspectors.prior_findings if self.inspectors.adjust else None


def load_model_policy(path: str | Path | None = None) -> ModelPolicy:
    """The policy in ``path`` (default: the reviewed ``model_policy.yaml``)."""
    return _load(str(path or DEFAULT_POLICY))


@caches.per_run(maxsize=4)
def _load(path: str) -> ModelPolicy:
    return ModelPolicy.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


HORIZON_DAYS = load_model_policy().horizon_days  # the reviewed label horizon: every default
