"""Grouped, stratified train/validation/test splits and K folds, plus a leakage audit.

A *group* is what must never straddle splits: the speaker (speaker-independent evaluation)
or the utterance (segments of one recording stay together). Rows whose audio bytes are
identical (same sha256) are merged into one group first, so a file listed twice cannot leak.
Stratification is by label within scikit-learn's StratifiedGroupKFold, so class proportions
follow the corpus as closely as whole groups allow. Unlabelled rows (pretraining) get a seeded
random hold-out of whole utterances instead (`holdout_utterances`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from albsent.config import require
from albsent.errors import AlbsentError, ConfigError

log = logging.getLogger(__name__)


class LeakageError(AlbsentError):
    """A group, utterance or audio file appears in more than one split."""


@dataclass
class SplitConfig:
    group_by: Literal["auto", "speaker", "utterance"] = "auto"  # auto: speaker when the store has speakers
    test_fraction: float = 0.2  # single split: share of groups held out for test
    val_fraction: float = 0.1  # share of the whole corpus used for early stopping (0: none)
    folds: int = 1  # >= 2: grouped stratified K-fold (each fold's test = 1/K of the groups)
    from_column: bool = False  # use the store's `split` column (train / val / test) instead

    def __post_init__(self):
        require(0 < self.test_fraction < 1, self, "test_fraction", self.test_fraction, "a float in (0, 1)")
        require(0 <= self.val_fraction < 1 - self.test_fraction or self.val_fraction == 0, self, "val_fraction",
                self.val_fraction, f"a float in [0, {1 - self.test_fraction:g})")
        require(self.folds >= 1, self, "folds", self.folds, "an int >= 1 (1: one train/val/test split)")
        require(not (self.from_column and self.folds > 1), self, "from_column", self.from_column,
                "false when folds > 1")


@dataclass
class Split:
    """Row indices of each part; val may be empty (no early stopping)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


def make_groups(speakers, utterance_ids, sha256, group_by: str = "auto") -> tuple[np.ndarray, str]:
    """(rows,) group keys and the grouping used. Rows sharing a sha256 join one group (union-find)."""
    has_speaker = all(s is not None and s == s and str(s) != "" for s in speakers)
    if group_by == "speaker" and not has_speaker:
        raise ConfigError("split.group_by is 'speaker' but some rows have no speaker; "
                          "add a speaker column to the manifest or use 'utterance'")
    by = "speaker" if group_by == "speaker" or (group_by == "auto" and has_speaker) else "utterance"
    base = [f"{by}:{s}" for s in (speakers if by == "speaker" else utterance_ids)]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g, h in zip(base, sha256):
        if h:
            parent[find(g)] = find(f"sha:{h}")
    return np.array([find(g) for g in base], dtype=object), by


def _group_folds(labels, groups, n_splits: int, seed: int, what: str) -> list[np.ndarray]:
    """Test indices of `n_splits` grouped stratified folds over the given rows."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(set(groups))
    if n_groups < n_splits:
        if n_groups < 2:
            raise ConfigError(f"cannot split {what}: only {n_groups} group(s); a grouped split needs at least 2 "
                              "(use more speakers, or split.group_by=utterance)")
        log.warning("%s: %d groups, fewer than the %d folds asked; using %d", what, n_groups, n_splits, n_groups)
        n_splits = n_groups
    smallest = int(min(np.unique(labels, return_counts=True)[1]))
    if smallest < n_splits:
        if smallest < 2:
            raise ConfigError(f"cannot split {what}: a class has only {smallest} row(s) here; "
                              "stratified splits need at least 2 per class")
        log.warning("%s: the smallest class has %d rows, fewer than the %d folds asked; using %d",
                    what, smallest, n_splits, smallest)
        n_splits = smallest
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [test for _, test in cv.split(np.zeros(len(labels)), labels, groups)]


def stratified_folds(labels, groups, n_splits: int, seed: int, what: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of `n_splits` stratified folds: grouped as `kfold`'s when `groups`
    is given, else by row (scikit-learn's StratifiedKFold, shuffled with `seed`). Used inside a
    training part, e.g. an SVM's probability calibration (albsent.train.estimators)."""
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if groups is None:
        from sklearn.model_selection import StratifiedKFold

        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return list(cv.split(np.zeros(len(labels)), labels))
    return [(np.setdiff1d(rows, test), test) for test in _group_folds(labels, np.asarray(groups), n_splits, seed, what)]


