"""keep_freed_memory(): glibc keeps freed heap pages, so a training step that frees and
re-allocates multi-MiB tensors does not fault them in again. Measured in fresh processes
(the setting is per process and applied once)."""

import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, resource, sys, threading
import numpy as np
from albsent.runtime import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else False
def churn():
    for _ in range(100):  # a step's temporaries: 3 x 8 MiB allocated, touched, freed
        a, b, c = np.ones(1 << 20), np.ones(1 << 20), np.ones(1 << 20)
        del a, b, c
def measure(out):
    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    out["faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
out = {"applied": applied}
if sys.argv[2] == "thread":  # a Tune trial trains in a thread: its own malloc arena
    t = threading.Thread(target=measure, args=(out,))
    t.start()
    t.join()
else:
    measure(out)
print(json.dumps(out))
"""


def run(mode: str, where: str = "main", **env) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, where], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
@pytest.mark.parametrize("where", ["main", "thread"])
def test_freed_memory_is_kept_and_pages_are_not_faulted_again(where):
    on, off = run("on", where), run("off", where)
    assert on["applied"] is True
    # 100 x 24 MiB = 600k pages of 4 KiB when every block is faulted in again
    assert off["faults"] > 50_000
    assert on["faults"] < 5_000


def test_opt_out():
    assert run("on", ALBSENT_KEEP_FREED_MEMORY="0")["applied"] is False
