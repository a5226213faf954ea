"""compute_metrics / aggregate against scikit-learn on known and random predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from albsent.train.metrics import aggregate, compute_metrics

LABELS = ["negative", "neutral", "positive"]


def _check(y_true, y_pred, labels):
    m = compute_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, lab in enumerate(labels):
        assert m["per_class"][lab] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert m["labels"] == labels and m["n"] == len(y_true)
    return m


def test_known_predictions():
    y_true = ["negative"] * 4 + ["neutral"] * 3 + ["positive"] * 3
    y_pred = ["negative", "negative", "negative", "neutral", "neutral", "neutral", "negative", "positive", "negative",
              "negative"]
    m = _check(y_true, y_pred, LABELS)
    assert m["accuracy"] == pytest.approx(0.6)
    # recalls 3/4, 2/3, 1/3 -> balanced accuracy 7/12
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))


@pytest.mark.parametrize("seed", range(5))
def test_random_predictions_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = list(rng.choice(LABELS, 40, p=[0.7, 0.2, 0.1]))
    y_pred = list(rng.choice(LABELS, 40))
    m = _check(y_true, y_pred, LABELS)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))


def test_class_never_predicted_or_absent():
    # 'positive' never predicted (precision 0 by zero_division) and absent from y_true
    y_true = ["negative", "negative", "neutral"]
    y_pred = ["negative", "neutral", "neutral"]
    m = _check(y_true, y_pred, LABELS)
    assert m["per_class"]["positive"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["balanced_accuracy"] == pytest.approx(0.75)  # mean recall over classes present in y_true


def test_aggregate_mean_std_and_summed_confusion():
    a = compute_metrics(["negative", "neutral"], ["negative", "neutral"], LABELS)
    b = compute_metrics(["negative", "neutral"], ["neutral", "neutral"], LABELS)
    agg = aggregate([a, b])
    assert agg["accuracy"] == pytest.approx(0.75)
    assert agg["accuracy_std"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert agg["confusion_matrix"] == (np.array(a["confusion_matrix"]) + np.array(b["confusion_matrix"])).tolist()
    assert agg["folds"] == 2 and len(agg["per_fold"]) == 2
    assert agg["per_class"]["neutral"]["support"] == 2
