"""A pretraining run folder ("AE_RUN"), saved with the training stage's bundle format:

    AE_RUN/model.safetensors   autoencoder weights
    AE_RUN/model.json          {"kind": "autoencoder", config, in_dim, out_index, feature names,
                                feature spec, normalisation mean/std, metrics, history, store}
    AE_RUN/config.yaml         the resolved PretrainConfig
    AE_RUN/loss_curve.png      train / validation loss vs iteration, with the mean baseline
    AE_RUN/checkpoints/step-NNNNNN/   the same bundle every `checkpoint_every` iterations
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from albsent.config import build, dump_yaml, to_dict
from albsent.dataset.normalize import Normalizer
from albsent.errors import ConfigError
from albsent.models.autoencoders import Autoencoder, build_autoencoder
from albsent.pretrain.config import PretrainConfig, saved_config
from albsent.train.artifacts import plot_loss
from albsent.train.checkpoint import Bundle, BundleError, load_bundle, load_weights, save_bundle

log = logging.getLogger(__name__)
KIND = "autoencoder"


def _clean(v):
    """JSON-safe floats (NaN -> None)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def run_meta(result) -> dict:
    c = result.config
    return _clean({
        "kind": KIND, "pretrain_config": to_dict(c), "model_name": c.model.name, "in_dim": result.in_dim,
        "out_index": result.out_index, "feature_names": result.feature_names, "features": c.features,
        "norm": result.norm.to_json(),
        "metrics": result.metrics, "history": result.history, "store": result.store,
        "attach_points": [{"name": p.name, "dim": p.dim, "doc": p.doc} for p in result.model.attach_points()],
    })


class RunWriter:
    def __init__(self, out_dir, result):
        from albsent.runfolder import mark

        self.dir, self.result = Path(out_dir), result
        if not self.dir.exists() or not any(self.dir.iterdir()):  # a folder of other files is never marked a run
            mark(self.dir, "pretrain")
        dump_yaml(result.config, self.dir / "config.yaml")

    def _save(self, folder: Path) -> None:
        save_bundle(Bundle(self.result.model.state_dict(), run_meta(self.result)), folder)

    def checkpoint(self, step: int) -> None:
        self._save(self.dir / "checkpoints" / f"step-{step:06d}")

    def finish(self) -> None:
        self._save(self.dir)
        plot_loss([self.result.history], self.dir / "loss_curve.png", f"pretraining {self.result.config.model.name}",
                  x="step", xlabel="iteration", ylabel="loss",
                  baselines={"val_mean_baseline": "predict-the-mean", "val_copy_baseline": "copy last frame"})
        log.info("pretraining run written to %s", self.dir)


@dataclass
class Pretrained:
    """A frozen autoencoder and everything needed to feed it."""

    model: Autoencoder
    config: PretrainConfig
    norm: Normalizer
    meta: dict
    path: str


def load_pretrained(folder) -> Pretrained:
    """AE_RUN (or one of its checkpoints/step-N folders) -> Pretrained, in eval mode."""

    bundle = load_bundle(folder)
    meta = bundle.meta
    if meta.get("kind") != KIND:
        raise BundleError(f"{folder}: not a pretraining run (model.json kind={meta.get('kind')!r}); "
                          "expected the --out folder of `albsent pretrain`")
    config = build(PretrainConfig, saved_config(meta["pretrain_config"]))
    model = build_autoencoder(config.model, meta["in_dim"], meta["out_index"], config.window.length,
                              config.window.target)
    load_weights(model, bundle)
    norm = Normalizer.from_json(meta["norm"])
    return Pretrained(model.eval(), config, norm, meta, str(folder))


def check_attach(pretrained: Pretrained, point: str) -> str:
    names = pretrained.model.attach_names()
    point = point or pretrained.model.default_attach()
    if point not in names:
        raise ConfigError(f"unknown attachment point '{point}' for model '{pretrained.config.model.name}'; "
                          f"known: {', '.join(names)} "
                          f"(see `albsent pretrain --list-attach {pretrained.config.model.name}`)")
    return point
