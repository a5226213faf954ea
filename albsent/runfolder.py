"""Run folders albsent writes (train, pretrain, ...), and the one rule for emptying one.

Every run folder albsent creates gets a marker, RUN/.albsent-run.json (what wrote it, when). A
folder that already holds files is refused; with `--overwrite` it is emptied first, but only if
albsent wrote it as a run: it holds the marker (or, for runs written before the marker existed,
only the files a run writes), it is not and does not hold a feature store, and it is not the
current directory, an ancestor of it, a home folder or the filesystem root. Anything else is
refused with one line naming what is there: `--overwrite` never deletes a user's files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from albsent import __version__
from albsent.config import check_out_folder
from albsent.errors import ConfigError

MARKER = ".albsent-run.json"
STORE_MARKERS = ("_albsent.json", "_quarantine")  # a feature store (albsent.store)
# What runs wrote before the marker existed: a folder holding only these (and at least one
# model or metrics file) is still recognised as a run.
RUN_FILES = {"metrics.json", "predictions.csv", "confusion_matrix.png", "loss_curve.png", "config.yaml",
             "model.safetensors", "model.json", "ensemble.json", "selection.csv", "recipes.json", "history.csv",
             "members", "checkpoints", "probe", "cv.json"}
RUN_EVIDENCE = {"metrics.json", "model.json", "ensemble.json"}


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _is_run_name(name: str) -> bool:
    return name in RUN_FILES or name == MARKER or (name.startswith("fold-") and name[5:].isdigit())


def protected(folder: Path) -> str | None:
    """Why `folder` may never be emptied, or None."""
    folder = folder.resolve()
    cwd = Path.cwd().resolve()
    if folder == Path(folder.anchor):
        return "it is the filesystem root"
    if folder == cwd or folder in cwd.parents:
        return "it is the current directory" if folder == cwd else "it holds the current directory"
    home = Path.home().resolve()
    if folder == home or folder in home.parents:
        return "it is your home folder" if folder == home else "it holds your home folder"
    found = [m for m in STORE_MARKERS if (folder / m).exists()]
    if found:
        return f"it is a feature store (it holds {', '.join(found)})"
    return None


def not_a_run(folder: Path) -> str | None:
    """Why `folder` (which holds files) is not a run albsent wrote, or None."""
    why = protected(folder)
    if why:
        return why
    names = _entries(folder)
    marker = folder / MARKER
    if marker.is_file() and not marker.is_symlink():
        for root, dirs, files in os.walk(folder):  # a store put inside a run is not the run's to delete
            if any(m in files or m in dirs for m in STORE_MARKERS):
                return f"it holds a feature store ({Path(root).relative_to(folder) or '.'})"
        return None
    foreign = [n for n in names if not _is_run_name(n)]
    if foreign or not RUN_EVIDENCE & set(names):
        return f"albsent did not write it as a run (no {MARKER}); it holds {_listing(foreign or names)}"
    return None


def prepare(out: str | Path, overwrite: bool, command: str, out_flag: str = "--out",
            overwrite_flag: str = "--overwrite") -> Path:
    """Make `out` ready for a new run: create it (or accept it empty), or with `overwrite` empty
    a run albsent wrote there; then write the marker. Raises ConfigError with one line otherwise
    (a file, a used folder without `overwrite`, a folder that is not a run, one not writable)."""
    check_out_folder(out, out_flag)
    out = Path(out)
    if out.is_dir() and [n for n in _entries(out) if n != MARKER]:  # (only a marker: a run that failed early)
        why = not_a_run(out)
        if why:
            raise ConfigError(f"{out_flag} {out} already holds files and {why}; choose another {out_flag} (albsent "
                              f"{'never deletes such a folder' if overwrite else 'writes runs into new folders'})")
        if not overwrite:
            raise ConfigError(f"{out} already holds files; choose another {out_flag} or pass {overwrite_flag} "
                              "to replace them")
        _empty(out)
    try:
        mark(out, command)
    except OSError as exc:
        raise ConfigError(f"{out_flag} {out}: cannot write there ({exc.strerror or exc}); choose a folder you can "
                          "write to") from exc
    return out


def mark(out: str | Path, command: str) -> None:
    """Create `out` if needed and write the run marker into it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    (out / MARKER).write_text(json.dumps({"albsent": __version__, "command": command, "created_utc": created}) + "\n")


def _empty(folder: Path) -> None:
    """Remove what a run folder holds (not the folder: its permissions and links stay)."""
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
