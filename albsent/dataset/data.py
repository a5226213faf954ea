"""Read a feature store once into numpy: the model input chosen by a feature spec, labels,
and the identifiers that splits and leakage audits need. The one reader of stores for
train, probe, pretrain and sweep.

    load_data(store, "mfcc")               labelled rows -> pooled X (rows, dim)        (train, probe, sweep)
    load_data(store, "mfcc:seq")           labelled rows -> X: list of (frames, dim)     (probe)
    load_frames(store, "mfcc")             every row, labels ignored -> frame sequences  (pretrain)
    load_data(store, "mfcc", augmented=True)   + data.copies: the augmented copies (train --augmented)

Augmented copies (`extract --augment`) are never rows of a Data: splits, folds and leakage audits
see the store's own rows only, so they are the same with or without augmentation. A model's
training part takes the copies of its own training rows (`training_rows`), so a copy is only ever
trained on beside its source, never validated or tested on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from albsent.dataset.normalize import take
from albsent.dataset.spec import FeatureSpec, assemble, column_info, parse, resolve
from albsent.dataset.splits import make_groups
from albsent.errors import ConfigError, StoreError
from albsent.store import Store, to_matrix, to_sequences
from albsent.store.schema import AUGMENT_OF

log = logging.getLogger(__name__)

ID_COLUMNS = ["id", "utterance_id", "label", "speaker", "split", "sha256", "start_s", "end_s"]


@dataclass
class Copies:
    """The augmented copies of a Data's rows (`train --augmented`).

    X: as Data.X, one entry per copy; source: (copies,) int64, the Data row of each copy's source
    utterance (its first row when segmented: a copy's segments need not match its source's);
    ids: (copies,) the copies' store row ids."""

    X: np.ndarray | list
    source: np.ndarray
    ids: np.ndarray


@dataclass
class Data:
    """One row per store row (utterance or segment).

    X: pooled (rows, dim) | layers (rows, layers, hidden) | sequence list of (frames, dim), float32.
    labels, groups, utterance_ids, ids, sha256, splits: (rows,) object arrays of str (splits may hold None;
    labels too, for data read with `labeled=False`).
    groups: the speaker (or utterance) each row belongs to, merged across identical audio (sha256).
    feature_names: one name per frame dimension (sequence specs read from a store; else empty).
    """

    spec: FeatureSpec
    X: np.ndarray | list
    labels: np.ndarray
    groups: np.ndarray
    group_by: str  # "speaker" | "utterance"
    utterance_ids: np.ndarray
    ids: np.ndarray
    sha256: np.ndarray
    splits: np.ndarray
    columns: dict[str, dict] = field(default_factory=dict)  # resolved column shapes/dtypes (+ voicing flags)
    store_uri: str = ""
    store_meta: dict = field(default_factory=dict)
    speakers: np.ndarray | None = None  # (rows,) the speaker column as stored (None or "" where unknown)
    feature_names: list[str] = field(default_factory=list)
    copies: Copies | None = None  # read with augmented=True only

    @property
    def has_speakers(self) -> bool:
        """Every row has a speaker (speaker normalisation and speaker-independent splits need it)."""
        return self.speakers is not None and all(s is not None and s == s and str(s).strip() != ""
                                                 for s in self.speakers)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label_names(self) -> list[str]:
        return sorted(set(self.labels.tolist()))

    def class_indices(self, needs: str) -> np.ndarray:
        """(rows,) int64: each row's label as an index into `label_names`. A ConfigError naming what
        `needs` them (e.g. "a classifier") when the rows hold fewer than two classes."""
        names = self.label_names
        require_two_classes(names, self.store_uri or "the data", needs)
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[v] for v in self.labels.tolist()], dtype=np.int64)

    @property
    def dim(self) -> int:
        """Values per frame of a sequence input, per row of a pooled one (hidden size for layer stacks)."""
        return int(self.X[0].shape[-1])


