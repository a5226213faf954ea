"""Sequence-to-sequence autoencoder (Chung et al. 2016, Audio Word2Vec).

Encoder stack reads the window; its top final hidden state is the code (`encoder.final`).
The decoder stack (same cell) starts from zero state and reads the code at every step,
so everything it predicts must pass through the code:

    x (B, N, in) -> encoder -> code (B, H) -> repeat T_out -> decoder (B, T_out, H) -> head
    T_out = 1 for `next` (pred (B, out)), N otherwise (pred (B, N, out)).
"""

from __future__ import annotations

import torch
from torch import nn

from albsent.models.autoencoders.base import AttachPoint, Autoencoder
from albsent.models.autoencoders.cells import RecurrentStack
from albsent.models.autoencoders.registry import AUTOENCODERS


@AUTOENCODERS.register("seq2seq")
class Seq2SeqAE(Autoencoder):
    """Encoder-decoder with a fixed-size code between them."""

    def __init__(self, config, in_dim, out_index, window, target):
        super().__init__(config, in_dim, out_index, window, target)
        c = config
        self.encoder = RecurrentStack(c.seq2seq_cell, in_dim, c.hidden_size, c.layers, c.dropout)
        self.decoder = RecurrentStack(c.seq2seq_cell, c.hidden_size, c.hidden_size, c.layers, c.dropout)
        self.head = nn.Linear(c.hidden_size, self.out_dim)

    def forward(self, x: torch.Tensor):
        enc = self.encoder(x)
        out, code, cell = enc[-1]                                   # (B, N, H), (B, H), (B, H) | None
        steps = self.window if self.sequence_output else 1
        dec = self.decoder(code.unsqueeze(1).expand(-1, steps, -1))[-1][0]  # (B, T_out, H)
        pred = self.head(dec)
        taps = {"encoder.final": code, "encoder.all_mean": out.mean(dim=1), "decoder.all_mean": dec.mean(dim=1)}
        if cell is not None:
            taps["encoder.cell_final"] = cell
        return (pred if self.sequence_output else pred[:, 0]), taps

    def attach_points(self) -> list[AttachPoint]:
        h = self.config.hidden_size
        pts = [AttachPoint("encoder.final", h, "the code: top encoder layer's final hidden state (hidden_size)"),
               AttachPoint("encoder.all_mean", h, "mean over time of the top encoder outputs (hidden_size)"),
               AttachPoint("decoder.all_mean", h, "mean over time of the top decoder outputs (hidden_size)")]
        if self.config.seq2seq_cell != "rnn":
            pts.append(AttachPoint("encoder.cell_final", h, "top encoder layer's final cell state (hidden_size)"))
        return pts
