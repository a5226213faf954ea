"""Turn INPUT (a manifest CSV or a folder of audio) into a validated table of work items.

Every problem a user can fix (missing column, empty label, duplicate path, path outside
the allowed roots, unmapped label) is an InputError raised before any work starts.
Output columns: utterance_id, key, path, label, speaker, split, source_bytes, source_mtime_ns,
then extra manifest columns.

An input's identity is its resolved path (the utterance id hashes it) plus its bytes' sha256 (in
the store): two corpora with the same relative names are two sets of inputs, and a file whose
size or modification time changed is re-hashed by `albsent extract` to see whether it changed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import posixpath
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs

from albsent import storage
from albsent.audio.io import AUDIO_EXTENSIONS
from albsent.errors import InputError

log = logging.getLogger(__name__)

BASE_COLUMNS = ["utterance_id", "key", "path", "label", "speaker", "split", "source_bytes", "source_mtime_ns"]


def utterance_id(path: str) -> str:
    """Stable id of an input: the same resolved path (or URI) always gets the same id."""
    return hashlib.sha1(str(path).encode()).hexdigest()[:16]


def fingerprint(path: str) -> tuple[int | None, int | None]:
    """(size in bytes, modification time in ns) of a file, (None, None) when it cannot be stat'ed
    (the worker quarantines it with the reason)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return int(st.st_size), int(st.st_mtime_ns)


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _within_uri(uri: str, roots: list[str]) -> bool:
    return any(uri == r or uri.startswith(r.rstrip("/") + "/") for r in roots)


def _resolve(raw: str, base: str, roots: list, uri: bool) -> tuple[str, bool]:
    """(resolved path of a manifest entry, whether it is inside the roots). Relative entries are
    relative to the manifest's folder (a URI prefix for a manifest in an object store)."""
    if uri or storage.is_uri(raw):
        full = storage.normalize(raw if storage.is_uri(raw) or raw.startswith("/") else f"{base}/{raw}")
        return full, _within_uri(full, [str(r) for r in roots])
    p = Path(raw)
    full = (p if p.is_absolute() else Path(base) / p).resolve()
    return str(full), _within(full, roots)


def parse_csv(data: bytes, where: str) -> pd.DataFrame:
    """A CSV's rows as strings, each with exactly the header's fields: a row with more or fewer is
    an error naming its line (pandas would shift a longer first row's fields one column to the
    right, so the path became a label). Empty trailing header names (a trailing comma) are
    dropped when their values are empty too; an unnamed column with values is an error."""
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    named = len(header)
    while named and not header[named - 1]:
        named -= 1
    if not named:
        raise InputError(f"{where}: no header line; expected path,label[,speaker,split,...]")
    if "" in header[:named]:
        raise InputError(f"{where} line 1: column {header.index('') + 1} of the header has no name; name it or "
                         "remove the column")
    dupes = sorted({h for h in header[:named] if header[:named].count(h) > 1})
    if dupes:
        raise InputError(f"{where} line 1: column name(s) {dupes} appear more than once in the header")
    rows = []
    for row in reader:
        if not row:  # a blank line
            continue
        extra = row[named:]
        if len(row) < named or len(row) > len(header) or any(v.strip() for v in extra):
            raise InputError(f"{where} line {reader.line_num}: {len(row)} field(s), but the header has {named} "
                             f"({','.join(header[:named])}); a value holding a comma needs double quotes")
        rows.append(row[:named])
    if named < len(header):
        log.warning("%s: ignored %d empty column(s) without a name at the end of the header (a trailing comma)",
                    where, len(header) - named)
    return pd.DataFrame(rows, columns=header[:named], dtype=str)


def _read_table(csv_path) -> pd.DataFrame:
    """The manifest's rows (parse_csv), `labels` read as `label`; unreadable or empty is an InputError."""
    try:
        df = parse_csv(storage.read_bytes(str(csv_path)), str(csv_path))
    except InputError:
        raise
    except Exception as exc:  # decoding and object stores raise many types for unreadable CSVs
        raise InputError(f"{csv_path}: cannot read manifest CSV ({exc})") from exc
    if df.empty:
        raise InputError(f"{csv_path}: the manifest lists no inputs (a header line only); "
                         "expected one row per audio file")
    if "labels" in df.columns and "label" not in df.columns:  # the Albanian paper's column name
        df = df.rename(columns={"labels": "label"})
    return df


