"""1-D convolution over time feeding a recurrent stack: `conv_rnn`, `conv_lstm`, `conv_mlstm`.

The convolution (kernel k = conv_filter, stride s = conv_stride, ReLU) is left-padded so that
its last output step ends exactly on the window's last frame, and every step only sees frames
up to its own end (causal):

    steps T' = ceil(N / s),  pad_left = (T' - 1) * s + k - N
    x (B, N, in) -> conv (B, T', C) -> stack -> (B, T', H)

With s = 1 (k = 3..8) it picks up short-term patterns; with s = k it merges blocks of k frames
into one observation. Sequence targets: each step predicts the s frames ending at (shifted:
one after) its last frame; head (B, T', s*out) -> (B, T'*s, out) -> last N steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from albsent.models.autoencoders.base import AttachPoint, Autoencoder
from albsent.models.autoencoders.cells import RecurrentStack, layer_points, layer_taps
from albsent.models.autoencoders.registry import AUTOENCODERS


class ConvRecurrentAE(Autoencoder):
    cell: str = "mlstm"

    def __init__(self, config, in_dim, out_index, window, target):
        super().__init__(config, in_dim, out_index, window, target)
        k, s = config.conv_filter, config.conv_stride
        self.steps = math.ceil(window / s)
        self.pad_left = (self.steps - 1) * s + k - window
        self.conv = nn.Conv1d(in_dim, config.conv_channels, kernel_size=k, stride=s)
        self.stack = RecurrentStack(self.cell, config.conv_channels, config.hidden_size, config.layers, config.dropout)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, self.out_dim * (s if self.sequence_output else 1))

    def forward(self, x: torch.Tensor):
        b, n, _ = x.shape
        z = F.pad(x.transpose(1, 2), (self.pad_left, 0))          # (B, in, pad + N)
        z = torch.relu(self.conv(z)).transpose(1, 2)               # (B, T', C)
        results = self.stack(z)
        taps = {
            "conv.out_mean": z.mean(dim=1),                        # (B, C)
            "conv.out_final": z[:, -1],                            # (B, C)
            "conv.all": z.reshape(b, -1),                          # (B, T'*C)
        }
        layer_taps("", results, taps)
        top = self.drop(results[-1][0])                            # (B, T', H)
        if not self.sequence_output:
            return self.head(top[:, -1]), taps                     # (B, out)
        pred = self.head(top).reshape(b, self.steps * self.config.conv_stride, self.out_dim)
        return pred[:, -n:], taps                                  # (B, N, out)

    def attach_points(self) -> list[AttachPoint]:
        c, steps = self.config.conv_channels, self.steps
        pts = layer_points("", self.cell, self.config.layers, self.config.hidden_size, steps)
        return pts + [
            AttachPoint("conv.out_mean", c, "mean over steps of the convolution output (conv_channels)"),
            AttachPoint("conv.out_final", c, "last step of the convolution output (conv_channels)"),
            AttachPoint("conv.all", c * steps,
                        f"all {steps} convolution steps, flattened (ceil(N/stride)*conv_channels)"),
        ]


@AUTOENCODERS.register("conv_rnn")
class ConvRNNAE(ConvRecurrentAE):
    """Conv1d -> RNN layers."""

    cell = "rnn"


@AUTOENCODERS.register("conv_lstm")
class ConvLSTMAE(ConvRecurrentAE):
    """Conv1d -> LSTM layers."""

    cell = "lstm"


@AUTOENCODERS.register("conv_mlstm")
class ConvMLSTMAE(ConvRecurrentAE):
    """Conv1d -> mLSTM layers (paper's "Convolutional mLSTM")."""

    cell = "mlstm"
