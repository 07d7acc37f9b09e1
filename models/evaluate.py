"""Targeting metrics, fairness gaps, baselines and the backtest report (Markdown, JSON, PNG).

Precision at k is judged at the C+D budget: k = 20 % of the population judged (DOMAIN.md
tiers). The random draw's hit rate is its expectation, the population's base rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

BUDGET_SHARE = 0.20  # C + D tiers
MIN_GROUP = 30  # smallest group that enters a fairness gap
POPULATIONS = ("drawn", "inspected", "all")
HEADLINE = "drawn"  # the unbiased population: random-draw inspections


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


def budget(n: int, share: float = BUDGET_SHARE) -> int:
    """k for a population of ``n``: the C+D share, at least one."""
    return max(1, int(math.ceil(share * n)))


def targeting(y: np.ndarray, score: np.ndarray, share: float = BUDGET_SHARE) -> dict[str, float]:
    """AUC, precision / recall / lift at k = ``share`` of the population."""
    n, hits = len(y), int(y.sum())
    k = budget(n, share)
    sel = top_k(score, k)
    prec = float(y[sel].mean()) if n else float("nan")
    base = float(y.mean()) if n else float("nan")
    auc = float(roc_auc_score(y, np.nan_to_num(score))) if 0 < hits < n else float("nan")
    return {
        "n": n,
        "k": k,
        "positives": hits,
        "base_rate": base,
        "precision_at_k": prec,
        "recall_at_k": float(y[sel].sum() / hits) if hits else float("nan"),
        "lift": prec / base if base else float("nan"),
        "auc": auc,
    }


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed rate per predicted-probability decile."""
    if len(y) == 0:
        return []
    q = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(q, p, side="right") - 1, 0, len(q) - 2)
    out = []
    for b in range(len(q) - 1):
        m = idx == b
        if m.any():
            out.append(
                {"predicted": float(p[m].mean()), "observed": float(y[m].mean()), "n": int(m.sum())}
            )
    return out


def fairness_gaps(
    df: pd.DataFrame, y: np.ndarray, score: np.ndarray, by: str, share: float = BUDGET_SHARE
) -> dict[str, Any]:
    """Hit rate among the selected and false-positive rate per group; gap = max - min over
    groups with at least ``MIN_GROUP`` members (and ``MIN_GROUP`` / 5 selected for hit rate)."""
    sel = top_k(score, budget(len(y), share))
    groups, hit, fpr = {}, [], []
    for g, idx in df.groupby(by, sort=True).indices.items():
        if len(idx) < MIN_GROUP:
            continue
        s, t = sel[idx], y[idx]
        neg = (t == 0).sum()
        row = {
            "n": int(len(idx)),
            "selected": int(s.sum()),
            "hit_rate": float(t[s].mean()) if s.sum() else None,
            "fpr": float((s & (t == 0)).sum() / neg) if neg else None,
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


def curve(y: np.ndarray, score: np.ndarray, shares: Sequence[float]) -> list[float]:
    """Precision at each share of the population."""
    return [float(y[top_k(score, budget(len(y), s))].mean()) if len(y) else 0.0 for s in shares]


def evaluate_fold(
    test: pd.DataFrame, prob: np.ndarray, oracle: np.ndarray | None
) -> dict[str, Any]:
    """Every metric of one backtest fold: per population, model vs rules vs random vs oracle,
    plus calibration and fairness gaps of the model (on the inspected population)."""
    rules = rules_score(test)
    out: dict[str, Any] = {"populations": {}}
    masks = {
        "drawn": test["drawn"].to_numpy() == 1,
        "inspected": test["inspected"].to_numpy() == 1,
        "all": np.ones(len(test), bool),
    }
    shares = [i / 100 for i in range(1, 101)]
    for name, m in masks.items():
        y = test["label"].to_numpy()[m]
        pop: dict[str, Any] = {
            "model": targeting(y, prob[m]),
            "rules": targeting(y, rules[m]),
        }
        base = float(y.mean()) if len(y) else float("nan")
        pop["random"] = {
            "n": int(len(y)),
            "k": budget(len(y)),
            "precision_at_k": base,
            "recall_at_k": BUDGET_SHARE,
            "lift": 1.0,
            "auc": 0.5,
        }
        curves = {"model": curve(y, prob[m], shares), "rules": curve(y, rules[m], shares)}
        if oracle is not None:
            o = oracle[m]
            pop["oracle"] = targeting(y, np.nan_to_num(o, nan=-1.0))
            curves["oracle"] = curve(y, np.nan_to_num(o, nan=-1.0), shares)
            pop["model_to_oracle"] = (
                pop["model"]["precision_at_k"] / pop["oracle"]["precision_at_k"]
                if pop["oracle"]["precision_at_k"]
                else float("nan")
            )
        pop["curves"] = curves
        out["populations"][name] = pop
    ins = masks["inspected"]
    y_ins = test["label"].to_numpy()[ins]
    out["brier"] = float(brier_score_loss(y_ins, prob[ins])) if ins.any() else float("nan")
    out["reliability"] = reliability(y_ins, prob[ins])
    sub = test[ins].reset_index(drop=True)
    out["fairness"] = {
        by: fairness_gaps(sub, y_ins, prob[ins], by) for by in ("region_code", "size_band")
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
            for m in ("precision_at_k", "lift", "recall_at_k", "auc"):
                out[f"{pop}.{who}.{m}"] = mean(
                    lambda f, p=pop, w=who, m=m: f["populations"][p].get(w, {}).get(m)
                )
        out[f"{pop}.model_to_oracle"] = mean(
            lambda f, p=pop: f["populations"][p].get("model_to_oracle")
        )
    out["brier"] = mean(lambda f: f["brier"])
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
        ax.set_title(f"reliability (inspected), Brier {f['brier']:.3f}", fontsize=9)
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
        "## Calibration and fairness (inspected population)",
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
