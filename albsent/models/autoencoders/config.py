"""The autoencoder architecture config: one plain dataclass shared by every registered model
(fields a model does not use are ignored), so a sweep can search them as flat fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from albsent.config import require

Cell = Literal["rnn", "lstm", "mlstm"]


@dataclass
class AutoencoderConfig:
    name: str = "mlstm"            # registry name: see `albsent pretrain --list-models`
    hidden_size: int = 100         # recurrent / seq2seq hidden units per layer
    layers: int = 1                # recurrent layers (seq2seq: per encoder and decoder)
    dropout: float = 0.0           # between layers (recurrent) / after hidden layers (dense)
    dense_hidden: list[int] = field(default_factory=lambda: [256])  # dense: widths before the bottleneck
    bottleneck: int = 32           # dense: bottleneck width (per feature for dense_per_feature)
    conv_channels: int = 64        # conv_*: output channels of the 1-D convolution
    conv_filter: int = 3           # conv_*: kernel size over time (paper: 3-8)
    conv_stride: int = 1           # conv_*: 1-2, or = conv_filter to merge timesteps
    seq2seq_cell: Cell = "lstm"    # seq2seq: cell of encoder and decoder

    def __post_init__(self):
        from albsent.models.autoencoders.registry import AUTOENCODERS

        require(self.name in AUTOENCODERS, self, "name", self.name, f"one of {sorted(AUTOENCODERS)}")
        require(self.hidden_size >= 1, self, "hidden_size", self.hidden_size, "an int >= 1")
        require(self.layers >= 1, self, "layers", self.layers, "an int >= 1")
        require(0.0 <= self.dropout < 1.0, self, "dropout", self.dropout, "a float in [0, 1)")
        require(all(w >= 1 for w in self.dense_hidden), self, "dense_hidden", self.dense_hidden, "a list of ints >= 1")
        require(self.bottleneck >= 1, self, "bottleneck", self.bottleneck, "an int >= 1")
        require(self.conv_channels >= 1, self, "conv_channels", self.conv_channels, "an int >= 1")
        require(self.conv_filter >= 1, self, "conv_filter", self.conv_filter, "an int >= 1 (paper: 3-8)")
        require(1 <= self.conv_stride <= self.conv_filter, self, "conv_stride", self.conv_stride,
                f"an int in [1, conv_filter={self.conv_filter}] (stride = filter merges timesteps)")
