"""Inspector effects out of learning and judging (models/inspectors.py), on hand-made frames:
a world where inspectors differ in strictness and a rota sends the strict ones mostly to one
district. The unadjusted model learns that district as risky; the adjusted one ranks closer to
the true risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from models.evaluate import evaluate_fold
from models.inspectors import adjusted_labels, inspector_effects, row_effects
from models.train import fit

FEATURES = ["region_code", "penalties_2y", "complaints_12m"]
# detection: the share of an enterprise's problems an inspector finds, relative to the standard
STRICTNESS = {"严-1": 1.8, "严-2": 1.8, "中-1": 1.0, "中-2": 1.0, "宽-1": 0.35, "宽-2": 0.35}


def _world(n: int, seed: int) -> pd.DataFrame:
    """Enterprises in districts 110101 / 110102 with two risk drivers; district carries no
    risk of its own. Inspectors come from one pool; 80 % of 110101's visits go to the strict
    ones and 80 % of 110102's to the lenient ones, the rest at random."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["110101", "110102"], n)
    pen = rng.poisson(0.6, n)
    compl = rng.poisson(1.0, n)
    p = 1 / (1 + np.exp(-(-2.2 + 0.9 * pen + 0.5 * compl)))
    pool = list(STRICTNESS)
    favoured = np.where(
        region == "110101", rng.choice(pool[:2], n), rng.choice(pool[4:], n)
    )  # fmt: skip
    who = np.where(rng.random(n) < 0.8, favoured, rng.choice(pool, n))
    d = np.array([STRICTNESS[w] for w in who])
    found = rng.random(n) < np.minimum(1.0, p * d)
    return pd.DataFrame({
        "region_code": region, "penalties_2y": pen, "complaints_12m": compl, "true_p": p,
        "label": found.astype(int), "inspectors": [[w] for w in who],
        "drawn": 1, "inspected": 1, "draw_weight": 1.0, "size_band": "small",
        "ent_type": "1100", "industry": "F", "on_serious_list": 0, "on_abnormal_list": 0,
        "reports_late_3y": 0, "reports_missing_3y": 0,
    })  # fmt: skip


@pytest.fixture(scope="module")
def models():
    train, calib, test = _world(12_000, 1), _world(3_000, 2), _world(6_000, 3)
    params = {"min_data_in_leaf": 20, "min_data_per_group": 20}
    plain = fit(train, calib, params, FEATURES, num_rounds=60)
    adjusted = fit(train, calib, params, FEATURES, num_rounds=60, inspector_prior=10.0)
    return plain, adjusted, test


def test_effects_find_the_strict_and_the_lenient_inspectors(models):
    _, adjusted, _ = models
    eff = adjusted.inspector_effects
    assert set(eff) == set(STRICTNESS)
    assert min(eff["严-1"], eff["严-2"]) > max(eff["中-1"], eff["中-2"]) > max(
        eff["宽-1"], eff["宽-2"]
    )  # fmt: skip
    # on the log scale the spread is about log(1.8 / 0.35) = 1.64
    assert eff["严-1"] - eff["宽-1"] == pytest.approx(np.log(1.8 / 0.35), abs=0.5)
    assert adjusted.params["inspector_prior"] == 10.0


def test_the_adjusted_model_ranks_closer_to_the_true_risk(models):
    plain, adjusted, test = models
    rho_plain = spearmanr(plain.predict(test), test["true_p"]).statistic
    rho_adjusted = spearmanr(adjusted.predict(test), test["true_p"]).statistic
    assert rho_adjusted > rho_plain + 0.03, (rho_plain, rho_adjusted)
    # the district carries no risk: adjusted, its two halves score alike; plain, apart
    gap = {
        name: abs(np.log(m.predict(test[test.region_code == "110101"]).mean()
                         / m.predict(test[test.region_code == "110102"]).mean()))
        for name, m in (("plain", plain), ("adjusted", adjusted))
    }  # fmt: skip
    true_gap = abs(np.log(test[test.region_code == "110101"].true_p.mean()
                          / test[test.region_code == "110102"].true_p.mean()))  # fmt: skip
    assert abs(gap["adjusted"] - true_gap) < abs(gap["plain"] - true_gap) / 2, gap


def test_no_inspectors_recorded_means_no_adjustment(models):
    plain, _, test = models
    bare = test.drop(columns=["inspectors"])
    assert not row_effects(bare, {"严-1": 0.5}).any()
    assert (adjusted_labels(bare, {"严-1": 0.5}) == bare["label"]).all()
    assert inspector_effects(bare.assign(label=0), np.full(len(bare), 0.1)) == {}


def test_judging_counts_a_strict_inspectors_finding_for_less(models):
    _, adjusted, test = models
    y_adj = adjusted_labels(test, adjusted.inspector_effects)
    strict = test["inspectors"].map(lambda t: t[0].startswith("严")).to_numpy()
    found = test["label"].to_numpy() == 1
    assert (y_adj[strict & found] < 1).all() and (y_adj[~strict & found & (y_adj > 1)]).size
    fold = evaluate_fold(test, adjusted.predict(test), None, adjusted.inspector_effects)
    drawn = fold["populations"]["drawn"]["model"]
    assert drawn["precision_at_k_adjusted"] != pytest.approx(drawn["precision_at_k"])
    plain_fold = evaluate_fold(test, adjusted.predict(test), None)
    assert plain_fold["populations"]["drawn"]["model"]["precision_at_k_adjusted"] == (
        pytest.approx(plain_fold["populations"]["drawn"]["model"]["precision_at_k"])
    )
