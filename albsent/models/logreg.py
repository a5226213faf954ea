"""Logistic regression, two ways, one module.

`logreg` is an nn.Linear trained by albsent's torch loop (mini-batch Adam, L2 via
weight_decay, class weights, early stopping, per-epoch reports): it is the linear probe the
pretraining stage reuses, and it is the model behind `ssl:ALIAS:all` layer sums.
`sklearn_logreg` fits scikit-learn's LogisticRegression (lbfgs, exact convex optimum, no
learning rate to tune; albsent.train.estimators) and copies coef_/intercept_ into the same
nn.Linear, so it saves, loads and predicts like every other model.
"""

from __future__ import annotations

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


@register("sklearn_logreg", "pooled", "scikit-learn LogisticRegression (lbfgs), exported to a torch linear layer",
          sklearn=True)
def build_sklearn_logreg(input_dim: int, n_classes: int, **_) -> Linear:
    return Linear(input_dim, n_classes)
