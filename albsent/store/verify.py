"""`albsent verify STORE [--manifest INPUT] [--repair]`: check that a store holds what its
metadata says, and set aside what does not. Nothing is ever deleted: what --repair takes out of
the store moves to STORE/_broken/.

The metadata first (store/checks.py): `_albsent.json` must parse and agree with itself (its
config_hash is its config's hash; each group's columns follow from its config). When it is
missing or damaged, or when every part carries one other, self-consistent metadata, the
metadata is what is wrong: the parts' own copy is the reference and --repair writes it back.
Only when the parts disagree among themselves is nothing rebuilt.

Then, part by part: readable to the last page with page checksums verified (a truncated or
overwritten part fails here); embedded metadata valid and equal to the reference; columns, by
name and with the types the reference implies (order is not identity); feature values finite;
footer statistics that match their values (readers filter by them). Across parts: no row id
twice, no input both stored and quarantined; quarantine parts readable; no file in the store
folder that readers would read as rows without being a part. With a manifest: every input it
lists is stored or quarantined, and every stored input is still listed.

--repair (holding the writer lock): broken parts and stray files move to STORE/_broken/, so
`albsent extract` with the same input redoes exactly their inputs; later copies of duplicated
rows and quarantine entries of stored inputs are removed; a part with wrong statistics is
rewritten with statistics computed from its values; the metadata is rebuilt from the parts. A
repair never sets aside every part that readers can read: when all of them disagree with a
metadata it cannot rebuild, it leaves them and says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from albsent.config import stable_hash
from albsent.errors import StoreError
from albsent.store.checks import implied_types, meta_faults, statistics_faults, type_faults, unexpected_entries
from albsent.store.store import BROKEN_DIR, META_FILE, QUARANTINE_DIR, Store, check_finite


@dataclass
class Problem:
    kind: str  # see REMEDY
    where: str  # part path (or the store)
    detail: str
    ids: list[str] = field(default_factory=list)  # utterance ids concerned (capped in the report)
    repaired: str = ""  # what --repair did


@dataclass
class Report:
    store: str
    parts: int = 0
    rows: int = 0
    quarantined: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not [p for p in self.problems if not p.repaired]

    def to_dict(self) -> dict:
        d = asdict(self)
        for p in d["problems"]:
            p["count"] = len(p["ids"])
            p["ids"] = p["ids"][:20]
        return {"ok": self.ok, **d}


BROKEN = ("unreadable", "foreign_metadata", "schema_mismatch", "non_finite")  # parts --repair sets aside
REPAIR = "`albsent verify STORE --repair` fixes it"
REMEDY = {  # kind -> what helps, for the report's last line
    **{k: "`albsent verify STORE --repair` sets broken parts aside (then re-run extract to redo their inputs)"
       for k in BROKEN},
    "duplicate_ids": REPAIR, "stored_and_quarantined": REPAIR, "bad_statistics": REPAIR,
    "unexpected_file": REPAIR, "missing_metadata": REPAIR, "broken_metadata": REPAIR, "metadata_mismatch": REPAIR,
    "adding_groups": "re-run `albsent extract INPUT --out STORE` (any INPUT) to finish adding the feature group(s)",
    "missing_inputs": "`albsent extract MANIFEST --out STORE` adds the missing inputs",
    "not_in_manifest": "`albsent extract MANIFEST --out STORE --prune` removes inputs the manifest no longer lists",
}


def _identity(meta: dict) -> tuple:
    """What must agree between a part and the store (not the albsent version that wrote it)."""
    return (meta.get("config_hash"), json.dumps(meta.get("extra_columns"), sort_keys=True),
            json.dumps({k: v.get("columns") for k, v in meta.get("extractors", {}).items()}, sort_keys=True))


def _read_json(raw: bytes | None) -> tuple[dict | None, str | None]:
    """(metadata, what is wrong with it): (None, None) when absent."""
    if raw is None:
        return None, None
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON ({exc})" if raw.strip() else "empty"
    faults = meta_faults(meta)
    return (meta, None) if not faults else (meta if isinstance(meta, dict) else None, "; ".join(faults))


def _store_meta(store: Store) -> tuple[dict | None, str | None]:
    path = f"{store.root}/{META_FILE}"
    if store.fs.get_file_info(path).type != pafs.FileType.File:
        return None, None
    try:
        with store.fs.open_input_stream(path) as fh:
            return _read_json(fh.read())
    except OSError as exc:
        return None, f"unreadable ({str(exc).splitlines()[0]})"


def _part_meta(store: Store, path: str) -> tuple[dict | None, str | None]:
    try:
        raw = (pq.read_schema(path, filesystem=store.fs).metadata or {}).get(b"albsent")
    except (OSError, pa.ArrowException) as exc:
        return None, f"unreadable ({str(exc).splitlines()[0]})"
    meta, fault = _read_json(raw)
    return meta, fault or (None if raw is not None else "no albsent metadata in its schema")


def _reference(stored, fault, part_metas: dict) -> tuple[dict | None, Problem | None, dict | None]:
    """(the metadata parts are judged against, the problem with _albsent.json, the metadata
    --repair writes). When the store's own metadata is sound and some part agrees with it, it is
    the reference; when every usable part agrees on another one, or it is missing or damaged,
    the parts' is."""
    found: dict[tuple, dict] = {}
    for meta, bad in part_metas.values():
        if meta is not None and not bad:
            found.setdefault(_identity(meta), meta)
    hashes = sorted(str(m.get("config_hash")) for m in found.values())
    if stored is not None and not fault:
        adding = stored.get("adding") or {}
        adding_hash = stable_hash(adding["config"]) if adding else None
        if not found or _identity(stored) in found or any(m.get("config_hash") == adding_hash for m in found.values()):
            return stored, None, None
        if len(found) == 1:
            parts = next(iter(found.values()))
            why = (f"config hash {stored.get('config_hash')} while every part carries {parts.get('config_hash')}: "
                   "the metadata, not the parts, is wrong; --repair rebuilds it from them")
            return parts, Problem("metadata_mismatch", META_FILE, why), parts
        return stored, Problem("metadata_mismatch", META_FILE, f"matches no part, and the parts disagree among "
                               f"themselves (config hashes {hashes}); cannot tell which is right"), None
    kind, what = ("missing_metadata", f"{META_FILE} is missing") if fault is None and stored is None else \
        ("broken_metadata", f"{META_FILE} is damaged: {fault}")
    if len(found) == 1:
        parts = next(iter(found.values()))
        what += "; the parts' own metadata agrees, and --repair rebuilds it from them"
        return parts, Problem(kind, META_FILE, what), parts
    if not found:
        return None, Problem(kind, META_FILE, what + "; no part carries usable metadata to rebuild it from"), None
    return None, Problem(kind, META_FILE, what + f"; the parts disagree about the config (hashes {hashes}), so it "
                         "cannot be rebuilt"), None


