"""MFCC (+ delta, delta-delta) with 25 ms windows every 10 ms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albsent.config import require
from albsent.features.base import EXTRACTORS, FrameExtractor, add_deltas


@dataclass
class MfccConfig:
    n_mfcc: int = 40
    n_mels: int = 40
    deltas: int = 2  # 0: MFCC only, 1: + delta, 2: + delta and delta-delta
    win_length_s: float = 0.025
    hop_length_s: float = 0.010
    fmin_hz: float = 0.0
    fmax_hz: float | None = None

    def __post_init__(self):
        require(1 <= self.n_mfcc <= 128, self, "n_mfcc", self.n_mfcc, "an int in [1, 128] (the papers use 13-40)")
        require(self.n_mels >= self.n_mfcc, self, "n_mels", self.n_mels, f"an int >= n_mfcc ({self.n_mfcc})")
        require(self.deltas in (0, 1, 2), self, "deltas", self.deltas, "0, 1 or 2")
        require(0.005 <= self.win_length_s <= 0.1, self, "win_length_s", self.win_length_s, "a float in [0.005, 0.1]")
        require(0.001 <= self.hop_length_s <= self.win_length_s, self, "hop_length_s", self.hop_length_s,
                "a float in [0.001, win_length_s]")


@EXTRACTORS.register("mfcc")
class MfccExtractor(FrameExtractor):
    config_cls = MfccConfig
    fusions = (("mfcc", "egemaps.func"), ("mfcc", "shortterm"))  # auto selection: spectra + prosody

    def feature_names(self) -> list[str]:
        base = [f"mfcc_{i}" for i in range(self.config.n_mfcc)]
        prefixes = ["", "d_", "dd_"][: self.config.deltas + 1]
        return [p + b for p in prefixes for b in base]

    def frames(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        c, sr = self.config, self.sample_rate_hz
        win = int(round(c.win_length_s * sr))
        m = librosa.feature.mfcc(
            y=wave, sr=sr, n_mfcc=c.n_mfcc, n_fft=int(2 ** np.ceil(np.log2(win))), win_length=win,
            hop_length=self.hop_length, n_mels=c.n_mels, fmin=c.fmin_hz, fmax=c.fmax_hz, center=True,
        )  # (n_mfcc, frames)
        return add_deltas(m, c.deltas).T.astype(np.float32)
