"""Classification metrics from a confusion matrix (numpy only; tests check them against
scikit-learn). Conventions follow scikit-learn: zero_division=0, balanced accuracy is the mean
recall over classes present in y_true, macro averages run over all `labels`."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> np.ndarray:
    """(classes, classes) counts; rows = true label, columns = predicted label, in `labels` order."""
    index = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    return cm


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def compute_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> dict:
    """accuracy, macro_f1, balanced_accuracy, per_class {label: precision, recall, f1, support},
    confusion_matrix (list of rows), labels, n."""
    labels = list(labels)
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    precision, recall = _div(tp, predicted), _div(tp, support)
    f1 = _div(2 * precision * recall, precision + recall)
    n = int(cm.sum())
    present = support > 0
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1.mean()) if labels else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            lab: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, lab in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
        "labels": labels,
        "n": n,
    }


SUMMARY_KEYS = ("accuracy", "macro_f1", "balanced_accuracy")


def aggregate(per_fold: list[dict]) -> dict:
    """Mean and sample std (ddof=1) over folds of the summary metrics and per-class scores;
    the confusion matrix is the sum over folds."""
    labels = per_fold[0]["labels"]
    std = (lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
    out: dict = {}
    for key in SUMMARY_KEYS:
        values = [m[key] for m in per_fold]
        out[key], out[f"{key}_std"] = float(np.mean(values)), std(values)
    out["per_class"] = {}
    for lab in labels:
        row = {}
        for key in ("precision", "recall", "f1"):
            values = [m["per_class"][lab][key] for m in per_fold]
            row[key], row[f"{key}_std"] = float(np.mean(values)), std(values)
        row["support"] = int(sum(m["per_class"][lab]["support"] for m in per_fold))
        out["per_class"][lab] = row
    out["confusion_matrix"] = np.sum([m["confusion_matrix"] for m in per_fold], axis=0).tolist()
    out["labels"] = labels
    out["n"] = int(sum(m["n"] for m in per_fold))
    out["folds"] = len(per_fold)
    out["per_fold"] = per_fold
    return out
