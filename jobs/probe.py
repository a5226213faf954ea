"""`albsent probe` as a Ray job: linear probe on a frozen pretrained autoencoder vs a baseline.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/probe.py --config configs/jobs/probe_emodb_mlstm.yaml

The job YAML holds `pretrained` (AE_RUN), `store` (labelled store) and `out`, plus ProbeConfig
keys. They resolve as in `albsent probe`: AE_RUN's saved probe section, then these keys.
Prints metrics.json as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main


def run(keys: dict, data: dict) -> dict:
    from albsent.app.run_probe import run_probe  # what `albsent probe` runs

    metrics = run_probe(keys["pretrained"], keys["store"], keys["out"], data, tracking=keys["tracking"])
    return {"stage": "probe", "out": keys["out"], **metrics}


def cli(argv: list[str] | None = None) -> int:
    return main("probe", run, argv, built=False)  # ProbeConfig is built over AE_RUN's saved probe section


if __name__ == "__main__":
    sys.exit(cli())
