"""What a run folder holds besides the model: metrics.json, predictions.csv, config.yaml,
confusion_matrix.png and loss_curve.png (train vs validation loss, the paper's Fig 10; also a
pretraining run's, per iteration with its baselines). Plots use matplotlib's Agg backend
(albsent.runtime.pyplot: no display needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from albsent.runtime import pyplot

BASELINE_STYLES = [(":", "grey"), ("-.", "black"), (":", "tab:green")]  # plot_loss's reference lines, in order


def plot_confusion(cm, labels: list[str], path: str | Path, title: str = "") -> None:
    """Counts in each cell; colour = share of the true class (row-normalised)."""
    plt = pyplot()
    cm = np.asarray(cm)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.1 * len(labels) + 2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]}\n{share[i, j]:.0%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_loss(histories: list[list[dict]], path: str | Path, title: str = "", *, x: str = "epoch",
              xlabel: str = "", ylabel: str = "cross-entropy loss", baselines: dict[str, str] | None = None) -> None:
    """Train (solid) vs validation (dashed) loss against history key `x`; one pair of lines per
    fold. Validation is drawn where a row has a finite `val_loss`, a vertical line marks a row's
    `best_epoch`, and `baselines` ({history key: legend label}, e.g. pretraining's
    predict-the-mean loss) are drawn from the first history. No rows: no file."""
    if not any(histories):
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    suffix = " (one line per fold)" if len(histories) > 1 else ""
    alpha = 1.0 if len(histories) == 1 else 0.6
    for k, hist in enumerate(histories):
        steps = [r[x] for r in hist]
        first = k == 0 or not suffix
        ax.plot(steps, [r["train_loss"] for r in hist], color="tab:blue", alpha=alpha,
                label="train" + suffix if first else None)
        val = [_value(r.get("val_loss")) for r in hist]
        if np.isfinite(val).any():
            ax.plot(steps, val, "--", color="tab:orange", alpha=alpha, label="validation" + suffix if first else None)
            best = hist[-1].get("best_epoch")
            if best:
                ax.axvline(best, color="grey", lw=0.6, alpha=alpha)
    for i, (key, label) in enumerate((baselines or {}).items()):
        values = [_value(r.get(key)) for r in histories[0]]
        if np.isfinite(values).any():
            style, color = BASELINE_STYLES[i % len(BASELINE_STYLES)]
            ax.plot([r[x] for r in histories[0]], values, style, color=color, label=label)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "train vs validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _value(v) -> float:
    """A history value as a float (None, e.g. NaN read back from JSON, -> NaN)."""
    return float("nan") if v is None else float(v)


def write_json(obj, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=1, sort_keys=False, default=float))


def write_predictions(rows: list[dict], labels: list[str], path: str | Path) -> None:
    """One line per test row: id, utterance_id, group, fold, label, pred, p_<label>..."""
    cols = ["id", "utterance_id", "group", "fold", "label", "pred"] + [f"p_{lab}" for lab in labels]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
