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


SESSION_CHILD = r"""
import json, os, sys
import ray
from albsent.runner.session import ray_session
with ray_session(num_cpus=1, temp_dir=sys.argv[1]):
    worker = ray.get(ray.remote(lambda: os.environ.get("MALLOC_ARENA_MAX")).remote())
    inside = os.environ.get("MALLOC_ARENA_MAX")
print(json.dumps({"worker": worker, "driver_inside": inside, "driver_after": os.environ.get("MALLOC_ARENA_MAX")}))
"""


def session_env(**env) -> dict:
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="alb-", dir="/tmp")  # unix socket paths must stay < 107 bytes
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    try:
        out = subprocess.run([sys.executable, "-c", SESSION_CHILD, ray_tmp], capture_output=True, text=True,
                             timeout=180, env={**base, "RAY_ADDRESS": "", **env})
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc")
def test_local_cluster_workers_get_one_malloc_arena_and_driver_env_is_restored():
    """Tune trains in a thread of a Ray worker, which runs ~25 threads of its own: one arena keeps
    the fit from faulting its pages in again (albsent.runtime). Only the started cluster gets it."""
    assert session_env() == {"worker": "1", "driver_inside": None, "driver_after": None}
    assert session_env(ALBSENT_KEEP_FREED_MEMORY="0")["worker"] is None


def test_worker_env_keeps_a_value_the_user_set(monkeypatch):
    from albsent.runtime import worker_env

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert worker_env() == {"MALLOC_ARENA_MAX": "4"}
    monkeypatch.setenv("ALBSENT_KEEP_FREED_MEMORY", "0")
    assert worker_env() == {}
