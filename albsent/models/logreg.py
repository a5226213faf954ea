"""Logistic regression, two ways, one module.

`logreg` is an nn.Linear. On pooled features `fit()` solves it to scikit-learn's optimum (full-batch
L-BFGS on LogisticRegression's objective with the config's C and class weights;
albsent.train.estimators.fit_torch_logreg): the paper's linear baseline gives the same answer
whichever of the two is named. Behind `ssl:ALIAS:all` layer sums (not convex) and as the pretraining
stage's linear probe it is trained by albsent's torch loop (mini-batch Adam, L2 via weight_decay,
class weights, early stopping).
`sklearn_logreg` fits scikit-learn's LogisticRegression (lbfgs, exact convex optimum, no
learning rate to tune; albsent.train.estimators) and copies coef_/intercept_ into the same
nn.Linear, so it saves, loads and predicts like every other model.
"""

from __future__ import annotations

import torch
from torch import nn

from albsent.models.registry import MODELS


class Linear(nn.Module):
    def __init__(self, input_dim: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(input_dim, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x)  # (batch, dim) -> (batch, n_classes)


@MODELS.register("logreg", input_kind="pooled",
                 description="multinomial logistic regression in torch (linear layer, softmax cross-entropy)")
def build_logreg(input_dim: int, n_classes: int, **_) -> Linear:
    return Linear(input_dim, n_classes)


@MODELS.register("sklearn_logreg", input_kind="pooled",
                 description="scikit-learn LogisticRegression (lbfgs), exported to a torch linear layer",
                 fitter="albsent.train.estimators:fit_logreg")
def build_sklearn_logreg(input_dim: int, n_classes: int, **_) -> Linear:
    return Linear(input_dim, n_classes)
