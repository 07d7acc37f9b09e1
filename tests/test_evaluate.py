"""Unbiased judging on a hand-built stratified sample (no Spark): a D stratum drawn at 50 % and
an A stratum drawn at 2 %, with known population figures. The weighted figures recover the
population's exactly; the unweighted ones are provably wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluate import evaluate_fold, fairness_gaps, targeting, top_share

# Population: 240 D enterprises (finding rate 0.5) and 960 A (rate 0.125): 240 findings in
# 1,200, a base rate of 0.2. The plan drew D at 50 % and A at 2.5 %.
N_D, N_A = 240, 960
POP_BASE = (120 + 120) / (N_D + N_A)


def sample() -> pd.DataFrame:
    """50 % of D (120 rows, 60 hits, weight 2) and 2.5 % of A (24 rows, 3 hits, weight 40);
    the model scores every D above every A. The top 20 % of the population (240) is exactly
    the D stratum: inspecting it finds 120, precision 0.5, recall 0.5, lift 2.5."""
    d = pd.DataFrame({"label": [1, 0] * 60, "draw_weight": 2.0, "score": 0.9,
                      "region_code": "R1", "tier": "D"})  # fmt: skip
    a = pd.DataFrame({"label": ([1] + [0] * 7) * 3, "draw_weight": 40.0, "score": 0.1,
                      "region_code": "R1", "tier": "A"})  # fmt: skip
    out = pd.concat([d, a], ignore_index=True)
    out["score"] -= np.linspace(0, 1e-3, len(out))  # distinct scores, order kept within tier
    return out


def test_weighted_figures_equal_the_populations_and_unweighted_ones_do_not():
    s = sample()
    y, p, w = s["label"].to_numpy(), s["score"].to_numpy(), s["draw_weight"].to_numpy()
    assert w.sum() == N_D + N_A  # the sample stands for the whole population
    weighted = targeting(y, p, weight=w)
    plain = targeting(y, p)
    assert weighted["base_rate"] == pytest.approx(POP_BASE)
    assert weighted["precision_at_k"] == pytest.approx(0.5)
    assert weighted["recall_at_k"] == pytest.approx(0.5)
    assert weighted["lift"] == pytest.approx(2.5)
    assert weighted["population"] == 1200 and weighted["k"] == 120  # the D rows
    # unweighted, D is over-represented 20 times: the base rate is more than doubled, the
    # recall halved and the lift (the whole point of targeting) looks like 1.2 instead of 2.5
    assert plain["base_rate"] == pytest.approx(63 / 144)
    assert plain["k"] == 29 and plain["precision_at_k"] == pytest.approx(15 / 29)
    assert plain["recall_at_k"] == pytest.approx(15 / 63)
    assert plain["lift"] == pytest.approx((15 / 29) / (63 / 144))
    assert plain["lift"] < 1.25 and abs(plain["lift"] - 2.5) > 1


def test_top_share_with_unit_weights_is_the_old_budget():
    score = np.arange(10.0)
    assert top_share(score, None, 0.2).sum() == 2
    assert top_share(score, np.ones(10), 0.25).sum() == 3  # ceil(2.5)
    sel = top_share(score, np.array([1.0] * 9 + [5.0]), 0.2)
    assert sel.sum() == 1 and sel[-1]  # the highest row alone carries 5 of 14 > 2.8


def test_fold_metrics_judge_on_weighted_random_draws():
    s = sample()
    s["drawn"] = 1
    s["inspected"] = 1
    s["size_band"] = "small"
    for c in ("penalties_2y", "on_serious_list", "on_abnormal_list", "reports_late_3y",
              "reports_missing_3y"):  # fmt: skip
        s[c] = 0.0
    fold = evaluate_fold(s, s["score"].to_numpy(), None)
    w, plain = fold["populations"]["drawn"], fold["populations"]["drawn_unweighted"]
    assert w["random"]["precision_at_k"] == pytest.approx(POP_BASE)
    assert plain["random"]["precision_at_k"] == pytest.approx(63 / 144)
    assert w["model"]["lift"] == pytest.approx(2.5) and plain["model"]["lift"] < 1.25
    assert fold["weights"] == {"drawn": 144, "with_plan_ratio": 144, "population": 1200.0}
    # calibration is weighted too: a constant 0.2 is perfectly calibrated on the population
    flat = evaluate_fold(s, np.full(len(s), POP_BASE), None)
    assert flat["reliability"][0]["observed"] == pytest.approx(POP_BASE)
    assert flat["brier"] == pytest.approx(POP_BASE * (1 - POP_BASE))
    # a fairness gap on the random draws: two districts the model treats alike
    two = pd.concat([s.assign(region_code="R1"), s.assign(region_code="R2")], ignore_index=True)
    two.loc[(two["region_code"] == "R2") & (two["tier"] == "D"), "label"] = 0
    gaps = fairness_gaps(two, two["label"].to_numpy(), two["score"].to_numpy(), "region_code",
                         weight=two["draw_weight"].to_numpy())  # fmt: skip
    assert gaps["groups"]["R1"]["hit_rate"] == pytest.approx(0.5)
    assert gaps["groups"]["R2"]["hit_rate"] == pytest.approx(0.0)
    assert gaps["hit_rate_gap"] == pytest.approx(0.5)
