"""Resample, trim, normalise and segment decoded audio (defaults follow the Albanian paper)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from albsent.audio.io import check_bounds
from albsent.config import require
from albsent.errors import AudioError


@dataclass
class AudioConfig:
    sample_rate_hz: int = 16000
    normalize: Literal["peak", "rms", "none"] = "peak"
    peak_level: float = 1.0  # peak normalisation maps max |x| to this value ([-1, 1] in the paper)
    rms_dbfs: float = -20.0  # target level for rms normalisation
    trim_silence: bool = True
    trim_top_db: float = 30.0  # frames this far below the peak count as silence at the edges
    segment_s: float = 0.0  # 0: one row per utterance; the paper uses 1-2 s windows (1.5 s typical)
    segment_hop_s: float | None = None  # None: equal to segment_s (no overlap)
    min_duration_s: float = 0.1  # shorter inputs are quarantined (reason too_short)

    def __post_init__(self):
        require(8000 <= self.sample_rate_hz <= 96000, self, "sample_rate_hz", self.sample_rate_hz,
                "an int in [8000, 96000]")
        require(0 < self.peak_level <= 1.0, self, "peak_level", self.peak_level, "a float in (0, 1]")
        require(-60 <= self.rms_dbfs <= 0, self, "rms_dbfs", self.rms_dbfs, "a float in [-60, 0]")
        require(self.trim_top_db > 0, self, "trim_top_db", self.trim_top_db, "a positive float")
        require(self.segment_s == 0 or 0.2 <= self.segment_s <= 30, self, "segment_s", self.segment_s,
                "0 (off) or a float in [0.2, 30]")
        hop = self.segment_hop_s
        require(hop is None or 0 < hop <= max(self.segment_s, 0.2), self, "segment_hop_s", hop,
                "null or a float in (0, segment_s]")
        require(hop is None or hop * self.sample_rate_hz >= 1, self, "segment_hop_s", hop,
                f"at least one sample (>= {1 / self.sample_rate_hz:.3g} s at {self.sample_rate_hz} Hz)")
        require(self.min_duration_s >= 0, self, "min_duration_s", self.min_duration_s, "a float >= 0")


@dataclass
class Segment:
    samples: np.ndarray  # (n,) float32 at config.sample_rate_hz
    index: int  # -1 when the utterance is not segmented
    start_s: float
    end_s: float


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)


def normalize(x: np.ndarray, config: AudioConfig, path: str = "") -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    if config.normalize == "peak":
        return (x * (config.peak_level / peak)).astype(np.float32)
    if config.normalize == "rms":
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        return (x * (10 ** (config.rms_dbfs / 20) / rms)).astype(np.float32)
    return x


def trim(x: np.ndarray, config: AudioConfig) -> np.ndarray:
    if not config.trim_silence:
        return x
    import librosa

    trimmed, _ = librosa.effects.trim(x, top_db=config.trim_top_db, frame_length=512, hop_length=128)
    return trimmed


def segment_bounds(n: int, sr: int, segment_s: float, hop_s: float | None) -> list[tuple[int, int]]:
    """Fixed windows of `segment_s` every `hop_s`. A clip shorter than one window is one segment;
    a tail longer than a quarter window gets one more window aligned to the end of the clip."""
    win = int(round(segment_s * sr))
    hop = int(round((hop_s or segment_s) * sr))
    if n <= win:
        return [(0, n)]
    bounds = [(s, s + win) for s in range(0, n - win + 1, hop)]
    if n - bounds[-1][1] > win // 4:
        bounds.append((n - win, n))
    return bounds


def preprocess(samples: np.ndarray, sr: int, config: AudioConfig, path: str = "") -> tuple[np.ndarray, list[Segment]]:
    """Mono float32 at any rate -> (utterance at config rate, its segments). A rate or length
    outside albsent.audio.io's bounds is refused before resampling (bad_sample_rate, too_long)."""
    check_bounds(samples.size, sr, path)
    x = resample(samples, sr, config.sample_rate_hz)
    if not np.any(x):
        raise AudioError("silent", f"{path}: audio is digital silence (all samples are zero)")
    x = trim(x, config)
    out_sr = config.sample_rate_hz
    dur = x.size / out_sr
    if dur < config.min_duration_s:
        raise AudioError("too_short",
                         f"{path}: {dur:.3f} s of audio after trimming, minimum is {config.min_duration_s} s")
    if config.normalize != "none":
        x = normalize(x, config, path)
    if config.segment_s <= 0:
        return x, [Segment(x, -1, 0.0, dur)]
    segs = [
        Segment(x[a:b], i, a / out_sr, b / out_sr)
        for i, (a, b) in enumerate(segment_bounds(x.size, out_sr, config.segment_s, config.segment_hop_s))
    ]
    return x, segs
