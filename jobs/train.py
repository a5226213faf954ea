"""`albsent train` as a Ray job: train + evaluate a classifier on a feature store.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/train.py --config configs/jobs/train_emodb_mfcc_mlp.yaml [--set folds=5]

The job YAML is a TrainConfig (its `store` key names the store) plus `out`, the run folder.
Prints metrics.json (without the per-epoch history) as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main


def run(paths: dict, config) -> dict:
    from albsent.train import run_training  # the function `albsent train` calls

    metrics = run_training(config, paths["out"])
    return {"stage": "train", "out": paths["out"], **{k: v for k, v in metrics.items() if k != "history"}}


def cli(argv: list[str] | None = None) -> int:
    return main("train", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
