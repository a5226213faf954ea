"""The pyAudioAnalysis short-term set: ZCR, energy, energy entropy, spectral centroid,
spread, entropy, flux, rolloff, flatness, 12 chroma + chroma std, plus F0 and voicing
probability (pYIN). librosa computes what it has; energy entropy, spectral entropy and
flux follow pyAudioAnalysis' definitions. All features share MFCC's framing
(frames = 1 + samples // hop), so sequences of both can be concatenated. With f0 on, a frame
is voiced where voicing_prob > 0.5 (metadata `voicing`; spec stats vmean, vstd)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albsent.config import require
from albsent.features.base import EXTRACTORS, FrameExtractor, add_deltas

EPS = 1e-10
BASE_NAMES = [
    "zcr", "energy", "energy_entropy", "spectral_centroid", "spectral_spread", "spectral_entropy",
    "spectral_flux", "spectral_rolloff", "spectral_flatness",
] + [f"chroma_{i}" for i in range(1, 13)] + ["chroma_std"]
F0_NAMES = ["f0_hz", "voicing_prob"]


@dataclass
class ShortTermConfig:
    win_length_s: float = 0.025
    hop_length_s: float = 0.010
    n_subframes: int = 10  # energy entropy / spectral entropy blocks (pyAudioAnalysis: 10)
    rolloff: float = 0.90
    f0: bool = True  # pYIN F0 + voicing probability (albsent.features.pitch)
    f0_fmin_hz: float = 65.0
    f0_fmax_hz: float = 500.0
    deltas: int = 0

    def __post_init__(self):
        require(0.005 <= self.win_length_s <= 0.1, self, "win_length_s", self.win_length_s, "a float in [0.005, 0.1]")
        require(0.001 <= self.hop_length_s <= self.win_length_s, self, "hop_length_s", self.hop_length_s,
                "a float in [0.001, win_length_s]")
        require(2 <= self.n_subframes <= 64, self, "n_subframes", self.n_subframes, "an int in [2, 64]")
        require(0 < self.rolloff < 1, self, "rolloff", self.rolloff, "a float in (0, 1)")
        require(20 <= self.f0_fmin_hz < self.f0_fmax_hz, self, "f0_fmin_hz", self.f0_fmin_hz,
                "a float in [20, f0_fmax_hz)")
        require(self.deltas in (0, 1, 2), self, "deltas", self.deltas, "0, 1 or 2")


def block_entropy(x: np.ndarray, n_blocks: int) -> np.ndarray:
    """Entropy (bits) of the normalised energies of `n_blocks` equal blocks of each column.
    x: (samples_or_bins, frames) of non-negative energies -> (frames,)."""
    n = (x.shape[0] // n_blocks) * n_blocks
    blocks = x[:n].reshape(n_blocks, n // n_blocks, -1).sum(axis=1)  # (n_blocks, frames)
    p = blocks / (blocks.sum(axis=0, keepdims=True) + EPS)
    return -(p * np.log2(p + EPS)).sum(axis=0)


def spectral_flux(mag: np.ndarray) -> np.ndarray:
    """pyAudioAnalysis flux: squared difference of sum-normalised magnitude spectra. (bins, frames) -> (frames,)."""
    norm = mag / (mag.sum(axis=0, keepdims=True) + EPS)
    flux = np.zeros(mag.shape[1], dtype=np.float64)
    flux[1:] = ((norm[:, 1:] - norm[:, :-1]) ** 2).sum(axis=0)
    return flux


@EXTRACTORS.register("shortterm")
class ShortTermExtractor(FrameExtractor):
    config_cls = ShortTermConfig
    voicing_feature = ("voicing_prob", 0.5)  # pYIN's voicing probability; present when f0 is on

    def feature_names(self) -> list[str]:
        base = BASE_NAMES + (F0_NAMES if self.config.f0 else [])
        prefixes = ["", "d_", "dd_"][: self.config.deltas + 1]
        return [p + b for p in prefixes for b in base]

    def frames(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        c, sr, hop = self.config, self.sample_rate_hz, self.hop_length
        win = int(round(c.win_length_s * sr))
        n_fft = int(2 ** np.ceil(np.log2(win)))
        y = wave.astype(np.float32)
        frames = librosa.util.frame(np.pad(y, win // 2), frame_length=win, hop_length=hop)  # (win, T)
        T = 1 + y.size // hop
        frames = frames[:, :T]
        mag = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, win_length=win, center=True))[:, :T]  # (bins, T)
        power = mag**2
        feats = [
            librosa.feature.zero_crossing_rate(y, frame_length=win, hop_length=hop, center=True)[0, :T],
            (frames**2).mean(axis=0),
            block_entropy(frames**2, c.n_subframes),
            librosa.feature.spectral_centroid(S=mag, sr=sr, n_fft=n_fft)[0],
            librosa.feature.spectral_bandwidth(S=mag, sr=sr, n_fft=n_fft, p=2)[0],
            block_entropy(power, c.n_subframes),
            spectral_flux(mag),
            librosa.feature.spectral_rolloff(S=mag, sr=sr, n_fft=n_fft, roll_percent=c.rolloff)[0],
            librosa.feature.spectral_flatness(S=mag)[0],
        ]
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft, tuning=0.0)  # (12, T)
        feats += list(chroma) + [chroma.std(axis=0)]
        if c.f0:
            from albsent.features.pitch import pyin  # librosa.pyin's result, ~19x faster (bench/pitch.py)

            f0, _, prob = pyin(
                y, fmin=c.f0_fmin_hz, fmax=c.f0_fmax_hz, sr=sr, frame_length=max(1024, n_fft), hop_length=hop,
                center=True
            )
            feats += [np.nan_to_num(f0[:T], nan=0.0), np.nan_to_num(prob[:T], nan=0.0)]
        m = np.stack([np.asarray(f, dtype=np.float64)[:T] for f in feats])  # (dim, T)
        return add_deltas(m, c.deltas).T.astype(np.float32)