def _check_part(store: Store, path: str, table: pa.Table, own: tuple, ref: dict | None, adding_meta: dict | None
                ) -> Problem | None:
    """The first problem of a readable part, judged against `ref` (or, while groups are being
    added, `adding_meta`: a part already rewritten with them is as good as one not yet)."""
    short = path[len(store.root) + 1:]
    meta, fault = own
    if fault:
        return Problem("foreign_metadata", short, f"its schema metadata is {fault}")
    if ref is not None:
        expected = adding_meta if adding_meta and meta.get("config_hash") == adding_meta["config_hash"] else ref
        if _identity(meta) != _identity(expected):
            return Problem("foreign_metadata", short, "the part's schema metadata differs from the store's (part "
                           f"config hash {meta.get('config_hash')}, store {ref.get('config_hash')})")
        faults = type_faults(table.schema, implied_types(expected))
        if faults:
            return Problem("schema_mismatch", short, "; ".join(faults))
    try:
        check_finite(table, short)
    except StoreError as exc:
        return Problem("non_finite", short, str(exc).split(";")[0])
    return None


def _utterances(store: Store, path: str, table: pa.Table | None) -> list[str]:
    """The inputs a broken part holds, as far as they can still be read (for the report)."""
    try:
        if table is None or "utterance_id" not in table.column_names:
            table = pq.read_table(path, columns=["utterance_id"], filesystem=store.fs)
        return sorted(set(table.column("utterance_id").to_pylist()))
    except (OSError, pa.ArrowException, KeyError):
        return []


def verify(uri: str, manifest: str | None = None, allowed_roots=(), repair: bool = False) -> Report:
    store = Store(uri)
    if repair:
        with store.writer_lock():
            return _verify(store, manifest, allowed_roots, True)
    return _verify(store, manifest, allowed_roots, False)


