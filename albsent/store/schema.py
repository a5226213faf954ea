"""The store's columns: the only place that spells them.

Feature columns belong to a *group*: an extractor's name (mfcc, shortterm, egemaps) or
`ssl_ALIAS` for one SSL model. Their names are built and parsed only here::

    GROUP           (frames, dim)             frame sequence                  sequence_column(group)
    GROUP_STAT      (dim,) | (layers, hidden) pooled statistic, STAT in POOLED_STATS
                                                                              pooled_column(group, stat)
    ssl_ALIAS_lK    (frames, hidden)          frame sequence of SSL layer K   layer_column(alias, k)

A `Column` describes one stored feature column (extractors list theirs). Nothing here, nor
anywhere in albsent.store, imports albsent.features (which imports this).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import pyarrow as pa

from albsent.store.arrow import arrow_type

# One row per utterance (or per segment of one).
BASE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),  # utterance_id, or utterance_id-sNNNN for segments
    pa.field("utterance_id", pa.string(), nullable=False),
    pa.field("key", pa.string()),  # the input's path relative to the manifest folder / input root
    pa.field("path", pa.string()),  # absolute path (or URI) that was read: with sha256, the row's identity
    pa.field("label", pa.string()),
    pa.field("speaker", pa.string()),
    pa.field("split", pa.string()),
    pa.field("sha256", pa.string()),  # of the audio file's bytes
    pa.field("source_bytes", pa.int64()),  # size and modification time when planned: a changed file
    pa.field("source_mtime_ns", pa.int64()),  # is re-hashed, and re-extracted if its sha256 changed
    pa.field("source_sample_rate_hz", pa.int32()),
    pa.field("source_channels", pa.int32()),
    pa.field("utterance_duration_s", pa.float32()),  # after trimming
    pa.field("segment_index", pa.int32()),  # -1: not segmented
    pa.field("start_s", pa.float32()),
    pa.field("end_s", pa.float32()),
    pa.field("duration_s", pa.float32()),  # of this row's audio
]
BASE_NAMES = [f.name for f in BASE_FIELDS]
# In a store extracted with augmentation (`extract --augment`) only: an augmented copy's rows share its
# source's utterance_id, speaker, label, path and sha256; their id is UTTERANCE-aK (-sNNNN for segments).
AUGMENT_OF = "augment_of"
AUGMENT_FIELDS = [
    pa.field(AUGMENT_OF, pa.string()),  # the source's utterance_id; null on the source's own rows
    pa.field("augment", pa.string()),  # JSON of the copy's parameters (albsent.audio.augment.draw)
]
# What a manifest says about an input (relabelled in place when only these change).
MANIFEST_FIELDS = ["label", "speaker", "split"]
FINGERPRINT = ["source_bytes", "source_mtime_ns"]

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("utterance_id", pa.string()),
        pa.field("key", pa.string()),
        pa.field("path", pa.string()),
        pa.field("label", pa.string()),
        pa.field("sha256", pa.string()),  # null when the file could not be read
        pa.field("source_bytes", pa.int64()),  # as planned: a quarantined file whose size or mtime
        pa.field("source_mtime_ns", pa.int64()),  # changed since is retried automatically
        pa.field("reason", pa.string()),  # stable code, e.g. not_audio, truncated, too_short
        pa.field("error", pa.string()),  # the full message
    ]
)


POOLED_STATS = ("mean", "std", "func")  # stored pooled columns GROUP_<stat> (func: openSMILE functionals)
SSL_PREFIX = "ssl_"
_LAYER = re.compile(r"^(ssl_.+)_l(\d+)$")


class ColumnName(NamedTuple):
    group: str  # mfcc, shortterm, ssl_hubert, ...
    kind: str  # "sequence" | "pooled" | "layer"
    detail: str | int | None  # pooled: the statistic; layer: its index; sequence: None


@dataclass(frozen=True)
class Column:
    """One stored feature column. `shape` is the shape of one value; None marks the frame axis."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str  # "float16" | "float32"
    kind: str  # "sequence" | "pooled"


def sequence_column(group: str) -> str:
    """mfcc -> mfcc: the frame sequence (frames, dim) of a group."""
    return group


def pooled_column(group: str, stat: str) -> str:
    """(mfcc, mean) -> mfcc_mean; (ssl_hubert, mean) -> ssl_hubert_mean."""
    if stat not in POOLED_STATS:
        raise ValueError(f"stored pooled statistic must be one of {POOLED_STATS}. Got {stat!r} instead.")
    return f"{group}_{stat}"


def ssl_group(alias: str) -> str:
    """hubert -> ssl_hubert: the group of an SSL model's columns."""
    return f"{SSL_PREFIX}{alias}"


def ssl_alias(group: str) -> str | None:
    """ssl_hubert -> hubert; None for a group that is not an SSL model's."""
    return group[len(SSL_PREFIX):] if group.startswith(SSL_PREFIX) and len(group) > len(SSL_PREFIX) else None


def layer_column(alias: str, k: int) -> str:
    """(hubert, 9) -> ssl_hubert_l9: the frame sequence of one SSL layer."""
    return f"{ssl_group(alias)}_l{int(k)}"


def parse_column(name: str) -> ColumnName:
    """mfcc_mean -> (mfcc, pooled, mean); ssl_hubert_l9 -> (ssl_hubert, layer, 9); mfcc -> (mfcc, sequence, None).
    The inverse of the builders above for every name they produce."""
    for stat in POOLED_STATS:
        if name.endswith(f"_{stat}") and len(name) > len(stat) + 1:
            return ColumnName(name[: -len(stat) - 1], "pooled", stat)
    m = _LAYER.match(name)
    if m:
        return ColumnName(m.group(1), "layer", int(m.group(2)))
    return ColumnName(name, "sequence", None)


def ssl_layer_counts(info: dict[str, dict]) -> dict[str, int]:
    """{alias: number of layers} of the SSL models whose pooled (layers, hidden) column
    ssl_ALIAS_mean is in `info` ({column: {"shape": [...]}}, albsent.dataset.spec.column_info)."""
    out = {}
    for col, meta in info.items():
        c = parse_column(col)
        alias = ssl_alias(c.group)
        if alias and c.kind == "pooled" and c.detail == "mean" and len(meta["shape"]) == 2:
            out[alias] = meta["shape"][0]
    return out


def copy_id(utterance_id: str, copy: int) -> str:
    """The id of augmented copy `copy` (1-based) of an utterance (segments append -sNNNN)."""
    return f"{utterance_id}-a{copy}"


def store_schema(feature_columns: list[Column], extra_columns: list[str], metadata: bytes | None = None,
                 augmented: bool = False) -> pa.Schema:
    fields = list(BASE_FIELDS) + (AUGMENT_FIELDS if augmented else [])
    fields += [pa.field(c, pa.string()) for c in extra_columns]
    fields += [pa.field(c.name, arrow_type(c.shape, c.dtype)) for c in feature_columns]
    return pa.schema(fields, metadata={b"albsent": metadata} if metadata else None)
