"""Shared bench helpers: synthetic corpora of many files, the `albsent extract` command line, and
peak-memory sampling of a process tree."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import soundfile as sf

from albsent.testing.synth import CLASS_STYLE, voice


def many_clips(root: Path, n: int, seconds: float, seed: int = 0, pool: int = 64) -> Path:
    """n distinct files (a pool of `pool` different signals, cycled) + manifest.csv."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = list(CLASS_STYLE)
    signals = [voice(rng, seconds, 16000, 120 + 5 * (i % 20), 0.1, 0.02, 4.0) for i in range(pool)]
    rows = []
    for i in range(n):
        rel = f"wav/{i // 1000:03d}/{i:06d}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, signals[i % pool], 16000, subtype="PCM_16")
        rows.append({"path": rel, "label": labels[i % 3], "speaker": f"s{i % 10}"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def albsent_cmd(manifest: Path, out: Path, ray_tmp: str, extra: list[str]) -> list[str]:
    """`albsent extract` in a fresh process that starts its own local Ray cluster under `ray_tmp`."""
    return [sys.executable, "-m", "albsent.cli", "-q", "extract", str(manifest), "--out", str(out), "--json",
            "--set", f"ray.temp_dir={ray_tmp}", *extra]


def albsent_env() -> dict[str, str]:
    """The environment for `albsent_cmd`: a new local cluster (no RAY_ADDRESS), no token auth."""
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}


def _is_ray_worker(p: psutil.Process) -> bool:
    cmd = " ".join(p.cmdline())
    return cmd.startswith("ray::") or "default_worker.py" in cmd


class PeakMemory:
    """Samples the RSS of a driver process and of the Ray workers below it every `interval` s."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval = pid, interval
        self.driver_peak = 0
        self.worker_peak = 0  # the largest single worker
        self.workers_total_peak = 0  # all workers together
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                driver = psutil.Process(self.pid)
                self.driver_peak = max(self.driver_peak, driver.memory_info().rss)
                rss = [p.memory_info().rss for p in driver.children(recursive=True) if _is_ray_worker(p)]
                if rss:
                    self.worker_peak = max(self.worker_peak, max(rss))
                    self.workers_total_peak = max(self.workers_total_peak, sum(rss))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], env: dict) -> tuple[float, PeakMemory, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakMemory(proc.pid) as mem:
        out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{err[-3000:]}")
    return wall, mem, out