def _verify(store: Store, manifest: str | None, allowed_roots, repair: bool) -> Report:
    report = Report(store.uri)
    files = store.part_files()
    report.parts = len(files)
    stored, fault = _store_meta(store)
    own = {p: _part_meta(store, p) for p in files}
    ref, meta_problem, rebuild = _reference(stored, fault, own)
    if meta_problem:
        report.problems.append(meta_problem)
    if ref is None and not files and stored is None:
        raise StoreError(f"{store.uri}: not an albsent store (no {META_FILE} and no part)")
    adding_meta = _adding_meta(report, store, ref, own)
    for name in unexpected_entries(store.fs, store.root):
        report.problems.append(Problem("unexpected_file", name, "not a part of the store, but pandas, pyarrow and "
                                       "duckdb read every file in the folder as rows"))
    tables = _read_parts(report, store, files, own, ref, adding_meta)
    dupes = _duplicate_ids(report, store, tables)
    stored_utts = {u for t in tables.values() for u in t.column("utterance_id").to_pylist()}
    q_ids = _quarantined_ids(report, store)
    both = sorted(stored_utts & q_ids)
    if both:
        report.problems.append(Problem("stored_and_quarantined", store.uri,
                                       f"{len(both)} input(s) both stored and quarantined", both))
    if manifest:
        _check_manifest(report, manifest, (ref or stored or {}).get("config") or {}, allowed_roots, stored_utts, q_ids)
    if repair:
        _repair(store, report, dupes, rebuild)
    return report


def _adding_meta(report: Report, store: Store, ref: dict | None, own: dict) -> dict | None:
    """The metadata parts rewritten by an unfinished `extract --features +GROUP` carry (None: none under way)."""
    adding = (ref or {}).get("adding") or {}
    if not adding:
        return None
    meta = {**ref, "config": adding["config"], "config_hash": stable_hash(adding["config"])}
    meta["extractors"] = _adding_extractors(ref, adding, own)
    report.problems.append(Problem("adding_groups", store.uri, f"feature group(s) {adding['features']} are being "
                                   "added to the stored rows; re-run `albsent extract` to finish"))
    return meta


def _read_parts(report: Report, store: Store, files: list[str], own: dict, ref, adding_meta) -> dict[str, pa.Table]:
    """Read and check every part; -> {path: table} of the sound ones (the others are reported)."""
    tables: dict[str, pa.Table] = {}
    for path in files:
        short = path[len(store.root) + 1:]
        try:
            table = store.read_part(path)
        except (OSError, pa.ArrowException) as exc:
            report.problems.append(Problem("unreadable", short, str(exc).splitlines()[0],
                                           _utterances(store, path, None)))
            continue
        problem = _check_part(store, path, table, own[path], ref, adding_meta)
        if problem:
            problem.ids = _utterances(store, path, table)
            report.problems.append(problem)
            continue
        tables[path] = table
        stats = statistics_faults(path, store.fs, table)
        if stats:
            report.problems.append(Problem("bad_statistics", short, "footer statistics that readers filter by do not "
                                           "match the values: " + "; ".join(stats[:3])))
    return tables


def _duplicate_ids(report: Report, store: Store, tables: dict[str, pa.Table]) -> dict[str, list[str]]:
    """Count the rows; -> part -> ids to drop from it (a copy exists in an earlier part), reported."""
    seen: dict[str, str] = {}
    dupes: dict[str, list[str]] = {}
    for path, t in tables.items():
        for rid in t.column("id").to_pylist():
            if rid in seen:
                dupes.setdefault(path, []).append(rid)
            else:
                seen[rid] = path
        report.rows += t.num_rows
    for path, ids in dupes.items():
        report.problems.append(Problem("duplicate_ids", path[len(store.root) + 1:],
                                       f"{len(ids)} row id(s) already in another part", ids))
    return dupes


def _quarantined_ids(report: Report, store: Store) -> set[str]:
    q_ids: set[str] = set()
    for path in store._files(QUARANTINE_DIR):
        try:
            q = store.read_part(path)
            q_ids |= set(q.column("utterance_id").to_pylist())
            report.quarantined += q.num_rows
        except (OSError, pa.ArrowException, KeyError) as exc:
            report.problems.append(Problem("unreadable", path[len(store.root) + 1:], str(exc).splitlines()[0]))
    return q_ids


def _adding_extractors(ref: dict, adding: dict, own: dict) -> dict:
    """The extractors a part rewritten with the groups being added carries (from such a part)."""
    target = stable_hash(adding["config"])
    for meta, bad in own.values():
        if meta is not None and not bad and meta.get("config_hash") == target:
            return meta["extractors"]
    return ref["extractors"]


