"""Sweep kinds: everything a classifier sweep and a latent sweep do differently, behind one
interface (`SweepKind`, albsent.sweep.kinds.base), one file per kind. The rest of the sweep
(config, space, data, trainable, results, run) asks `config.sweep_kind` and never the kind's name.

    classifier  TrainConfig + the one fit() (per epoch; per fold when cross-validated)
    latent      PretrainConfig + pretrain() (per validation step) + probe() (per fold)

A new kind: a SweepKind subclass in its own file, decorated with `@KINDS.register("name")` and
imported here; SweepConfig.kind is checked against KINDS (get_kind).
"""

from albsent.sweep.kinds.base import KINDS, SweepKind
from albsent.sweep.kinds.classifier import ClassifierKind
from albsent.sweep.kinds.latent import LatentKind

get_kind = KINDS.get  # KINDS[name], or "unknown sweep kind 'x'; known: classifier, latent"

__all__ = ["KINDS", "ClassifierKind", "LatentKind", "SweepKind", "get_kind"]
