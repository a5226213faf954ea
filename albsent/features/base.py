"""Extractor interface and registry.

An extractor maps a batch of mono float32 waveforms at the store's sample rate to,
per clip, a dict of named arrays (its columns). Frame-based extractors store the
sequence `name: (frames, dim)` and pooled statistics `name_mean`, `name_std: (dim,)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from albsent.config import to_dict
from albsent.registry import lookup

EXTRACTORS: dict[str, type["Extractor"]] = {}


def register(cls):
    EXTRACTORS[cls.name] = cls
    return cls


def get_extractor(name: str) -> type["Extractor"]:
    return lookup(EXTRACTORS, "extractor", name)


def extract_all(extractors: list["Extractor"], waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Every extractor over the same waves, merged per clip: one dict of columns per wave."""
    rows: list[dict[str, np.ndarray]] = [dict() for _ in waves]
    for ext in extractors:
        for row, values in zip(rows, ext.extract(waves)):
            row.update(values)
    return rows


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

    def resources(self) -> dict:
        """Ray resources one actor needs for this extractor, e.g. {"num_gpus": 1}."""
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
        cols = [Column(f"{self.name}_mean", (dim,), "float32", "pooled"), Column(f"{self.name}_std", (dim,), "float32", "pooled")]
        if self.store_sequences:
            cols.insert(0, Column(self.name, (None, dim), self.sequence_dtype, "sequence"))
        return cols

    def metadata(self) -> dict:
        return {
            **super().metadata(),
            "feature_names": self.feature_names(),
            "frame_shift_s": self.hop_length / self.sample_rate_hz,
            "frames": "1 + samples // hop_length",
            "hop_length": self.hop_length,
        }

    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        out = []
        for wave in waves:
            f = self.frames(wave)
            row = {f"{self.name}_mean": f.mean(0).astype(np.float32), f"{self.name}_std": f.std(0).astype(np.float32)}
            if self.store_sequences:
                row[self.name] = f.astype(self.sequence_dtype)
            out.append(row)
        return out


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
