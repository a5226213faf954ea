"""Linear probes on a frozen autoencoder.

`FrozenTap` wraps a pretrained autoencoder so that it yields one attachment point and can
never be trained: its parameters have requires_grad=False and it stays in eval mode. The
linear probe itself is the registry's `logreg` module, trained by albsent.train.loop.train_steps.
"""

from __future__ import annotations

import torch
from torch import nn


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
