"""Model registry: `MODELS` (albsent.registry.Registry) and its decorator, one registration per model:

    @MODELS.register("svm_rbf", input_kind="pooled", description="...",
                     fitter="albsent.train.estimators:fit_svm_rbf")
    def build_svm_rbf(input_dim, n_classes, **_): ...

A builder maps (input_dim, n_classes, **hparams) to an nn.Module whose forward is
`forward(x, lengths=None) -> logits (batch, n_classes)`:
  pooled models: x (batch, dim); sequence models: x (batch, time, dim) with lengths (batch,).
Every builder receives all of MODEL_HPARAMS and ignores the ones it does not use, so a saved
model is rebuilt from its name, dims and hparams alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from albsent.errors import ConfigError
from albsent.registry import Registry, resolve

MODEL_HPARAMS = ("hidden_size", "num_layers", "dropout", "pooling")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable
    input_kind: str  # "pooled" (also takes "layers" through LayerSum) | "sequence"
    description: str
    # "module:function" of the scikit-learn fitter (albsent.train.estimators) that trains the module
    # and writes the weights into it; "" = trained by gradient descent (albsent.train.fit). A string,
    # so registering a model imports no scikit-learn.
    fitter: str = ""

    @property
    def sklearn(self) -> bool:
        """Trained by scikit-learn, weights exported to the torch module."""
        return bool(self.fitter)

    def fit(self, model, X, y, n_classes: int, **kwargs) -> None:
        """Fit this (scikit-learn) model on standardised X: (rows, dim), y: (rows,) into `model`."""
        if not self.fitter:
            raise ConfigError(f"model '{self.name}' is trained by gradient descent, not scikit-learn")
        resolve(self.fitter)(model, X, y, n_classes, **kwargs)


MODELS: Registry[ModelEntry] = Registry("model", ModelEntry)
get_model = MODELS.get  # MODELS[name], or "unknown model 'x'; known: ..."


def check_compatible(name: str, feature_kind: str, spec_text: str = "") -> None:
    entry = get_model(name)
    ok = entry.input_kind == feature_kind or (entry.input_kind == "pooled" and feature_kind == "layers")
    if not ok:
        if entry.input_kind == "sequence":
            raise ConfigError(f"model '{name}' reads frame sequences but feature spec {spec_text!r} "
                              "gives pooled vectors; "
                              "use a ':seq' spec such as mfcc:seq or ssl:ALIAS:seq:LAYER")
        seq = sorted(n for n, e in MODELS.items() if e.input_kind == "sequence")
        raise ConfigError(f"model '{name}' reads pooled vectors but feature spec {spec_text!r} gives frame sequences; "
                          f"use a pooled spec (e.g. mfcc) or a sequence model ({', '.join(seq)})")
    if entry.sklearn and feature_kind != "pooled":
        raise ConfigError(f"model '{name}' (scikit-learn) needs a pooled spec; use 'logreg' for {spec_text!r}")


def build_model(name: str, input_dim: int, n_classes: int, hparams: dict, n_layers: int | None = None):
    """The module for `name`; with n_layers (spec ssl:ALIAS:all) it is wrapped in a learned layer sum."""
    from albsent.models.layer_sum import LayerSum

    entry = get_model(name)
    model = entry.build(input_dim, n_classes, **{k: hparams[k] for k in MODEL_HPARAMS})
    return LayerSum(model, n_layers) if n_layers else model
