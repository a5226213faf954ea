"""`albsent train` as a Ray job: train + evaluate a classifier on a feature store.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/train.py --config configs/jobs/train_emodb_mfcc_mlp.yaml [--set split.folds=3]

The job YAML is a TrainConfig (its `store` key names the store) plus `out`, the run folder, and
`overwrite` (default false): like `albsent train`, a run folder that already holds files is
refused unless `overwrite: true` (or --set overwrite=true) empties it first.
Prints metrics.json (without the per-epoch history) as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main


def run(keys: dict, config) -> dict:
    from albsent.commands.train import train_one  # what `albsent train --config ...` runs

    metrics = train_one(config, keys["out"], keys["overwrite"], out_flag="out", overwrite_flag="--set overwrite=true")
    return {"stage": "train", "out": keys["out"], **{k: v for k, v in metrics.items() if k != "history"}}


def cli(argv: list[str] | None = None) -> int:
    return main("train", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
