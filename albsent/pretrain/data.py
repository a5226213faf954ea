"""Frame sequences for pretraining (labels optional) and the window sampler.

`load_frames` reads a sequence feature spec from any store (MFCC, short-term or SSL frames),
labelled or not. `Windows` turns normalised sequences into training examples:

    frames: (total_frames, dim) float32, all utterances concatenated
    starts: (windows,) int64 start offsets whose `span` frames stay inside one utterance
    batch(idx) -> x (B, N, dim), y (B, out) for `next` | (B, N, out) for `shifted`/`reconstruct`
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from albsent.dataset.spec import FeatureSpec, assemble, column_info, parse, resolve
from albsent.errors import ConfigError, StoreError
from albsent.pretrain.config import WindowConfig
from albsent.store import Store, to_sequences

log = logging.getLogger(__name__)


def sequence_spec(text: str) -> FeatureSpec:
    """`mfcc` -> `mfcc:seq`; anything else must already be a sequence spec."""
    spec = parse(text)
    if spec.kind != "sequence":
        try:
            spec = parse(f"{text}:seq")
        except ConfigError:
            pass
    if spec.kind != "sequence":
        raise ConfigError(f"features {text!r} is not a frame-sequence spec; pretraining needs e.g. mfcc, "
                          "mfcc:seq, mfcc+shortterm:seq or ssl:hubert:seq:9")
    return spec


def feature_names(meta: dict, spec: FeatureSpec, info: dict) -> list[str]:
    names: list[str] = []
    for part in spec.parts:
        found = next((e.get("feature_names") for e in meta.get("extractors", {}).values()
                      if part.column in e.get("columns", {}) and e.get("feature_names")), None)
        dim = int(np.prod([d for d in info[part.column]["shape"] if d is not None]))
        names += found if found and len(found) == dim else [f"{part.column}_{i}" for i in range(dim)]
    return names


@dataclass
class Frames:
    """sequences[i]: (frames_i, dim) float32; labels/speakers may hold None (unlabelled store)."""

    spec: FeatureSpec
    sequences: list[np.ndarray]
    ids: list[str]
    utterance_ids: list[str]
    labels: list
    feature_names: list[str]
    store_uri: str = ""
    columns: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.sequences[0].shape[1]


def load_frames(store_uri: str, features: str) -> Frames:
    """Read the frame sequences of `features` from a store; labels, if any, are ignored."""
    spec = sequence_spec(features)
    store = Store(store_uri)
    info = resolve(spec, column_info(store.schema), store.uri)
    base = [c for c in ("id", "utterance_id", "label") if c in store.schema.names]
    table = store.read(base + spec.columns)
    seqs = assemble(spec, {c: to_sequences(table[c]) for c in spec.columns}, info)
    if not seqs:
        raise StoreError(f"{store.uri}: no rows to pretrain on")
    col = lambda c: table[c].to_pylist() if c in table.column_names else [None] * table.num_rows  # noqa: E731
    log.info("%s: %d sequences, %d frames, dim %d", store.uri, len(seqs), sum(len(s) for s in seqs), seqs[0].shape[1])
    return Frames(spec, seqs, col("id"), col("utterance_id"), col("label"), feature_names(store.meta, spec, info),
                  store.uri, info)


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


def split_utterances(utterance_ids: list, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) row indices; the rows (segments) of one utterance stay together.
    val is empty when val_fraction is 0 or there are fewer than 2 utterances."""
    keys = np.array([u if u is not None else f"row{i}" for i, u in enumerate(utterance_ids)], dtype=object)
    uniq = np.array(sorted(set(keys.tolist())), dtype=object)
    order = np.random.default_rng(seed).permutation(len(uniq))
    n_val = int(round(len(uniq) * val_fraction)) if len(uniq) >= 2 else 0
    val = np.isin(keys, uniq[order[:n_val]])
    return np.flatnonzero(~val), np.flatnonzero(val)
