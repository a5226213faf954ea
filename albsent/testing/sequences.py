"""Seeded synthetic frame sequences with a learnable next-frame structure, for autoencoder tests.

Each sequence is a sum of sinusoids with a per-sequence frequency and phase, plus a little
noise: the next frame follows from the last few, while the frames' overall mean is near
zero, so a model that learned the dynamics beats predicting the mean by far.
A per-sequence class (0..classes-1) sets the frequency band (0.1 + band * class rad/frame), so
a probe can recover it; frame mean and std do not depend on the class. Every speaker has
every class.
"""

from __future__ import annotations

import numpy as np


def make_sequences(n: int = 48, dim: int = 6, frames: tuple[int, int] = (40, 80), classes: int = 3,
                   noise: float = 0.05, band: float = 0.45,
                   seed: int = 0) -> tuple[list[np.ndarray], list[str], list[str]]:
    """-> (sequences (frames_i, dim) float32, labels "c0".."c{k-1}", speakers "s0".."s5")."""
    rng = np.random.default_rng(seed)
    seqs, labels, speakers = [], [], []
    for i in range(n):
        k = i % classes
        length = int(rng.integers(*frames))
        t = np.arange(length)[:, None]
        freq = 0.1 + band * k + 0.05 * rng.random(dim)           # (dim,) class-dependent band, rad/frame
        phase = rng.uniform(0, 2 * np.pi, dim)
        x = np.sin(freq * t + phase) + 0.5 * np.sin(2 * freq * t + phase[::-1])
        seqs.append((x + noise * rng.standard_normal(x.shape)).astype(np.float32))
        labels.append(f"c{k}")
        speakers.append(f"s{(i // classes) % 6}")  # every speaker has every class
    return seqs, labels, speakers
