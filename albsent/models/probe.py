"""Linear probes on a frozen autoencoder.

`FrozenTap` wraps a pretrained autoencoder so that it yields one attachment point and can
never be trained: its parameters have requires_grad=False and it stays in eval mode.
`train_linear` fits the registry's `logreg` module (one nn.Linear) by iterations with its
own learning rate, as in the paper's classifier stage (Table 3: classifier iterations).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class FrozenTap(nn.Module):
    """x: (B, N, in_dim) windows -> (B, dim) activations of attachment point `point`."""

    def __init__(self, autoencoder: nn.Module, point: str):
        super().__init__()
        self.autoencoder, self.point = autoencoder, point
        for p in self.autoencoder.parameters():
            p.requires_grad_(False)
        self.autoencoder.eval()

    def train(self, mode: bool = True):  # the frozen network never leaves eval mode (no dropout)
        super().train(mode)
        self.autoencoder.eval()
        return self

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.tap(x, self.point)


def train_linear(X: np.ndarray, y: np.ndarray, n_classes: int, lr: float, iterations: int, batch_size: int = 0,
                 weight_decay: float = 0.0, class_weight: bool = False, seed: int = 0):
    """X: (rows, dim) float32, y: (rows,) int in [0, n_classes) -> (logreg module in eval mode,
    final training loss). batch_size 0 = full batch; otherwise each iteration samples a batch."""
    from albsent.models import build_model

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model("logreg", X.shape[1], n_classes, {"hidden_size": 0, "num_layers": 0, "dropout": 0.0, "pooling": "mean"})
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    weight = None
    if class_weight:
        counts = np.bincount(y, minlength=n_classes).astype(np.float32)
        weight = torch.from_numpy(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0).astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss = torch.tensor(float("nan"))
    for _ in range(iterations):
        if batch_size and batch_size < len(yt):
            idx = torch.from_numpy(rng.integers(0, len(yt), size=batch_size))
            xb, yb = Xt[idx], yt[idx]
        else:
            xb, yb = Xt, yt
        loss = F.cross_entropy(model(xb), yb, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval(), float(loss.item())


@torch.no_grad()
def predict_linear(model: nn.Module, X: np.ndarray) -> np.ndarray:
    """(rows, dim) -> (rows,) predicted class indices."""
    return model(torch.from_numpy(np.ascontiguousarray(X, np.float32))).argmax(-1).numpy()
