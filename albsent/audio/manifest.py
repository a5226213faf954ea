"""Turn INPUT (a manifest CSV or a folder of audio) into a validated table of work items.

Every problem a user can fix (missing column, empty label, duplicate path, path outside
the allowed roots, unmapped label) is an InputError raised before any work starts.
Output columns: utterance_id, key, path, label, speaker, split, then extra manifest columns.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from albsent.audio.io import AUDIO_EXTENSIONS
from albsent.errors import InputError

log = logging.getLogger(__name__)

BASE_COLUMNS = ["utterance_id", "key", "path", "label", "speaker", "split"]


def utterance_id(key: str) -> str:
    """Stable id of an input: the same relative path always gets the same id."""
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def read_manifest(csv_path: str | Path, allowed_roots=(), unlabeled: bool = False) -> pd.DataFrame:
    csv_path = Path(csv_path)
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for unreadable CSVs
        raise InputError(f"{csv_path}: cannot read manifest CSV ({exc})") from exc
    df.columns = [c.strip() for c in df.columns]
    if df.empty:
        raise InputError(f"{csv_path}: the manifest lists no inputs (a header line only); "
                         "expected one row per audio file")
    if "labels" in df.columns and "label" not in df.columns:  # the Albanian paper's column name
        df = df.rename(columns={"labels": "label"})
    required = ["path"] if unlabeled else ["path", "label"]
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
    base = csv_path.resolve().parent
    roots = [base] + [Path(r).resolve() for r in allowed_roots]
    resolved, keys = [], []
    for line, raw in enumerate(df["path"].str.strip(), start=2):
        p = Path(raw)
        full = (p if p.is_absolute() else base / p).resolve()
        if not _within(full, roots):
            raise InputError(
                f"{csv_path} line {line}: path '{raw}' resolves to {full}, outside the allowed roots "
                f"{[str(r) for r in roots]}; add its folder with --allow-root (config allowed_roots)"
            )
        resolved.append(str(full))
        keys.append(str(full.relative_to(base)) if base in full.parents else str(full))
    dupes = [p for p, n in Counter(resolved).items() if n > 1]
    if dupes:
        raise InputError(f"{csv_path}: {len(dupes)} duplicate path(s), e.g. {dupes[:3]}; each file may be listed once")
    df["path"] = resolved
    df.insert(0, "key", keys)
    if unlabeled and "label" not in df.columns:
        df["label"] = None
    return df


def scan_directory(root: str | Path, labels_from: str = "none") -> pd.DataFrame:
    root = Path(root).resolve()
    files, skipped = [], Counter()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if name.lower().endswith(AUDIO_EXTENSIONS):
                files.append(Path(dirpath) / name)
            else:
                skipped[Path(name).suffix or "(none)"] += 1
    if skipped:
        log.warning("%s: ignored %d non-audio file(s) by extension: %s", root, sum(skipped.values()), dict(skipped))
    if not files:
        raise InputError(f"{root}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")
    df = pd.DataFrame({"key": [str(f.relative_to(root)) for f in files], "path": [str(f) for f in files]})
    if labels_from == "parent":
        parents = [f.parent for f in files]
        if any(p == root for p in parents):
            raise InputError(f"{root}: --labels-from parent needs every file inside a class folder; "
                             "found files at the top level")
        df["label"] = [p.name for p in parents]
    else:
        df["label"] = None
    return df


def plan_inputs(
    input_path: str | Path,
    labels_from: str = "none",
    label_map: dict[str, str] | None = None,
    allowed_roots=(),
    unlabeled: bool = False,
) -> pd.DataFrame:
    """Validated work items for INPUT, with stable utterance ids and mapped labels."""
    input_path = Path(input_path)
    if input_path.is_dir():
        df = scan_directory(input_path, labels_from)
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
    df.insert(0, "utterance_id", [utterance_id(k) for k in df["key"]])
    extras = [c for c in df.columns if c not in BASE_COLUMNS]
    return df[BASE_COLUMNS + extras].reset_index(drop=True)