COPY_SPEAKER = "{}~augmented"  # the speaker key of a speaker's copies in per-speaker normalisation


@dataclass
class TrainingRows:
    """What a model trains on: the rows of a training part, then (augmented training) the augmented
    copies of those rows (`training_rows`).

    X: as Data.X; source: (n,) int64, the Data row each input comes from (a copy: its source's row;
    labels, speakers and groups follow from it); copy: (n,) bool, an augmented copy."""

    X: np.ndarray | list
    source: np.ndarray
    copy: np.ndarray

    def speakers(self, speakers: np.ndarray) -> np.ndarray:
        """(n,) speaker keys for per-speaker normalisation. A speaker's copies form a speaker of their
        own (COPY_SPEAKER), so the statistics of a real speaker are those of its recordings, as for a
        speaker being predicted, and a noisy copy is scaled by noisy statistics, as a noisy recording."""
        keys = np.asarray(speakers, dtype=object)[self.source].copy()
        keys[self.copy] = [COPY_SPEAKER.format(s) if s is not None and s == s and str(s) != "" else s
                           for s in keys[self.copy].tolist()]
        return keys


def training_rows(data: Data, rows: np.ndarray, augmented: bool = False, transform=None) -> TrainingRows:
    """The inputs of training part `rows` (Data row indices), followed with `augmented` by the
    augmented copies whose source row is among them. transform(X) -> X is applied to the rows
    taken, per row (e.g. a frame stride). A ConfigError when `augmented` and the data holds no copies."""
    transform = transform or (lambda X: X)
    X = transform(take(data.X, rows))
    if not augmented:
        return TrainingRows(X, np.asarray(rows, np.int64), np.zeros(len(rows), bool))
    if data.copies is None:
        raise ConfigError(f"{data.store_uri or 'the data'}: training with augmented copies needs a store extracted "
                          "with --augment SPEC (e.g. --augment default) and the data read with augmented=True")
    picked = np.flatnonzero(np.isin(data.copies.source, rows))
    CX = transform(take(data.copies.X, picked))
    X = X + CX if isinstance(X, list) else np.concatenate([X, CX])
    source = np.concatenate([np.asarray(rows, np.int64), data.copies.source[picked]])
    return TrainingRows(X, source, np.arange(len(source)) >= len(rows))


def require_two_classes(names, where: str, needs: str) -> None:
    """The one "at least two classes" rule (train, selection, probe): a ConfigError saying where the
    labels come from and what `needs` two classes."""
    if len(names) < 2:
        found = f"every labelled row has label {names[0]!r}" if len(names) else "no row has a label"
        raise ConfigError(f"{where}: {found}; {needs} needs at least two classes")


def sequence_spec(text: str) -> FeatureSpec:
    """`mfcc` -> `mfcc:seq`; anything else must already be a sequence spec (pretraining's input)."""
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


def frame_feature_names(meta: dict, spec: FeatureSpec, info: dict) -> list[str]:
    """One name per frame dimension of a sequence spec: the extractor's feature names where the
    store metadata has them (e.g. mfcc_0, ...), else COLUMN_i."""
    names: list[str] = []
    for part in spec.parts:
        found = next((e.get("feature_names") for e in meta.get("extractors", {}).values()
                      if part.column in e.get("columns", {}) and e.get("feature_names")), None)
        dim = int(np.prod([d for d in info[part.column]["shape"] if d is not None]))
        names += found if found and len(found) == dim else [f"{part.column}_{i}" for i in range(dim)]
    return names


def _column(table, name: str, info: dict) -> list:
    """Per-row arrays of one column: (frames, dim) for a sequence column, else the pooled shape."""
    col = table[name]
    return to_sequences(col) if info["shape"][0] is None else list(to_matrix(col))


