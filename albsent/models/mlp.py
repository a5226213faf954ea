"""The Albanian paper's MLP(128): Linear -> ReLU -> Dropout (x num_layers) -> Linear."""

from __future__ import annotations

import torch
from torch import nn

from albsent.models.registry import MODELS


class MLP(nn.Module):
    def __init__(self, input_dim: int, n_classes: int, hidden_size: int = 128, num_layers: int = 1,
                 dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        dim = input_dim
        for _ in range(num_layers):
            layers += [nn.Linear(dim, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            dim = hidden_size
        layers.append(nn.Linear(dim, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)  # (batch, dim) -> (batch, n_classes)


@MODELS.register("mlp", input_kind="pooled",
                 description="feed-forward net: num_layers x (Linear(hidden_size), ReLU, Dropout), then Linear")
def build_mlp(input_dim: int, n_classes: int, hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.2,
              **_) -> MLP:
    return MLP(input_dim, n_classes, hidden_size, num_layers, dropout)
