"""`albsent extract` as a Ray job: audio corpus -> Parquet feature store.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/extract.py --config configs/jobs/extract_emodb.yaml [--set out=s3://b/stores/emodb]

The job YAML is an ExtractConfig plus `input` (manifest CSV or audio folder, on a filesystem
every node mounts), `out` (store path or URI) and `retry_quarantined` (default false; as
`albsent extract --retry-quarantined`). Resubmitting the same job resumes: inputs already stored
or quarantined are skipped. Prints the ExtractSummary as JSON on the last line.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from _job import main


def run(keys: dict, config) -> dict:
    from albsent.app.run_extract import run_extract  # what `albsent extract` runs

    summary = run_extract(keys["input"], keys["out"], config, progress=False,
                          retry_quarantined=keys["retry_quarantined"])
    return {"stage": "extract", "out": keys["out"], **asdict(summary)}


def cli(argv: list[str] | None = None) -> int:
    return main("extract", run, argv)


if __name__ == "__main__":
    sys.exit(cli())
