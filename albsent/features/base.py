"""Extractor interface and registry.

An extractor maps a batch of mono float32 waveforms at the store's sample rate to,
per clip, a dict of named arrays (its columns). Frame-based extractors store the
sequence `name: (frames, dim)` and pooled statistics `name_mean`, `name_std: (dim,)`
(albsent.features.pooling.pool, the same code that pools other statistics at load time);
albsent.store.schema spells those column names.
An extractor with a per-frame voicing flag names it in `voicing_feature` (feature name,
threshold: voiced where value > threshold); the store metadata records it as `voicing`.

A new extractor is one class registered with `@EXTRACTORS.register("name")`: it says what it
stores (`columns`), computes it (`extract`), and which pooled specs the automatic selection tries
from a store that holds it (`auto_candidates` and the fusion declarations below).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from albsent.config import to_dict
from albsent.features.pooling import pool
from albsent.registry import Registry
from albsent.store.schema import Column, pooled_column, sequence_column

EXTRACTORS: Registry[type["Extractor"]] = Registry("extractor")
get_extractor = EXTRACTORS.get  # EXTRACTORS[name], or "unknown extractor 'x'; known: ..."


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


def pooled_candidates(group: str, columns: dict) -> list[str]:
    """The pooled spec a group offers the automatic selection: GROUP.func when the store has
    openSMILE-style functionals GROUP_func, else GROUP when it has GROUP_mean and GROUP_std.
    columns: {column: {"shape": ...}} (albsent.dataset.spec.column_info)."""
    if pooled_column(group, "func") in columns:
        return [f"{group}.func"]
    if pooled_column(group, "mean") in columns and pooled_column(group, "std") in columns:
        return [group]
    return []


class Extractor(ABC):
    name: ClassVar[str]  # set by @EXTRACTORS.register(name)
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

    # --- what the automatic selection tries (albsent.train.select.store_feature_groups) ------------
    # Pairs of candidate specs this group proposes to fuse, e.g. ("mfcc", "egemaps.func") -> the spec
    # "mfcc+egemaps.func", made when the store offers both and both groups are `fusable`.
    fusions: ClassVar[tuple[tuple[str, str], ...]] = ()
    # False: too big to fuse; its candidates enter no pair of `fusions` (ComParE's 6,373 functionals).
    fusable: ClassVar[bool] = True
    # Candidate specs of this group added to every other group and fusion (e.g. "level.func":
    # every recipe also with the recording's level), when the store offers them.
    added_to_every: ClassVar[tuple[str, ...]] = ()
    # True: its candidates stand alone (never fused), listed after every group and fusion (SSL layers).
    standalone: ClassVar[bool] = False

    @classmethod
    def auto_candidates(cls, columns: dict) -> list[str]:
        """The pooled specs this group offers the automatic selection from a store with `columns`
        ({column: {"shape": ...}}, albsent.dataset.spec.column_info)."""
        return pooled_candidates(cls.name, columns)

    def resources(self, cluster_gpus: float = 0.0) -> dict:
        """Ray resources one actor needs for this extractor, e.g. {"num_gpus": 1}, given the
        GPUs of the cluster it will run on."""
        return {}

    def __init__(self, config: Any, sample_rate_hz: int, sequence_dtype: str = "float16", store_sequences: bool = True):
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self.sequence_dtype = sequence_dtype
        self.store_sequences = store_sequences

    @abstractmethod
    def columns(self) -> list[Column]:
        """The columns this extractor stores (their names spelled by albsent.store.schema)."""

    def metadata(self) -> dict:
        """Self-description stored in the store's schema metadata."""
        return {"config": to_dict(self.config), "columns": {c.name: list(c.shape) for c in self.columns()}}

    @abstractmethod
    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Mono float32 waves at `sample_rate_hz` -> per wave, {column: value} of every column."""


class FrameExtractor(Extractor):
    """An extractor computing one (frames, dim) matrix per clip, pooled to mean and std."""

    hop_length_s: float = 0.01

    @abstractmethod
    def feature_names(self) -> list[str]:
        """The names of the `dim` per-frame features, in column order."""

    def frames(self, wave: np.ndarray) -> np.ndarray:
        """(n,) float32 -> (frames, dim) float32 with frames = 1 + n // hop. Every frame extractor
        provides it unless it overrides `extract` (openSMILE computes whole batches)."""
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
