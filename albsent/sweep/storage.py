"""A sweep folder that may be local or an object-store URI (pyarrow filesystems: s3://, gs://,
file://, ...). Small text files and whole folders only."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pafs


def is_uri(path: str) -> bool:
    return "://" in str(path)


def split(path: str) -> tuple[pafs.FileSystem, str]:
    if is_uri(path):
        return pafs.FileSystem.from_uri(str(path))
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts]) if is_uri(base) else str(Path(base, *parts))


def write_text(path: str, text: str) -> None:
    fs, p = split(path)
    fs.create_dir(os.path.dirname(p), recursive=True)
    with fs.open_output_stream(p) as fh:
        fh.write(text.encode())


def read_text(path: str, fs: pafs.FileSystem | None = None) -> str | None:
    """The text of `path`, or None if absent; `fs` given: `path` is a path inside it."""
    fs, p = (fs, path) if fs is not None else split(path)
    if fs.get_file_info(p).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(p) as fh:
        return fh.read().decode()


def list_names(path: str) -> list[str]:
    fs, p = split(path)
    if fs.get_file_info(p).type != pafs.FileType.Directory:
        return []
    return sorted(os.path.basename(i.path) for i in fs.get_file_info(pafs.FileSelector(p)))


def upload(local_dir: str | Path, uri: str) -> None:
    """Copy a local folder's files to `uri` (no-op when `uri` is that folder)."""
    fs, p = split(uri)
    if isinstance(fs, pafs.LocalFileSystem) and Path(p).resolve() == Path(local_dir).resolve():
        return
    fs.create_dir(p, recursive=True)
    pafs.copy_files(str(Path(local_dir).resolve()), p, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)
