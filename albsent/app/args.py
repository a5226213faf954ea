"""Command-line arguments shared by `albsent` (albsent/commands/) and the Ray jobs (jobs/)."""

from __future__ import annotations

import argparse


def common_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set mfcc.n_mfcc=20 (repeatable)")


def ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS, else start a local one)")


def label_map_of(items: list[str]) -> dict[str, str]:
    """`--label-map FROM=TO` (repeated) -> {FROM: TO}; a malformed item is a one-line ConfigError."""
    from albsent.errors import ConfigError

    pairs = [item.partition("=") for item in items]
    bad = [a for a, eq, b in pairs if not (a and eq and b)]
    if bad:
        raise ConfigError(f"--label-map {bad[0]!r}: expected FROM=TO, e.g. --label-map happiness=positive")
    return {a: b for a, _, b in pairs}


def tracking_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="log the run to MLflow (e.g. sqlite:///mlflow.db or http://127.0.0.1:5000; default: the "
                        "config's tracking.uri, else $MLFLOW_TRACKING_URI, else nothing is logged)")
    p.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default: the store's folder name)")


def tracking_of(args):
    """albsent.tracking.Tracking from --tracking-uri/--experiment, the --config file's `tracking:`
    section and $MLFLOW_TRACKING_URI; None when none gives a URI (mlflow is not imported then)."""
    from albsent.tracking import resolve, section_of

    return resolve(args.tracking_uri, args.experiment, section_of(getattr(args, "config", None)))
