"""`albsent evaluate` as a Ray job: score a trained run on another labelled corpus.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/evaluate.py --config configs/jobs/evaluate_emodb_on_emospeech.yaml

The job YAML is an EvaluateConfig (label_map, labels_from, allowed_roots, batch_size) plus `run`
(the --out folder of `albsent train`), `input` (a feature store, or a labelled manifest CSV /
audio folder on a filesystem every node mounts: extracted on the cluster into OUT/store) and
`out` (a new folder). Prints metrics.json as JSON on the last line.
"""

from __future__ import annotations

import sys

from _job import main


def run(keys: dict, config) -> dict:
    from albsent.app.run_evaluate import run_evaluate  # what `albsent evaluate` runs

    metrics = run_evaluate(keys["run"], keys["input"], keys["out"], config, progress=False)
    return {"stage": "evaluate", "out": keys["out"], **metrics}


def cli(argv: list[str] | None = None) -> int:
    return main("evaluate", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
