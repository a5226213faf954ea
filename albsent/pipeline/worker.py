"""The per-block work of `albsent extract`, as a plain class (no Ray): decode, preprocess,
extract, write one Parquet part, and return a small summary per input.

Ray Data calls it on blocks of paths (tasks for CPU features, an actor pool when a model is
loaded); tests call it on a hand-made DataFrame."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from albsent.audio import augment
from albsent.audio.io import Decoded, decode
from albsent.audio.preprocess import finish, trimmed
from albsent.config import build
from albsent.errors import AudioError
from albsent.features.base import extract_segments
from albsent.features.config import ExtractConfig, build_extractors
from albsent.runtime import keep_freed_memory
from albsent.store import QUARANTINE_SCHEMA, Store, store_schema, to_arrow
from albsent.store.arrow import scalar
from albsent.store.schema import AUGMENT_OF, copy_id

log = logging.getLogger(__name__)
# per input; extract_s: seconds the block spent computing features (on its first row, else 0)
SUMMARY_COLUMNS = ["utterance_id", "status", "rows", "audio_s", "reason", "extract_s"]


@dataclass
class Copy:
    """One augmented copy of a loaded input: its parameters (albsent.audio.augment.draw), its
    trimmed utterance and its segments."""

    params: dict
    utt: np.ndarray
    segs: list


@dataclass
class Loaded:
    """One usable input of a block: its manifest item, the decoded audio, the trimmed utterance
    (only its .size is read after decoding), its segments (albsent.audio.preprocess.Segment) and
    its augmented copies (`extract --augment`)."""

    item: dict
    dec: Decoded
    utt: np.ndarray
    segs: list
    copies: list[Copy] = field(default_factory=list)

    def rows(self) -> list[tuple[str, object, Copy | None]]:
        """(row id, segment, copy or None) of every row this input stores: its own, then each copy's."""
        uid = self.item["utterance_id"]
        own = [(row_id(uid, seg), seg, None) for seg in self.segs]
        return own + [(row_id(copy_id(uid, c.params["copy"]), seg), seg, c) for c in self.copies for seg in c.segs]


def row_id(utterance_id: str, seg) -> str:
    return utterance_id if seg.index < 0 else f"{utterance_id}-s{seg.index:04d}"


