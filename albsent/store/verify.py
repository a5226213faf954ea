"""`albsent verify STORE [--manifest INPUT] [--repair]`: check that a store holds what its
metadata says, and set aside what does not.

Checks, part by part: readable to the last page with page checksums verified (a truncated or
overwritten part fails here); schema metadata equal to the store's; column names equal to the
metadata's (base columns, manifest columns, every extractor column) and types equal to the other
parts'; feature values finite. Across parts: no row id twice, no input both stored and
quarantined; quarantine parts readable. With a manifest: every input it lists is stored or
quarantined. A missing `_albsent.json` is a problem that the parts' own metadata can fix.

--repair (holding the writer lock): broken parts move to STORE/_broken/, so `albsent extract`
with the same input redoes exactly their inputs; later copies of duplicated rows and quarantine
entries of stored inputs are removed; lost metadata is rebuilt from the parts.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from albsent.config import stable_hash
from albsent.errors import StoreError
from albsent.store.schema import BASE_NAMES
from albsent.store.store import BROKEN_DIR, META_FILE, QUARANTINE_DIR, Store, check_finite


@dataclass
class Problem:
    kind: str  # unreadable | foreign_metadata | schema_mismatch | non_finite | duplicate_ids |
    #            stored_and_quarantined | missing_metadata | missing_inputs
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


BROKEN = ("unreadable", "foreign_metadata", "schema_mismatch", "non_finite")


def _names(meta: dict) -> list[str]:
    """The columns a part written with `meta` has, in order."""
    features = [c for ext in meta["extractors"].values() for c in ext["columns"]]
    return [*BASE_NAMES, *meta.get("extra_columns", []), *features]


def _read_part(store: Store, path: str, meta: dict, adding_hash: str | None) -> tuple[pa.Table | None, Problem | None]:
    """Read one part with its checksums; check its metadata, columns and values. While groups
    are being added (`adding_hash`: the config hash they lead to), a part already rewritten
    with them is as good as one not yet rewritten."""
    short = path[len(store.root) + 1:]
    try:
        table = store.read_part(path)
    except (OSError, pa.ArrowException) as exc:
        return None, Problem("unreadable", short, str(exc).splitlines()[0])
    raw = (table.schema.metadata or {}).get(b"albsent")
    own = json.loads(raw) if raw else {}
    expected = own if adding_hash and own.get("config_hash") == adding_hash else meta
    if raw is None or _identity(own) != _identity(expected):
        return table, Problem("foreign_metadata", short, "the part's schema metadata differs from the store's "
                              f"(part config hash {own.get('config_hash')}, store {meta.get('config_hash')})")
    if table.column_names != _names(expected):
        return table, Problem("schema_mismatch", short, f"columns {table.column_names} differ from the metadata's "
                              f"{_names(expected)}")
    try:
        check_finite(table, short)
    except StoreError as exc:
        return table, Problem("non_finite", short, str(exc).split(";")[0])
    return table, None


def _identity(meta: dict) -> tuple:
    """What must agree between a part and the store (not the albsent version that wrote it)."""
    return (meta.get("config_hash"), meta.get("extra_columns"),
            {k: v.get("columns") for k, v in meta.get("extractors", {}).items()})


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
    has_meta = store.fs.get_file_info(f"{store.root}/{META_FILE}").type == pafs.FileType.File
    if not has_meta:
        meta = store.rebuild_meta() if repair else store.meta_from_parts()
        report.problems.append(Problem("missing_metadata", store.uri, f"{META_FILE} is missing",
                                       repaired="rebuilt from the parts" if repair else ""))
    else:
        meta = store.meta
    adding = meta.get("adding") or {}
    adding_hash = stable_hash(adding["config"]) if adding else None
    if adding:
        report.problems.append(Problem("adding_groups", store.uri, f"feature group(s) {adding['features']} are being "
                                       "added to the stored rows; re-run `albsent extract` to finish"))
    tables: dict[str, pa.Table] = {}
    types: Counter = Counter()
    files = store.part_files()
    report.parts = len(files)
    for path in files:
        table, problem = _read_part(store, path, meta, adding_hash)
        if problem:
            problem.ids = _utterances(store, path, table)
            report.problems.append(problem)
        else:
            tables[path] = table
            types[str(table.schema.remove_metadata())] += 1
    if types and not adding:  # one part whose types differ from the others' (the names matched)
        common = types.most_common(1)[0][0]
        for path in [p for p, t in tables.items() if str(t.schema.remove_metadata()) != common]:
            t = tables.pop(path)
            report.problems.append(Problem("schema_mismatch", path[len(store.root) + 1:],
                                           "column types differ from the other parts'",
                                           sorted(set(t.column("utterance_id").to_pylist()))))

    seen: dict[str, str] = {}
    dupes: dict[str, list[str]] = {}  # part -> ids to drop from it (a copy exists in an earlier part)
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

    stored_utts = {u for t in tables.values() for u in t.column("utterance_id").to_pylist()}
    q_ids: set[str] = set()
    for path in store._files(QUARANTINE_DIR):
        try:
            q = store.read_part(path)
            q_ids |= set(q.column("utterance_id").to_pylist())
            report.quarantined += q.num_rows
        except (OSError, pa.ArrowException) as exc:
            report.problems.append(Problem("unreadable", path[len(store.root) + 1:], str(exc).splitlines()[0]))
    both = sorted(stored_utts & q_ids)
    if both:
        report.problems.append(Problem("stored_and_quarantined", store.uri,
                                       f"{len(both)} input(s) both stored and quarantined", both))

    if manifest:
        from albsent.audio.manifest import plan_inputs

        c = meta["config"]
        items = plan_inputs(manifest, c.get("labels_from", "none"), c.get("label_map") or None, allowed_roots,
                            c.get("unlabeled", False))
        broken = {u for p in report.problems if p.kind in BROKEN for u in p.ids}
        missing = sorted(set(items["utterance_id"]) - ((stored_utts | q_ids) - broken))
        if missing:
            report.problems.append(Problem("missing_inputs", manifest, f"{len(missing)} of {len(items)} input(s) are "
                                           "neither stored nor quarantined; `albsent extract` with this input adds "
                                           "them", missing))
    if repair:
        _repair(store, report, dupes)
    return report


def _repair(store: Store, report: Report, dupes: dict[str, list[str]]) -> None:
    store.fs.create_dir(f"{store.root}/{BROKEN_DIR}", recursive=True)
    for p in report.problems:
        if p.kind in BROKEN:
            src = f"{store.root}/{p.where}"
            dst = f"{store.root}/{BROKEN_DIR}/{p.where.replace('/', '__')}"
            store.fs.move(src, dst)
            p.repaired = f"moved to {BROKEN_DIR}/; `albsent extract` redoes its {len(p.ids) or 'unknown'} input(s)"
        elif p.kind == "duplicate_ids":
            path, drop = f"{store.root}/{p.where}", set(p.ids)
            table = pq.read_table(path, filesystem=store.fs)
            store.replace_part(path, table.filter(pa.array([i not in drop for i in table.column("id").to_pylist()])))
            p.repaired = f"removed {len(drop)} duplicate row(s)"
        elif p.kind == "stored_and_quarantined":
            store.rewrite(quarantine_drop=set(p.ids))
            p.repaired = "removed the quarantine entries"


def format_report(r: Report) -> str:
    lines = [f"{r.store}: {r.parts} part(s), {r.rows} row(s), {r.quarantined} quarantined"]
    for p in r.problems:
        lines.append(f"  {p.kind:<22} {p.where}: {p.detail}" + (f"  [repaired: {p.repaired}]" if p.repaired else ""))
    lines.append("ok" if r.ok and not r.problems else "ok after repair" if r.ok else
                 "problems found; `albsent verify STORE --repair` sets broken parts aside (then re-run extract)")
    return "\n".join(lines)
