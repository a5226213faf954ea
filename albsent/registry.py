"""Registries: `Registry` (a table filled by its `register` decorator) for models, autoencoders,
extractors and sweep kinds; `lookup` is their one error message."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from albsent.errors import ConfigError

T = TypeVar("T")


def lookup(table, kind: str, name: str) -> T:
    """table[name], or a ConfigError listing the known names: "unknown model 'x'; known: a, b"."""
    if name not in table:
        raise ConfigError(f"unknown {kind} '{name}'; known: {', '.join(sorted(table))}")
    return table[name]


def resolve(ref: str) -> Any:
    """"package.module:name" -> that object, imported only now (keeps heavy imports out of registries)."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


class Registry(Generic[T]):
    """name -> entry, filled by the `register(name, **details)` decorator; one per extension point
    (albsent.models.MODELS, albsent.models.autoencoders.AUTOENCODERS, albsent.features.EXTRACTORS,
    albsent.sweep.kinds.KINDS). A decorated class learns its name (`cls.name`). With an `entry`
    factory the table holds entry(name, decorated, **details) (a ModelEntry, a kind's instance),
    else the decorated object itself. Read like a dict: `REG[name]`, `name in REG`, `sorted(REG)`,
    `REG.items()`; `REG.get(name)` raises "unknown model 'x'; known: a, b" (lookup)."""

    def __init__(self, kind: str, entry: Callable[..., T] | None = None):
        self.kind = kind
        self._entry = entry
        self._table: dict[str, T] = {}

    def register(self, name: str, **details) -> Callable:
        def deco(obj):
            if isinstance(obj, type):
                obj.name = name
            self._table[name] = self._entry(name, obj, **details) if self._entry else obj
            return obj

        return deco

    def get(self, name: str) -> T:
        return lookup(self._table, self.kind, name)

    def __getitem__(self, name: str) -> T:
        return self._table[name]

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def keys(self):
        return self._table.keys()

    def values(self):
        return self._table.values()

    def items(self):
        return self._table.items()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._table)})"


# --- the subcommands ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One `albsent` subcommand (module `albsent.commands.<name>`). A stage also has a config
    dataclass (what its `--config FILE` builds), and a Ray job (`jobs/<name>.py`) has job keys:
    `paths` it needs besides the config and `flags` mirroring the CLI's (key -> default). A flag
    in `variants` switches the job to another config dataclass: `true` (its defaults) or a mapping
    of its keys, beside the stage config's `store` (train: `auto` -> AutoConfig). A `tracked`
    stage's job also has the key `tracking` (`{uri, experiment}` or none: albsent.tracking.resolve)."""

    name: str
    config: str = ""  # "module:Class" of the dataclass its --config builds; "" = no config file
    paths: tuple[str, ...] = ()  # required job keys
    flags: dict = field(default_factory=dict)  # optional job keys -> default
    variants: dict = field(default_factory=dict)  # flag -> "module:Class" of the config it selects
    tracked: bool = False  # logs to MLflow (albsent.tracking): --tracking-uri, job key / config section `tracking`

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
    Command("train", "albsent.train.config:TrainConfig", ("out",),
            {"overwrite": False, "auto": False, "loco": False, "stores": [], "label_map": {}},
            variants={"auto": "albsent.train.select:AutoConfig"}, tracked=True),  # store: TrainConfig/AutoConfig.store
    Command("predict"),
    Command("evaluate", "albsent.train.evaluate:EvaluateConfig", ("run", "input", "out")),
    Command("report"),
    Command("pretrain", "albsent.pretrain.config:PretrainConfig", ("store", "out"), tracked=True),
    Command("probe", "albsent.pretrain.config:ProbeConfig", ("pretrained", "store", "out"), tracked=True),
    Command("sweep", "albsent.sweep.config:SweepConfig", ("store", "out"), tracked=True),
]}
STAGES = {name: c for name, c in COMMANDS.items() if c.config}  # commands that take --config
JOBS = {name: c for name, c in COMMANDS.items() if c.paths}  # commands with a jobs/<name>.py
