"""Shared by the `ray job submit` entrypoints in jobs/.

A job config (configs/jobs/<stage>_*.yaml) is a stage config -- the same keys as
`albsent <stage> --config FILE`, usually by `extends: ../<experiment>.yaml` -- plus the job keys
albsent.registry.COMMANDS gives the stage: the paths the CLI takes as arguments (extract `input`,
`out`; train `out`; evaluate `run`, `input`, `out`; pretrain, sweep `store`, `out`; probe
`pretrained`, `store`, `out`), `tracking` (train, pretrain, probe, sweep: `{uri, experiment}` of an
MLflow store, else $MLFLOW_TRACKING_URI) and its flags (extract `retry_quarantined`, train
`overwrite`, `auto`, `loco`; default false; train's `stores` and `label_map` for `loco`). A flag the
stage lists as a variant (train `auto`) switches the config class: `auto: true` (or a mapping of
AutoConfig keys) builds an AutoConfig from that mapping and the YAML's `store`. `--set key=value`
overrides any of them, e.g. `--set out=s3://bucket/stores/x --set batch_size=64`. Paths may be
shared-filesystem paths or object-store URIs (pyarrow.fs: s3://, gs://, ...), as the stage allows.

Each job calls the use case (albsent/app/) its `albsent` command calls, prints the result as one
JSON line last and exits non-zero when the command would. Inside `ray job submit` the entrypoint runs on the head
node with RAY_ADDRESS set, and `albsent.runner.session.ray_session` joins that cluster.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from albsent.app.args import common_config_args
from albsent.config import build, check_out_folder, merge, parse_overrides, read_yaml, require
from albsent.errors import AlbsentError, ConfigError
from albsent.registry import JOBS
from albsent.tracking import resolve as resolve_tracking

log = logging.getLogger("albsent.jobs")


def split(stage: str, data: dict) -> tuple[dict, dict]:
    """Job YAML data -> (job keys: paths and flags, stage-config data). A missing path is a ConfigError."""
    job, data = JOBS[stage], dict(data)
    keys = {k: data.pop(k, None) for k in job.paths}
    missing = [k for k, v in keys.items() if not v]
    if missing:
        raise ConfigError(f"jobs/{stage}.py needs {', '.join(missing)}: put `{missing[0]}: ...` in the job YAML "
                          f"or pass --set {missing[0]}=...")
    check_out_folder(keys["out"], "out:")
    if job.tracked:  # MLflow: `tracking: {uri, experiment}` (else $MLFLOW_TRACKING_URI, else none)
        keys["tracking"] = resolve_tracking(section=data.pop("tracking", None))
    for key, default in job.flags.items():
        keys[key] = data.pop(key, default)
        if key in job.variants and isinstance(keys[key], dict):
            continue  # a mapping of the variant config's keys (train: `auto: {inner_folds: 3}`)
        require(type(keys[key]) is type(default), f"jobs/{stage}.py", key, keys[key],
                "true or false" if isinstance(default, bool) else type(default).__name__)
    return keys, data


def variant(stage: str, keys: dict) -> str:
    """The variant flag set in `keys` (train: "auto"), or ""."""
    return next((k for k in JOBS[stage].variants if keys.get(k) not in (False, None)), "")


def config_class(stage: str, keys: dict | None = None):
    return JOBS[stage].config_class(variant(stage, keys or {}))


def variant_data(stage: str, keys: dict, data: dict) -> dict:
    """A variant's config data: the mapping under its flag (or none for `true`) plus the stage
    config's `store`; any other stage-config key would be ignored, so it is refused."""
    flag = variant(stage, keys)
    rest = sorted(k for k in data if k != "store")
    if rest:
        raise ConfigError(f"jobs/{stage}.py with `{flag}` takes its settings under `{flag}:` (keys of "
                          f"{JOBS[stage].config_class(flag).__name__}) and `store`; move or remove: {', '.join(rest)}")
    settings = keys[flag] if isinstance(keys[flag], dict) else {}
    return merge({"store": data["store"]} if "store" in data else {}, settings)


def read_job(stage: str, argv: list[str] | None = None) -> tuple[dict, dict]:
    """Parse `--config FILE --set k=v ...` -> (job keys, stage-config data as given)."""
    p = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"`albsent {stage}` as a Ray job.")
    common_config_args(p)
    args = p.parse_args(argv)
    return split(stage, merge(read_yaml(args.config) if args.config else {}, parse_overrides(args.sets)))


def load_job(stage: str, argv: list[str] | None = None):
    """-> (job keys, the stage's config dataclass), exactly as `albsent STAGE --config` builds it."""
    keys, rest = read_job(stage, argv)
    if variant(stage, keys):
        rest = variant_data(stage, keys, rest)
    return keys, build(config_class(stage, keys), rest)


def main(stage: str, body, argv: list[str] | None = None, built: bool = True) -> int:
    """body(keys, config) (or body(keys, data) with built=False) -> result dict, printed as JSON.
    Logging like the CLI; user errors -> one line on stderr and exit 2 (the job FAILS); a result
    with a non-zero "exit_code" is printed and then returned as the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = body(*(load_job if built else read_job)(stage, argv))
    except AlbsentError as exc:
        print(f"jobs/{stage}.py: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))  # last line of `ray job logs`: the machine-readable result
    return int(result.get("exit_code", 0))
