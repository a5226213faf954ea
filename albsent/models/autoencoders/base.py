"""Autoencoder interface shared by every registered model.

Input `x: (batch, N, in_dim)` is one window of N frames. The prediction depends on the target:

    next         frames 1..N -> frame N+1          pred: (batch, out_dim)
    shifted      frames 1..N -> frames 2..N+1      pred: (batch, N, out_dim)
    reconstruct  frames 1..N -> frames 1..N        pred: (batch, N, out_dim)

`out_dim = len(out_index)`: the predicted features are the input features at `out_index`.

Every model also returns `taps`: named tensors `(batch, dim)` a linear probe can read
("attachment points"). `attach_points()` lists them with their sizes computed from the config
alone, and a test checks that each tap really has that size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from albsent.models.autoencoders.config import AutoencoderConfig

Target = Literal["next", "shifted", "reconstruct"]
TARGETS: tuple[str, ...] = ("next", "shifted", "reconstruct")


@dataclass(frozen=True)
class AttachPoint:
    name: str
    dim: int
    doc: str


class Autoencoder(nn.Module):
    name: ClassVar[str] = ""

    def __init__(self, config: AutoencoderConfig, in_dim: int, out_index: list[int], window: int, target: Target):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.config = config
        self.in_dim = in_dim
        self.out_index = list(out_index)
        self.out_dim = len(self.out_index)
        self.window = window
        self.target = target

    @property
    def sequence_output(self) -> bool:
        return self.target != "next"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x: (batch, N, in_dim) -> (pred, taps); pred shapes in the module docstring."""
        raise NotImplementedError

    def attach_points(self) -> list[AttachPoint]:
        raise NotImplementedError

    def attach_names(self) -> list[str]:
        return [p.name for p in self.attach_points()]

    def default_attach(self) -> str:
        return self.attach_points()[0].name

    def tap(self, x: torch.Tensor, point: str) -> torch.Tensor:
        """x: (batch, N, in_dim) -> (batch, dim) of attachment point `point`."""
        _, taps = self(x)
        if point not in taps:
            from albsent.errors import ConfigError

            raise ConfigError(f"unknown attachment point '{point}' for model '{self.name}'; known: {', '.join(taps)}")
        return taps[point]


def flat(x: torch.Tensor) -> torch.Tensor:
    """(batch, ...) -> (batch, prod(...))."""
    return x.reshape(x.shape[0], -1)
