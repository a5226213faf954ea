"""The one z-score normaliser, global or per speaker, for every model input albsent builds.

`Normalizer` holds statistics over rows (pooled (dim,), layer stacks (layers, hidden)) or over
all frames of a list of (frames, dim) sequences. A feature whose std is below 1e-8 passes
through centred (std 1), so a constant column never becomes NaN or Inf.

Speaker normalisation (`by_speaker`) z-scores each speaker's rows with that speaker's own
statistics. It needs no labels, so it is applied the same way to training speakers and to the
speakers being predicted; a speaker with a single row would become all zeros, so such rows
(and rows without a speaker) are z-scored with `fallback` instead: the statistics of the raw
training rows, which a trained model carries for this case. A global `Normalizer` fitted on
the training rows follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_STD = 1e-8


@dataclass
class Normalizer:
    """z-score statistics: mean and std of shape X.shape[1:] (or (dim,) for sequences)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X) -> "Normalizer":
        flat = np.concatenate(X, axis=0) if isinstance(X, list) else np.asarray(X)
        mean = flat.mean(0, dtype=np.float64)
        std = flat.std(0, dtype=np.float64)
        std[std < MIN_STD] = 1.0  # constant features pass through centred
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def __call__(self, X):
        if isinstance(X, list):
            return [((x - self.mean) / self.std).astype(np.float32) for x in X]
        return ((X - self.mean) / self.std).astype(np.float32)

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict | None) -> "Normalizer | None":
        if not d or "mean" not in d:
            return None
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


def take(X, idx):
    """Rows `idx` of an array or a list of sequences."""
    return [X[i] for i in idx] if isinstance(X, list) else X[idx]


def by_speaker(X, speakers, fallback: Normalizer | None = None, min_rows: int = 2):
    """Each speaker's rows z-scored with that speaker's statistics -> same type and shape as X.

    speakers: (rows,) keys. Rows of a speaker with fewer than `min_rows` rows, and rows whose
    speaker is None or "", are z-scored with `fallback` (default: the statistics of all of X)."""
    speakers = np.asarray(speakers, dtype=object)
    out = list(X) if isinstance(X, list) else np.empty_like(np.asarray(X, dtype=np.float32))
    alone = np.zeros(len(speakers), dtype=bool)
    groups = []  # (rows, the statistics they are z-scored with)
    for spk in dict.fromkeys(speakers.tolist()):
        idx = np.flatnonzero(speakers == spk)
        if spk is None or spk == "" or len(idx) < min_rows:
            alone[idx] = True
        else:
            groups.append((idx, Normalizer.fit(take(X, idx))))
    if alone.any():
        groups.append((np.flatnonzero(alone), fallback if fallback is not None else Normalizer.fit(X)))
    for idx, norm in groups:
        values = norm(take(X, idx))
        if isinstance(out, list):
            for i, x in zip(idx, values):
                out[i] = x
        else:
            out[idx] = values
    return out


@dataclass
class Scaling:
    """What a model's input goes through: optional per-speaker z-score, then an optional global
    z-score fitted on the (speaker-normalised) training rows. Saved with every model."""

    speaker: bool = False
    fallback: Normalizer | None = None  # raw training statistics for rows without usable speaker statistics
    norm: Normalizer | None = None

    @classmethod
    def fit(cls, X, speakers=None, *, speaker: bool = False, standardize: bool = True) -> "Scaling":
        fallback = Normalizer.fit(X) if speaker else None
        if speaker:
            X = by_speaker(X, speakers, fallback)
        return cls(speaker, fallback, Normalizer.fit(X) if standardize else None)

    def __call__(self, X, speakers=None):
        """X as fitted; `speakers` (rows,) is needed for speaker scaling (None: every row uses the fallback)."""
        if self.speaker:
            X = by_speaker(X, speakers if speakers is not None else [None] * len(X), self.fallback)
        return self.norm(X) if self.norm is not None else X

    def to_json(self) -> dict | None:
        if not self.speaker and self.norm is None:
            return None
        out = self.norm.to_json() if self.norm is not None else {}
        if self.speaker:
            out["speaker"] = {"fallback": self.fallback.to_json(), "min_rows": 2}
        return out

    @classmethod
    def from_json(cls, d: dict | None) -> "Scaling":
        if not d:
            return cls()
        spk = d.get("speaker")
        return cls(bool(spk), Normalizer.from_json(spk["fallback"]) if spk else None, Normalizer.from_json(d))
