"""Recurrent layers with per-layer outputs and final states, including the multiplicative LSTM.

mLSTM (Krause et al. 2016, "Multiplicative LSTM for sequence modelling", eqs. 18-24):

    m_t  = (W_mx x_t) * (W_mh h_{t-1})                 input-dependent recurrent transition
    h^_t = W_hx x_t + W_hm m_t + b_h
    i_t  = sigmoid(W_ix x_t + W_im m_t + b_i)
    f_t  = sigmoid(W_fx x_t + W_fm m_t + b_f)
    o_t  = sigmoid(W_ox x_t + W_om m_t + b_o)
    c_t  = f_t * c_{t-1} + i_t * tanh(h^_t)
    h_t  = tanh(c_t) * o_t

Weights: `wx` stacks [W_hx; W_ix; W_fx; W_ox] (with the biases), `wm` stacks the m-parts,
`wmx` = W_mx, `wmh` = W_mh. The x-parts are computed for all timesteps at once; only the
m-parts run in the time loop.
"""

from __future__ import annotations

import torch
from torch import nn


class MLSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.wx = nn.Linear(input_size, 4 * hidden_size)
        self.wm = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.wmx = nn.Linear(input_size, hidden_size, bias=False)
        self.wmh = nn.Linear(hidden_size, hidden_size, bias=False)
        with torch.no_grad():  # forget-gate bias 1: remember by default
            self.wx.bias[2 * hidden_size : 3 * hidden_size].fill_(1.0)

    def step(self, xz: torch.Tensor, xm: torch.Tensor, h: torch.Tensor,
             c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One timestep from precomputed x-parts xz = wx(x_t): (B, 4H), xm = wmx(x_t): (B, H)."""
        m = xm * self.wmh(h)                                   # (B, H)
        hh, i, f, o = (xz + self.wm(m)).chunk(4, dim=-1)       # each (B, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(hh)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, c

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x: (B, T, in) -> outputs (B, T, H), (h_T, c_T) each (B, H)."""
        b = x.shape[0]
        h = x.new_zeros(b, self.hidden_size) if state is None else state[0]
        c = x.new_zeros(b, self.hidden_size) if state is None else state[1]
        xz, xm = self.wx(x), self.wmx(x)                       # (B, T, 4H), (B, T, H)
        outs = []
        for t in range(x.shape[1]):
            h, c = self.step(xz[:, t], xm[:, t], h, c)
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)


class RecurrentLayer(nn.Module):
    """One layer of `cell` in {rnn, lstm, mlstm}: x (B, T, in) -> (out (B, T, H), h_T (B, H), c_T (B, H) | None)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = cell
        if cell == "rnn":
            self.rnn = nn.RNN(input_size, hidden_size, batch_first=True, nonlinearity="tanh")
        elif cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        elif cell == "mlstm":
            self.rnn = MLSTMCell(input_size, hidden_size)
        else:
            raise ValueError(f"unknown cell {cell!r}")

    def forward(self, x: torch.Tensor):
        out, state = self.rnn(x)
        if self.cell == "rnn":
            return out, state[0], None           # nn.RNN state: (1, B, H)
        if self.cell == "lstm":
            return out, state[0][0], state[1][0]  # nn.LSTM state: ((1, B, H), (1, B, H))
        return out, state[0], state[1]


class RecurrentStack(nn.Module):
    """`layers` RecurrentLayers with dropout between them. Returns per-layer (out, h_T, c_T)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, layers: int, dropout: float):
        super().__init__()
        sizes = [input_size] + [hidden_size] * layers
        self.layers = nn.ModuleList(RecurrentLayer(cell, a, hidden_size) for a in sizes[:-1])
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        results = []
        for i, layer in enumerate(self.layers):
            out, h, c = layer(self.drop(x) if i else x)
            results.append((out, h, c))
            x = out
        return results


def layer_taps(prefix: str, results, taps: dict) -> None:
    """Per layer i (1-based): final, all_mean, all (flattened), cell_final (lstm/mlstm)."""
    for i, (out, h, c) in enumerate(results, start=1):
        taps[f"{prefix}layer{i}.final"] = h                       # (B, H)
        taps[f"{prefix}layer{i}.all_mean"] = out.mean(dim=1)      # (B, H)
        taps[f"{prefix}layer{i}.all"] = out.reshape(out.shape[0], -1)  # (B, T*H)
        if c is not None:
            taps[f"{prefix}layer{i}.cell_final"] = c              # (B, H)


def layer_points(prefix: str, cell: str, layers: int, hidden: int, steps: int) -> list:
    from albsent.models.autoencoders.base import AttachPoint

    pts = []
    for i in range(layers, 0, -1):  # top layer first: the default attachment point
        pts.append(AttachPoint(f"{prefix}layer{i}.final", hidden, f"final hidden state h_T of layer {i} (hidden_size)"))
        pts.append(AttachPoint(f"{prefix}layer{i}.all_mean", hidden,
                               f"mean over time of layer {i} outputs (hidden_size)"))
        pts.append(AttachPoint(f"{prefix}layer{i}.all", hidden * steps,
                               f"all {steps} outputs of layer {i}, flattened (steps*hidden_size)"))
        if cell != "rnn":
            pts.append(AttachPoint(f"{prefix}layer{i}.cell_final", hidden,
                                   f"final cell state c_T of layer {i} (hidden_size)"))
    return pts
