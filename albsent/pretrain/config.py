"""Configs of the two stages of the Latent Sentiment protocol. Plain dataclass fields, so a
sweep can search lr, iterations (autoencoder and probe separately), hidden size, attachment
point, window length and target mode as flat keys (e.g. `window.length`, `probe.attach`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from albsent.config import require, require_seed
from albsent.models.autoencoders.config import AutoencoderConfig

PREDICT = re.compile(r"^(all|\d*:\d*|\d+(,\d+)*)$")
RENAMED = {"threads": "num_threads"}  # old key -> new key (build() names the new key; saved_config() renames)


@dataclass
class WindowConfig:
    length: int = 15               # N frames per window (paper: 15)
    stride: int = 1                # hop between training windows, in frames
    target: Literal["next", "shifted", "reconstruct"] = "next"  # N+1 | 2..N+1 | 1..N
    predict: str = "all"           # predicted input features: all | START:STOP | i,j,k (indices)

    def __post_init__(self):
        require(self.length >= 1, self, "length", self.length, "an int >= 1 (paper: 15)")
        require(self.stride >= 1, self, "stride", self.stride, "an int >= 1")
        require(bool(PREDICT.match(str(self.predict).replace(" ", ""))), self, "predict", self.predict,
                "'all', a slice 'START:STOP' or comma-separated feature indices")

    def out_index(self, in_dim: int) -> list[int]:
        """Indices of the predicted features among the `in_dim` input features."""
        p = str(self.predict).replace(" ", "")
        if p == "all":
            idx = list(range(in_dim))
        elif ":" in p:
            a, b = p.split(":")
            idx = list(range(in_dim))[slice(int(a) if a else None, int(b) if b else None)]
        else:
            idx = [int(v) for v in p.split(",")]
        require(bool(idx) and all(0 <= i < in_dim for i in idx), self, "predict", self.predict,
                f"a non-empty selection of feature indices in [0, {in_dim})")
        return idx

    @property
    def span(self) -> int:
        """Frames one training example needs: N + 1 when the target looks one frame ahead."""
        return self.length + (0 if self.target == "reconstruct" else 1)


@dataclass
class ProbeConfig:
    attach: str = ""               # attachment point; "" = the model's first (see --list-attach)
    lr: float = 1e-2
    iterations: int = 2000         # paper Table 3: classifier iterations matter little
    batch_size: int = 0            # 0: full batch (the labeled subset is small)
    weight_decay: float = 1e-4
    train_fraction: float = 0.1    # labeled subset, as a share of ALL rows (paper: 10 %)
    folds: int = 5                 # speaker-independent folds (grouped by speaker when known)
    group_by: Literal["auto", "speaker", "utterance"] = "auto"
    window_stride: int = 0         # hop between an utterance's windows (0: window length)
    pool: Literal["mean", "mean_std"] = "mean"  # attachment point over an utterance's windows
    standardize: bool = True       # z-score probe inputs with the labeled subset's statistics
    class_weight: bool = False     # inverse-frequency class weights in the loss
    baseline: Literal["mean_std", "mean"] = "mean_std"  # baseline input: per-utterance mean (+ std) of the raw frames
    num_threads: int = 1           # torch threads (a linear layer on ~50 rows: 1 is fastest; 0 = torch default)
    seed: int = 0
    RENAMED: ClassVar[dict[str, str]] = RENAMED

    def __post_init__(self):
        require(self.lr > 0, self, "lr", self.lr, "a float > 0")
        require(self.iterations >= 1, self, "iterations", self.iterations, "an int >= 1")
        require(self.batch_size >= 0, self, "batch_size", self.batch_size, "an int >= 0 (0: full batch)")
        require(self.weight_decay >= 0, self, "weight_decay", self.weight_decay, "a float >= 0")
        require(0 < self.train_fraction <= 1, self, "train_fraction", self.train_fraction, "a float in (0, 1]")
        require(self.folds >= 2, self, "folds", self.folds, "an int >= 2")
        require(self.window_stride >= 0, self, "window_stride", self.window_stride, "an int >= 0")
        require(self.num_threads >= 0, self, "num_threads", self.num_threads, "an int >= 0 (0: torch default)")
        require_seed(self, self.seed)


@dataclass
class PretrainConfig:
    features: str = "mfcc:seq"     # a sequence feature spec (albsent.dataset.spec); "mfcc" means "mfcc:seq"
    window: WindowConfig = field(default_factory=WindowConfig)
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    loss: Literal["mse", "l1", "huber"] = "mse"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3               # paper Table 2: 1e-3 best
    weight_decay: float = 0.0
    iterations: int = 10000        # paper Table 3: 10,000 autoencoder iterations best
    batch_size: int = 64
    grad_clip: float = 1.0         # max gradient norm (0: off)
    val_fraction: float = 0.1      # share of utterances held out for validation loss
    val_every: int = 250           # iterations between validation passes (and on_step reports)
    max_val_windows: int = 4096    # validation windows (evenly spaced subsample)
    checkpoint_every: int = 0      # iterations between checkpoints under checkpoints/ (0: final only)
    num_threads: int = 0           # torch intra-op threads (0: torch's default; 1 is much faster on a busy machine)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where the autoencoder trains; auto: cuda when torch sees a GPU
    seed: int = 0
    probe: ProbeConfig = field(default_factory=ProbeConfig)  # the probe stage's defaults for this experiment
    RENAMED: ClassVar[dict[str, str]] = RENAMED

    def __post_init__(self):
        from albsent.dataset.data import sequence_spec

        self.features = sequence_spec(self.features).text  # "mfcc" -> "mfcc:seq"
        require(self.lr > 0, self, "lr", self.lr, "a float > 0")
        require(self.weight_decay >= 0, self, "weight_decay", self.weight_decay, "a float >= 0")
        require(self.iterations >= 1, self, "iterations", self.iterations, "an int >= 1")
        require(self.batch_size >= 1, self, "batch_size", self.batch_size, "an int >= 1")
        require(self.grad_clip >= 0, self, "grad_clip", self.grad_clip, "a float >= 0 (0: off)")
        require(0 <= self.val_fraction < 1, self, "val_fraction", self.val_fraction, "a float in [0, 1)")
        require(self.val_every >= 1, self, "val_every", self.val_every, "an int >= 1")
        require(self.max_val_windows >= 1, self, "max_val_windows", self.max_val_windows, "an int >= 1")
        require(self.checkpoint_every >= 0, self, "checkpoint_every", self.checkpoint_every, "an int >= 0")
        require(self.num_threads >= 0, self, "num_threads", self.num_threads, "an int >= 0")
        require_seed(self, self.seed)


def saved_config(data: dict) -> dict:
    """A PretrainConfig dict as an older model.json saved it, with renamed keys under their new names."""
    def renamed(d: dict) -> dict:
        return {RENAMED.get(k, k): v for k, v in d.items()}

    out = renamed(data)
    if isinstance(out.get("probe"), dict):
        out["probe"] = renamed(out["probe"])
    return out
