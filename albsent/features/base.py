"""Extractor interface and registry.

An extractor maps a batch of mono float32 waveforms at the store's sample rate to,
per clip, a dict of named arrays (its columns). Frame-based extractors store the
sequence `name: (frames, dim)` and pooled statistics `name_mean`, `name_std: (dim,)`
(albsent.features.pooling.pool, the same code that pools other statistics at load time);
albsent.store.schema spells those column names.
An extractor with a per-frame voicing flag names it in `voicing_feature` (feature name,
threshold: voiced where value > threshold); the store metadata records it as `voicing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from albsent.config import to_dict
from albsent.features.pooling import pool
from albsent.registry import lookup
from albsent.store.schema import pooled_column, sequence_column

EXTRACTORS: dict[str, type["Extractor"]] = {}


def register(cls):
    EXTRACTORS[cls.name] = cls
    return cls


def get_extractor(name: str) -> type["Extractor"]:
    return lookup(EXTRACTORS, "extractor", name)


def extract_all(extractors: list["Extractor"], waves: list[np.ndarray],
                gains: list[float] | None = None) -> list[dict[str, np.ndarray]]:
    """Every extractor over the same waves, merged per clip: one dict of columns per wave.
    gains: per wave, the factor normalisation applied (albsent.audio.preprocess.Segment.gain);
    extractors with view "recorded" get wave / gain, the clip at its recorded level."""
    rows: list[dict[str, np.ndarray]] = [dict() for _ in waves]
    recorded = None
    for ext in extractors:
        view = waves
        if ext.view == "recorded" and gains is not None:
            if recorded is None:
                recorded = [w if g == 1.0 else (w / np.float32(g)).astype(np.float32) for w, g in zip(waves, gains)]
            view = recorded
        for row, values in zip(rows, ext.extract(view)):
            row.update(values)
    return rows


def extract_segments(extractors: list["Extractor"], segs: list) -> list[dict[str, np.ndarray]]:
    """extract_all over albsent.audio.preprocess.Segment objects (their samples and gains)."""
    return extract_all(extractors, [s.samples for s in segs], [s.gain for s in segs])


@dataclass(frozen=True)
class Column:
    """One stored feature column. `shape` is the shape of one value; None marks the frame axis."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str  # "float16" | "float32"
    kind: str  # "sequence" | "pooled"


class Extractor:
    name: ClassVar[str]
    config_cls: ClassVar[type]
    # True for extractors that load a model: the pipeline then runs blocks on an actor pool
    # (model loaded once per actor) instead of stateless tasks.
    needs_actor: ClassVar[bool] = False
    # (feature name, threshold): the sequence feature whose value > threshold marks a voiced
    # frame, for voiced-only pooling (vmean, vstd). None: no voicing flag.
    voicing_feature: ClassVar[tuple[str, float] | None] = None
    # "normalized": the clip after albsent.audio.preprocess (every group but one); "recorded": the
    # same samples with the normalisation gain undone, so the recording's level survives (level.py).
    view: ClassVar[str] = "normalized"

    def resources(self, cluster_gpus: float = 0.0) -> dict:
        """Ray resources one actor needs for this extractor, e.g. {"num_gpus": 1}, given the
        GPUs of the cluster it will run on."""
        return {}

    def __init__(self, config: Any, sample_rate_hz: int, sequence_dtype: str = "float16", store_sequences: bool = True):
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.sequence_dtype = sequence_dtype
        self.store_sequences = store_sequences

    def columns(self) -> list[Column]:
        raise NotImplementedError

    def metadata(self) -> dict:
        """Self-description stored in the store's schema metadata."""
        return {"config": to_dict(self.config), "columns": {c.name: list(c.shape) for c in self.columns()}}

    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError


class FrameExtractor(Extractor):
    """An extractor computing one (frames, dim) matrix per clip, pooled to mean and std."""

    hop_length_s: float = 0.01

    def feature_names(self) -> list[str]:
        raise NotImplementedError

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """(n,) float32 -> (frames, dim) float32 with frames = 1 + n // hop."""
        raise NotImplementedError

    @property
    def hop_length(self) -> int:
        return int(round(self.config.hop_length_s * self.sample_rate_hz))

    def columns(self) -> list[Column]:
        dim = len(self.feature_names())
        cols = [Column(pooled_column(self.name, s), (dim,), "float32", "pooled") for s in ("mean", "std")]
        if self.store_sequences:
            cols.insert(0, Column(sequence_column(self.name), (None, dim), self.sequence_dtype, "sequence"))
        return cols

    def metadata(self) -> dict:
        names = self.feature_names()
        meta = {
            **super().metadata(),
            "feature_names": names,
            "frame_shift_s": self.hop_length / self.sample_rate_hz,
            "frames": "1 + samples // hop_length",
            "hop_length": self.hop_length,
        }
        flag = voicing_flag(type(self), names)
        if flag is not None:
            meta["voicing"] = flag
        return meta

    def pooled(self, f: np.ndarray) -> dict[str, np.ndarray]:
        """The stored columns of one clip's frames f: (frames, dim) float32: mean, std (and the sequence)."""
        row = {pooled_column(self.name, k): v for k, v in pool(f, ("mean", "std")).items()}
        if self.store_sequences:
            row[sequence_column(self.name)] = self.sequence(f)
        return row

    def sequence(self, f: np.ndarray) -> np.ndarray:
        """The stored frame sequence of frames f: (frames, dim) float32."""
        return f.astype(self.sequence_dtype)

    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return [self.pooled(self.frames(wave)) for wave in waves]


def voicing_flag(cls: type[Extractor], feature_names: list[str]) -> dict | None:
    """{"feature", "index", "threshold"} of `cls.voicing_feature` among the sequence's feature
    names (first match: the base feature, not its deltas), or None."""
    if cls.voicing_feature is None:
        return None
    feature, threshold = cls.voicing_feature
    if feature not in feature_names:
        return None
    return {"feature": feature, "index": feature_names.index(feature), "threshold": float(threshold)}


def add_deltas(feats: np.ndarray, order: int) -> np.ndarray:
    """(dim, frames) -> (dim * (order + 1), frames), librosa deltas with a width that fits short clips."""
    import librosa

    if order == 0:
        return feats
    width = min(9, feats.shape[1] if feats.shape[1] % 2 else feats.shape[1] - 1)
    if width < 3:
        return np.concatenate([feats] + [np.zeros_like(feats)] * order)
    parts = [feats] + [librosa.feature.delta(feats, width=width, order=k, mode="interp") for k in range(1, order + 1)]
    return np.concatenate(parts)
