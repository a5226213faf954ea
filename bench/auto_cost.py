"""How the automatic selection's time and peak memory grow with rows (issue 24's targets:
8k -> 32k rows within 5x the time).

Synthetic pooled rows stand in for a store (the cost of `select()` depends on rows, dims and
classes, not on where the numbers came from): 3 classes, one speaker per 20 rows, two feature
groups of eGeMAPS' and MFCC's widths (88 and 240 dims) with class and speaker offsets, so
`select()` runs its real candidate grid (2 groups x global / per-speaker z x logistic regression
C 0.01, 1 x RBF SVM C 1, 10) with its real nested folds. Each size runs in its own process, on
one core (plain `map`, no Ray: the growth, not the parallelism, is measured); wall seconds and
the process' peak RSS are printed.

    .venv/bin/python bench/auto_cost.py [--rows 2000 8000 32000] [--folds 5] [--inner-folds 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

DIMS = {"egemaps.func": 88, "mfcc": 240}


def synthetic(rows: int, seed: int = 0) -> dict:
    from albsent.dataset import Data, parse

    rng = np.random.default_rng(seed)
    labels = np.array(["negative", "neutral", "positive"], dtype=object)[rng.integers(0, 3, rows)]
    y = np.searchsorted(["negative", "neutral", "positive"], labels)
    spk = np.array([f"s{i // 20}" for i in rng.permutation(rows)], dtype=object)
    speakers = np.unique(spk)
    ids = np.array([f"u{i}" for i in range(rows)], dtype=object)
    out = {}
    for spec, dim in DIMS.items():
        offset = dict(zip(speakers, rng.normal(scale=1.0, size=(len(speakers), dim))))
        X = rng.normal(size=(rows, dim)) + 0.4 * np.eye(3, dim)[y] + np.stack([offset[s] for s in spk])
        out[spec] = Data(parse("mfcc"), X.astype(np.float32), labels, np.array([f"speaker:{s}" for s in spk],
                                                                                 dtype=object),
                         "speaker", ids, ids.copy(), np.array([f"h{i}" for i in range(rows)], dtype=object),
                         np.array([None] * rows, dtype=object), {}, "memory://", {"config": {}}, spk)
    return out


def one(rows: int, folds: int, inner: int) -> dict:
    from albsent.train.select import AutoConfig, candidates, select

    datas = synthetic(rows)
    config = AutoConfig(folds=folds, inner_folds=inner)
    recipes = candidates(config, list(datas), has_speakers=True)
    t0 = time.perf_counter()
    result = select(config, datas, recipes)
    seconds = time.perf_counter() - t0
    return {"rows": rows, "recipes": len(recipes), "seconds": round(seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "members": len(result.final_bundles)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2000, 8000, 32000])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner-folds", type=int, default=5)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.folds, args.inner_folds)))
        return
    results = []
    for rows in args.rows:
        cmd = [sys.executable, __file__, "--one", str(rows), "--folds", str(args.folds),
               "--inner-folds", str(args.inner_folds)]
        env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        import os

        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print("| rows | recipes | seconds | x previous | peak RSS MB |\n|---|---|---|---|---|")
    for prev, r in zip([None] + results, results):
        ratio = f"{r['seconds'] / prev['seconds']:.2f}x" if prev else ""
        print(f"| {r['rows']} | {r['recipes']} | {r['seconds']} | {ratio} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
