"""BiLSTM over frame sequences with attention (or mean) pooling over time, as in the
Albanian paper's Section C (Mirsamadi et al. 2017 style attention).

x: (batch, time, dim) zero-padded, lengths: (batch,) valid frames. The LSTM runs on a packed
sequence and pooling masks padded steps, so padding never changes the output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from albsent.models.registry import MODELS


class BiLSTMAttention(nn.Module):
    def __init__(self, input_dim: int, n_classes: int, hidden_size: int = 128, num_layers: int = 1,
                 dropout: float = 0.2, pooling: str = "attention"):
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.lstm = nn.LSTM(input_dim, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.score = nn.Sequential(nn.Linear(2 * hidden_size, hidden_size), nn.Tanh(),
                                   nn.Linear(hidden_size, 1, bias=False))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden_size, n_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> hidden states (batch, T, 2*hidden) zero at padding, mask (batch, T) True where valid."""
        lengths = lengths.clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        return h, mask.to(x.device)

    def attention(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights (batch, T), zero at padding, summing to 1 over valid frames."""
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        h, mask = self.encode(x, lengths)
        if self.pooling == "attention":
            pooled = (self.attention(h, mask).unsqueeze(-1) * h).sum(1)  # (batch, 2*hidden)
        else:
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return self.out(self.dropout(pooled))  # (batch, n_classes)


@MODELS.register("bilstm_attn", input_kind="sequence",
                 description="bidirectional LSTM, attention (or pooling=mean) over time, dropout, Linear")
def build_bilstm_attn(input_dim: int, n_classes: int, hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.2,
                      pooling: str = "attention", **_) -> BiLSTMAttention:
    return BiLSTMAttention(input_dim, n_classes, hidden_size, num_layers, dropout, pooling)
