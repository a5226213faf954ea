"""Drop-in replacements for two layers of HF speech SSL models, used by `ssl_model.SslModel`
(inference only; this module imports torch, so the driver-side `ssl_model` does not import it).

- `MaskedGroupNorm`: the first conv layer's GroupNorm of a group-norm CNN (base models), with
  statistics over each clip's own frames, so zero-padded batches give every clip the frames it
  gives alone.
- `GemmConv1d`: the positional convolution (hidden -> hidden, kernel 128, 16 groups) as one
  matmul per group over unfolded frames; cuDNN ran it in generic kernels on an H100 (~half of a
  base model's GPU time in bf16).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedGroupNorm(nn.Module):
    """nn.GroupNorm over (channels, frames) whose statistics, per batch item, cover only its
    first `valid[i]` frames (the frames its unpadded clip has); `valid=None` is GroupNorm."""

    def __init__(self, norm: nn.GroupNorm):
        super().__init__()
        self.norm = norm
        self.valid: list[int] | None = None  # frame count per batch item, set per forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, channels, frames)
        if self.valid is None:
            return self.norm(x)
        g, c = self.norm.num_groups, x.shape[1]
        var, mean = (torch.stack(v) for v in zip(*(
            torch.var_mean(x[i, :, :n].float().reshape(g, -1), dim=1, unbiased=False) for i, n in enumerate(self.valid)
        )))  # (batch, groups) each
        scale = torch.rsqrt(var + self.norm.eps).repeat_interleave(c // g, dim=1)  # (batch, channels)
        mean = mean.repeat_interleave(c // g, dim=1)
        if self.norm.affine:
            scale = scale * self.norm.weight.float()
        shift = -mean * scale + (self.norm.bias.float() if self.norm.affine else 0.0)
        return torch.addcmul(shift[:, :, None], x.float(), scale[:, :, None]).to(x.dtype)


class GemmConv1d(nn.Module):
    """A grouped, stride-1 nn.Conv1d computed as one matmul per group over unfolded frames. The
    weight is read once (a weight-norm parametrisation is not recomputed per call)."""

    def __init__(self, conv: nn.Conv1d):
        super().__init__()
        assert conv.stride == (1,) and conv.dilation == (1,) and conv.padding_mode == "zeros", conv
        w = conv.weight.detach()  # (out, in / groups, kernel)
        self.groups, self.pad = conv.groups, conv.padding[0]
        self.kernel, self.out_per_group = w.shape[2], w.shape[0] // conv.groups
        # (groups, out / groups, in / groups * kernel)
        self.weight = nn.Parameter(w.reshape(conv.groups, self.out_per_group, -1), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)

    # (batch, channels, frames) -> (batch, out, frames + 2 pad - kernel + 1)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xp = F.pad(x, (self.pad, self.pad))
        t = xp.shape[2] - self.kernel + 1
        ci = x.shape[1] // self.groups
        out = x.new_empty(b, self.groups * self.out_per_group, t)
        for g in range(self.groups):
            u = xp[:, g * ci : (g + 1) * ci].unfold(2, self.kernel, 1)  # (batch, ci, t, kernel), a view
            u = u.permute(0, 2, 1, 3).reshape(b * t, ci * self.kernel)
            y = (u @ self.weight[g].T).reshape(b, t, self.out_per_group)
            out[:, g * self.out_per_group : (g + 1) * self.out_per_group] = y.transpose(1, 2)
        return out if self.bias is None else out + self.bias[:, None]