def _check_values(df: pd.DataFrame, csv_path, required: list[str]) -> None:
    """Required columns present and never empty; surrounding whitespace stripped (with a warning)
    from the label, speaker and split columns."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            f"{csv_path}: missing required column(s) {missing}; found {list(df.columns)}; "
            "expected path,label with optional speaker, split and extra metadata columns"
        )
    for col in ("label", "speaker", "split"):
        if col in df.columns:
            stripped = df[col].str.strip()
            changed = df.index[stripped != df[col]]
            if len(changed):
                line = int(changed[0]) + 2
                log.warning("%s: stripped surrounding whitespace from %d value(s) of column '%s' (e.g. line %d: %r)",
                            csv_path, len(changed), col, line, df[col].iloc[changed[0]])
                df[col] = stripped
    for col in required:
        empty = df.index[df[col].str.strip() == ""]
        if len(empty):
            rows = ", ".join(str(i + 2) for i in empty[:5])
            raise InputError(f"{csv_path}: column '{col}' is empty on line(s) {rows}")


def _resolve_paths(df: pd.DataFrame, csv_path, uri: bool, allowed_roots, confined: bool) -> tuple[list, list]:
    """(resolved paths, keys relative to the manifest's folder) of the `path` column; with `confined`,
    a path outside the manifest's folder and `allowed_roots` is an InputError, as is a duplicate."""
    base = storage.parent(storage.normalize(str(csv_path)))
    roots = [base if uri else Path(base)] + [storage.normalize(r) if storage.is_uri(r) or uri else Path(r).resolve()
                                             for r in allowed_roots]
    resolved, keys = [], []
    for line, raw in enumerate(df["path"].str.strip(), start=2):
        full, inside = _resolve(raw, base, roots, uri)
        if confined and not inside:
            raise InputError(
                f"{csv_path} line {line}: path '{raw}' resolves to {full}, outside the allowed roots "
                f"{[str(r) for r in roots]}; add its folder with --allow-root (config allowed_roots)"
            )
        resolved.append(full)
        keys.append(full[len(base) + 1:] if full.startswith(base.rstrip("/") + "/") else full)
    dupes = [p for p, n in Counter(resolved).items() if n > 1]
    if dupes:
        raise InputError(f"{csv_path}: {len(dupes)} duplicate path(s), e.g. {dupes[:3]}; each file may be listed once")
    return resolved, keys


def read_manifest(csv_path: str | Path, allowed_roots=(), unlabeled: bool = False, confined: bool = True
                  ) -> pd.DataFrame:
    """The validated rows of a manifest CSV (local or URI): `path` resolved against the CSV's folder,
    `key` relative to it. confined=False (predict, which only reads) accepts paths anywhere."""
    uri = storage.is_uri(str(csv_path))
    csv_path = str(csv_path) if uri else Path(csv_path)
    df = _read_table(csv_path)
    _check_values(df, csv_path, ["path"] if unlabeled else ["path", "label"])
    df["path"], keys = _resolve_paths(df, csv_path, uri, allowed_roots, confined)
    df.insert(0, "key", keys)
    if unlabeled and "label" not in df.columns:
        df["label"] = None
    return df


def _file_type(path: str) -> pafs.FileType:
    """What a local path or URI is (File, Directory, NotFound, ...); an object store that cannot be
    reached (bucket, credentials) is an InputError, one line before any work."""
    if not storage.is_uri(path):
        local = Path(path)
        return (pafs.FileType.Directory if local.is_dir() else pafs.FileType.File if local.is_file()
                else pafs.FileType.NotFound)
    fs, p = storage.split(path)
    try:
        return fs.get_file_info(p).type
    except OSError as exc:
        raise InputError(f"{path}: cannot reach it ({str(exc).splitlines()[0]}); check the bucket name and "
                         "credentials (AWS_* settings)") from exc


def _plan_uri(uri: str, labels_from: str, allowed_roots, unlabeled: bool) -> pd.DataFrame:
    """A manifest CSV or a folder in an object store."""
    kind = _file_type(uri)
    if kind == pafs.FileType.File:
        return read_manifest(uri, allowed_roots, unlabeled)
    if kind == pafs.FileType.Directory:
        return scan_uri(uri, labels_from)
    fs, p = storage.split(uri)
    bucket = p.split("/", 1)[0]
    if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
        raise InputError(f"{uri}: cannot reach it (bucket '{bucket}' does not exist, or these credentials cannot "
                         "see it); check the bucket name and credentials (AWS_* settings)")
    raise InputError(f"{uri}: no such manifest CSV or audio folder")


def find_audio(root: Path) -> list[Path]:
    """Audio files under a local folder, by extension (AUDIO_EXTENSIONS), folder by folder in name
    order; hidden names are skipped, other files counted in a warning, none at all is an InputError."""
    files, skipped = [], Counter()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(n for n in filenames if not n.startswith(".")):
            if name.lower().endswith(AUDIO_EXTENSIONS):
                files.append(Path(dirpath) / name)
            else:
                skipped[Path(name).suffix or "(none)"] += 1
    if skipped:
        log.warning("%s: ignored %d non-audio file(s) by extension: %s", root, sum(skipped.values()), dict(skipped))
    if not files:
        raise _no_audio(root)
    return files


def find_audio_objects(root: str) -> list[pafs.FileInfo]:
    """Audio objects under a folder URI (normalised), as find_audio: one recursive listing, sorted by
    path, hidden names skipped; an unlistable folder or none at all is an InputError."""
    try:
        infos = storage.list_files(root)
    except OSError as exc:
        raise InputError(f"{root}: cannot list the folder ({str(exc).splitlines()[0]}); check the bucket name "
                         "and credentials (AWS_* settings)") from exc
    _, prefix = storage.split(root)
    files = sorted((i for i in infos if not any(part.startswith(".") for part in i.path[len(prefix) + 1:].split("/"))
                    and i.base_name.lower().endswith(AUDIO_EXTENSIONS)), key=lambda i: i.path)
    if not files:
        raise _no_audio(root)
    return files


def _no_audio(root) -> InputError:
    return InputError(f"{root}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")


def scan_directory(root: str | Path, labels_from: str = "none", allowed_roots=()) -> pd.DataFrame:
    """Audio files under `root` (find_audio). A file that is a symlink to somewhere outside `root`
    and `allowed_roots` is refused, as a manifest path would be."""
    root = Path(root).resolve()
    roots = [root] + [Path(r).resolve() for r in allowed_roots]
    files = find_audio(root)
    outside = next((f for f in files if not _within(f.resolve(), roots)), None)
    if outside is not None:
        raise InputError(f"{outside}: a symlink to {outside.resolve()}, outside the input folder {root} and the "
                         f"allowed roots; add its folder with --allow-root (config allowed_roots)")
    return _folder_items(root, [f.relative_to(root).as_posix() for f in files], [str(f) for f in files], labels_from)


def _folder_items(root, keys: list[str], paths: list[str], labels_from: str) -> pd.DataFrame:
    """The items of a folder input (local or URI): `keys` relative to it ("/"-separated); with
    labels_from "parent", each file's label is the name of the folder it is in."""
    df = pd.DataFrame({"key": keys, "path": paths})
    if labels_from == "parent":
        if any("/" not in k for k in keys):
            raise InputError(f"{root}: --labels-from parent needs every file inside a class folder; "
                             "found files at the top level")
        df["label"] = [k.rsplit("/", 2)[-2] for k in keys]
    else:
        df["label"] = None
    return df


def scan_uri(root: str, labels_from: str = "none") -> pd.DataFrame:
    """Audio objects under a folder URI (find_audio_objects), as scan_directory."""
    root = storage.normalize(root)
    files = find_audio_objects(root)
    _, prefix = storage.split(root)
    keys = [i.path[len(prefix) + 1:] for i in files]
    df = _folder_items(root, keys, [f"{root}/{k}" for k in keys], labels_from)
    df.attrs["fingerprints"] = {f"{root}/{k}": storage.fingerprint(i) for k, i in zip(keys, files)}
    return df


def uri_fingerprints(paths: list[str]) -> dict[str, tuple]:
    """Size and mtime of object-store inputs: one listing of their common folder (objects missing
    from it get none and are quarantined as missing_file by the worker)."""
    if not paths:
        return {}
    common = posixpath.commonpath([p.split("://", 1)[1] for p in paths])
    scheme = paths[0].split("://", 1)[0]
    folder = f"{scheme}://{common}" if all(p != f"{scheme}://{common}" for p in paths) else storage.parent(paths[0])
    try:
        listed = {f"{scheme}://{i.path}": storage.fingerprint(i) for i in storage.list_files(folder)}
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the inputs' folder ({str(exc).splitlines()[0]}); check the bucket "
                         "name and credentials (AWS_* settings)") from exc
    return listed