@dataclass
class Quarantined:
    """One input of a block that is not stored: why (`reason`, a short code) and the message."""

    item: dict
    reason: str
    error: str


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
        self.schema = store_schema(self.columns, self.extra, json.dumps(meta, sort_keys=True).encode(),
                                   augmented=bool(self.config.augment.copies))
        self.store = Store(store_uri)

    def _load(self, item: dict) -> Loaded:
        dec = decode(item["path"])
        x = trimmed(dec.samples, dec.sample_rate_hz, self.config.audio, item["path"])  # once, for the copies too
        utt, segs = finish(x, self.config.audio, item["path"])
        return Loaded(item, dec, utt, segs, self._copies(item, x))

    def _copies(self, item: dict, x: np.ndarray) -> list[Copy]:
        """The input's augmented copies of its trimmed utterance `x`; a copy that preprocessing refuses
        (e.g. too short once sped up) is left out with a warning: its source is stored all the same."""
        aug, sr = self.config.augment, self.config.audio.sample_rate_hz
        out = []
        for k in range(1, aug.copies + 1):
            params = augment.draw(aug, item["utterance_id"], k)
            try:
                utt, segs = finish(x, self.config.audio, item["path"],
                                   augment=lambda y, p=params: augment.apply(y, sr, p))
            except AudioError as exc:
                log.warning("%s: augmented copy %d left out: %s", item["path"], k, exc)
                continue
            out.append(Copy(params, utt, segs))
        return out

    def _features(self, segs: list) -> list[dict[str, np.ndarray]]:
        """Columns of every extractor per segment (albsent.audio.preprocess.Segment)."""
        return extract_segments(self.extractors, segs)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        items = batch.to_dict("records")
        loaded, quarantined = self.decode(items)
        t = time.perf_counter()
        feats = self._extract_all(loaded, quarantined)
        return self.write(items, loaded, feats, quarantined, time.perf_counter() - t)

    def decode(self, items: list[dict]) -> tuple[list[Loaded], list[Quarantined]]:
        """-> (one Loaded per usable input, one Quarantined per other input)."""
        loaded, quarantined = [], []
        for item in items:
            try:
                loaded.append(self._load(item))
            except AudioError as exc:
                quarantined.append(Quarantined(item, exc.reason, str(exc)))
            except Exception as exc:  # a decoder bug must not stop the job; keep the traceback
                quarantined.append(Quarantined(item, "decode_error",
                                               f"{item['path']}: {exc!r}\n{traceback.format_exc(limit=3)}"))
        return loaded, quarantined

    def write(self, items: list[dict], loaded: list[Loaded], feats: list, quarantined: list[Quarantined],
              extract_s: float = 0.0) -> pd.DataFrame:
        """Write one part (rows, then quarantine entries) named by the inputs of the block;
        return the per-input summary."""
        sha = {x.item["utterance_id"]: x.dec.sha256 for x in loaded}
        rows, summary = [], []
        for x, seg_feats in zip(loaded, feats):
            if seg_feats is None:
                continue
            for (rid, seg, copy), f in zip(x.rows(), seg_feats):
                rows.append(self._row(rid, x, seg, copy, f))
            summary.append((x.item["utterance_id"], "stored", len(seg_feats),
                            x.utt.size / self.config.audio.sample_rate_hz, "", 0.0))
        summary += quarantined_summary(quarantined)
        self.store.write_part(part_name(i["utterance_id"] for i in items), self._table(rows),
                              self._quarantine_table(quarantined, sha))
        return with_extract_s(pd.DataFrame(summary, columns=SUMMARY_COLUMNS), extract_s)

    def _extract_all(self, loaded: list[Loaded], quarantined: list[Quarantined]) -> list:
        """Features for every segment of every loaded clip, batched across clips; if the batch
        fails, retry clip by clip so only the failing clip is quarantined."""
        segs = [[seg for _, seg, _ in x.rows()] for x in loaded]
        every = [s for x in segs for s in x]
        try:
            flat = self._features(every) if every else []
            out, i = [], 0
            for x in segs:
                out.append(flat[i : i + len(x)])
                i += len(x)
            return out
        except Exception:
            log.warning("batch feature extraction failed; retrying clip by clip", exc_info=True)
        out = []
        for x, x_segs in zip(loaded, segs):
            try:
                out.append(self._features(x_segs))
            except Exception as exc:
                quarantined.append(Quarantined(x.item, "extract_error",
                                               f"{x.item['path']}: feature extraction failed: {exc!r}"))
                out.append(None)
        return out

    def _row(self, rid: str, x: Loaded, seg, copy: Copy | None, feats: dict) -> dict:
        """One store row: of input `x`'s own audio, or of one of its augmented copies."""
        sr = self.config.audio.sample_rate_hz
        item, dec, utt = x.item, x.dec, (x.utt if copy is None else copy.utt)
        row = {
            "id": rid, "utterance_id": item["utterance_id"], "key": item["key"], "path": item["path"],
            "label": item.get("label"), "speaker": item.get("speaker"), "split": item.get("split"),
            "sha256": dec.sha256, "source_bytes": _int(item.get("source_bytes")),
            "source_mtime_ns": _int(item.get("source_mtime_ns")), "source_sample_rate_hz": dec.sample_rate_hz,
            "source_channels": dec.channels,
            "utterance_duration_s": utt.size / sr, "segment_index": seg.index, "start_s": seg.start_s,
            "end_s": seg.end_s, "duration_s": seg.samples.size / sr,
        }
        if copy is not None:
            row.update({AUGMENT_OF: item["utterance_id"], "augment": json.dumps(copy.params, sort_keys=True)})
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
                arrays.append(pa.array([scalar(r.get(f.name)) for r in rows], type=f.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _quarantine_table(quarantined: list[Quarantined], sha: dict[str, str]) -> pa.Table | None:
        if not quarantined:
            return None
        recs = [
            {"utterance_id": q.item["utterance_id"], "key": q.item["key"], "path": q.item["path"],
             "label": scalar(q.item.get("label")), "sha256": sha.get(q.item["utterance_id"]),
             "source_bytes": _int(q.item.get("source_bytes")), "source_mtime_ns": _int(q.item.get("source_mtime_ns")),
             "reason": q.reason, "error": q.error}
            for q in quarantined
        ]
        return pa.Table.from_pylist(recs, schema=QUARANTINE_SCHEMA)


def quarantined_summary(quarantined: list[Quarantined]) -> list[tuple]:
    """Summary rows (SUMMARY_COLUMNS) of the quarantined inputs."""
    return [(q.item["utterance_id"], "quarantined", 0, 0.0, q.reason, 0.0) for q in quarantined]


def with_extract_s(summary: pd.DataFrame, seconds: float) -> pd.DataFrame:
    if len(summary):
        summary.loc[0, "extract_s"] = seconds
    return summary


def _int(v) -> int | None:
    v = scalar(v)
    return None if v is None else int(v)



class AddGroupsBlock(ExtractBlock):
    """Add feature groups to stored parts (pipeline/groups.py): per part, decode each input's
    audio again (its sha256 must equal the stored one), cut the same segments, compute only the
    new groups, and rewrite the part with the new columns. An input whose audio is gone or changed,
    or whose new features fail, leaves the store for the quarantine (every row has every group)."""

    def __init__(self, config: dict, store_uri: str, meta: dict, groups: list[str]):
        super().__init__(config, store_uri, meta)
        self.groups = list(groups)
        self.added = [e for e in self.extractors if e.name in self.groups]
        self.new_columns = [c for e in self.added for c in e.columns()]

    def _features(self, segs: list) -> list[dict[str, np.ndarray]]:
        return extract_segments(self.added, segs)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([self._add(path) for path in batch["part"]], ignore_index=True)

    def _add(self, path: str) -> pd.DataFrame:
        import pyarrow.parquet as pq

        table = pq.read_table(path, filesystem=self.store.fs)
        if all(c.name in table.column_names for c in self.new_columns):  # done by an earlier run
            return pd.DataFrame(columns=SUMMARY_COLUMNS)
        base = table.select(["id", "utterance_id", "key", "path", "label", "sha256", "source_bytes",
                             "source_mtime_ns"])
        rows = base.to_pandas(integer_object_nulls=True)
        order = list(dict.fromkeys(rows["utterance_id"]))  # utterances in part order
        items = {u: g.iloc[0].drop("id").to_dict() | {"ids": set(g["id"])}
                 for u, g in rows.groupby("utterance_id", sort=False)}
        loaded, quarantined = [], []
        for uid in order:
            item = items[uid]
            try:
                x = self._load(item)
                if x.dec.sha256 != item["sha256"]:
                    raise AudioError("changed", f"{item['path']}: its bytes changed since it was stored (sha256 "
                                                f"{item['sha256'][:12]}… -> {x.dec.sha256[:12]}…); extract it again")
                if {rid for rid, _, _ in x.rows()} != item["ids"]:
                    raise AudioError("extract_error", f"{item['path']}: {len(x.rows())} rows (segments, augmented "
                                                      f"copies) now, {len(item['ids'])} stored")
                loaded.append(x)
            except AudioError as exc:
                quarantined.append(Quarantined(item, exc.reason, f"adding {', '.join(self.groups)}: {exc}"))
            except Exception as exc:
                quarantined.append(Quarantined(item, "decode_error",
                                               f"adding {', '.join(self.groups)}: {item['path']}: {exc!r}"))
        t = time.perf_counter()
        feats = self._extract_all(loaded, quarantined)
        extract_s = time.perf_counter() - t
        new: dict[str, dict] = {}  # row id -> its new columns
        done: dict[str, int] = {}  # utterance id -> rows
        for x, seg_feats in zip(loaded, feats):
            if seg_feats is not None:
                new.update({rid: f for (rid, _, _), f in zip(x.rows(), seg_feats)})
                done[x.item["utterance_id"]] = len(seg_feats)
        keep = [u in done for u in rows["utterance_id"]]
        kept = table.filter(pa.array(keep))
        values = [new[rid] for rid in kept.column("id").to_pylist()]
        arrays = [kept.column(f.name) if f.name in kept.column_names
                  else to_arrow([v[f.name] for v in values], *self._shape(f.name)) for f in self.schema]
        name = path.rsplit("/", 1)[-1][len("part-"):-len(".parquet")]
        self.store.replace_part(path, pa.Table.from_arrays(arrays, schema=self.schema))
        sha = {q.item["utterance_id"]: q.item["sha256"] for q in quarantined}
        self.store.write_part(f"{name}-{'-'.join(self.groups)}", None, self._quarantine_table(quarantined, sha))
        summary = [(u, "stored", done[u], 0.0, "", 0.0) for u in order if u in done]
        summary += quarantined_summary(quarantined)
        return with_extract_s(pd.DataFrame(summary, columns=SUMMARY_COLUMNS), extract_s)

    def _shape(self, name: str) -> tuple:
        col = next(c for c in self.new_columns if c.name == name)
        return col.shape, col.dtype
