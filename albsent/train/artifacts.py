"""What a run folder holds besides the model: metrics.json, predictions.csv, config.yaml,
confusion_matrix.png and loss_curve.png (train vs validation loss, the paper's Fig 10).
Plots use matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np


def _plt():
    from albsent.runtime import pyplot

    return pyplot()


def plot_confusion(cm, labels: list[str], path: str | Path, title: str = "") -> None:
    """Counts in each cell; colour = share of the true class (row-normalised)."""
    plt = _plt()
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


def plot_loss(histories: list[list[dict]], path: str | Path, title: str = "") -> None:
    """Train (solid) vs validation (dashed) loss per epoch; one pair of lines per fold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, hist in enumerate(histories):
        epochs = [r["epoch"] for r in hist]
        suffix = " (one line per fold)" if len(histories) > 1 else ""
        alpha = 1.0 if len(histories) == 1 else 0.6
        ax.plot(epochs, [r["train_loss"] for r in hist], color="tab:blue", alpha=alpha,
                label="train" + suffix if k == 0 or not suffix else None)
        if any("val_loss" in r for r in hist):
            ax.plot(epochs, [r.get("val_loss", np.nan) for r in hist], "--", color="tab:orange", alpha=alpha,
                    label="validation" + suffix if k == 0 or not suffix else None)
            best = hist[-1].get("best_epoch")
            if best:
                ax.axvline(best, color="grey", lw=0.6, alpha=alpha)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title or "train vs validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