def plan_inputs(
    input_path: str | Path,
    labels_from: str = "none",
    label_map: dict[str, str] | None = None,
    allowed_roots=(),
    unlabeled: bool = False,
) -> pd.DataFrame:
    """Validated work items for INPUT, with stable utterance ids and mapped labels."""
    if storage.is_uri(str(input_path)):
        df = _plan_uri(str(input_path), labels_from, allowed_roots, unlabeled)
    else:
        input_path = Path(input_path)
        if input_path.is_dir():
            df = scan_directory(input_path, labels_from, allowed_roots)
        elif input_path.is_file():
            df = read_manifest(input_path, allowed_roots, unlabeled)
        else:
            raise InputError(f"{input_path}: no such manifest CSV or audio folder")
    if label_map:
        present = set(df["label"].dropna())
        unmapped = sorted(present - set(label_map))
        if unmapped:
            raise InputError(f"{input_path}: label(s) {unmapped} have no entry in label_map {label_map}")
        df["original_label"] = df["label"]
        df["label"] = df["label"].map(lambda v: None if v is None else label_map[v])
    for col in ("speaker", "split"):
        if col not in df.columns:
            df[col] = None
    df.insert(0, "utterance_id", [utterance_id(p) for p in df["path"]])
    known = df.attrs.get("fingerprints")
    if known is None:
        uris = [p for p in df["path"] if storage.is_uri(p)]
        known = uri_fingerprints(uris)
    stats = [known.get(p, (None, None)) if storage.is_uri(p) else fingerprint(p) for p in df["path"]]
    df["source_bytes"] = pd.array([b for b, _ in stats], dtype="Int64")
    df["source_mtime_ns"] = pd.array([m for _, m in stats], dtype="Int64")
    extras = [c for c in df.columns if c not in BASE_COLUMNS]
    return df[BASE_COLUMNS + extras].reset_index(drop=True)


