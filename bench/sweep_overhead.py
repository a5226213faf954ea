"""Overhead of a sweep: N trials through `run_sweep` (Ray Tune + Optuna + reporting every epoch
+ final checkpoint, one trial at a time, 1 CPU each) against the same N `fit()` calls in a plain
loop in this process, in the same run. Target: < 5 % once trials last >= 10 s.

Every trial trains the same MLP on the same split for a fixed number of epochs (no early
stopping), calibrated so that one fit lasts about --trial-seconds.

    .venv/bin/python bench/sweep_overhead.py [--store /work/stores/emodb] [--n 4] [--trial-seconds 12]
        [--hidden-size 8192 --batch-size 4]   # ~0.5 s epochs: one tune.report per realistic epoch
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from albsent.config import build  # noqa: E402
from albsent.dataset.data import load_data  # noqa: E402
from albsent.sweep.config import SweepConfig  # noqa: E402
from albsent.train.config import TrainConfig  # noqa: E402
from albsent.train.fit import fit  # noqa: E402

BASE = {"model": "mlp", "features": "mfcc", "hidden_size": 256, "batch_size": 8, "patience": 100000, "num_threads": 1,
        "seed": 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="/work/stores/emodb")
    ap.add_argument("--n", type=int, default=4, help="trials")
    ap.add_argument("--trial-seconds", type=float, default=12.0, help="target duration of one fit")
    ap.add_argument("--report-every", type=int, default=1, help="tune.report every k-th epoch")
    ap.add_argument("--json", metavar="FILE", help="also write the figures here")
    ap.add_argument("--hidden-size", type=int, default=BASE["hidden_size"], help="MLP width (sets the epoch length)")
    ap.add_argument("--batch-size", type=int, default=BASE["batch_size"])
    args = ap.parse_args()
    BASE.update(hidden_size=args.hidden_size, batch_size=args.batch_size)

    data = load_data(args.store, BASE["features"])
    probe = build(TrainConfig, {**BASE, "store": args.store, "epochs": 5})
    fit(probe, data)  # warm-up (imports, allocator)
    t = time.perf_counter()
    fit(probe, data)
    per_epoch = (time.perf_counter() - t) / 5
    epochs = max(5, int(round(args.trial_seconds / per_epoch)))
    config = build(TrainConfig, {**BASE, "store": args.store, "epochs": epochs})
    print(f"calibration: {per_epoch:.3f} s/epoch -> {epochs} epochs per trial")

    t = time.perf_counter()
    for _ in range(args.n):
        fit(config, data)
    loop_s = time.perf_counter() - t
    print(f"plain loop: {args.n} fit() calls in {loop_s:.1f} s ({loop_s / args.n:.1f} s each)")

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
    trials_s = summary["seconds"]
    result = {"n": args.n, "epochs_per_trial": epochs, "report_every": args.report_every, "loop_s": loop_s, "sweep_trials_s": trials_s,
              "sweep_total_s": total_s, "fit_inside_trials_s": inside_s,
              "epochs_run": table["epochs_run"].tolist(),
              "overhead_vs_inside_pct": 100 * (trials_s - inside_s) / inside_s, "overhead_trials_pct": 100 * (trials_s - loop_s) / loop_s,
              "overhead_total_pct": 100 * (total_s - loop_s) / loop_s, "cpu_count": os.cpu_count(),
              "loadavg_1min": os.getloadavg()[0]}
    print(f"sweep: {args.n} trials in {trials_s:.1f} s (Tuner.fit) / {total_s:.1f} s (whole run_sweep: data, Ray start, results)")
    print(f"inside the trials: fit() + reports took {inside_s:.1f} s (epochs run: {result['epochs_run']})")
    print(f"overhead vs plain loop: {result['overhead_trials_pct']:+.1f} % (trials) / {result['overhead_total_pct']:+.1f} % (whole command); "
          f"Tune machinery around the fits (same processes, same time): {result['overhead_vs_inside_pct']:+.1f} %")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
