"""`albsent sweep` as a Ray job: Ray Tune + Optuna trials over a feature store.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/sweep.py --config configs/jobs/sweep_emodb_classifier.yaml

The job YAML is a SweepConfig plus `store` and `out` (SWEEP_DIR: shared path or s3:// URI).
Resubmitting the same job after the driver died resumes the sweep from SWEEP_DIR: finished
trials are kept, unfinished ones continue. Prints sweep.json as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main


def run(paths: dict, config) -> dict:
    from albsent.sweep import run_sweep, storage  # what `albsent sweep` calls

    resume = storage.read_text(storage.join(paths["out"], "sweep.yaml")) is not None
    summary = run_sweep(config, paths["store"], paths["out"], resume=resume)
    return {"stage": "sweep", "out": paths["out"], "resumed": resume, **summary}


def cli(argv: list[str] | None = None) -> int:
    return main("sweep", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
