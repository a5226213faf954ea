"""Recording level: how loud the clip was as recorded, before albsent normalised it.

Peak (or RMS) normalisation, the Albanian paper's preprocessing and albsent's default, removes
the recording's level, and on natural speech (calls, talk shows) that level carries sentiment:
a held-back talk-show corpus lost 0.20 macro-F1 to it, while an acted corpus gained 0.11 from
it (issue 24). So whether level is a cue is the corpus' property; this group measures it so
that the automatic selection can choose recipes with it (`level.func`, `egemaps.func+level.func`,
...) or without it, from one store and one extraction pass.

The extractor reads the *recorded view*: the same samples as every other group (decoded, mono,
resampled, trimmed, cut into the same segment) with the normalisation gain undone
(`Extractor.view = "recorded"`; albsent.features.base.extract_all divides by the segment's
gain). Values in dB relative to full scale (dBFS: a full-scale sine is -3 dB RMS).

Columns per clip:

    level_func           (16,) float32    FUNCTIONALS below
    level                (frames, 2)      per 10 ms frame: frame RMS dBFS, A-weighted power dBFS
    level_mean, level_std (2,) float32    the frames pooled, as for every frame extractor

Frames: 25 ms windows every 10 ms, centred (frames = 1 + samples // hop, MFCC's framing).
"Active" frames are those within `active_range_db` of the clip's 95th-percentile frame level
(a simple stand-in for ITU-T P.56's active speech level: pauses and the noise floor drop out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from albsent.config import require
from albsent.features.base import EXTRACTORS, FrameExtractor
from albsent.store.schema import Column, pooled_column

FUNCTIONALS = [
    "peak_dbfs", "rms_dbfs", "active_level_dbfs", "active_fraction", "crest_db",
    "frame_dbfs_p10", "frame_dbfs_p50", "frame_dbfs_p90", "frame_dbfs_active_mean", "frame_dbfs_active_std",
    "frame_dbfs_range", "aweighted_dbfs_active_mean", "aweighted_dbfs_active_std", "aweighted_dbfs_p50",
    "aweighted_dbfs_p90", "clipped_fraction",
]
FLOOR_DB = -120.0  # dBFS of digital silence (log of zero)


@dataclass
class LevelConfig:
    win_length_s: float = 0.025
    hop_length_s: float = 0.010
    active_range_db: float = 30.0  # frames this far below the loud (95th-percentile) frames are inactive
    clip_threshold: float = 0.999  # |sample| at or above this counts as clipped (recorded view, full scale 1.0)

    def __post_init__(self):
        require(0.005 <= self.win_length_s <= 0.1, self, "win_length_s", self.win_length_s, "a float in [0.005, 0.1]")
        require(0.001 <= self.hop_length_s <= self.win_length_s, self, "hop_length_s", self.hop_length_s,
                "a float in [0.001, win_length_s]")
        require(5 <= self.active_range_db <= 80, self, "active_range_db", self.active_range_db, "a float in [5, 80]")
        require(0.5 <= self.clip_threshold <= 1.0, self, "clip_threshold", self.clip_threshold, "a float in [0.5, 1]")


def _db(power: np.ndarray) -> np.ndarray:
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), FLOOR_DB)


@EXTRACTORS.register("level")
class LevelExtractor(FrameExtractor):
    config_cls = LevelConfig
    view = "recorded"
    added_to_every = ("level.func",)  # auto selection: every recipe also with the recording's level

    def feature_names(self) -> list[str]:
        return ["frame_dbfs", "aweighted_dbfs"]

    def columns(self) -> list[Column]:
        return super().columns() + [Column(pooled_column(self.name, "func"), (len(FUNCTIONALS),), "float32", "pooled")]

    def metadata(self) -> dict:
        return {**super().metadata(), "functional_names": FUNCTIONALS, "view": self.view}

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """(n,) float32 as recorded -> (1 + n // hop, 2) float32: frame RMS dBFS, A-weighted dBFS."""
        import librosa

        sr, hop = self.sample_rate_hz, self.hop_length
        win = int(round(self.config.win_length_s * sr))
        x = wave.astype(np.float32, copy=False)
        rms = librosa.feature.rms(y=x, frame_length=win, hop_length=hop, center=True)[0]  # (frames,)
        n_fft = int(2 ** np.ceil(np.log2(win)))
        spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, center=True)) ** 2
        with np.errstate(divide="ignore"):  # A-weighting is -inf dB at 0 Hz
            weights = librosa.db_to_power(librosa.A_weighting(librosa.fft_frequencies(sr=sr, n_fft=n_fft)))
        # Parseval over the one-sided spectrum: mean power of the frame, so a full-scale 1 kHz sine
        # (A-weight 0 dB) reads -3 dBFS, as the RMS column does
        window = librosa.filters.get_window("hann", win, fftbins=True)
        aw = (weights[:, None] * spec).sum(0) * 2.0 / (n_fft * float(np.sum(window ** 2)))
        n = min(rms.size, aw.size)
        return np.stack([_db(rms[:n].astype(np.float64) ** 2), _db(aw[:n])], 1).astype(np.float32)

    def functionals(self, wave: np.ndarray, f: np.ndarray) -> np.ndarray:
        """(n,) recorded samples and their frames (frames, 2) -> (16,) float32, FUNCTIONALS' order."""
        x = wave.astype(np.float64)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        frame_db, aw_db = f[:, 0].astype(np.float64), f[:, 1].astype(np.float64)
        active = frame_db >= np.percentile(frame_db, 95) - self.config.active_range_db
        power = 10.0 ** (frame_db / 10.0)
        p10, p50, p90 = np.percentile(frame_db, [10, 50, 90])
        peak_db, rms_db = float(_db(np.array(peak ** 2))), float(_db(np.array(np.mean(x ** 2) if x.size else 0.0)))
        values = [
            peak_db, rms_db, float(_db(np.array(power[active].mean()))), float(active.mean()), peak_db - rms_db,
            p10, p50, p90, frame_db[active].mean(), frame_db[active].std(), p90 - p10,
            aw_db[active].mean(), aw_db[active].std(), np.percentile(aw_db, 50), np.percentile(aw_db, 90),
            float(np.mean(np.abs(x) >= self.config.clip_threshold)) if x.size else 0.0,
        ]
        return np.asarray(values, np.float32)

    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        out = []
        for wave in waves:
            f = self.frames(wave)
            row = self.pooled(f)
            row[pooled_column(self.name, "func")] = self.functionals(wave, f)
            out.append(row)
        return out
