"""Training examples for pretraining: windows of frame sequences.

Reading the store (every row, labelled or not), the feature names and the validation split by
utterance are albsent.dataset's (`load_frames`, `holdout_utterances`). `Windows` turns normalised
sequences into training examples:

    frames: (total_frames, dim) float32, all utterances concatenated
    starts: (windows,) int64 start offsets whose `span` frames stay inside one utterance
    batch(idx) -> x (B, N, dim), y (B, out) for `next` | (B, N, out) for `shifted`/`reconstruct`
"""

from __future__ import annotations

import numpy as np
import torch

from albsent.errors import ConfigError
from albsent.pretrain.config import WindowConfig

__all__ = ["Windows"]


class Windows:
    """All windows of `window.span` frames (hop `stride`) inside each of the sequences."""

    def __init__(self, sequences: list[np.ndarray], window: WindowConfig, out_index: list[int],
                 stride: int | None = None):
        self.window, self.out_index = window, list(out_index)
        span, hop = window.span, stride or window.stride
        lengths = np.array([len(s) for s in sequences])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.starts = np.concatenate([o + np.arange(0, n - span + 1, hop)
                                      for o, n in zip(offsets, lengths) if n >= span]
                                     or [np.zeros(0, np.int64)]).astype(np.int64)
        if not len(self.starts):
            raise ConfigError(f"no sequence has the {span} frames one window needs (window.length={window.length}); "
                              f"longest has {lengths.max() if len(lengths) else 0}")
        self.frames = torch.from_numpy(np.concatenate(sequences).astype(np.float32))   # (total, dim)
        self._offsets = torch.arange(span)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows `idx` -> x (B, N, dim), y (B, out) | (B, N, out)."""
        n = self.window.length
        w = self.frames[torch.from_numpy(self.starts[idx])[:, None] + self._offsets]   # (B, span, dim)
        x, out = w[:, :n], self.out_index
        if self.window.target == "next":
            return x, w[:, n, out]
        if self.window.target == "shifted":
            return x, w[:, 1 : n + 1][:, :, out]
        return x, w[:, :n][:, :, out]
