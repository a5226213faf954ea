"""Where the CPU goes while `albsent extract` runs: cores used per process in steady state.

Runs the command on a synthetic corpus (MFCC + short-term) and samples every process's CPU time
at two moments well inside the run; the difference over the window gives cores per process.
Workers are split into their busiest thread (the extraction UDF) and the rest (Ray's threads).
On a machine with few cores this shows how much Ray's driver loop, Ray Data's helper actors and
the node's daemons take from the extraction, i.e. what caps `bench/extract_cpu.py`'s ratio.

    .venv/bin/python bench/extract_overhead.py [--clips 5000] [--window 20,45] [--set batch_size=16 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from _common import albsent_cmd, albsent_env, many_clips  # noqa: E402

RAY_DATA_ACTORS = ("_StatsActor", "_AutoscalingCoordinatorActor", "ActorLocationTracker")


def kind(cmdline: str, driver_pid: int, pid: int) -> str:
    if pid == driver_pid:
        return "driver"
    if "MapWorker" in cmdline:
        return "worker"
    if any(a in cmdline for a in RAY_DATA_ACTORS):
        return "ray_data_actors"
    if "/ray/" in cmdline or cmdline.startswith("ray::") or "gcs_server" in cmdline or "raylet" in cmdline:
        return "ray_daemons"
    return "other"


def snapshot(driver_pid: int) -> dict[int, tuple[str, float, float]]:
    """pid -> (kind, process CPU seconds, busiest thread's CPU seconds)."""
    out = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            k = kind(cmd, driver_pid, p.pid)
            t = p.cpu_times()
            top = max((th.user_time + th.system_time for th in p.threads()), default=0.0) if k == "worker" else 0.0
            out[p.pid] = (k, t.user + t.system, top)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--window", default="20,45", help="start,end of the sampled window, seconds after launch")
    ap.add_argument("--set", action="append", default=[], help="extra `albsent extract --set` overrides")
    args = ap.parse_args()
    t_a, t_b = (float(x) for x in args.window.split(","))
    work = Path(tempfile.mkdtemp(prefix="albsent-overhead-"))
    ray_tmp = tempfile.mkdtemp(prefix="abr-", dir="/tmp")
    try:
        manifest = many_clips(work / "corpus", args.clips, args.seconds)
        cmd = albsent_cmd(manifest, work / "store", ray_tmp, [x for kv in args.set for x in ("--set", kv)])
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=albsent_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(t_a)
        a, ta = snapshot(proc.pid), time.perf_counter()
        time.sleep(t_b - t_a)
        b, tb = snapshot(proc.pid), time.perf_counter()
        out, err = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(err[-3000:])
        if proc.pid not in a or wall < t_b:
            raise SystemExit(f"the run ended ({wall:.1f} s) before the window did ({t_b} s): use more --clips")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    dt = tb - ta
    cores: dict[str, float] = {}
    udf = []
    for pid, (k, cpu, top) in b.items():
        if pid not in a:
            continue
        cores[k] = cores.get(k, 0.0) + (cpu - a[pid][1]) / dt
        if k == "worker":
            udf.append((top - a[pid][2]) / dt)
            cores["worker"] -= udf[-1]
    report = {
        "clips": args.clips, "overrides": args.set, "wall_s": round(wall, 1), "window_s": round(dt, 1),
        "cpus": len(os.sched_getaffinity(0)),
        "udf_cores_per_worker": [round(u, 3) for u in sorted(udf, reverse=True)],
        "cores": {("worker_other_threads" if k == "worker" else k): round(v, 3) for k, v in sorted(cores.items())},
        "summary": json.loads(out.strip().splitlines()[-1]),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
