"""Learned softmax-weighted sum of SSL layers (SUPERB-style) in front of any pooled model.

x: (batch, layers, hidden) -> sum_l softmax(w)_l * x[:, l] : (batch, hidden) -> inner model.
The weights start equal; `layer_weights()` gives the learned distribution for reports.
"""

from __future__ import annotations

import torch
from torch import nn


class LayerSum(nn.Module):
    def __init__(self, inner: nn.Module, n_layers: int):
        super().__init__()
        self.inner = inner
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))

    def layer_weights(self) -> torch.Tensor:
        return torch.softmax(self.layer_logits, dim=0)  # (layers,)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mixed = torch.einsum("blh,l->bh", x, self.layer_weights())
        return self.inner(mixed, lengths)