_WARNED: set[tuple[str, str]] = set()  # (class, speaker) already warned about in this process


def warn_single_speaker_classes(labels, groups) -> list[str]:
    """Warn (once per class and speaker) about each class all of whose rows come from one speaker:
    speaker-independent splits put that class wholly in training or wholly in test, so no fold
    both learns it and tests it on another voice, and its scores measure the speaker, not the
    class. Returns those classes."""
    labels, groups = np.asarray(labels, dtype=object), np.asarray(groups, dtype=object)
    lone = []
    for label in sorted({str(v) for v in labels}):
        speakers = set(groups[labels == label].tolist())
        if len(speakers) == 1 and str(next(iter(speakers))).startswith("speaker:"):
            who = str(next(iter(speakers)))[len("speaker:"):]
            lone.append(label)
            if (label, who) not in _WARNED:
                _WARNED.add((label, who))
                log.warning("class %r is spoken by one speaker only (%s): speaker-independent splits never train and "
                            "test it on different voices, so its scores say little about new speakers; record it from "
                            "more speakers, or split by utterance (--split utterance) knowing that is easier",
                            label, who)
    return lone


def class_rows_error(names, counts, folds: int, where: str, flag: str = "--folds") -> ConfigError | None:
    """The error for a class with fewer rows than `folds` (each fold needs each class), with the
    advice that works: fewer folds only when the class has at least 2 rows, else more data."""
    counts = np.asarray(counts)
    smallest = int(counts.min())
    if smallest >= folds:
        return None
    small = names[int(counts.argmin())]
    if smallest >= 2:
        fix = f"use {flag} {smallest} or label more data"
    else:
        fix = (f"no number of folds can do that: label at least {2 - smallest} more row(s) of {small!r} or leave the "
               "class out (drop its rows, or map it with label_map)")
    return ConfigError(f"{where}: class {small!r} has {smallest} row(s), fewer than the {folds} folds; every fold "
                       f"needs each class: {fix}")