def audio_inputs(items: list[str]) -> tuple[list[str], dict[str, str]]:
    """The audio that ITEMS name, for work on unlabelled audio (`albsent predict`), by this module's
    rules: a folder (local or URI) is searched as scan_directory / scan_uri search one, a manifest
    CSV (local or URI; a `path` column, an optional `speaker`) is read as read_manifest reads one,
    without labels and with paths anywhere; anything else is a file as given (a missing one is kept:
    it fails on its own). Returns (paths, {path: speaker} for the manifest rows that name one)."""
    paths: list[str] = []
    speakers: dict[str, str] = {}
    for item in map(str, items):
        kind = _file_type(item)
        if kind == pafs.FileType.Directory:
            paths += _folder_audio(item)
        elif kind == pafs.FileType.File and item.lower().endswith(".csv"):
            table = read_manifest(item, unlabeled=True, confined=False)
            paths += table["path"].tolist()
            if "speaker" in table.columns:
                speakers.update({p: spk for p, spk in zip(table["path"], table["speaker"]) if spk})
        else:
            paths.append(item)
    return paths, speakers


def _folder_audio(folder: str) -> list[str]:
    """Audio files of a folder input spelled as given (`folder/sub/a.wav`; a URI normalised), sorted."""
    if storage.is_uri(folder):
        root = storage.normalize(folder)
        _, prefix = storage.split(root)
        return [f"{root}/{i.path[len(prefix) + 1:]}" for i in find_audio_objects(root)]
    return sorted(str(f) for f in find_audio(Path(folder)))
