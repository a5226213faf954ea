"""The per-block work of `albsent extract`, as a plain class (no Ray): decode, preprocess,
extract, write one Parquet part, and return a small summary per input.

Ray Data calls it on blocks of paths (tasks for CPU features, an actor pool when a model is
loaded); tests call it on a hand-made DataFrame."""

from __future__ import annotations

import hashlib
import json
import logging
import traceback

import numpy as np
import pandas as pd
import pyarrow as pa

from albsent.audio.io import decode
from albsent.audio.preprocess import preprocess
from albsent.config import build
from albsent.errors import AudioError
from albsent.features.base import extract_all
from albsent.pipeline.config import ExtractConfig, build_extractors
from albsent.runtime import keep_freed_memory
from albsent.store import Store, store_schema, to_arrow

log = logging.getLogger(__name__)
SUMMARY_COLUMNS = ["utterance_id", "status", "rows", "audio_s", "reason"]


def part_name(utterance_ids) -> str:
    """Deterministic: a retried block overwrites its own part with identical content."""
    return hashlib.sha1("\n".join(sorted(utterance_ids)).encode()).hexdigest()[:20]


class ExtractBlock:
    def __init__(self, config: dict, store_uri: str, meta: dict):
        keep_freed_memory()
        self.config = build(ExtractConfig, config)
        self.extractors = build_extractors(self.config)
        self.columns = [c for e in self.extractors for c in e.columns()]
        self.extra = list(meta["extra_columns"])
        self.schema = store_schema(self.columns, self.extra, json.dumps(meta, sort_keys=True).encode())
        self.store = Store(store_uri)

    def _load(self, item: dict):
        dec = decode(item["path"])
        utt, segs = preprocess(dec.samples, dec.sample_rate_hz, self.config.audio, item["path"])
        return dec, utt, segs

    def _features(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return extract_all(self.extractors, waves)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        items = batch.to_dict("records")
        summary, quarantined, loaded = [], [], []
        for item in items:
            try:
                loaded.append((item, *self._load(item)))
            except AudioError as exc:
                quarantined.append((item, exc.reason, str(exc)))
            except Exception as exc:  # a decoder bug must not stop the job; keep the traceback
                quarantined.append((item, "decode_error", f"{item['path']}: {exc!r}\n{traceback.format_exc(limit=3)}"))
        feats = self._extract_all(loaded, quarantined)
        rows = []
        for (item, dec, utt, segs), seg_feats in zip(loaded, feats):
            if seg_feats is None:
                continue
            for seg, f in zip(segs, seg_feats):
                rows.append(self._row(item, dec, utt, seg, f))
            summary.append((item["utterance_id"], "stored", len(segs), utt.size / self.config.audio.sample_rate_hz, ""))
        summary += [(it["utterance_id"], "quarantined", 0, 0.0, reason) for it, reason, _ in quarantined]
        self.store.write_part(part_name(i["utterance_id"] for i in items), self._table(rows),
                              self._quarantine_table(quarantined))
        return pd.DataFrame(summary, columns=SUMMARY_COLUMNS)

    def _extract_all(self, loaded, quarantined) -> list:
        """Features for every segment of every loaded clip, batched across clips; if the batch
        fails, retry clip by clip so only the failing clip is quarantined."""
        waves = [s.samples for _, _, _, segs in loaded for s in segs]
        try:
            flat = self._features(waves) if waves else []
            out, i = [], 0
            for _, _, _, segs in loaded:
                out.append(flat[i : i + len(segs)])
                i += len(segs)
            return out
        except Exception:
            log.warning("batch feature extraction failed; retrying clip by clip", exc_info=True)
        out = []
        for item, _, _, segs in loaded:
            try:
                out.append(self._features([s.samples for s in segs]))
            except Exception as exc:
                quarantined.append((item, "extract_error", f"{item['path']}: feature extraction failed: {exc!r}"))
                out.append(None)
        return out

    def _row(self, item, dec, utt, seg, feats) -> dict:
        sr = self.config.audio.sample_rate_hz
        rid = item["utterance_id"] if seg.index < 0 else f"{item['utterance_id']}-s{seg.index:04d}"
        row = {
            "id": rid, "utterance_id": item["utterance_id"], "key": item["key"], "path": item["path"],
            "label": item.get("label"), "speaker": item.get("speaker"), "split": item.get("split"),
            "sha256": dec.sha256, "source_sample_rate_hz": dec.sample_rate_hz, "source_channels": dec.channels,
            "utterance_duration_s": utt.size / sr, "segment_index": seg.index, "start_s": seg.start_s,
            "end_s": seg.end_s, "duration_s": seg.samples.size / sr,
        }
        row.update({c: item.get(c) for c in self.extra})
        row.update(feats)
        return row

    def _table(self, rows: list[dict]) -> pa.Table | None:
        if not rows:
            return None
        features = {c.name: c for c in self.columns}
        arrays = []
        for f in self.schema:
            if f.name in features:
                col = features[f.name]
                arrays.append(to_arrow([r[f.name] for r in rows], col.shape, col.dtype))
            else:
                arrays.append(pa.array([_clean(r.get(f.name)) for r in rows], type=f.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _quarantine_table(quarantined) -> pa.Table | None:
        if not quarantined:
            return None
        recs = [
            {"utterance_id": it["utterance_id"], "key": it["key"], "path": it["path"], "label": _clean(it.get("label")),
             "reason": r, "error": e}
            for it, r, e in quarantined
        ]
        return pa.Table.from_pylist(recs)


def _clean(v):
    """pandas gives NaN for missing strings; Arrow wants None."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v

