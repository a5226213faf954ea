"""SweepConfig: what to search (a space over TrainConfig or PretrainConfig keys), how (Optuna
TPE + ASHA through Ray Tune), with which resources, and what to do with the best trial.

    kind: classifier            # classifier: TrainConfig + fit(); latent: PretrainConfig + pretrain() + probe()
                                # (albsent.sweep.kinds: everything that differs between the two)
    base: {model: mlp, epochs: 60}   # the config every trial starts from (or base_config: FILE)
    space: {lr: {loguniform: [1.0e-4, 1.0e-2]}, ...}   # see albsent.sweep.space
    metric: val_macro_f1        # classifier: val_macro_f1 | val_loss; latent: probe_macro_f1 | val_loss
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from albsent.config import build, merge, read_yaml, require, require_seed, to_dict
from albsent.errors import ConfigError
from albsent.sweep.kinds import SweepKind, get_kind
from albsent.sweep.space import SearchSpace, parse_space, placeholders


@dataclass
class SchedulerConfig:
    type: Literal["asha", "fifo"] = "asha"
    grace_period: int = 5  # reports (epochs; folds for cross-validated trials) before a trial can be stopped
    reduction_factor: float = 2.0
    max_t: int = 0  # 0: the base config's epochs (classifier) / reports per trial (latent)

    def __post_init__(self):
        require(self.grace_period >= 1, self, "grace_period", self.grace_period, "an int >= 1")
        require(self.reduction_factor > 1, self, "reduction_factor", self.reduction_factor, "a float > 1")
        require(self.max_t >= 0, self, "max_t", self.max_t, "an int >= 0 (0: automatic)")


@dataclass
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0  # fractional GPUs share one device between trials

    def __post_init__(self):
        require(self.cpu > 0, self, "cpu", self.cpu, "a number > 0")
        require(self.gpu >= 0, self, "gpu", self.gpu, "a number >= 0")


@dataclass
class SweepConfig:
    kind: str = "classifier"  # a name in albsent.sweep.kinds.KINDS
    name: str = "sweep"  # Tune experiment and Optuna study name
    base: dict[str, Any] = field(default_factory=dict)  # TrainConfig / PretrainConfig fields
    base_config: str = ""  # a train / pretrain YAML; `base` is merged over it
    space: dict[str, Any] = field(default_factory=dict)
    initial_points: list[dict[str, Any]] = field(default_factory=list)  # trials to run first (Optuna enqueue)
    metric: str = ""  # default: val_macro_f1 (classifier), probe_macro_f1 (latent)
    mode: Literal["", "max", "min"] = ""  # default from the metric
    num_samples: int = 16
    max_concurrent: int = 2
    seed: int = 0  # TPE sampler seed
    resources: Resources = field(default_factory=Resources)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    max_failures: int = 1  # retries of a crashed trial before it is recorded as failed
    # The Optuna study's storage (optuna-dashboard reads it while the sweep runs). "auto": SWEEP_DIR/optuna.db for a
    # local SWEEP_DIR, in memory for an object-store one; "sqlite": SWEEP_DIR/optuna.db; "memory" (or ""): in memory
    # (saved with Tune's state); or an RDB URL (sqlite:///..., postgresql://..., mysql://...).
    optuna_storage: str = "auto"
    checkpoint_every: int = 0  # also checkpoint every k reports (0: only the final result)
    report_every: int = 1  # tune.report every k-th epoch / validation step (each report is a round trip to the driver)
    reuse_actors: bool = True  # keep trial worker processes (torch imported once) between trials
    retrain: bool = True  # retrain the best config and evaluate it on the test split / K folds
    pretrain_store: str = ""  # latent: unlabelled store to pretrain on ("" = the labelled store)

    def __post_init__(self):
        metrics = self.sweep_kind.metrics  # an unknown kind: "unknown sweep kind 'x'; known: classifier, latent"
        require(bool(self.name) and "/" not in self.name, self, "name", self.name, "a non-empty name without '/'")
        self.metric = self.metric or next(iter(metrics))
        require(self.metric in metrics, self, "metric", self.metric, f"one of {sorted(metrics)} for kind '{self.kind}'")
        self.mode = self.mode or metrics[self.metric]
        require(self.num_samples >= 1, self, "num_samples", self.num_samples, "an int >= 1")
        require(self.max_concurrent >= 1, self, "max_concurrent", self.max_concurrent, "an int >= 1")
        require(self.max_failures >= 0, self, "max_failures", self.max_failures, "an int >= 0")
        require(self.report_every >= 1, self, "report_every", self.report_every, "an int >= 1")
        require(self.checkpoint_every >= 0, self, "checkpoint_every", self.checkpoint_every, "an int >= 0")
        require(self.optuna_storage in ("auto", "sqlite", "memory", "") or "://" in self.optuna_storage, self,
                "optuna_storage", self.optuna_storage, "auto, sqlite, memory or an RDB URL such as sqlite:///optuna.db")
        require_seed(self, self.seed)
        parse_space(self.space)  # syntax errors surface at load time
        if self.base_config:  # absolute: trials run in their own working directories
            require(Path(self.base_config).is_file(), self, "base_config", self.base_config,
                    "an existing train / pretrain YAML")
            self.base_config = str(Path(self.base_config).resolve())

    # --- the config every trial is built from ---------------------------------------------------
    @property
    def sweep_kind(self) -> SweepKind:
        return get_kind(self.kind)

    @property
    def target(self) -> type:
        return self.sweep_kind.target()

    def base_dict(self, store: str = "") -> dict:
        data = read_yaml(self.base_config) if self.base_config else {}
        data = self.sweep_kind.base(merge(data, self.base), store)
        build(self.target, data)  # report an invalid base before anything starts
        return data

    def inlined(self) -> "SweepConfig":
        """The same sweep with `base_config` read into `base` (what SWEEP_DIR/sweep.yaml keeps, so a
        resume does not depend on the file's path, e.g. a Ray job's temporary working dir)."""
        return dataclasses.replace(self, base=self.base_dict(), base_config="")

    def trial_config(self, overrides: dict, store: str = ""):
        """The TrainConfig / PretrainConfig of one trial. Classifier trials are compared on their
        validation rows, so every model leaves them out (TrainConfig.val_rows: keep)."""
        base = self.base_dict(store)
        if any(f.name == "val_rows" for f in dataclasses.fields(self.target)):
            base = merge(base, {"val_rows": "keep"})
        return build(self.target, merge(base, overrides))

    def placeholder_keys(self) -> tuple[str, ...]:
        fields = {f.name for f in dataclasses.fields(self.target)}
        return tuple(k for k in self.space if "." not in k and k not in fields)


def build_space(config: SweepConfig, info: dict, store: str = "") -> SearchSpace:
    """The SearchSpace of `config`, with its kind's filters computed from the store's columns
    `info` (albsent.dataset.spec.column_info); every key checked against the target config."""
    params = parse_space(config.space)
    space = SearchSpace(params, config.sweep_kind.filters(config, params, info, store), config.placeholder_keys())
    check_keys(config, space)
    return space


def check_keys(config: SweepConfig, space: SearchSpace) -> None:
    """Every non-placeholder space key must name a field of the target config (dotted = nested)."""
    base = to_dict(config.trial_config({}))
    target = config.target.__name__
    used = {m for p in space.params for v in p.values for m in placeholders(v)}
    for p in space.params:
        if p.key in config.placeholder_keys():
            if p.key not in used:
                raise ConfigError(f"sweep space '{p.key}' is not a {target} field; valid: "
                                  f"{', '.join(sorted(base))} (or a {{placeholder}} used in another key's choices)")
            continue
        node = base
        for part in p.key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"sweep space '{p.key}' is not a {target} field; valid top-level "
                                  f"keys: {', '.join(sorted(base))}")
            node = node[part]


def load_sweep(path: str | Path | None, sets=(), extra: dict | None = None) -> SweepConfig:
    from albsent.config import load

    return load(SweepConfig, path, sets, extra)

