"""Shared by the `ray job submit` entrypoints in jobs/.

A job config (configs/jobs/<stage>_*.yaml) is the stage's own config -- the same keys as
`albsent <stage> --config FILE` -- plus the stage's path keys (extract: `input`, `out`), so one
file names what runs on which data. `--set key=value` overrides either kind of key, e.g.
`--set out=s3://bucket/stores/x --set batch_size=64`. Paths may be shared-filesystem paths
or object-store URIs (pyarrow.fs: s3://, gs://, ...), as the stage allows.

Inside `ray job submit` the entrypoint runs on the head node with RAY_ADDRESS set, and
`albsent.pipeline.cluster.ray_session` joins that cluster.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from albsent.cli import common_config_args
from albsent.config import build, merge, parse_overrides, read_yaml
from albsent.errors import AlbsentError, ConfigError

# stage -> (module, config class, path keys the job YAML adds to the stage config)
STAGES = {
    "extract": ("albsent.pipeline.config", "ExtractConfig", ("input", "out")),
    "train": ("albsent.train.config", "TrainConfig", ("out",)),  # the store is TrainConfig.store
    "pretrain": ("albsent.pretrain.config", "PretrainConfig", ("store", "out")),
    "probe": ("albsent.pretrain.config", "ProbeConfig", ("pretrained", "store", "out")),
    "sweep": ("albsent.sweep.config", "SweepConfig", ("store", "out")),
}
log = logging.getLogger("albsent.jobs")


def split(stage: str, data: dict) -> tuple[dict, dict]:
    """Job YAML data -> (path values, stage-config data). Missing paths are a ConfigError."""
    keys = STAGES[stage][2]
    data = dict(data)
    paths = {k: data.pop(k, None) for k in keys}
    missing = [k for k, v in paths.items() if not v]
    if missing:
        raise ConfigError(f"jobs/{stage}.py needs {', '.join(missing)}: put `{missing[0]}: ...` in the job YAML "
                          f"or pass --set {missing[0]}=...")
    return paths, data


def config_class(stage: str):
    import importlib

    module, name, _ = STAGES[stage]
    return getattr(importlib.import_module(module), name)


def read_job(stage: str, argv: list[str] | None = None) -> tuple[dict, dict]:
    """Parse `--config FILE --set k=v ...` -> (paths, stage-config data as given)."""
    p = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"`albsent {stage}` as a Ray job.")
    common_config_args(p)
    args = p.parse_args(argv)
    return split(stage, merge(read_yaml(args.config) if args.config else {}, parse_overrides(args.sets)))


def load_job(stage: str, argv: list[str] | None = None):
    """-> (paths, the stage's config dataclass), exactly as `albsent STAGE --config` builds it."""
    paths, rest = read_job(stage, argv)
    return paths, build(config_class(stage), rest)


def main(stage: str, body, argv: list[str] | None = None, built: bool = True) -> int:
    """body(paths, config) (or body(paths, data) with built=False) -> result dict, printed as JSON.
    Logging like the CLI; user errors -> one line on stderr and exit 2 (the job FAILS)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = body(*(load_job if built else read_job)(stage, argv))
    except AlbsentError as exc:
        print(f"jobs/{stage}.py: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))  # last line of `ray job logs`: the machine-readable result
    return 0
