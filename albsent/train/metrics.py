"""Classification metrics: scikit-learn's, gathered into one dict per evaluation.
Conventions are scikit-learn's: zero_division=0, balanced accuracy is the mean recall over
classes present in y_true, macro averages run over all `labels`."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


def compute_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> dict:
    """accuracy, macro_f1, balanced_accuracy, per_class {label: precision, recall, f1, support},
    confusion_matrix (list of rows; rows = true label, columns = predicted, in `labels` order), labels, n."""
    labels = list(labels)
    y_true, y_pred = list(y_true), list(y_pred)
    n = len(y_true)
    if not n:
        zeros = {lab: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for lab in labels}
        return {"accuracy": 0.0, "macro_f1": 0.0, "balanced_accuracy": 0.0, "per_class": zeros,
                "confusion_matrix": np.zeros((len(labels), len(labels)), np.int64).tolist(), "labels": labels, "n": 0}
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = support > 0
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(f)) if labels else 0.0,
        "balanced_accuracy": float(np.mean(r[present])) if present.any() else 0.0,
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, lab in enumerate(labels)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": labels,
        "n": n,
    }


SUMMARY_KEYS = ("accuracy", "macro_f1", "balanced_accuracy")


def aggregate(per_fold: list[dict]) -> dict:
    """Mean and sample std (ddof=1) over folds of the summary metrics and per-class scores;
    the confusion matrix is the sum over folds."""
    labels = per_fold[0]["labels"]

    def std(v) -> float:
        return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

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
