"""The store's columns: the only place that spells them."""

from __future__ import annotations

import pyarrow as pa

from albsent.features.base import Column
from albsent.store.arrow import arrow_type

# One row per utterance (or per segment of one).
BASE_FIELDS = [
    pa.field("id", pa.string(), nullable=False),  # utterance_id, or utterance_id-sNNNN for segments
    pa.field("utterance_id", pa.string(), nullable=False),
    pa.field("key", pa.string()),  # the input's path relative to the manifest folder / input root
    pa.field("path", pa.string()),  # absolute path that was read
    pa.field("label", pa.string()),
    pa.field("speaker", pa.string()),
    pa.field("split", pa.string()),
    pa.field("sha256", pa.string()),  # of the audio file's bytes
    pa.field("source_sample_rate_hz", pa.int32()),
    pa.field("source_channels", pa.int32()),
    pa.field("utterance_duration_s", pa.float32()),  # after trimming
    pa.field("segment_index", pa.int32()),  # -1: not segmented
    pa.field("start_s", pa.float32()),
    pa.field("end_s", pa.float32()),
    pa.field("duration_s", pa.float32()),  # of this row's audio
]
BASE_NAMES = [f.name for f in BASE_FIELDS]

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("utterance_id", pa.string()),
        pa.field("key", pa.string()),
        pa.field("path", pa.string()),
        pa.field("label", pa.string()),
        pa.field("reason", pa.string()),  # stable code, e.g. not_audio, truncated, too_short
        pa.field("error", pa.string()),  # the full message
    ]
)


def store_schema(feature_columns: list[Column], extra_columns: list[str], metadata: bytes | None = None) -> pa.Schema:
    fields = list(BASE_FIELDS)
    fields += [pa.field(c, pa.string()) for c in extra_columns]
    fields += [pa.field(c.name, arrow_type(c.shape, c.dtype)) for c in feature_columns]
    return pa.schema(fields, metadata={b"albsent": metadata} if metadata else None)
