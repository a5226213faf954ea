"""Resample, trim, normalise and segment decoded audio (defaults follow the Albanian paper)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

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
    gain: float = 1.0  # samples = as recorded (resampled, trimmed) x gain; normalisation's factor


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def normalization_gain(x: np.ndarray, config: AudioConfig) -> float:
    """The factor `normalize` multiplies x by (1.0 for normalize: none)."""
    if config.normalize == "peak":
        return config.peak_level / float(np.max(np.abs(x)))
    if config.normalize == "rms":
        return 10 ** (config.rms_dbfs / 20) / float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return 1.0


TRIM_FRAME, TRIM_HOP = 512, 128
TRIM_CHUNK_FRAMES = 2**16  # RMS frames computed at a time: librosa frames the whole signal at once (a 2-hour
#                            recording's 900k frames x 512 samples of squares were 1.8 GB)


def trim(x: np.ndarray, config: AudioConfig) -> np.ndarray:
    """`librosa.effects.trim(x, top_db, frame_length=512, hop_length=128)`, with its frame RMS
    computed a chunk of frames at a time (the same per-frame arithmetic, so the same result)."""
    if not config.trim_silence:
        return x
    import librosa

    frames = 1 + x.size // TRIM_HOP  # librosa's count with center=True
    if frames <= TRIM_CHUNK_FRAMES:
        trimmed, _ = librosa.effects.trim(x, top_db=config.trim_top_db, frame_length=TRIM_FRAME, hop_length=TRIM_HOP)
        return trimmed
    rms = np.concatenate([_rms(x, t, min(t + TRIM_CHUNK_FRAMES, frames)) for t in range(0, frames, TRIM_CHUNK_FRAMES)])
    db = librosa.amplitude_to_db(rms, ref=np.max, top_db=None)
    nonzero = np.flatnonzero(db > -config.trim_top_db)
    if not nonzero.size:
        return x[:0]
    start = int(librosa.frames_to_samples(nonzero[0], hop_length=TRIM_HOP))
    end = min(x.size, int(librosa.frames_to_samples(nonzero[-1] + 1, hop_length=TRIM_HOP)))
    return x[start:end]


def _rms(x: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """librosa.feature.rms(y=x, frame_length=512, hop_length=128) (centred, zero padding) for frames [t0, t1)."""
    import librosa

    half = TRIM_FRAME // 2
    a, b = t0 * TRIM_HOP - half, (t1 - 1) * TRIM_HOP + TRIM_FRAME - half  # x indices the frames cover
    chunk = x[max(a, 0):min(b, x.size)]
    if a < 0 or b > x.size:
        chunk = np.concatenate([np.zeros(max(0, -a), x.dtype), chunk, np.zeros(max(0, b - x.size), x.dtype)])
    return librosa.feature.rms(y=chunk, frame_length=TRIM_FRAME, hop_length=TRIM_HOP, center=False)[0]


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


def preprocess(samples: np.ndarray, sr: int, config: AudioConfig, path: str = "",
               augment: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, list[Segment]]:
    """Mono float32 at any rate -> (utterance at config rate, its segments). A rate or length
    outside albsent.audio.io's bounds is refused before resampling (bad_sample_rate, too_long).
    augment: see `finish`."""
    return finish(trimmed(samples, sr, config, path), config, path, augment)


def trimmed(samples: np.ndarray, sr: int, config: AudioConfig, path: str = "") -> np.ndarray:
    """`preprocess`'s first half: bounds checked, resampled to config rate, silence refused, edges trimmed."""
    check_bounds(samples.size, sr, path)
    x = resample(samples, sr, config.sample_rate_hz)
    if not np.any(x):
        raise AudioError("silent", f"{path}: audio is digital silence (all samples are zero)")
    return trim(x, config)


def finish(x: np.ndarray, config: AudioConfig, path: str = "",
           augment: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, list[Segment]]:
    """`preprocess`'s second half on a `trimmed` utterance (not modified): length checked,
    normalised, cut into segments. augment: changes the utterance first, as another recording of it
    would differ (albsent.audio.augment); one `trimmed` result serves a clip and all its copies."""
    if augment is not None:
        x = augment(x)
    out_sr = config.sample_rate_hz
    dur = x.size / out_sr
    if dur < config.min_duration_s:
        raise AudioError("too_short",
                         f"{path}: {dur:.3f} s of audio after trimming, minimum is {config.min_duration_s} s")
    gain = 1.0
    if config.normalize != "none":
        gain = normalization_gain(x, config)
        x = (x * gain).astype(np.float32, copy=False)  # (float32 already: no second copy of a long recording)
    if config.segment_s <= 0:
        return x, [Segment(x, -1, 0.0, dur, gain)]
    segs = [
        Segment(x[a:b], i, a / out_sr, b / out_sr, gain)
        for i, (a, b) in enumerate(segment_bounds(x.size, out_sr, config.segment_s, config.segment_hop_s))
    ]
    return x, segs
