"""`albsent sweep` as a Ray job: Ray Tune + Optuna trials over a feature store.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/sweep.py --config configs/jobs/sweep_emodb_classifier.yaml

The job YAML is a SweepConfig plus `store` and `out` (SWEEP_DIR: shared path or s3:// URI).
Resumes as `albsent sweep` does: resubmitting the same job after the driver died continues the
sweep in SWEEP_DIR (finished trials kept, unfinished ones continue); a different config or store
for a SWEEP_DIR holding a sweep is refused. Prints sweep.json (plus "resumed") as JSON on the
last line; exits 1 (the job FAILS) when no trial completed, as `albsent sweep` does.
"""

from __future__ import annotations

import sys

from _job import main


def run(keys: dict, config) -> dict:
    from albsent.app.run_sweep import no_trial_completed, sweep  # what `albsent sweep` runs

    summary = sweep(config, keys["store"], keys["out"], tracking=keys["tracking"])
    failed = summary.get("best") is None
    if failed:
        print(f"jobs/sweep.py: error: {no_trial_completed(summary, keys['out'])}", file=sys.stderr)
    return {"stage": "sweep", "out": keys["out"], **summary, "exit_code": int(failed)}


def cli(argv: list[str] | None = None) -> int:
    return main("sweep", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