def _check_manifest(report: Report, manifest: str, config: dict, allowed_roots, stored_utts: set, q_ids: set):
    from albsent.audio.manifest import plan_inputs

    items = plan_inputs(manifest, config.get("labels_from", "none"), config.get("label_map") or None, allowed_roots,
                        config.get("unlabeled", False))
    broken = {u for p in report.problems if p.kind in BROKEN for u in p.ids}
    listed = set(items["utterance_id"])
    missing = sorted(listed - ((stored_utts | q_ids) - broken))
    if missing:
        report.problems.append(Problem("missing_inputs", manifest, f"{len(missing)} of {len(items)} input(s) are "
                                       "neither stored nor quarantined; `albsent extract` with this input adds "
                                       "them", missing))
    gone = sorted(stored_utts - listed)
    if gone:
        report.problems.append(Problem("not_in_manifest", manifest, f"{len(gone)} stored input(s) are not in this "
                                       "manifest any more (training still reads them); `albsent extract "
                                       f"{manifest} --out STORE --prune` removes them", gone))


def _repair(store: Store, report: Report, dupes: dict[str, list[str]], rebuild: dict | None) -> None:
    store.fs.create_dir(f"{store.root}/{BROKEN_DIR}", recursive=True)
    readable = {p.where for p in report.problems if p.kind in ("foreign_metadata", "schema_mismatch")}
    good = report.parts - len({p.where for p in report.problems if p.kind in BROKEN})
    keep_all = bool(readable) and good == 0 and rebuild is None
    for p in report.problems:
        if p.kind in BROKEN:
            if keep_all and p.where in readable:
                p.detail += ("; NOT set aside: every readable part disagrees with the metadata and the metadata cannot "
                             "be rebuilt, so setting them aside would empty a store that readers can read")
                continue
            _set_aside(store, p.where)
            p.repaired = f"moved to {BROKEN_DIR}/; `albsent extract` redoes its {len(p.ids) or 'unknown'} input(s)"
        elif p.kind == "unexpected_file":
            _set_aside(store, p.where.rstrip("/"))
            p.repaired = f"moved to {BROKEN_DIR}/"
        elif p.kind == "duplicate_ids":
            path, drop = f"{store.root}/{p.where}", set(p.ids)
            table = pq.read_table(path, filesystem=store.fs)
            store.replace_part(path, table.filter(pa.array([i not in drop for i in table.column("id").to_pylist()])))
            p.repaired = f"removed {len(drop)} duplicate row(s)"
        elif p.kind == "bad_statistics":
            path = f"{store.root}/{p.where}"
            store.replace_part(path, store.read_part(path))
            p.repaired = "rewritten with statistics computed from its values (values unchanged)"
        elif p.kind == "stored_and_quarantined":
            store.rewrite(quarantine_drop=set(p.ids))
            p.repaired = "removed the quarantine entries"
        elif p.kind in ("missing_metadata", "broken_metadata", "metadata_mismatch") and rebuild is not None:
            if p.kind == "broken_metadata" and store.fs.get_file_info(f"{store.root}/{META_FILE}").type == \
                    pafs.FileType.File:
                _set_aside(store, META_FILE)
            store.fs.create_dir(f"{store.root}/{QUARANTINE_DIR}", recursive=True)
            store.write_meta(rebuild)
            p.repaired = "rebuilt from the parts' own metadata" + \
                (f" (the damaged one is in {BROKEN_DIR}/)" if p.kind == "broken_metadata" else "")


def _set_aside(store: Store, rel: str) -> None:
    """Move STORE/rel into STORE/_broken/ (never over an earlier one)."""
    import uuid

    name = rel.replace("/", "__")
    dst = f"{store.root}/{BROKEN_DIR}/{name}"
    if store.fs.get_file_info(dst).type != pafs.FileType.NotFound:
        dst = f"{dst}.{uuid.uuid4().hex[:8]}"
    store.fs.move(f"{store.root}/{rel}", dst)


def format_report(r: Report) -> str:
    lines = [f"{r.store}: {r.parts} part(s), {r.rows} row(s), {r.quarantined} quarantined"]
    for p in r.problems:
        lines.append(f"  {p.kind:<22} {p.where}: {p.detail}" + (f"  [repaired: {p.repaired}]" if p.repaired else ""))
    if r.ok:
        lines.append("ok after repair" if r.problems else "ok")
        return "\n".join(lines)
    remedies = list(dict.fromkeys(REMEDY.get(p.kind, REPAIR) for p in r.problems if not p.repaired))
    lines.append("problems found; " + "; ".join(remedies))
    return "\n".join(lines)