def load_data(store_uri: str, spec: str | FeatureSpec, group_by: str = "auto", labeled: bool = True,
              augmented: bool = False) -> Data:
    """Read the columns `spec` needs plus ids and labels from the store, in one pass.

    group_by: "speaker" | "utterance" | "auto" (speaker when every row has one).
    labeled: rows without a label are dropped (logged), and a store without any is an error;
    False keeps every row (labels may be None: pretraining needs none).
    augmented: also read the store's augmented copies into `Data.copies` (a store extracted
    without --augment is an error); otherwise they are not read."""
    spec = parse(spec) if isinstance(spec, str) else spec
    store = Store(store_uri)
    meta = store.meta
    schema = store.schema
    if augmented and AUGMENT_OF not in schema.names:
        raise ConfigError(f"{store.uri}: the store has no augmented copies; extract it with --augment SPEC (e.g. "
                          "--augment default) to train with --augmented")
    columns = resolve(spec, column_info(schema, meta), store.uri)  # shapes, dtypes, voicing flags
    read = [c for c in ID_COLUMNS if c in schema.names] + ([AUGMENT_OF] if augmented else []) + spec.columns
    table = store.read(read, copies=augmented)
    copies = None
    if augmented:
        is_copy = np.array([v is not None for v in table[AUGMENT_OF].to_pylist()], dtype=bool)
        copies, table = table.filter(is_copy), table.filter(~is_copy)

    def text(c):
        return np.array(table[c].to_pylist() if c in table.column_names else [None] * table.num_rows, dtype=object)

    labels = text("label")
    if labeled:
        keep = np.array([v is not None and v == v and v != "" for v in labels], dtype=bool)
        if not keep.any():
            raise StoreError(f"{store.uri}: no row has a label; training needs a labelled store")
        if not keep.all():
            log.warning("%s: dropping %d unlabelled row(s)", store.uri, int((~keep).sum()))
            table = table.filter(keep)
            labels = labels[keep]
    elif not table.num_rows:
        raise StoreError(f"{store.uri}: no rows to read")

    # pooled statistics of a frame sequence (mfcc.rich, ...) are computed here, as predict does
    X = assemble(spec, {c: _column(table, c, columns[c]) for c in spec.columns}, columns)
    groups, by = make_groups(text("speaker"), text("utterance_id"), text("sha256"), group_by)
    names = frame_feature_names(meta, spec, columns) if spec.kind == "sequence" else []
    log.info("%s: %d rows, spec %s (%s), %d %s groups", store.uri, len(labels), spec.text, spec.kind,
             len(set(groups)), by)
    data = Data(spec, X, labels, groups, by, text("utterance_id"), text("id"), text("sha256"),
                text("split"), columns, store.uri, meta, text("speaker"), names)
    if copies is not None:
        data.copies = _copies(copies, data, columns)
    return data


def _copies(table, data: Data, columns: dict) -> Copies:
    """The augmented copies in `table` whose source utterance is a row of `data` (copies of
    unlabelled rows go with them)."""
    first: dict[str, int] = {}
    for i, u in enumerate(data.utterance_ids.tolist()):
        first.setdefault(u, i)
    source = np.array([first.get(u, -1) for u in table["utterance_id"].to_pylist()], dtype=np.int64)
    table = table.filter(source >= 0)
    source = source[source >= 0]
    X = assemble(data.spec, {c: _column(table, c, columns[c]) for c in data.spec.columns}, columns)
    log.info("%s: %d augmented copies of %d rows", data.store_uri, len(source), len(set(source.tolist())))
    return Copies(X, source, np.array(table["id"].to_pylist(), dtype=object))


def load_frames(store_uri: str, features: str | FeatureSpec) -> Data:
    """Every row's frame sequences of `features` (`mfcc` means `mfcc:seq`), labelled or not:
    pretraining's input. Labels, if any, are kept but not needed; groups are by utterance."""
    spec = sequence_spec(features) if isinstance(features, str) else features
    data = load_data(store_uri, spec, group_by="utterance", labeled=False)
    log.info("%s: %d sequences, %d frames, dim %d", data.store_uri, len(data.X), sum(len(s) for s in data.X),
             data.dim)
    return data