def _carve_val(rest: np.ndarray, labels, groups, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split rows `rest` into (train, val) with about `val_share` of them in val."""
    if val_share <= 0:
        return rest, rest[:0]
    n = max(2, int(round(1 / val_share)))
    folds = _group_folds(labels[rest], groups[rest], n, seed, "the validation split")
    val = rest[folds[seed % len(folds)]]
    return np.setdiff1d(rest, val), np.sort(val)


def train_val_test(labels, groups, test_fraction: float = 0.2, val_fraction: float = 0.1, seed: int = 0) -> Split:
    labels, groups = np.asarray(labels), np.asarray(groups)
    warn_single_speaker_classes(labels, groups)
    need = 3 if val_fraction > 0 else 2
    if len(set(groups)) < need:
        raise ConfigError(f"a grouped train/{'val/' if need == 3 else ''}test split needs at least {need} groups, "
                          f"found {len(set(groups))}; "
                          "use more speakers, split.group_by=utterance or split.val_fraction=0")
    # StratifiedGroupKFold's shuffle only breaks ties, so the seed also picks which fold is held out.
    folds = _group_folds(labels, groups, max(2, int(round(1 / test_fraction))), seed, "the test split")
    test = np.sort(folds[seed % len(folds)])
    rest = np.setdiff1d(np.arange(len(labels)), test)
    train, val = _carve_val(rest, labels, groups, val_fraction / (1 - test_fraction), seed + 1)
    return Split(train, val, test)


def kfold(labels, groups, k: int, val_fraction: float = 0.1, seed: int = 0) -> list[Split]:
    """K grouped stratified folds; every row is in exactly one fold's test part."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    warn_single_speaker_classes(labels, groups)
    out = []
    for i, test in enumerate(_group_folds(labels, groups, k, seed, f"{k}-fold cross-validation")):
        rest = np.setdiff1d(np.arange(len(labels)), test)
        train, val = _carve_val(rest, labels, groups, val_fraction * k / (k - 1) if k > 1 else val_fraction,
                                seed + 1 + i)
        out.append(Split(train, val, np.sort(test)))
    return out


def holdout_utterances(utterance_ids, sha256, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, held-out) row indices without labels (pretraining's validation split): about
    `fraction` of the utterance groups are held out whole. Segments of one utterance and rows of
    identical audio (sha256, as in `make_groups`) stay together; a row without an utterance id is
    its own group. Held-out is empty when `fraction` is 0 or there are fewer than 2 groups.

    The groups, ordered by their smallest utterance id, are permuted by `seed`: the same seed
    gives the same split whatever the row order."""
    n = len(utterance_ids)
    utts = np.array([u if u is not None else f"row{i}" for i, u in enumerate(utterance_ids)], dtype=object)
    groups, _ = make_groups([None] * n, utts, sha256 if sha256 is not None else [None] * n, "utterance")
    first: dict[str, str] = {}  # group -> its smallest utterance id
    for g, u in zip(groups.tolist(), utts.tolist()):
        first[g] = min(first.get(g, u), u)
    ordered = sorted(first, key=first.__getitem__)
    n_held = int(round(len(ordered) * fraction)) if len(ordered) >= 2 else 0
    held = {ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))[:n_held]}
    mask = np.array([g in held for g in groups.tolist()], dtype=bool)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def from_column(splits) -> Split:
    names = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
    values = [names.get(str(s).lower()) if s is not None else None for s in splits]
    bad = sorted({str(s) for s, v in zip(splits, values) if v is None})
    if bad:
        raise ConfigError(f"split.from_column: the store's split column has value(s) {bad}; "
                          "expected train, val or test")
    values = np.array(values, dtype=object)
    return Split(*(np.flatnonzero(values == p) for p in ("train", "val", "test")))


def make_splits(config: SplitConfig, labels, groups, splits_column=None, seed: int = 0) -> list[Split]:
    """The splits a run evaluates on: one, or `config.folds` folds."""
    if config.from_column:
        return [from_column(splits_column)]
    if config.folds > 1:
        return kfold(labels, groups, config.folds, config.val_fraction, seed)
    return [train_val_test(labels, groups, config.test_fraction, config.val_fraction, seed)]


def audit(split: Split, **keys) -> dict:
    """Raise LeakageError if any value of any key array (e.g. groups=, sha256=, utterance_ids=)
    occurs in two parts, or a row is in two parts. Returns a summary for metrics.json."""
    parts = {k: v for k, v in split.parts().items() if len(v)}
    rows = np.concatenate(list(parts.values()))
    if len(np.unique(rows)) != len(rows):
        raise LeakageError("leakage audit failed: a row is in more than one split")
    summary: dict = {"passed": True, "rows": {k: int(len(v)) for k, v in split.parts().items()}}
    for key, values in keys.items():
        values = np.asarray(values, dtype=object)
        seen: dict[str, str] = {}
        for name, idx in parts.items():
            for v in set(values[idx].tolist()) - {None, ""}:
                if v in seen:
                    raise LeakageError(f"leakage audit failed: {key} {v!r} is in both the {seen[v]} and {name} splits")
                seen[v] = name
        summary[key] = {name: len(set(values[idx].tolist())) for name, idx in parts.items()}
    return summary
