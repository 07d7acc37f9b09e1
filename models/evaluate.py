"""Targeting metrics, fairness gaps, baselines and the backtest report (Markdown, JSON, PNG).

Precision at k is judged at the C+D budget: k = 20 % of the population judged (DOMAIN.md
tiers). The random draw's hit rate is its expectation, the population's base rate.

Unbiased judging. The headline population is the random draws (``drawn``), and the plans draw
tier strata at different ratios (D 50 %, A 2 %), so a drawn enterprise stands for 1 /
(its stratum's inclusion probability) enterprises (``draw_weight`` from the labels; 1 for
historical draws without a recorded plan). Every figure on ``drawn`` is weighted
(Horvitz-Thompson): the base rate is sum(w y) / sum(w); the top k is the highest-scored rows
until their weight reaches 20 % of the population's; precision, recall and lift follow from the
weighted sums; AUC and Brier take the weights as sample weights; the reliability curve is
weighted per bin; the fairness gaps are computed on the random draws, weighted. Unweighted, a
sample that over-represents D would overstate the base rate and understate lift. The same
figures unweighted are kept as ``drawn_unweighted`` for comparison; ``inspected`` (biased by
past targeting) and ``all`` are unweighted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from models.inspectors import adjusted_labels
from warehouse.contracts.metrics import HEADLINE, POPULATIONS
from warehouse.contracts.tier_policy import load_policy

BUDGET_SHARE = load_policy().budget_share  # C + D tiers of the reviewed tier policy
MIN_GROUP = 30  # smallest group that enters a fairness gap


def rules_score(df: pd.DataFrame) -> np.ndarray:
    """The rules-only baseline a regulator would write by hand: penalties, lists, late reports."""
    return (
        2.0 * df["penalties_2y"].to_numpy()
        + 3.0 * df["on_serious_list"].to_numpy()
        + 2.0 * df["on_abnormal_list"].to_numpy()
        + 1.0 * (df["reports_late_3y"] + df["reports_missing_3y"]).to_numpy()
    )


def top_k(score: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Boolean mask of the ``k`` highest scores; ties broken by a seeded random order."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(score)), -np.nan_to_num(score, nan=-np.inf)))
    mask = np.zeros(len(score), bool)
    mask[order[:k]] = True
    return mask


def top_share(
    score: np.ndarray, weight: np.ndarray | None, share: float = BUDGET_SHARE, seed: int = 0
) -> np.ndarray:
    """Boolean mask of the highest scores (ties by a seeded random order) whose weight before
    them is under ``share`` of the total: the top ``share`` of the population the weighted
    sample stands for. With unit weights this is :func:`top_k` with k = :func:`budget`."""
    n = len(score)
    w = np.ones(n) if weight is None else np.asarray(weight, float)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), -np.nan_to_num(score, nan=-np.inf)))
    before = np.concatenate([[0.0], np.cumsum(w[order])[:-1]])
    mask = np.zeros(n, bool)
    mask[order[before < share * w.sum() - 1e-12]] = True
    return mask


def budget(n: int, share: float = BUDGET_SHARE) -> int:
    """k for a population of ``n``: the C+D share, at least one."""
    return max(1, int(math.ceil(share * n)))


def _wmean(v: np.ndarray, w: np.ndarray) -> float:
    return float((v * w).sum() / w.sum()) if w.sum() > 0 else float("nan")


def targeting(
    y: np.ndarray,
    score: np.ndarray,
    share: float = BUDGET_SHARE,
    weight: np.ndarray | None = None,
    adjusted: np.ndarray | None = None,
) -> dict[str, float]:
    """AUC, precision / recall / lift at the top ``share`` of the population, weighted by
    ``weight`` (each row standing for that many enterprises; None: one each), and the
    precision on the inspector-adjusted outcomes ``adjusted`` (models/inspectors.py; None:
    the outcomes as recorded)."""
    n = len(y)
    w = np.ones(n) if weight is None else np.asarray(weight, float)
    hits = int(y.sum())
    sel = top_share(score, w, share)
    prec = _wmean(y[sel], w[sel]) if n else float("nan")
    adj = y if adjusted is None else adjusted
    base = _wmean(y, w) if n else float("nan")
    found = float((w * y).sum())
    auc = (
        float(roc_auc_score(y, np.nan_to_num(score), sample_weight=w))
        if 0 < hits < n
        else float("nan")
    )
    return {
        "n": n,
        "k": int(sel.sum()),
        "population": float(w.sum()),
        "positives": hits,
        "base_rate": base,
        "precision_at_k": prec,
        "precision_at_k_adjusted": _wmean(adj[sel], w[sel]) if n else float("nan"),
        "recall_at_k": float((w * y)[sel].sum() / found) if found else float("nan"),
        "lift": prec / base if base else float("nan"),
        "auc": auc,
    }


def reliability(
    y: np.ndarray, p: np.ndarray, bins: int = 10, weight: np.ndarray | None = None
) -> list[dict[str, float]]:
    """Mean predicted vs observed rate per predicted-probability decile (weighted means)."""
    if len(y) == 0:
        return []
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
    q = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    if len(q) == 1:  # one predicted value: a single bin
        q = np.array([q[0], q[0]])
    idx = np.clip(np.searchsorted(q, p, side="right") - 1, 0, len(q) - 2)
    out = []
    for b in range(len(q) - 1):
        m = idx == b
        if m.any():
            out.append(
                {
                    "predicted": _wmean(p[m], w[m]),
                    "observed": _wmean(y[m], w[m]),
                    "n": int(m.sum()),
                }
            )
    return out


def brier(y: np.ndarray, p: np.ndarray, weight: np.ndarray | None = None) -> float:
    """(Weighted) Brier score; NaN on an empty sample."""
    if len(y) == 0:
        return float("nan")
    return float(brier_score_loss(y, p, sample_weight=weight))


def fairness_gaps(
    df: pd.DataFrame,
    y: np.ndarray,
    score: np.ndarray,
    by: str,
    share: float = BUDGET_SHARE,
    weight: np.ndarray | None = None,
) -> dict[str, Any]:
    """Hit rate among the selected and false-positive rate per group (weighted); gap = max -
    min over groups with at least ``MIN_GROUP`` members (and ``MIN_GROUP`` / 5 selected for
    hit rate)."""
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
    sel = top_share(score, w, share)
    groups, hit, fpr = {}, [], []
    for g, idx in df.groupby(by, sort=True).indices.items():
        if len(idx) < MIN_GROUP:
            continue
        s, t, wg = sel[idx], y[idx], w[idx]
        neg = wg[t == 0].sum()
        row = {
            "n": int(len(idx)),
            "selected": int(s.sum()),
            "hit_rate": _wmean(t[s], wg[s]) if s.sum() else None,
            "fpr": float(wg[s & (t == 0)].sum() / neg) if neg else None,
        }
        groups[str(g)] = row
        if s.sum() >= MIN_GROUP // 5 and row["hit_rate"] is not None:
            hit.append(row["hit_rate"])
        if row["fpr"] is not None:
            fpr.append(row["fpr"])
    return {
        "hit_rate_gap": float(max(hit) - min(hit)) if len(hit) > 1 else 0.0,
        "fpr_gap": float(max(fpr) - min(fpr)) if len(fpr) > 1 else 0.0,
        "groups": groups,
    }


def curve(
    y: np.ndarray, score: np.ndarray, shares: Sequence[float], weight: np.ndarray | None = None
) -> list[float]:
    """Precision at each share of the population (weighted)."""
    if not len(y):
        return [0.0 for _ in shares]
    w = np.ones(len(y)) if weight is None else np.asarray(weight, float)
    out = []
    for s in shares:
        sel = top_share(score, w, s)
        out.append(_wmean(y[sel], w[sel]))
    return out


def draw_weights(test: pd.DataFrame) -> np.ndarray:
    """Each row's weight on the random-draw population: ``draw_weight`` (1 / inclusion
    probability of its stratum), 1 where none is recorded."""
    if "draw_weight" not in test:
        return np.ones(len(test))
    return pd.to_numeric(test["draw_weight"], errors="coerce").fillna(1.0).to_numpy(float)


def evaluate_fold(
    test: pd.DataFrame,
    prob: np.ndarray,
    oracle: np.ndarray | None,
    inspector_effects: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Every metric of one backtest fold: per population, model vs rules vs random vs oracle;
    calibration and fairness gaps of the model on the random draws, weighted (and the Brier
    score on the inspected beside it). Precision at k is also given on the outcomes adjusted
    for ``inspector_effects`` (``precision_at_k_adjusted``; equal to the plain one without)."""
    rules = rules_score(test)
    y_adj = adjusted_labels(test, inspector_effects or {})
    out: dict[str, Any] = {"populations": {}}
    drawn = test["drawn"].to_numpy() == 1
    masks = {
        "drawn": drawn,
        "drawn_unweighted": drawn,
        "inspected": test["inspected"].to_numpy() == 1,
        "all": np.ones(len(test), bool),
    }
    weights = draw_weights(test)
    shares = [i / 100 for i in range(1, 101)]
    for name, m in masks.items():
        y, a = test["label"].to_numpy()[m], y_adj[m]
        w = weights[m] if name == "drawn" else None
        pop: dict[str, Any] = {
            "model": targeting(y, prob[m], weight=w, adjusted=a),
            "rules": targeting(y, rules[m], weight=w, adjusted=a),
        }
        unit = np.ones(len(y)) if w is None else w
        base = _wmean(y, unit) if len(y) else float("nan")
        pop["random"] = {
            "n": int(len(y)),
            "k": pop["model"]["k"],
            "population": pop["model"]["population"],
            "precision_at_k": base,
            "precision_at_k_adjusted": _wmean(a, unit) if len(y) else float("nan"),
            "recall_at_k": BUDGET_SHARE,
            "lift": 1.0,
            "auc": 0.5,
        }
        curves = {
            "model": curve(y, prob[m], shares, w),
            "rules": curve(y, rules[m], shares, w),
        }
        if oracle is not None:
            o = np.nan_to_num(oracle[m], nan=-1.0)
            pop["oracle"] = targeting(y, o, weight=w, adjusted=a)
            curves["oracle"] = curve(y, o, shares, w)
            pop["model_to_oracle"] = (
                pop["model"]["precision_at_k"] / pop["oracle"]["precision_at_k"]
                if pop["oracle"]["precision_at_k"]
                else float("nan")
            )
        pop["curves"] = curves
        out["populations"][name] = pop
    y_all = test["label"].to_numpy()
    ins = masks["inspected"]
    out["brier_inspected"] = brier(y_all[ins], prob[ins])
    out["brier"] = brier(y_all[drawn], prob[drawn], weights[drawn])
    out["reliability"] = reliability(y_all[drawn], prob[drawn], weight=weights[drawn])
    sub = test[drawn].reset_index(drop=True)
    out["fairness"] = {
        by: fairness_gaps(sub, y_all[drawn], prob[drawn], by, weight=weights[drawn])
        for by in ("region_code", "size_band")
    }
    out["weights"] = {
        "drawn": int(drawn.sum()),
        "with_plan_ratio": int((drawn & (weights != 1.0)).sum()),
        "population": float(weights[drawn].sum()),
    }
    return out


