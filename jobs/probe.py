"""`albsent probe` as a Ray job: linear probe on a frozen pretrained autoencoder vs a baseline.

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python jobs/probe.py --config configs/jobs/probe_emodb_mlstm.yaml

The job YAML holds `pretrained` (AE_RUN), `store` (labelled store) and `out`, plus ProbeConfig
keys. The probe's settings resolve as in the CLI (AE_RUN's saved probe section, then these
keys), so the job runs `albsent probe` itself with those keys as its --config.
"""

from __future__ import annotations

import sys
import tempfile

import yaml
from _job import main


def run(paths: dict, data: dict) -> dict:
    from albsent.cli import main as albsent

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as fh:
        yaml.safe_dump(data, fh)
        fh.flush()
        flags = [a for k in ("pretrained", "store", "out") for a in (f"--{k}", paths[k])]
        code = albsent(["probe", *flags, *(["--config", fh.name] if data else []), "--json"])
    if code:
        raise SystemExit(code)  # albsent printed the error; the job FAILS
    return {"stage": "probe", "out": paths["out"], "exit_code": code}


def cli(argv: list[str] | None = None) -> int:
    return main("probe", run, argv, built=False)


if __name__ == "__main__":
    sys.exit(cli())
