"""Dense (vanilla) autoencoders that ignore the time order of the window.

`dense`: flatten the window (B, N*in) -> dense_hidden widths (ReLU) -> bottleneck (linear)
-> mirrored decoder -> (B, out) for `next`, (B, N*out) -> (B, N, out) otherwise.

`dense_per_feature`: one small autoencoder per input feature over its N values (weights not
shared): (B, in, N) -> per feature N -> dense_hidden[0] -> bottleneck -> dense_hidden[0]
-> 1 (next) or N; the predicted features are taken from the per-feature outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from albsent.models.autoencoders.base import AttachPoint, Autoencoder
from albsent.models.autoencoders.registry import AUTOENCODERS


def mlp(sizes: list[int], dropout: float, last_act: bool) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_act:
            mods += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*mods)


@AUTOENCODERS.register("dense")
class DenseAE(Autoencoder):
    """Flattened-window autoencoder with a bottleneck."""

    def __init__(self, config, in_dim, out_index, window, target):
        super().__init__(config, in_dim, out_index, window, target)
        widths = [window * in_dim, *config.dense_hidden]
        self.encoder = mlp(widths, config.dropout, last_act=True) if config.dense_hidden else nn.Identity()
        self.to_code = nn.Linear(widths[-1], config.bottleneck)
        out = self.out_dim * (window if self.sequence_output else 1)
        self.decoder = mlp([config.bottleneck, *reversed(config.dense_hidden), out], config.dropout, last_act=False)

    def forward(self, x: torch.Tensor):
        b = x.shape[0]
        hidden = self.encoder(x.reshape(b, -1))           # (B, dense_hidden[-1])
        code = self.to_code(hidden)                        # (B, bottleneck)
        pred = self.decoder(code)                          # (B, out) or (B, N*out)
        if self.sequence_output:
            pred = pred.reshape(b, self.window, self.out_dim)
        return pred, {"bottleneck": code, "encoder.out": hidden}

    def attach_points(self) -> list[AttachPoint]:
        c = self.config
        width = c.dense_hidden[-1] if c.dense_hidden else self.window * self.in_dim
        return [AttachPoint("bottleneck", c.bottleneck, "bottleneck code (bottleneck)"),
                AttachPoint("encoder.out", width, "last encoder hidden layer (dense_hidden[-1], or N*in_dim)")]


class GroupedLinear(nn.Module):
    """G independent linear maps: (B, G, a) -> (B, G, b)."""

    def __init__(self, groups: int, a: int, b: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(groups, a, b) / a**0.5)
        self.bias = nn.Parameter(torch.zeros(groups, b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ngi,gio->ngo", x, self.weight) + self.bias


@AUTOENCODERS.register("dense_per_feature")
class PerFeatureDenseAE(Autoencoder):
    """One autoencoder per feature over its N values; codes concatenated."""

    def __init__(self, config, in_dim, out_index, window, target):
        super().__init__(config, in_dim, out_index, window, target)
        h = config.dense_hidden[0] if config.dense_hidden else 16
        out = window if self.sequence_output else 1
        self.enc1, self.enc2 = GroupedLinear(in_dim, window, h), GroupedLinear(in_dim, h, config.bottleneck)
        self.dec1, self.dec2 = GroupedLinear(in_dim, config.bottleneck, h), GroupedLinear(in_dim, h, out)
        self.drop = nn.Dropout(config.dropout)
        self.register_buffer("index", torch.tensor(self.out_index, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor):
        b = x.shape[0]
        z = x.transpose(1, 2)                                       # (B, in, N)
        code = self.enc2(self.drop(torch.relu(self.enc1(z))))       # (B, in, bottleneck)
        y = self.dec2(self.drop(torch.relu(self.dec1(code))))       # (B, in, 1 | N)
        y = y.index_select(1, self.index).transpose(1, 2)           # (B, 1 | N, out)
        pred = y if self.sequence_output else y[:, 0]
        return pred, {"bottleneck": code.reshape(b, -1), "bottleneck_mean": code.mean(dim=1)}

    def attach_points(self) -> list[AttachPoint]:
        c = self.config
        return [AttachPoint("bottleneck", self.in_dim * c.bottleneck,
                            "all per-feature codes, flattened (in_dim*bottleneck)"),
                AttachPoint("bottleneck_mean", c.bottleneck, "per-feature codes averaged over features (bottleneck)")]
