"""Recurrent next-frame models: `rnn`, `lstm`, `mlstm` (stacked layers + linear output head).

x: (B, N, in_dim) -> stack -> top outputs (B, N, H) -> head -> (B, N, out_dim);
`next` keeps the last step (B, out_dim), `shifted` / `reconstruct` keep all N steps
(the output at step t is compared with frame t+1 / frame t).
"""

from __future__ import annotations

import torch
from torch import nn

from albsent.models.autoencoders.base import AttachPoint, Autoencoder
from albsent.models.autoencoders.cells import RecurrentStack, layer_points, layer_taps
from albsent.models.autoencoders.registry import AUTOENCODERS


class RecurrentAE(Autoencoder):
    cell: str = "lstm"

    def __init__(self, config, in_dim, out_index, window, target):
        super().__init__(config, in_dim, out_index, window, target)
        self.stack = RecurrentStack(self.cell, in_dim, config.hidden_size, config.layers, config.dropout)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, self.out_dim)

    def forward(self, x: torch.Tensor):
        results = self.stack(x)
        taps: dict[str, torch.Tensor] = {}
        layer_taps("", results, taps)
        top = self.drop(results[-1][0])                 # (B, N, H)
        pred = self.head(top if self.sequence_output else top[:, -1])
        return pred, taps

    def attach_points(self) -> list[AttachPoint]:
        return layer_points("", self.cell, self.config.layers, self.config.hidden_size, self.window)


@AUTOENCODERS.register("rnn")
class RNNAE(RecurrentAE):
    """Vanilla tanh RNN layers (paper: best RNN had two layers)."""

    cell = "rnn"


@AUTOENCODERS.register("lstm")
class LSTMAE(RecurrentAE):
    """LSTM layers."""

    cell = "lstm"


@AUTOENCODERS.register("mlstm")
class MLSTMAE(RecurrentAE):
    """Multiplicative LSTM layers (Krause et al. 2016) - the paper's best model."""

    cell = "mlstm"
