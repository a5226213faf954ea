"""The interface of a sweep kind: exactly the operations in which a classifier sweep and a
latent sweep differ. A kind is stateless (one shared instance, picklable for Ray).

A new kind is one SweepKind subclass decorated with `@KINDS.register("name")`: the registry
holds its one instance, and SweepConfig.kind is validated against it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from albsent.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from albsent.sweep.config import SweepConfig
    from albsent.sweep.space import Filter, Param
    from albsent.sweep.trainable import Reporter

# Columns of trials.csv every kind has (after the kind's own `columns`).
COMMON_COLUMNS = ("fit_seconds", "training_iteration", "time_total_s")


class SweepKind(ABC):
    name: ClassVar[str]  # set by @KINDS.register(name)
    # objective metric -> mode; the first is the default `metric`
    metrics: ClassVar[dict[str, str]]
    # final-result metrics copied into trials.csv and sweep.json's best trial, in this order
    columns: ClassVar[tuple[str, ...]]
    # environment for Ray Tune (e.g. reports that precede the objective metric)
    tune_env: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def target(self) -> type:
        """The config class one trial is built from."""

    @abstractmethod
    def base(self, data: dict, store: str) -> dict:
        """The sweep's base config dict with this kind's defaults (threads) and the store filled in."""

    def canonical_features(self, text: str) -> str:
        """A `features` value as the target config stores it (the key of the data read for it)."""
        return text

    @abstractmethod
    def filters(self, config: SweepConfig, params: list[Param], info: dict, store: str) -> dict[str, Filter]:
        """{space key: Filter} that keep only the choices valid after what was sampled before
        (`info`: the store's column_info)."""

    @abstractmethod
    def load(self, config: SweepConfig, text: str, store: str) -> Any:
        """Everything a trial with feature spec `text` reads, loaded once on the driver."""

    @abstractmethod
    def reports_per_trial(self, base_cfg, report_every: int) -> int:
        """How many results one full trial reports (ASHA's max_t)."""

    @abstractmethod
    def trial(self, cfg, data: Any, reporter: Reporter) -> tuple[dict, Any, dict[str, str]]:
        """Train one trial with config `cfg` on `data` (from `load`), calling `reporter` per
        intermediate result -> (final metrics, model bundle or None, extra checkpoint files)."""

    @abstractmethod
    def retrain(self, cfg, data: Any, best: pd.Series, folder: Path) -> dict:
        """Retrain the best config into `folder` and evaluate it -> the summary's `final`."""


# name -> the kind's one instance (albsent.registry.Registry); albsent.sweep.kinds registers every kind.
KINDS: Registry[SweepKind] = Registry("sweep kind", lambda name, cls: cls())
