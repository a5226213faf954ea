"""A feature store: a directory of Parquet parts plus sidecars that readers ignore.

    STORE/
      part-<hash>.parquet          rows; schema metadata key b"albsent" = the store metadata JSON
      _albsent.json                the same metadata (config, config_hash, extractors, ...)
      _quarantine/part-<hash>.parquet   inputs that could not be used, with reason codes
      _config.yaml                 the resolved extract config
      _lock.json                   while `albsent extract` writes: its host, pid and heartbeat
      _broken/                     parts `albsent verify --repair` set aside (extract redoes their inputs)

Parts are written to a hidden temporary name and renamed, so a reader never sees half a file.
A part holds whole utterances (all their segments), so resume works per utterance. Parts carry
Parquet page checksums, verified on every read; a part whose bytes changed is an error naming
`albsent verify`. Lost `_albsent.json` is rebuilt from the parts' own schema metadata.
STORE may be a local path or a URI understood by pyarrow.fs (e.g. s3://bucket/store).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from functools import cached_property

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from albsent import storage
from albsent.errors import StoreError
from albsent.store.arrow import scalar
from albsent.store.lock import StoreLock, first_line
from albsent.store.schema import AUGMENT_OF, FINGERPRINT, MANIFEST_FIELDS, QUARANTINE_SCHEMA

META_FILE = "_albsent.json"
QUARANTINE_DIR = "_quarantine"
BROKEN_DIR = "_broken"
SCHEMA_VERSION = 2  # 2: rows keyed by resolved path + sha256, with the source file's size and mtime
log = logging.getLogger(__name__)


def write_options(schema: pa.Schema) -> dict:
    """`pq.write_table` options: zstd; dictionary encoding and min/max statistics only for the
    scalar columns. On float feature lists both cost CPU for nothing: a 64-clip part of MFCC +
    short-term wrote in 47 ms with them and 19 ms without, and came out 5 % smaller. The
    statistics live in the footer, which page checksums do not cover, and readers skip row groups
    by them: `albsent verify` recomputes them from the values (store/checks.py) and `--repair`
    rewrites a part whose statistics are wrong."""
    scalar = [f.name for f in schema if not (pa.types.is_list(f.type) or pa.types.is_fixed_size_list(f.type))]
    return {"compression": "zstd", "use_dictionary": scalar, "write_statistics": scalar, "write_page_checksum": True}


PARQUET = pads.ParquetFileFormat(
    default_fragment_scan_options=pads.ParquetFragmentScanOptions(page_checksum_verification=True))


def unreadable(uri: str, exc: Exception) -> StoreError:
    return StoreError(f"{uri}: cannot read the store ({str(exc).splitlines()[0]}); "
                      f"`albsent verify {uri}` finds the broken part(s), `--repair` sets them aside for extract "
                      "to redo")


def check_finite(table: pa.Table, uri: str) -> None:
    """Feature values are finite by construction (extractors quarantine what is not): a NaN or
    infinity read back means the bytes changed after writing."""
    import numpy as np

    for name in table.column_names:
        col = table[name]
        while pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
            col = pa.chunked_array([c.flatten() for c in col.chunks], type=col.type.value_type)
        if pa.types.is_floating(col.type) and col.num_chunks:
            values = col.to_numpy()
            bad = int(values.size - np.isfinite(values).sum())
            if bad:
                raise StoreError(f"{uri}: column '{name}' holds {bad} NaN or infinite value(s), which extract never "
                                 f"writes; `albsent verify {uri}` finds the part(s), `--repair` sets them aside")


def _weights(meta: dict) -> dict[str, str | None]:
    """Weights hash of every model an extractor loaded: retrained weights at the same path
    change stored values without changing the config."""
    return {
        f"{name}:{alias}": m.get("weights_sha256")
        for name, ext in meta.get("extractors", {}).items()
        for alias, m in (ext.get("models") or {}).items()
        if isinstance(m, dict)
    }


class Store:
    def __init__(self, uri: str):
        self.uri = str(uri)
        self.fs, self.root = storage.split(self.uri)

    def writer_lock(self) -> StoreLock:
        """`with store.writer_lock():` around everything a writer does (see StoreLock)."""
        return StoreLock(self)

    # ---- metadata -------------------------------------------------------------------------
    def exists(self) -> bool:
        """The store has metadata, or parts to rebuild it from."""
        with self._io():
            return (self.fs.get_file_info(f"{self.root}/{META_FILE}").type == pafs.FileType.File
                    or bool(self.part_files()))

    @cached_property
    def meta(self) -> dict:
        """The store's metadata (`_albsent.json`; rebuilt from the parts when it is missing). A
        damaged file is a StoreError naming `albsent verify --repair`, which rebuilds it."""
        with self._io():
            if self.fs.get_file_info(f"{self.root}/{META_FILE}").type != pafs.FileType.File:
                return self.rebuild_meta()
            with self.fs.open_input_stream(f"{self.root}/{META_FILE}") as fh:
                raw = fh.read()
        try:
            meta = json.loads(raw.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            meta, why = None, f"not valid JSON: {exc}" if raw.strip() else "empty"
        else:
            why = "" if isinstance(meta, dict) and "config" in meta and "extractors" in meta else "not albsent metadata"
        if why:
            raise StoreError(f"{self.uri}/{META_FILE} is damaged ({why}); `albsent verify {self.uri} --repair` "
                             "rebuilds it from the parts' own metadata")
        return meta

    @contextlib.contextmanager
    def _io(self):
        """Turn a filesystem error (no permission, a missing bucket, an unreachable endpoint) into
        one line naming the store."""
        try:
            yield
        except (FileNotFoundError, NotADirectoryError):
            raise
        except OSError as exc:
            raise StoreError(f"{self.uri}: cannot access the store ({first_line(exc)}); check the path, its "
                             "permissions, or the bucket, endpoint and credentials (AWS_* settings)") from exc

    def part_meta(self, path: str) -> dict | None:
        """The store metadata a part carries in its schema (None if it has none or is unreadable)."""
        try:
            raw = (pq.read_schema(path, filesystem=self.fs).metadata or {}).get(b"albsent")
            meta = json.loads(raw) if raw else None
        except (OSError, ValueError, pa.ArrowException):
            return None
        return meta if isinstance(meta, dict) else None

    def meta_from_parts(self) -> dict:
        """The store metadata the parts carry in their schema: they must agree on the config hash
        (parts written by another albsent version may differ in the version field only). A part
        whose copy does not agree with itself (store/checks.py) is not asked."""
        from albsent.store.checks import meta_faults

        metas = [m for m in map(self.part_meta, self.part_files()) if m is not None and not meta_faults(m)]
        if not metas:
            raise StoreError(f"{self.uri}: not an albsent store (no {META_FILE} and no readable part to rebuild it "
                             f"from); create it with `albsent extract INPUT --out {self.uri}`")
        hashes = sorted({m["config_hash"] for m in metas})
        if len(hashes) > 1:
            raise StoreError(f"{self.uri}: {META_FILE} is missing and the parts disagree about the store's config "
                             f"(hashes {hashes}); cannot rebuild it")
        return metas[0]

    def rebuild_meta(self) -> dict:
        """Write _albsent.json again from the parts' schema metadata, never from a config."""
        meta = self.meta_from_parts()
        log.warning("%s: %s was missing; rebuilt from the parts' own metadata", self.uri, META_FILE)
        self.fs.create_dir(f"{self.root}/{QUARANTINE_DIR}", recursive=True)
        self.write_meta(meta)
        return meta

    def check_version(self) -> None:
        version = self.meta.get("schema_version", 1)
        if version < SCHEMA_VERSION:
            raise StoreError(f"{self.uri} was written by an older albsent (store schema {version}, now "
                             f"{SCHEMA_VERSION}: rows are now keyed by resolved path and sha256); it can still be "
                             "read, but extract into a new --out to add inputs")

    def create_or_check(self, meta: dict, adding: list[str] = ()) -> None:
        """Create the store with `meta`, or check an existing one against it: the same manifest
        columns and, for its model groups, the same weights. (The config itself was reconciled by
        pipeline/groups.py.) Groups being added to the existing rows are recorded as `adding`."""
        if not self.exists():
            self.fs.create_dir(self.root, recursive=True)
            self.fs.create_dir(f"{self.root}/{QUARANTINE_DIR}", recursive=True)
            self.write_meta(meta)
            return
        old = self.meta
        self.check_version()
        changes = []
        if old.get("extra_columns") != meta.get("extra_columns"):
            changes.append(f"manifest columns: {old.get('extra_columns')} -> {meta.get('extra_columns')}")
        before, now = _weights(old), _weights(meta)
        if any(now.get(k) != v for k, v in before.items()):
            changes.append(f"model weights (sha256): {before} -> { {k: now.get(k) for k in before} }")
        if changes:
            raise StoreError(f"{self.uri} was made with a different config; differences: {'; '.join(changes)}. Re-run "
                             f"with the store's config (see {self.uri}/_config.yaml) or write to a new --out.")
        if adding and (old.get("adding") or {}).get("features") != list(adding):
            self.write_meta({**old, "adding": {"features": list(adding), "config": meta["config"]}})

    def write_meta(self, meta: dict) -> None:
        self._write_bytes(META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
        self.__dict__.pop("meta", None)

    def write_sidecar(self, name: str, text: str) -> None:
        self._write_bytes(name, text.encode())

    def _write_bytes(self, name: str, data: bytes) -> None:
        tmp = f"{self.root}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        self.fs.move(tmp, f"{self.root}/{name}")

    # ---- parts ----------------------------------------------------------------------------
    def _atomic_parquet(self, table: pa.Table, rel: str) -> None:
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        tmp = f"{self.root}/{folder + '/' if folder else ''}.tmp-{uuid.uuid4().hex}"
        pq.write_table(table, tmp, filesystem=self.fs, **write_options(table.schema))
        self.fs.move(tmp, f"{self.root}/{rel}")

    def write_part(self, name: str, rows: pa.Table | None, quarantined: pa.Table | None) -> None:
        """Rows first, then the quarantine part: an interrupted write leaves only inputs that a
        rerun redoes, never a duplicate."""
        if rows is not None and rows.num_rows:
            self._atomic_parquet(rows, f"part-{name}.parquet")
        if quarantined is not None and quarantined.num_rows:
            self._atomic_parquet(quarantined.cast(QUARANTINE_SCHEMA), f"{QUARANTINE_DIR}/part-{name}.parquet")

    def _files(self, folder: str = "") -> list[str]:
        sel = pafs.FileSelector(f"{self.root}/{folder}".rstrip("/"), allow_not_found=True)
        try:
            with self._io():
                infos = self.fs.get_file_info(sel)
        except NotADirectoryError:  # STORE names a file (a manifest given where a store was expected)
            return []
        return sorted(i.path for i in infos
                      if i.type == pafs.FileType.File and i.base_name.startswith("part-")
                      and i.base_name.endswith(".parquet"))

    def part_files(self) -> list[str]:
        return self._files()

    def dataset(self, files: list[str] | None = None) -> pads.Dataset:
        """The rows as one pyarrow dataset (`files`: an already-made part listing); page checksums
        are verified as it is read."""
        files = self.part_files() if files is None else files
        if not files:
            raise StoreError(f"{self.uri}: the store has no rows yet (every input quarantined or nothing extracted)")
        try:
            return pads.dataset(files, filesystem=self.fs, format=PARQUET)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(self.uri, exc) from exc

    def read(self, columns: list[str] | None = None, files: list[str] | None = None, copies: bool = False) -> pa.Table:
        """Rows of the given columns; an unreadable part or a non-finite feature value is a
        StoreError pointing at `albsent verify`. The rows of augmented copies (`extract --augment`)
        are left out unless `copies`: only training reads them (albsent.dataset.data)."""
        ds = self.dataset(files)
        missing = [c for c in columns or [] if c not in ds.schema.names]
        if missing:
            raise StoreError(f"{self.uri}: no column(s) {missing}; columns: {', '.join(ds.schema.names)}")
        try:
            table = ds.to_table(columns=columns, filter=None if copies else originals(ds.schema))
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(self.uri, exc) from exc
        check_finite(table, self.uri)
        if "id" in table.column_names and pc.count_distinct(table["id"]).as_py() != table.num_rows:
            raise StoreError(f"{self.uri}: some row ids occur more than once (rows written twice, e.g. by two "
                             f"writers); `albsent verify {self.uri} --repair` removes the extra copies")
        return table

    @property
    def schema(self) -> pa.Schema:
        return self.dataset().schema

    def quarantine(self) -> pd.DataFrame:
        """The quarantine list (columns of QUARANTINE_SCHEMA; older stores' missing ones are null)."""
        files = self._files(QUARANTINE_DIR)
        if not files:
            return QUARANTINE_SCHEMA.empty_table().to_pandas()
        try:
            return pads.dataset(files, filesystem=self.fs, format=PARQUET,
                                schema=QUARANTINE_SCHEMA).to_table().to_pandas(integer_object_nulls=True)
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(self.uri, exc) from exc

    def inputs(self, extra: list[str] = ()) -> pd.DataFrame:
        """One row per stored utterance: utterance_id, path, sha256, source_bytes, source_mtime_ns,
        the manifest fields (label, speaker, split) and `extra` manifest columns."""
        cols = ["utterance_id", "path", "sha256", *FINGERPRINT, *MANIFEST_FIELDS, *extra]
        files = self.part_files()
        if not files:
            return pd.DataFrame(columns=cols)
        names = self.dataset(files).schema.names
        table = self.read([c for c in cols if c in names], files)
        df = table.to_pandas(integer_object_nulls=True).drop_duplicates("utterance_id")  # (exact ns, with nulls)
        for c in cols:
            if c not in df.columns:
                df[c] = None
        return df[cols].reset_index(drop=True)

    def rewrite(self, drop: set[str] = frozenset(), quarantine_drop: set[str] = frozenset(),
                update: pd.DataFrame | None = None) -> int:
        """Rewrite in place (atomically, part by part) the parts holding the given utterances:
        rows of `drop` removed, quarantine entries of `quarantine_drop` removed, and the columns of
        `update` (indexed by utterance_id) set on the rows it names. Only the writer holding the
        lock may call this. Returns the number of parts rewritten."""
        update = update if update is not None and len(update) else None
        touch = set(drop) | (set(update.index) if update is not None else set())
        n = 0
        for folder, ids in (("", touch), (QUARANTINE_DIR, set(quarantine_drop))):
            if not ids:
                continue
            for path in self._files(folder):
                part_ids = pq.read_table(path, columns=["utterance_id"], filesystem=self.fs).column(0).to_pylist()
                if not ids.intersection(part_ids):
                    continue
                gone = set(drop) if folder == "" else set(quarantine_drop)
                table = pq.read_table(path, filesystem=self.fs).filter(pa.array([u not in gone for u in part_ids]))
                if folder == "" and update is not None:
                    table = _set_columns(table, update)
                self.replace_part(path, table)
                n += 1
        return n

    def read_part(self, path: str) -> pa.Table:
        """One whole part (rows or quarantine), its page checksums verified; OSError/ArrowException
        when it cannot be read."""
        with self.fs.open_input_file(path) as fh:
            return pq.ParquetFile(fh, page_checksum_verification=True).read()

    def replace_part(self, path: str, table: pa.Table) -> None:
        """Write `table` over the part at `path` (atomically), or delete the part if it is empty.
        Only the writer holding the lock may call this."""
        if table.num_rows:
            self._atomic_parquet(table, path[len(self.root) + 1:])
        else:
            self.fs.delete_file(path)

    def num_rows(self, files: list[str] | None = None) -> int:
        files = self.part_files() if files is None else files
        try:
            return self.dataset(files).count_rows() if files else 0
        except (OSError, pa.ArrowException) as exc:
            raise unreadable(self.uri, exc) from exc


def originals(schema: pa.Schema):
    """A dataset filter keeping a store's own rows (not augmented copies); None when it has no copies."""
    return pc.field(AUGMENT_OF).is_null() if AUGMENT_OF in schema.names else None


def _set_columns(table: pa.Table, update: pd.DataFrame) -> pa.Table:
    """Set update's columns (by utterance_id) on the rows it names; other rows keep their values."""
    ids = table.column("utterance_id").to_pylist()
    for name in update.columns:
        i = table.schema.get_field_index(name)
        if i < 0:
            continue
        values = table.column(name).to_pylist()
        new = [(scalar(update.at[u, name]) if u in update.index else v) for u, v in zip(ids, values)]
        table = table.set_column(i, table.schema.field(i), pa.array(new, type=table.schema.field(i).type))
    return table



def describe(store: Store) -> dict:
    """What `albsent inspect --json` prints: rows, feature shapes, quarantine list, metadata."""
    meta = store.meta
    features = {}
    for ext in meta["extractors"].values():
        features.update(ext["columns"])
    q = store.quarantine()
    files = store.part_files()
    every = store.num_rows(files)
    labels, rows = {}, 0
    if every:
        counts = store.read(["label"], files).column(0).to_pandas().value_counts(dropna=False)
        labels = {("null" if k is None or k != k else k): int(v) for k, v in counts.items()}
        rows = int(sum(counts))
    return {
        "store": store.uri,
        "rows": rows,
        "augmented_rows": every - rows,  # rows of augmented copies (`extract --augment`), not in `rows`
        "parts": len(files),
        "labels": labels,
        "features": features,
        "quarantined": q[["path", "reason", "error"]].to_dict("records"),
        "metadata": meta,
    }
