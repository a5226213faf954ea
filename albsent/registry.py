"""Registries are plain dicts filled by decorators; `lookup` is their one error message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from albsent.errors import ConfigError

T = TypeVar("T")


def lookup(table: dict[str, T], kind: str, name: str) -> T:
    """table[name], or a ConfigError listing the known names: "unknown model 'x'; known: a, b"."""
    if name not in table:
        raise ConfigError(f"unknown {kind} '{name}'; known: {', '.join(sorted(table))}")
    return table[name]


# --- the subcommands ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One `albsent` subcommand (module `albsent.commands.<name>`). A stage also has a config
    dataclass (what its `--config FILE` builds), and a Ray job (`jobs/<name>.py`) has job keys:
    `paths` it needs besides the config and `flags` mirroring the CLI's (key -> default). A flag
    in `variants` switches the job to another config dataclass: `true` (its defaults) or a mapping
    of its keys, beside the stage config's `store` (train: `auto` -> AutoConfig)."""

    name: str
    config: str = ""  # "module:Class" of the dataclass its --config builds; "" = no config file
    paths: tuple[str, ...] = ()  # required job keys
    flags: dict = field(default_factory=dict)  # optional job keys -> default
    variants: dict = field(default_factory=dict)  # flag -> "module:Class" of the config it selects

    def config_class(self, variant: str = "") -> type:
        import importlib

        module, _, name = (self.variants[variant] if variant else self.config).partition(":")
        return getattr(importlib.import_module(module), name)


# In `albsent --help` order. cli.py builds the parser from it, jobs/_job.py reads stages and job
# keys from it, tests check every stage config and job YAML with it.
COMMANDS: dict[str, Command] = {c.name: c for c in [
    Command("extract", "albsent.features.config:ExtractConfig", ("input", "out"), {"retry_quarantined": False}),
    Command("inspect"),
    Command("verify"),
    Command("stats", "albsent.features.config:ExtractConfig"),
    Command("demo"),
    Command("train", "albsent.train.config:TrainConfig", ("out",), {"overwrite": False, "auto": False},
            variants={"auto": "albsent.train.select:AutoConfig"}),  # store: TrainConfig.store / AutoConfig.store
    Command("predict"),
    Command("report"),
    Command("pretrain", "albsent.pretrain.config:PretrainConfig", ("store", "out")),
    Command("probe", "albsent.pretrain.config:ProbeConfig", ("pretrained", "store", "out")),
    Command("sweep", "albsent.sweep.config:SweepConfig", ("store", "out")),
]}
STAGES = {name: c for name, c in COMMANDS.items() if c.config}  # commands that take --config
JOBS = {name: c for name, c in COMMANDS.items() if c.paths}  # commands with a jobs/<name>.py
