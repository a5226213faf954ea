"""One writer at a time: STORE/_lock.json (see StoreLock)."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from albsent.errors import StoreError

if TYPE_CHECKING:
    from albsent.store.store import Store

log = logging.getLogger(__name__)


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


LOCK_FILE = "_lock.json"
LEASE_S = 300.0  # a lock whose heartbeat is older than this is stale (its writer is gone)


class StoreLock:
    """One writer at a time: STORE/_lock.json names its holder (host, pid) and carries a
    heartbeat refreshed every LEASE_S / 5 seconds. The file only ever appears whole (written
    aside, then hard-linked into place, which fails if a lock exists), and is replaced, never
    deleted, when taken over, so a reader never sees it half-written and no second writer can
    slip in between. A lock left by a killed writer is taken over with a warning: on the same
    host when its pid is gone, anywhere once its heartbeat is older than LEASE_S, and at once when
    it holds no valid lock (garbage, empty). Judging and taking over run under an exclusive
    flock of the store folder, so two writers cannot both take over one stale lock (local disks;
    best effort in object stores). A live holder makes the second writer fail naming it."""

    def __init__(self, store: "Store"):
        self.store, self.path = store, f"{store.root}/{LOCK_FILE}"
        self._stop = None
        self.made_root = False

    def _local(self) -> bool:
        return isinstance(self.store.fs, pafs.LocalFileSystem)

    def _read(self) -> tuple[bool, dict | None]:
        """(a lock file exists, its holder or None when it holds no valid lock)."""
        try:
            with self.store.fs.open_input_stream(self.path) as fh:
                raw = fh.read()
        except FileNotFoundError:
            return False, None
        try:
            held = json.loads(raw.decode())
        except (ValueError, UnicodeDecodeError):
            return True, None
        ok = isinstance(held, dict) and all(k in held for k in ("host", "pid", "heartbeat", "started"))
        return True, held if ok else None

    def _stale(self, held: dict) -> bool:
        import os
        import socket
        import time

        if held.get("host") == socket.gethostname():
            try:
                os.kill(int(held.get("pid", -1)), 0)
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError, OverflowError, TypeError):
                pass
        try:
            return time.time() - float(held.get("heartbeat", 0)) > LEASE_S
        except (TypeError, ValueError):
            return True

    def _write(self, body: bytes, replace: bool) -> bool:
        """Put `body` in place whole: as a new lock (False if one exists), or over the old one."""
        import os

        if not self._local():
            if not replace and self.store.fs.get_file_info(self.path).type != pafs.FileType.NotFound:
                return False
            with self.store.fs.open_output_stream(self.path) as fh:
                fh.write(body)
            return True
        tmp = f"{self.store.root}/.{LOCK_FILE}.{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(body)
        try:
            if replace:
                os.replace(tmp, self.path)
                return True
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem: exclusive create, then write
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            return True
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    @contextlib.contextmanager
    def _guard(self):
        """An exclusive flock of the store folder while a lock is judged or taken over."""
        import fcntl
        import os

        fd = None
        if self._local():
            try:
                fd = os.open(self.store.root, os.O_RDONLY)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # a filesystem without flock: the hard link still decides creation
                log.debug("%s: no flock (%s)", self.store.uri, exc)
        try:
            yield
        finally:
            if fd is not None:
                os.close(fd)

    def _body(self) -> bytes:
        import os
        import socket
        import time

        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time(),
                           "started": self.started}).encode()

    def __enter__(self) -> "StoreLock":
        import threading
        import time

        fs, root = self.store.fs, self.store.root
        with self.store._io():
            self.made_root = fs.get_file_info(root).type == pafs.FileType.NotFound
            try:
                fs.create_dir(root, recursive=True)
            except PermissionError as exc:
                raise StoreError(f"{self.store.uri}: cannot create the store folder ({first_line(exc)}); choose a "
                                 "--out you can write to") from exc
            self.started = time.time()
            try:
                with self._guard():
                    self._acquire()
            except PermissionError as exc:
                raise StoreError(f"{self.store.uri}: the store is not writable ({first_line(exc)}); writing it "
                                 "needs write permission on the folder (reading it does not)") from exc
        self._stop = threading.Event()
        threading.Thread(target=self._beat, daemon=True, name="albsent-store-lock").start()
        return self

    def _acquire(self) -> None:
        import time

        if self._write(self._body(), replace=False):
            return
        present, held = self._read()
        if not present:  # released in between
            if self._write(self._body(), replace=False):
                return
            present, held = self._read()
        if held is None:
            log.warning("%s: %s holds no valid lock (empty or garbage: a writer was killed while writing it); "
                        "taking it over", self.store.uri, LOCK_FILE)
        elif not self._stale(held):
            self.made_root = False
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(held.get("started") or 0)))
            raise StoreError(f"{self.store.uri} is being written by process {held.get('pid')} on host "
                             f"{held.get('host')} (since {since}); wait for it to finish, or if that process is "
                             f"gone, remove {self.store.uri}/{LOCK_FILE}")
        else:
            log.warning("%s: taking over the lock of a writer that is gone (process %s on %s)", self.store.uri,
                        held.get("pid"), held.get("host"))
        self._write(self._body(), replace=True)

    def _mine(self) -> bool:
        import os

        _, held = self._read()
        return bool(held) and held.get("pid") == os.getpid() and held.get("started") == self.started

    def _beat(self) -> None:
        while not self._stop.wait(LEASE_S / 5):
            try:
                with self._guard():
                    if not self._mine():
                        log.error("%s: another writer took over this writer's lock (its heartbeat was late); "
                                  "stopping the heartbeat", self.store.uri)
                        return
                    self._write(self._body(), replace=True)
            except OSError as exc:
                log.warning("%s: could not refresh the lock's heartbeat (%s)", self.store.uri, exc)

    def __exit__(self, *exc) -> None:
        """Release; a store folder this writer created and left empty (e.g. the input was refused)
        is removed again, so a failed first run leaves nothing behind."""
        if self._stop is not None:
            self._stop.set()
        fs, root = self.store.fs, self.store.root
        try:
            if self._stop is not None:
                with self._guard():
                    if self._mine():
                        fs.delete_file(self.path)
            if self.made_root and not fs.get_file_info(pafs.FileSelector(root)):
                fs.delete_dir(root)
        except (FileNotFoundError, OSError):
            pass
