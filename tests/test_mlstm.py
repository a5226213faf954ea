"""The multiplicative LSTM cell against hand computations of Krause et al. (2016), eqs. 18-24."""

from __future__ import annotations

import math

import numpy as np
import torch

from albsent.models.autoencoders import MLSTMCell


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_one_unit_by_hand():
    """input 1, hidden 1, every weight set by hand; two steps worked out with plain floats."""
    cell = MLSTMCell(1, 1)
    with torch.no_grad():
        # wx rows: [W_hx, W_ix, W_fx, W_ox], bias [b_h, b_i, b_f, b_o]
        cell.wx.weight.copy_(torch.tensor([[0.5], [1.0], [-1.0], [2.0]]))
        cell.wx.bias.copy_(torch.tensor([0.1, 0.0, 1.0, -0.5]))
        cell.wm.weight.copy_(torch.tensor([[2.0], [0.5], [1.0], [-1.0]]))  # [W_hm, W_im, W_fm, W_om]
        cell.wmx.weight.fill_(3.0)   # W_mx
        cell.wmh.weight.fill_(-0.5)  # W_mh
    x = torch.tensor([[[1.0], [-2.0]]])  # (B=1, T=2, 1)
    with torch.no_grad():
        out, (h, c) = cell(x)

    # step 1: h0 = c0 = 0 -> m1 = (3 * 1) * (-0.5 * 0) = 0
    m1 = 0.0
    hh1 = 0.5 * 1 + 2.0 * m1 + 0.1
    i1 = 1 / (1 + math.exp(-(1.0 * 1 + 0.5 * m1)))
    f1 = 1 / (1 + math.exp(-(-1.0 * 1 + 1.0 * m1 + 1.0)))
    o1 = 1 / (1 + math.exp(-(2.0 * 1 - 1.0 * m1 - 0.5)))
    c1 = f1 * 0.0 + i1 * math.tanh(hh1)
    h1 = math.tanh(c1) * o1
    # step 2: x = -2, the transition now depends on the input: m2 = (3 * -2) * (-0.5 * h1) = 3 * h1
    m2 = (3.0 * -2.0) * (-0.5 * h1)
    hh2 = 0.5 * -2 + 2.0 * m2 + 0.1
    i2 = 1 / (1 + math.exp(-(1.0 * -2 + 0.5 * m2)))
    f2 = 1 / (1 + math.exp(-(-1.0 * -2 + 1.0 * m2 + 1.0)))
    o2 = 1 / (1 + math.exp(-(2.0 * -2 - 1.0 * m2 - 0.5)))
    c2 = f2 * c1 + i2 * math.tanh(hh2)
    h2 = math.tanh(c2) * o2

    assert abs(m2 - 3 * h1) < 1e-12
    np.testing.assert_allclose(out[0, :, 0].numpy(), [h1, h2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([h.item(), c.item()], [h2, c2], rtol=1e-5, atol=1e-6)


def test_matches_numpy_equations_over_a_sequence():
    """A batch of sequences against a numpy transcription of the equations with named matrices."""
    torch.manual_seed(0)
    n_in, hid, T, B = 3, 4, 5, 2
    cell = MLSTMCell(n_in, hid)
    x = torch.randn(B, T, n_in)
    with torch.no_grad():
        out, (hT, cT) = cell(x)

    Wx, bx = cell.wx.weight.detach().numpy(), cell.wx.bias.detach().numpy()
    Wm = cell.wm.weight.detach().numpy()
    W_hx, W_ix, W_fx, W_ox = np.split(Wx, 4)
    b_h, b_i, b_f, b_o = np.split(bx, 4)
    W_hm, W_im, W_fm, W_om = np.split(Wm, 4)
    W_mx, W_mh = cell.wmx.weight.detach().numpy(), cell.wmh.weight.detach().numpy()
    X = x.numpy()
    h, c = np.zeros((B, hid)), np.zeros((B, hid))
    hs = []
    for t in range(T):
        xt = X[:, t]
        m = (xt @ W_mx.T) * (h @ W_mh.T)
        hhat = xt @ W_hx.T + m @ W_hm.T + b_h
        i = sigmoid(xt @ W_ix.T + m @ W_im.T + b_i)
        f = sigmoid(xt @ W_fx.T + m @ W_fm.T + b_f)
        o = sigmoid(xt @ W_ox.T + m @ W_om.T + b_o)
        c = f * c + i * np.tanh(hhat)
        h = np.tanh(c) * o
        hs.append(h)
    np.testing.assert_allclose(out.detach().numpy(), np.stack(hs, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hT.detach().numpy(), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cT.detach().numpy(), c, rtol=1e-5, atol=1e-6)
    # forget-gate bias starts at 1 (remember by default)
    np.testing.assert_array_equal(b_f, np.ones(hid, np.float32))


def test_gradients_reach_every_weight():
    torch.manual_seed(1)
    cell = MLSTMCell(3, 4)
    out, _ = cell(torch.randn(2, 6, 3))
    out.sum().backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
