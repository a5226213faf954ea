"""Read a feature store once into numpy: the model input chosen by a feature spec, labels,
and the identifiers that splits and leakage audits need."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from albsent.dataset.spec import FeatureSpec, assemble, column_info, parse, resolve
from albsent.dataset.splits import make_groups
from albsent.errors import StoreError
from albsent.store import Store, to_matrix, to_sequences

log = logging.getLogger(__name__)

ID_COLUMNS = ["id", "utterance_id", "label", "speaker", "split", "sha256", "start_s", "end_s"]


@dataclass
class Data:
    """One row per store row (utterance or segment).

    X: pooled (rows, dim) | layers (rows, layers, hidden) | sequence list of (frames, dim), float32.
    labels, groups, utterance_ids, ids, sha256, splits: (rows,) object arrays of str (splits may hold None).
    groups: the speaker (or utterance) each row belongs to, merged across identical audio (sha256).
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


def _column(table, name: str, info: dict) -> list:
    """Per-row arrays of one column: (frames, dim) for a sequence column, else the pooled shape."""
    col = table[name]
    return to_sequences(col) if info["shape"][0] is None else list(to_matrix(col))


def load_data(store_uri: str, spec: str | FeatureSpec, group_by: str = "auto") -> Data:
    """Read the columns `spec` needs plus ids and labels from the store, in one pass.

    group_by: "speaker" | "utterance" | "auto" (speaker when every labelled row has one).
    Rows without a label are dropped (logged)."""
    spec = parse(spec) if isinstance(spec, str) else spec
    store = Store(store_uri)
    meta = store.meta
    schema = store.schema
    columns = resolve(spec, column_info(schema, meta), store.uri)  # shapes, dtypes, voicing flags
    table = store.read([c for c in ID_COLUMNS if c in schema.names] + spec.columns)
    labels = np.array(table["label"].to_pylist(), dtype=object)
    keep = np.array([v is not None and v == v and v != "" for v in labels])
    if not keep.any():
        raise StoreError(f"{store.uri}: no row has a label; training needs a labelled store")
    if not keep.all():
        log.warning("%s: dropping %d unlabelled row(s)", store.uri, int((~keep).sum()))
        table = table.filter(keep)
        labels = labels[keep]

    def text(c):
        return np.array(table[c].to_pylist() if c in table.column_names else [None] * table.num_rows, dtype=object)

    # pooled statistics of a frame sequence (mfcc.rich, ...) are computed here, as predict does
    X = assemble(spec, {c: _column(table, c, columns[c]) for c in spec.columns}, columns)
    groups, by = make_groups(text("speaker"), text("utterance_id"), text("sha256"), group_by)
    log.info("%s: %d rows, spec %s (%s), %d %s groups", store.uri, len(labels), spec.text, spec.kind,
             len(set(groups)), by)
    return Data(spec, X, labels.astype(object), groups, by, text("utterance_id"), text("id"), text("sha256"),
                text("split"), columns, store.uri, meta, text("speaker"))
