"""Support vector machines as torch modules, so they save, load and predict like every model.

`svm_rbf` is scikit-learn's SVC (libsvm, RBF kernel, one-vs-one) exported exactly: the support
vectors, dual coefficients and intercepts become buffers, and `forward` computes libsvm's
pairwise decision values and scikit-learn's one-vs-rest transform of them (votes plus a
bounded confidence, `SVC.decision_function` with decision_function_shape="ovr"), so the argmax
is SVC's prediction. Dividing by a fitted temperature makes the softmax a calibrated
probability (albsent.train.estimators fits it on held-out decision values).
`svm_linear` is scikit-learn's LinearSVC exported into an nn.Linear (see albsent.models.logreg).
The fitting lives in albsent.train.estimators; this file holds the modules only.
"""

from __future__ import annotations

import torch
from torch import nn

from albsent.models.logreg import Linear
from albsent.models.registry import MODELS

ABSENT = -1e4  # logit of a class the model never saw in training


class KernelSVM(nn.Module):
    """x: (batch, dim) -> logits (batch, n_classes).

    Buffers (k = classes seen in training, n_sv support vectors, sorted by class):
      support (n_sv, dim), dual_coef (k - 1, n_sv), intercept (k (k - 1) / 2,) in libsvm's pair
      order (0,1), (0,2), ..., n_support (k,) long, classes (k,) long indices into n_classes,
      gamma (), temperature ().
    Their sizes depend on the fit; loading a state dict takes the sizes it holds."""

    def __init__(self, input_dim: int, n_classes: int):
        super().__init__()
        self.n_classes = n_classes
        self.register_buffer("support", torch.zeros(0, input_dim))
        self.register_buffer("dual_coef", torch.zeros(0, 0))
        self.register_buffer("intercept", torch.zeros(0))
        self.register_buffer("n_support", torch.zeros(0, dtype=torch.long))
        self.register_buffer("classes", torch.zeros(0, dtype=torch.long))
        self.register_buffer("gamma", torch.tensor(1.0))
        self.register_buffer("temperature", torch.tensor(1.0))

    def fitted_shapes(self, state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, tuple]:
        """The buffer shapes a fit of this module has, from the sizes a saved state holds (the class
        count of `classes`, the support-vector count `n_support.sum()`); `input_dim` stays this
        module's. albsent.train.checkpoint.load_weights checks a saved state against these, so a
        fit of another width or an inconsistent state is still refused."""
        classes, n_support = state.get(prefix + "classes"), state.get(prefix + "n_support")
        k = int(classes.shape[0]) if classes is not None and classes.dim() == 1 else 0
        n_sv = int(n_support.sum()) if n_support is not None and n_support.numel() else 0
        dim = int(self.support.shape[1])
        if k <= 1:  # unfitted, or one class seen in training: no support vectors
            return {"support": (0, dim), "dual_coef": (0, 0), "intercept": (0,), "n_support": (0,), "classes": (k,)}
        return {"support": (n_sv, dim), "dual_coef": (k - 1, n_sv), "intercept": (k * (k - 1) // 2,),
                "n_support": (k,), "classes": (k,)}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, buf in self.named_buffers(recurse=False):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def pairwise(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, dim) -> (batch, pairs) libsvm decision values; > 0 favours the pair's first class."""
        sv = self.support.to(x.dtype)
        sq = (x * x).sum(1, keepdim=True) - 2 * x @ sv.T + (sv * sv).sum(1)  # (batch, n_sv)
        kern = torch.exp(-self.gamma.to(x.dtype) * sq.clamp_min(0))
        starts = torch.cumsum(self.n_support, 0) - self.n_support
        k, out = len(self.classes), []
        coef = self.dual_coef.to(x.dtype)
        for i in range(k):
            for j in range(i + 1, k):
                si = slice(int(starts[i]), int(starts[i] + self.n_support[i]))
                sj = slice(int(starts[j]), int(starts[j] + self.n_support[j]))
                out.append(kern[:, si] @ coef[j - 1, si] + kern[:, sj] @ coef[i, sj])
        return torch.stack(out, 1) + self.intercept.to(x.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        k = len(self.classes)
        logits = torch.full((x.shape[0], self.n_classes), ABSENT, dtype=x.dtype, device=x.device)
        if k <= 1:  # unfitted, or one class seen in training
            logits[:, self.classes] = 0.0
            return logits
        dec = self.pairwise(x)
        votes = torch.zeros(x.shape[0], k, dtype=x.dtype, device=x.device)
        conf = torch.zeros_like(votes)
        p = 0
        for i in range(k):
            for j in range(i + 1, k):
                d = dec[:, p]
                conf[:, i] += d
                conf[:, j] -= d
                votes[:, i] += (d >= 0).to(x.dtype)
                votes[:, j] += (d < 0).to(x.dtype)
                p += 1
        score = votes + conf / (3 * (conf.abs() + 1))  # scikit-learn's _ovr_decision_function
        logits[:, self.classes] = score / self.temperature.to(x.dtype)
        return logits


@MODELS.register("svm_rbf", input_kind="pooled",
                 description="scikit-learn SVC with an RBF kernel (C, gamma='scale'), exported exactly; "
                 "temperature-calibrated probabilities", fitter="albsent.train.estimators:fit_svm_rbf")
def build_svm_rbf(input_dim: int, n_classes: int, **_) -> KernelSVM:
    return KernelSVM(input_dim, n_classes)


@MODELS.register("svm_linear", input_kind="pooled",
                 description="scikit-learn LinearSVC (one-vs-rest, C), exported to a torch linear layer; "
                 "temperature-calibrated probabilities", fitter="albsent.train.estimators:fit_svm_linear")
def build_svm_linear(input_dim: int, n_classes: int, **_) -> Linear:
    return Linear(input_dim, n_classes)
