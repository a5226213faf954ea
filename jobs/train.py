"""`albsent train` as a Ray job: train + evaluate a classifier on a feature store, one recipe or
the automatic selection.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/train.py --config configs/jobs/train_emodb_mfcc_mlp.yaml [--set split.folds=3]
    ray job submit ... -- python jobs/train.py --config configs/jobs/train_emodb_auto.yaml

One recipe (the default): the job YAML is a TrainConfig (its `store` key names the store).
Automatic selection (`albsent train` without --model/--features/--config, or with --auto): the
job YAML sets `auto: true`, or `auto:` a mapping of AutoConfig keys (folds, inner_folds,
ensemble_size, ...; as `albsent train --auto --config AUTO.yaml`), beside `store`; other
TrainConfig keys are refused there. A job YAML always holds a config, so, unlike the CLI, a
missing model or features never switches to the selection: `auto` says it. The selection's
tasks run on the cluster the job was submitted to.
Leave one corpus out (`albsent train --stores A B --loco`): `loco: true`, `stores: [A, B, ...]` and
optionally a shared `label_map: {FROM: TO}`, with a recipe or with `auto`; `store` is not used.
All: `out`, the run folder, and `overwrite` (default false): like `albsent train`, a run folder
that already holds files is refused unless `overwrite: true` (or --set overwrite=true) empties
it first. Prints metrics.json (one recipe: without the per-epoch history) as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main

FLAGS = dict(out_flag="out", overwrite_flag="--set overwrite=true")  # the refusal names the job's keys


def run(keys: dict, config) -> dict:
    from albsent.app.run_auto import run_auto  # what `albsent train` (no recipe) runs
    from albsent.app.run_train import train_one  # what `albsent train --config ...` runs

    if keys["loco"]:  # what `albsent train --stores A B ... --loco` runs
        from albsent.app.run_loco import run_loco

        metrics = run_loco(config, keys["stores"], keys["out"], keys["label_map"], keys["overwrite"], **FLAGS)
    elif keys["auto"]:
        metrics = run_auto(config, keys["out"], keys["overwrite"], tracking=keys["tracking"], **FLAGS)
    else:
        metrics = train_one(config, keys["out"], keys["overwrite"], tracking=keys["tracking"], **FLAGS)
    return {"stage": "train", "out": keys["out"], **{k: v for k, v in metrics.items() if k != "history"}}


def cli(argv: list[str] | None = None) -> int:
    return main("train", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
