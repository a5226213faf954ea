"""Logistic regression, two ways, one module.

`logreg` is an nn.Linear trained by albsent's torch loop (mini-batch Adam, L2 via
weight_decay, class weights, early stopping, per-epoch reports): it is the linear probe the
pretraining stage reuses, and it is the model behind `ssl:ALIAS:all` layer sums.
`sklearn_logreg` fits scikit-learn's LogisticRegression (lbfgs, exact convex optimum, no
learning rate to tune) and copies coef_/intercept_ into the same nn.Linear, so it saves,
loads and predicts like every other model; it is the plain baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from albsent.models.registry import register


class Linear(nn.Module):
    def __init__(self, input_dim: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(input_dim, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x)  # (batch, dim) -> (batch, n_classes)


@register("logreg", "pooled", "multinomial logistic regression in torch (linear layer, softmax cross-entropy)")
def build_logreg(input_dim: int, n_classes: int, **_) -> Linear:
    return Linear(input_dim, n_classes)


@register("sklearn_logreg", "pooled", "scikit-learn LogisticRegression (lbfgs), exported to a torch linear layer", sklearn=True)
def build_sklearn_logreg(input_dim: int, n_classes: int, **_) -> Linear:
    return Linear(input_dim, n_classes)


def fit_sklearn_logreg(model: Linear, X: np.ndarray, y: np.ndarray, n_classes: int, C: float, class_weighted: bool,
                       seed: int, max_iter: int = 2000) -> None:
    """Fit on X: (rows, dim), y: (rows,) int in [0, n_classes); write the weights into `model`."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, class_weight="balanced" if class_weighted else None, max_iter=max_iter, random_state=seed)
    clf.fit(X, y)
    W = np.zeros((n_classes, X.shape[1]), np.float32)
    b = np.full(n_classes, -1e4, np.float32)  # a class absent from training is never predicted
    if len(clf.classes_) == 2:  # binary: one decision function, p(class 1) = sigmoid(w.x + b)
        W[clf.classes_[1]], b[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
        b[clf.classes_[0]] = 0.0
    else:
        W[clf.classes_], b[clf.classes_] = clf.coef_, clf.intercept_
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(W))
        model.linear.bias.copy_(torch.from_numpy(b))
