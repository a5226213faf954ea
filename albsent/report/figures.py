"""Figures of a run for the HTML report, returned as PNG bytes (matplotlib Agg through
albsent.runtime.pyplot): per-class F1 bars, the spread of metrics over folds, and the automatic
selection's candidates scored on each outer fold's inner folds."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

FOLD_METRICS = {"macro_f1": "macro-F1", "accuracy": "accuracy", "balanced_accuracy": "balanced acc."}


def png(fig) -> bytes:
    """A figure as PNG bytes; the figure is closed."""
    from albsent.runtime import pyplot

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    pyplot().close(fig)
    return buf.getvalue()


def f1_bars(metrics: dict) -> bytes:
    """F1 per class (mean over folds with ± std where cross-validated; pooled F1 as a dot)."""
    from albsent.runtime import pyplot

    labels = metrics["labels"]
    pc, pooled = metrics["per_class"], (metrics.get("pooled") or {}).get("per_class", {})
    f1 = [pc[lab]["f1"] for lab in labels]
    std = [pc[lab].get("f1_std", 0.0) for lab in labels]
    fig, ax = pyplot().subplots(figsize=(1.1 * len(labels) + 2.6, 3.2))
    x = np.arange(len(labels))
    ax.bar(x, f1, yerr=std if any(std) else None, capsize=4, color="tab:blue", alpha=0.8,
           label="mean ± std over folds" if metrics.get("folds") else "F1")
    if pooled:
        ax.plot(x, [pooled[lab]["f1"] for lab in labels], "o", color="tab:red", label="pooled")
    ax.set_xticks(x, labels, rotation=30 if max(len(lab) for lab in labels) > 8 else 0, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("F1")
    ax.set_title("F1 per class")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    fig.tight_layout()
    return png(fig)


def fold_spread(per_fold: list[dict]) -> bytes:
    """One column of points per metric (one point per fold) with its mean as a bar."""
    from albsent.runtime import pyplot

    fig, ax = pyplot().subplots(figsize=(5, 3.2))
    for i, (key, name) in enumerate(FOLD_METRICS.items()):
        values = np.array([f[key] for f in per_fold if f.get(key) is not None], dtype=float)
        ax.plot(i + np.linspace(-0.12, 0.12, len(values)), values, "o", color="tab:blue", alpha=0.8)
        if len(values):
            ax.plot([i - 0.25, i + 0.25], [values.mean()] * 2, color="tab:red")
    ax.set_xticks(range(len(FOLD_METRICS)), list(FOLD_METRICS.values()))
    ax.set_ylim(0, 1.05)
    ax.set_title(f"per fold ({len(per_fold)} folds; red: mean)")
    fig.tight_layout()
    return png(fig)


def selection_scores(selection: pd.DataFrame) -> bytes:
    """selection.csv (unit, recipe, inner_macro_f1, weight): every candidate's inner macro-F1 per
    unit (outer fold, or `all` for the final model) in grey, chosen ones coloured by weight."""
    from albsent.runtime import pyplot

    units = list(dict.fromkeys(selection["unit"].astype(str)))
    fig, ax = pyplot().subplots(figsize=(1.1 * len(units) + 3, 3.6))
    rng = np.random.default_rng(0)
    chosen = None
    for i, unit in enumerate(units):
        s = selection[selection["unit"].astype(str) == unit]
        jitter = rng.uniform(-0.25, 0.25, len(s))
        y = pd.to_numeric(s["inner_macro_f1"], errors="coerce")
        w = pd.to_numeric(s["weight"], errors="coerce").fillna(0)
        ax.plot(i + jitter[w <= 0], y[w <= 0], ".", color="lightgrey")
        chosen = ax.scatter(i + jitter[w > 0], y[w > 0], c=w[w > 0], cmap="viridis", s=18 + 300 * w[w > 0],
                            vmin=0, vmax=max(float(selection["weight"].max()), 1e-9), edgecolors="black",
                            linewidths=0.4)
    if chosen is not None:
        fig.colorbar(chosen, ax=ax, label="ensemble weight")
    ax.set_xticks(range(len(units)), [f"fold {u}" if u.isdigit() else u for u in units])
    ax.set_ylabel("inner pooled macro-F1")
    ax.set_title(f"{selection['recipe'].nunique()} candidates per fold (grey: not chosen)")
    fig.tight_layout()
    return png(fig)
