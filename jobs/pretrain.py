"""`albsent pretrain` as a Ray job: next-frame autoencoder on a store's frame sequences.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/pretrain.py --config configs/jobs/pretrain_unlabeled_mlstm.yaml

The job YAML is a PretrainConfig plus `store` (frame sequences, labels ignored) and `out`
(the AE_RUN folder). Prints the final metrics as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main


def run(keys: dict, config) -> dict:
    from albsent.app.run_pretrain import run_pretrain  # what `albsent pretrain` runs

    result = run_pretrain(config, keys["store"], keys["out"], tracking=keys["tracking"])
    return {"stage": "pretrain", "out": keys["out"], **result.metrics}


def cli(argv: list[str] | None = None) -> int:
    return main("pretrain", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
