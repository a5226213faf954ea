"""Overhead of a sweep: N trials through `run_sweep` (Ray Tune + Optuna + reporting every epoch
+ final checkpoint, one trial at a time, 1 CPU each) against the same N `fit()` calls in a plain
loop, in the same run. Target: < 5 % once trials last >= 10 s.

Every trial trains the same MLP on the same split for a fixed number of epochs (no early
stopping), calibrated so that one fit lasts about --trial-seconds.

The plain loop runs in a fresh process (its imports and a cold first fit counted, as a trial's
process pays them inside Tuner.fit), once before and once after the sweep; the sweep is
compared with their mean, and the two loops' difference is reported as the noise (1.5-6 %
here). It was 10-25 % before albsent.runtime.keep_freed_memory(): the same fit() then took
7-23 s, as glibc faulted each step's freed buffers back in, more so in a trial's thread arena.
`tune_machinery_pct` is Tuner.fit wall time against the fit() time measured inside the trials
(same processes, same minutes); it counts the trial process's imports, which the loop pays too.

A sweep pays ~4 s once (Tune starting the first trial ~1.5 s, the trial process's imports, the
end), then 0.05-0.07 s per trial; fits inside trials run as fast as in the loop since the local
cluster's workers get MALLOC_ARENA_MAX=1 (albsent/runtime.py; ~5 % slower before).

    .venv/bin/python bench/sweep_overhead.py [--store /work/stores/emodb] [--n 8] [--trial-seconds 15]
        [--hidden-size 8192 --batch-size 4]   # ~0.5 s epochs: one tune.report per realistic epoch
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

STARTED = time.perf_counter()
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from albsent.config import build  # noqa: E402
from albsent.dataset.data import load_data  # noqa: E402
from albsent.sweep.config import SweepConfig  # noqa: E402
from albsent.train.config import TrainConfig  # noqa: E402
from albsent.train.fit import fit  # noqa: E402

IMPORTS_S = time.perf_counter() - STARTED

BASE = {"model": "mlp", "features": "mfcc", "hidden_size": 256, "batch_size": 8, "patience": 100000, "num_threads": 1,
        "seed": 0}


def plain_loop(store: str, n: int, epochs: int) -> dict:
    """In a fresh process: load the data, then time n fit() calls (the first one cold).
    loop_s adds this process's imports, which a trial's process also does inside Tuner.fit."""
    data = load_data(store, BASE["features"])
    config = build(TrainConfig, {**BASE, "store": store, "epochs": epochs})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fit(config, data)
        times.append(time.perf_counter() - t)
    return {"loop_s": IMPORTS_S + sum(times), "imports_s": IMPORTS_S, "fits_s": times}


def run_loop(args, epochs: int) -> dict:
    cmd = [sys.executable, __file__, "--store", args.store, "--n", str(args.n), "--hidden-size", str(args.hidden_size),
           "--batch-size", str(args.batch_size), "--loop-epochs", str(epochs)]
    # One BLAS/OpenMP thread, the environment a trial's Ray worker with 1 CPU gets
    # (OMP_NUM_THREADS=1), so both sides run fit() under the same thread settings.
    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/work/stores/emodb")
    ap.add_argument("--n", type=int, default=8, help="trials (configs/sweeps/ run 5-64; a sweep pays ~4 s once)")
    ap.add_argument("--trial-seconds", type=float, default=15.0, help="target duration of one fit")
    ap.add_argument("--report-every", type=int, default=1, help="tune.report every k-th epoch")
    ap.add_argument("--json", metavar="FILE", help="also write the figures here")
    ap.add_argument("--hidden-size", type=int, default=BASE["hidden_size"], help="MLP width (sets the epoch length)")
    ap.add_argument("--batch-size", type=int, default=BASE["batch_size"])
    ap.add_argument("--loop-epochs", type=int, help=argparse.SUPPRESS)  # internal: run only the plain loop
    args = ap.parse_args()
    BASE.update(hidden_size=args.hidden_size, batch_size=args.batch_size)
    if args.loop_epochs:
        print(json.dumps(plain_loop(args.store, args.n, args.loop_epochs)))
        return

    data = load_data(args.store, BASE["features"])
    probe = build(TrainConfig, {**BASE, "store": args.store, "epochs": 5})
    fit(probe, data)  # warm-up (imports, allocator)
    t = time.perf_counter()
    fit(probe, data)
    per_epoch = (time.perf_counter() - t) / 5
    epochs = max(5, int(round(args.trial_seconds / per_epoch)))
    print(f"calibration: {per_epoch:.3f} s/epoch -> {epochs} epochs per trial")

    before = run_loop(args, epochs)
    print(f"plain loop (before): {args.n} fit() calls in {before['loop_s']:.1f} s", flush=True)

    from albsent.sweep.run import run_sweep

    sweep = build(SweepConfig, {
        "name": "overhead", "base": {**BASE, "epochs": epochs}, "space": {"lr": {"choice": [0.001]}},
        "num_samples": args.n, "max_concurrent": 1, "resources": {"cpu": 1}, "scheduler": {"type": "fifo"},
        "retrain": False, "report_every": args.report_every})
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary = run_sweep(sweep, args.store, os.path.join(tmp, "sweep"), num_cpus=1)
        total_s = time.perf_counter() - t
        import pandas as pd

        table = pd.read_csv(os.path.join(tmp, "sweep", "trials.csv"))
        inside_s = float(table["fit_seconds"].sum())  # fit() + per-epoch tune.report, measured inside the trials
    after = run_loop(args, epochs)
    print(f"plain loop (after): {args.n} fit() calls in {after['loop_s']:.1f} s", flush=True)
    loop_s = (before["loop_s"] + after["loop_s"]) / 2
    trials_s = summary["seconds"]
    result = {"n": args.n, "epochs_per_trial": epochs, "report_every": args.report_every,
              "loop_before_s": before["loop_s"], "loop_after_s": after["loop_s"], "loop_s": loop_s,
              "loop_imports_s": before["imports_s"], "loop_fits_s": before["fits_s"] + after["fits_s"],
              "loop_noise_pct": 100 * abs(before["loop_s"] - after["loop_s"]) / loop_s,
              "sweep_trials_s": trials_s, "sweep_total_s": total_s, "fit_inside_trials_s": inside_s,
              "epochs_run": table["epochs_run"].tolist(),
              "overhead_trials_pct": 100 * (trials_s - loop_s) / loop_s,
              "overhead_total_pct": 100 * (total_s - loop_s) / loop_s,
              "tune_machinery_pct": 100 * (trials_s - inside_s) / inside_s,
              "cpu_count": os.cpu_count(), "loadavg_1min": os.getloadavg()[0]}
    print(f"sweep: {args.n} trials in {trials_s:.1f} s (Tuner.fit) / "
          f"{total_s:.1f} s (whole run_sweep: data, Ray start, results)")
    print(f"inside the trials: fit() + reports took {inside_s:.1f} s (epochs run: {result['epochs_run']})")
    print(f"overhead vs plain loop (mean of before/after, which differ by {result['loop_noise_pct']:.1f} %): "
          f"{result['overhead_trials_pct']:+.1f} % (trials) / {result['overhead_total_pct']:+.1f} % (whole command); "
          f"Tune machinery around the fits (same processes, same time): {result['tune_machinery_pct']:+.1f} %")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
