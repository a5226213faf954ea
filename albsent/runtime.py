"""Process settings for long CPU work: `keep_freed_memory()`, and `torch_threads(n)`, the one
place that sets torch's intra-op thread count (scoped: the previous count comes back).

glibc's malloc gives freed memory back to the OS as soon as 128 KiB sit free at the top of the
heap, serves large blocks with mmap/munmap, and unmaps a thread arena's heaps once they are
empty. Training allocates and frees the same multi-MiB tensors every step (gradients,
optimiser temporaries), so every step faults fresh pages in again. Measured on 2 vCPUs (MLP,
hidden 8192, EMO-DB MFCC, 8 epochs, one thread):
- main thread: 6.6-10.5 s per fit, 1.2-2.6 M page faults, 2-4 s of system time; with the
  settings below 4.4-4.7 s, ~0 faults, no system time, the same weights;
- in a Tune trial (training runs in a thread, with its own arena): 4.5-6.6 s and up to 1 M
  faults with the trim and mmap thresholds alone; 4.8-4.9 s and ~20 k faults with the top pad.
Feature extraction (pYIN): 3.7 % faster. Peak RSS grew by < 5 %.

`worker_env()` adds one setting for the Ray processes albsent starts itself (the local cluster of
`ray_session`): MALLOC_ARENA_MAX=1, read by glibc when a process starts. A Ray worker runs ~25
threads of its own, more than glibc's default 8 arenas per core, and a Tune trial trains in a thread
of that worker; there the same fit still faulted 21-25 k pages in (0.2-0.3 s of system time) and
ran 6-12 % slower than in the worker's main thread. With one arena (or with one per thread) the
faults are gone and the fit runs as fast as in the main thread. Feature extraction is unchanged.
On a cluster albsent joins, the job's runtime env sets it (cluster/runtime_env.yaml).

Set ALBSENT_KEEP_FREED_MEMORY=0 to leave the allocator alone. No-op outside glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys

log = logging.getLogger(__name__)

TRIM_THRESHOLD_BYTES = 64 << 20  # keep up to 64 MiB free at the top of the heap
MMAP_THRESHOLD_BYTES = 32 << 20  # blocks below 32 MiB (glibc's maximum) come from the heap
TOP_PAD_BYTES = 64 << 20  # thread arenas (a Tune trial trains in a thread): keep empty heaps mapped
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # <malloc.h>
WORKER_ENV = {"MALLOC_ARENA_MAX": "1"}  # every thread allocates from the main arena


def enabled() -> bool:
    return os.environ.get("ALBSENT_KEEP_FREED_MEMORY", "1") != "0" and sys.platform.startswith("linux")


def worker_env() -> dict[str, str]:
    """Environment for Ray processes albsent starts (see the module docstring); a value the user
    already set wins."""
    if not enabled():
        return {}
    return {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's trim threshold, top pad and mmap threshold for this process (once).
    Returns whether it did."""
    if not enabled():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(k, v) == 1 for k, v in ((_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (_M_TOP_PAD, TOP_PAD_BYTES),
                                             (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)))
    log.debug("malloc thresholds raised: %s", ok)
    return ok


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with `n` torch intra-op threads (0: torch's current setting), restoring the
    previous count afterwards. On a busy machine one thread is far faster for small models than
    threads fighting for cores (`num_threads` of TrainConfig, PretrainConfig and ProbeConfig)."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display): the one place that sets it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
