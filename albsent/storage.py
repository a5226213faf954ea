"""Files that may be local or in an object store (pyarrow filesystems: s3://, gs://, file://,
...): the one place albsent turns a path or URI into a filesystem. Used for stores, sweep
folders, and audio inputs (manifests, folders and clips given as URIs).

A filesystem is made once per process for each scheme + bucket (an S3 client is ~50 ms to make).
Reads retry transient errors (`ATTEMPTS` tries, backing off); a missing object is
FileNotFoundError at once. S3 credentials and endpoint come from the usual AWS settings
(AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_ENDPOINT_URL, instance roles...).
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from albsent.errors import ConfigError

ATTEMPTS = 4  # tries per read of an object-store file (transient errors: throttling, resets)
log = logging.getLogger(__name__)


def is_uri(path: str) -> bool:
    return "://" in str(path)


S3_CONNECT_TIMEOUT_S = 5.0  # an endpoint that never answers (a black-holed address) fails in ~10 s, not minutes
S3_REQUEST_ATTEMPTS = 3  # tries per S3 request inside pyarrow (each waits at most ~3 s without a byte)


@lru_cache(maxsize=64)
def _object_fs(scheme: str, netloc: str) -> pafs.FileSystem:
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{netloc}/")
    if isinstance(fs, pafs.S3FileSystem):  # the same options, with bounded connection waits and retries
        try:
            options = fs.__reduce__()[1][0]
            options.update(region=fs.region, connect_timeout=S3_CONNECT_TIMEOUT_S,
                           retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_REQUEST_ATTEMPTS))
            fs = pafs.S3FileSystem(**options)
        except (TypeError, ValueError, IndexError) as exc:  # another pyarrow: keep its defaults
            log.debug("S3 timeouts not set (%s)", exc)
    return fs


def split(path: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it). Local paths are made absolute."""
    if is_uri(path):
        u = urlsplit(str(path))
        if u.scheme in ("s3", "gs", "gcs"):
            return _object_fs(u.scheme, u.netloc), f"{u.netloc}{posixpath.normpath(u.path or '/')}".rstrip("/")
        return pafs.FileSystem.from_uri(str(path))
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def normalize(path: str) -> str:
    """A URI with `.` and `..` resolved, or an absolute local path (symlinks resolved)."""
    if is_uri(path):
        u = urlsplit(str(path))
        return f"{u.scheme}://{u.netloc}{posixpath.normpath(u.path or '/')}"
    return str(Path(path).resolve())


def parent(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0] if is_uri(path) else str(Path(path).parent)


def read_bytes(path: str, attempts: int = ATTEMPTS) -> bytes:
    """The whole file. FileNotFoundError / IsADirectoryError as for local files; other errors of
    an object store are retried with backoff, then raised."""
    if not is_uri(path):
        with open(path, "rb") as fh:
            return fh.read()
    fs, p = split(path)
    for attempt in range(attempts):
        try:
            info = fs.get_file_info(p)
            if info.type == pafs.FileType.NotFound:
                raise FileNotFoundError(f"{path}: no such object")
            if info.type == pafs.FileType.Directory:
                raise IsADirectoryError(f"{path}: a folder, not a file")
            with fs.open_input_stream(p) as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError):
            raise
        except OSError as exc:
            if attempt == attempts - 1:
                raise
            log.warning("%s: read failed (%s); retrying", path, exc)
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def fingerprint(info: pafs.FileInfo) -> tuple[int | None, int | None]:
    """(size, mtime in ns) of a file, (None, None) if it is not one."""
    if info.type != pafs.FileType.File:
        return None, None
    return info.size, (info.mtime_ns if info.mtime_ns is not None else None)


def list_files(uri: str) -> list[pafs.FileInfo]:
    """Every file below a folder URI (recursive, one paginated listing)."""
    fs, p = split(uri)
    return [i for i in fs.get_file_info(pafs.FileSelector(p, recursive=True)) if i.type == pafs.FileType.File]


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


def check_owned(folder: str, what: str) -> None:
    """Raise ConfigError unless `folder`, everything below it and every symlink target in it belong
    to the current user. Resuming a sweep unpickles Ray Tune's state from the folder (tuner.pkl,
    the experiment and searcher state, trial checkpoints), and unpickling runs code, so a sweep is
    only resumed from a folder its user wrote. An object-store URI (s3://...) is not checked: its
    bucket's permissions decide who could have written it."""
    if "://" in str(folder) or not os.path.isdir(folder):
        return
    uid, seen = os.getuid(), set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop
            dirs.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        for path in [root, *(os.path.join(root, name) for name in dirs + files)]:  # dirs: also unreadable ones
            try:
                owner = os.stat(path).st_uid
            except FileNotFoundError:  # a dangling symlink: nothing to unpickle
                continue
            if owner != uid:
                raise ConfigError(f"{what}: {path} belongs to uid {owner}, not to you (uid {uid}); resuming "
                                  f"unpickles Ray Tune state from {folder}, so only resume a sweep folder you wrote")
