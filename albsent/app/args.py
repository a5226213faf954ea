"""Command-line arguments shared by `albsent` (albsent/commands/) and the Ray jobs (jobs/)."""

from __future__ import annotations

import argparse


def common_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set mfcc.n_mfcc=20 (repeatable)")


def ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS, else start a local one)")