def summarise(folds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means over folds of the numbers the promotion gate and the closing note use."""

    def mean(get) -> float:
        vals = [get(f) for f in folds.values()]
        vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
        return float(np.mean(vals)) if vals else float("nan")

    out: dict[str, Any] = {}
    for pop in POPULATIONS:
        for who in ("model", "rules", "random", "oracle"):
            for m in ("precision_at_k", "precision_at_k_adjusted", "lift", "recall_at_k", "auc"):
                out[f"{pop}.{who}.{m}"] = mean(
                    lambda f, p=pop, w=who, m=m: f["populations"][p].get(w, {}).get(m)
                )
        out[f"{pop}.model_to_oracle"] = mean(
            lambda f, p=pop: f["populations"][p].get("model_to_oracle")
        )
    out["brier"] = mean(lambda f: f["brier"])
    out["brier_inspected"] = mean(lambda f: f.get("brier_inspected"))
    for by in ("region_code", "size_band"):
        for g in ("hit_rate_gap", "fpr_gap"):
            out[f"fairness.{by}.{g}"] = mean(lambda f, b=by, g=g: f["fairness"][b][g])
    out["beats_random_every_fold"] = all(
        f["populations"][HEADLINE]["model"]["precision_at_k"]
        > f["populations"][HEADLINE]["random"]["precision_at_k"]
        for f in folds.values()
    )
    out["beats_baselines_every_fold"] = all(
        f["populations"][HEADLINE]["model"]["precision_at_k"]
        > max(
            f["populations"][HEADLINE]["rules"]["precision_at_k"],
            f["populations"][HEADLINE]["random"]["precision_at_k"],
        )
        for f in folds.values()
    )
    return out


def backtest_table(metrics: dict[str, Any], population: str = HEADLINE) -> pd.DataFrame:
    """One row per fold (and the mean): precision at the C+D budget of model, rules, random
    and oracle, the model's lift over random and its ratio to the oracle."""
    rows = []
    for fold, f in metrics["folds"].items():
        p = f["populations"][population]
        rows.append(
            {
                "fold (as-of)": fold,
                "n judged": p["model"]["n"],
                "k": p["model"]["k"],
                "model": p["model"]["precision_at_k"],
                "rules": p["rules"]["precision_at_k"],
                "random": p["random"]["precision_at_k"],
                "oracle": p.get("oracle", {}).get("precision_at_k", float("nan")),
                "lift": p["model"]["lift"],
                "rules lift": p["rules"]["lift"],
                "model/oracle": p.get("model_to_oracle", float("nan")),
                "AUC": p["model"]["auc"],
            }
        )
    df = pd.DataFrame(rows)
    if len(df):
        mean = df.drop(columns=["fold (as-of)"]).mean(numeric_only=True)
        df = pd.concat([df, pd.DataFrame([{"fold (as-of)": "mean", **mean.to_dict()}])])
    return df.reset_index(drop=True)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                cells.append(
                    "" if math.isnan(v) else (f"{v:.0f}" if c in ("n judged", "k") else f"{v:.3f}")
                )
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(metrics: dict[str, Any], population: str = HEADLINE) -> bytes:
    """Precision-at-k curves per fold (model, rules, oracle, random) and the reliability curve,
    as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = metrics["folds"]
    fig, axes = plt.subplots(
        2, max(1, len(folds)), figsize=(4.5 * max(1, len(folds)), 8), squeeze=False
    )
    shares = np.arange(1, 101)
    for j, (name, f) in enumerate(folds.items()):
        ax = axes[0][j]
        p = f["populations"][population]
        for who, style in (("oracle", ":"), ("model", "-"), ("rules", "--")):
            if who in p["curves"]:
                ax.plot(shares, p["curves"][who], style, label=who)
        ax.axhline(p["random"]["precision_at_k"], color="grey", lw=1, label="random")
        ax.axvline(BUDGET_SHARE * 100, color="red", lw=0.8, alpha=0.5)
        ax.set_title(f"as-of {name}: precision at top k% ({population})", fontsize=9)
        ax.set_xlabel("k (% of population inspected)")
        ax.set_ylabel("hit rate")
        ax.legend(fontsize=8)
        ax = axes[1][j]
        rel = f["reliability"]
        if rel:
            pred = [r["predicted"] for r in rel]
            ax.plot(pred, [r["observed"] for r in rel], "o-", label="model")
            top = max(max(pred), max(r["observed"] for r in rel))
            ax.plot([0, top], [0, top], color="grey", lw=1, label="perfect")
        ax.set_title(f"reliability (random draws, weighted), Brier {f['brier']:.3f}", fontsize=9)
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed rate")
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, dpi=90, format="png")
    plt.close(fig)
    return png.getvalue()


def report_files(metrics: dict[str, Any], title: str) -> dict[str, bytes]:
    """The backtest report as files: ``metrics.json``, ``report.md`` and ``lift.png``."""
    s = metrics["summary"]
    lines = [f"# {title}", ""]
    for pop in POPULATIONS:
        lines += [
            f"## Backtest, population `{pop}` (k = {BUDGET_SHARE:.0%} of it)",
            "",
            _md_table(backtest_table(metrics, pop)),
            "",
        ]
    lines += [
        "## Calibration and fairness (random draws, weighted by 1 / inclusion probability)",
        "",
        "| fold | Brier | hit-rate gap region | FPR gap region | hit-rate gap size | "
        "FPR gap size |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in metrics["folds"].items():
        fr, fs = f["fairness"]["region_code"], f["fairness"]["size_band"]
        lines.append(
            f"| {name} | {f['brier']:.4f} | {fr['hit_rate_gap']:.3f} | {fr['fpr_gap']:.3f} | "
            f"{fs['hit_rate_gap']:.3f} | {fs['fpr_gap']:.3f} |"
        )
    lines += [
        "",
        f"Overall: lift over random {s[f'{HEADLINE}.model.lift']:.2f}x, "
        f"model / oracle hit rate {s[f'{HEADLINE}.model_to_oracle']:.1%}, "
        f"beats rules and random on every fold: {s['beats_baselines_every_fold']}.",
        "",
        "![precision at k](lift.png)",
        "",
    ]
    return {
        "metrics.json": json.dumps(metrics, indent=1, default=str).encode("utf-8"),
        "report.md": "\n".join(lines).encode("utf-8"),
        "lift.png": plot(metrics),
    }
