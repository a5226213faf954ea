"""Throughput and memory of `albsent extract` (MFCC + short-term) on CPU.

1. Speed: audio-seconds per wall-second of the `albsent extract` command (a fresh process that
   starts its own local Ray cluster, all cores) against a plain single-process loop computing the
   same features on the same files, in the same run. Target: >= 1.8x on 2 cores.
   - The plain loop also runs as a fresh process (`--plain MANIFEST`), timed from start to exit
     like the albsent command, so both pay their imports and warm-up. It runs once before and once
     after albsent (A-B-A) and the mean is the baseline: this VM's speed drifts 5-10 % between
     minutes, and a drift then hits both sides alike.
   - `speedup` compares whole processes; `speedup_vs_loop_only` is stricter: the loop's own time,
     imports and warm-up excluded, against albsent's whole process.
   - `ideal_speedup`: the plain loop in one process per core, each on its share of the files,
     warm-up excluded: the most any parallel runner can get here.
   - `librosa_loop`: the plain loop with F0 from `librosa.pyin` instead of albsent's equal but
     faster decoder (`albsent.features.pitch`), i.e. what the loop cost before albsent had it;
     run on the first `--librosa-clips` files (it is ~11x slower), compared as x real time.
2. Memory: peak RSS of the driver and of the Ray workers for a 1,000- and a 10,000-clip corpus
   (MFCC only, short clips, to keep the run short); the driver must stay flat as the corpus grows.

    .venv/bin/python bench/extract_cpu.py [--clips 10000] [--seconds 2.0] [--memory-sizes 1000,10000]

A run has a fixed cost: ~12 s on 2 vCPUs (2026-11-23), against ~3.7 s of imports and warm-up in the
plain process. Of it: `ray.init` ~2.8 s (1.1 s waiting for the API server Ray always starts, 1.0 s for
the raylet to register), the actor pool's start with the workers' imports and first-call warm-up
~4.5 s (the imports and warm-up, ~3.4 s, the plain process pays too), `ray.shutdown` ~1.4 s (1.1 s
waiting for Ray's processes to exit). So the end-to-end ratio approaches the steady-state one only on
a corpus that takes minutes: the default (10,000 two-second clips, 5.6 h of audio) takes ~2.5 min in
the plain loop. With the README's figures (fixed cost 12.2 s, steady state 1.89x), end to end would
reach 1.8x at ~27,000 clips (15 h of audio).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from _common import albsent_cmd, albsent_env, many_clips, run_measured  # noqa: E402

from albsent.audio.io import decode  # noqa: E402
from albsent.audio.manifest import plan_inputs  # noqa: E402
from albsent.audio.preprocess import preprocess  # noqa: E402
from albsent.features.base import extract_all  # noqa: E402
from albsent.pipeline.cluster import environ  # noqa: E402
from albsent.pipeline.config import ExtractConfig, build_extractors  # noqa: E402
from albsent.runtime import keep_freed_memory  # noqa: E402


def use_librosa_pyin() -> None:
    """For the librosa_loop baseline only: F0 from librosa.pyin (same values, ~19x slower)."""
    import librosa

    from albsent.features import pitch

    pitch.pyin = librosa.pyin


def plain_loop(manifest: Path, config: ExtractConfig, limit: int | None = None) -> dict:
    """The baseline: one process, one file at a time, same preprocessing and features.
    Returns raw and trimmed audio seconds, wall and CPU seconds (warm-up excluded)."""
    items = plan_inputs(manifest)
    if limit:
        items = items.iloc[:limit]
    extractors = build_extractors(config)
    keep_freed_memory()  # the allocator setting albsent's workers use (3-4 % on this loop): same per-clip code
    # warm up librosa/numba outside the timing, as Ray workers also do once per process
    d = decode(items["path"][0])
    extract_all(extractors, [preprocess(d.samples, d.sample_rate_hz, config.audio)[0]])
    raw_s = audio_s = 0.0
    cpu0, start = time.process_time(), time.perf_counter()
    for path in items["path"]:
        d = decode(path)
        utt, segs = preprocess(d.samples, d.sample_rate_hz, config.audio, path)
        extract_all(extractors, [s.samples for s in segs])
        raw_s += d.samples.size / d.sample_rate_hz
        audio_s += utt.size / config.audio.sample_rate_hz
    return {"clips": len(items), "raw_audio_s": raw_s, "audio_s": audio_s,
            "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu0}


def plain_process(manifest: Path, librosa_clips: int = 0) -> dict:
    """The plain loop as its own fresh process (imports, warm-up, loop, exit), as a user's script
    would run; `process_wall_s` is measured from outside, start to exit. With `librosa_clips`: the
    librosa_loop baseline on that many files."""
    env = {**os.environ, "RAY_ADDRESS": ""}
    extra = ["--librosa-pyin", str(librosa_clips)] if librosa_clips else []
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--plain", str(manifest), *extra], env=env, check=True,
                         capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    return {**json.loads(out.strip().splitlines()[-1]), "process_wall_s": wall}


def _share(args: tuple[str, int, int]) -> float:
    manifest, k, n = args
    items = pd.read_csv(manifest)
    part = Path(manifest).with_name(f"share-{k}-of-{n}.csv")
    items.iloc[k::n].to_csv(part, index=False)
    return plain_loop(part, ExtractConfig())["wall_s"]


def ideal_parallel(manifest: Path, workers: int) -> float:
    """The plain loop in `workers` processes (one BLAS/OpenMP thread each), every process on its
    own share of the files, warm-up excluded: the wall time of the slowest share."""
    with environ({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}):
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            return max(pool.map(_share, [(str(manifest), k, workers) for k in range(workers)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--memory-sizes", default="1000,10000")
    ap.add_argument("--memory-seconds", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=ExtractConfig().batch_size)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-ideal", action="store_true", help="do not run the one-process-per-core reference")
    ap.add_argument("--librosa-clips", type=int, default=400, help="files for the librosa_loop baseline (0: skip it)")
    ap.add_argument("--librosa-pyin", type=int, default=0, help=argparse.SUPPRESS)  # child mode: the librosa_loop baseline
    ap.add_argument("--json", metavar="FILE", help="also write the report here")
    ap.add_argument("--plain", metavar="MANIFEST", help=argparse.SUPPRESS)  # child mode: run the plain loop, print JSON
    ap.add_argument("--cpus", type=int, default=len(os.sched_getaffinity(0)),
                    help="CPUs of albsent's local cluster and processes of the reference (default: this process's affinity, "
                         "so `taskset -c 0,1` measures 2 cores of a larger machine)")
    args = ap.parse_args()
    if args.plain:
        if args.librosa_pyin:
            use_librosa_pyin()
        print(json.dumps(plain_loop(Path(args.plain), ExtractConfig(), limit=args.librosa_pyin or None)))
        return
    env = albsent_env()
    work = Path(tempfile.mkdtemp(prefix="albsent-bench-"))
    ray_tmp = tempfile.mkdtemp(prefix="abr-", dir="/tmp")
    try:
        report = run(args, env, work, ray_tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def run(args, env: dict, work: Path, ray_tmp: str) -> dict:
    report: dict = {"cpus": args.cpus, "machine_cpus": os.cpu_count()}

    manifest = many_clips(work / "speed", args.clips, args.seconds)
    config = ExtractConfig()
    cmd = albsent_cmd(manifest, work / "speed_store", ray_tmp, ["--set", f"batch_size={args.batch_size}", "--set", f"ray.num_cpus={args.cpus}"])
    before = plain_process(manifest)
    start = time.perf_counter()  # no memory sampler here: it would take CPU from the run
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    after = plain_process(manifest)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stored"] == args.clips, summary
    audio_s = before["audio_s"]
    plain_wall = (before["process_wall_s"] + after["process_wall_s"]) / 2
    loop_wall = (before["wall_s"] + after["wall_s"]) / 2
    # The fixed cost of one run (start the local cluster, start and warm up workers, stop):
    # the same command on a 4-clip corpus. Steady-state throughput excludes it.
    tiny = many_clips(work / "tiny", 4, args.seconds, seed=1)
    fixed, _, _ = run_measured(albsent_cmd(tiny, work / "tiny_store", ray_tmp, ["--set", f"batch_size={args.batch_size}",
                                                                             "--set", f"ray.num_cpus={args.cpus}"]), env)
    ideal = None if args.skip_ideal else ideal_parallel(manifest, args.cpus)
    ref = plain_process(manifest, args.librosa_clips) if args.librosa_clips else None
    report["speed"] = {
        "clips": args.clips, "audio_s": round(audio_s, 1), "features": config.features,
        "plain_process_wall_s": [round(before["process_wall_s"], 1), round(after["process_wall_s"], 1)],
        "plain_loop_only_wall_s": [round(before["wall_s"], 1), round(after["wall_s"], 1)],
        "plain_x_realtime": round(audio_s / plain_wall, 1),
        # CPU-s per wall-s of the plain loop: numpy/BLAS threads spin on the second core (~1.7 here)
        # for ~3 % less wall time; albsent's workers run one thread each (Ray sets OMP_NUM_THREADS=1).
        "plain_loop_cores": round((before["cpu_s"] + after["cpu_s"]) / (before["wall_s"] + after["wall_s"]), 2),
        "albsent_wall_s": round(wall, 1), "albsent_x_realtime": round(audio_s / wall, 1),
        "speedup": round(plain_wall / wall, 2), "target": 1.8,
        "speedup_vs_loop_only": round(loop_wall / wall, 2),
        "fixed_cost_s": round(fixed, 1),
        "steady_state_speedup": round(loop_wall / (wall - fixed), 2),
        "ideal_speedup": round(loop_wall / ideal, 2) if ideal else None,
        # the same loop with librosa.pyin (on the first --librosa-clips files): what albsent's faster F0 decoder buys
        "librosa_loop_x_realtime": round(ref["audio_s"] / ref["wall_s"], 1) if ref else None,
        "plain_vs_librosa_loop": round((ref["wall_s"] / ref["audio_s"]) / (loop_wall / audio_s), 2) if ref else None,
        "albsent_vs_librosa_loop": round((ref["wall_s"] / ref["audio_s"]) / (wall / audio_s), 2) if ref else None,
        "drift_pct": round(100 * (after["wall_s"] - before["wall_s"]) / before["wall_s"], 1),
        "note": "speedup: whole processes (the plain loop's mean of before/after runs); speedup_vs_loop_only: the plain "
                "loop without its imports and warm-up; steady_state_speedup also removes albsent's fixed cost (a 4-clip run)",
    }
    print(json.dumps(report["speed"]), flush=True)

    report["memory"] = []
    if args.skip_memory:
        return report
    for n in [int(s) for s in args.memory_sizes.split(",")]:
        m = many_clips(work / f"mem{n}", n, args.memory_seconds, seed=n)
        wall, mem, out = run_measured(
            albsent_cmd(m, work / f"mem{n}_store", ray_tmp, ["--features", "mfcc", "--set", "batch_size=64", "--set", f"ray.num_cpus={args.cpus}"]), env)
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["stored"] == n, summary
        row = {"clips": n, "wall_s": round(wall, 1), "driver_peak_mib": round(mem.driver_peak / 2**20),
               "worker_peak_mib": round(mem.worker_peak / 2**20), "workers_total_peak_mib": round(mem.workers_total_peak / 2**20)}
        report["memory"].append(row)
        print(json.dumps(row), flush=True)
    a, b = report["memory"][0], report["memory"][-1]
    report["memory_growth"] = {
        "driver": round(b["driver_peak_mib"] / a["driver_peak_mib"], 2),
        "worker": round(b["worker_peak_mib"] / max(a["worker_peak_mib"], 1), 2),
        "corpus": round(b["clips"] / a["clips"], 1),
    }
    return report


if __name__ == "__main__":
    main()
