"""TrainConfig: everything one training run depends on. Every field the sweep searches is a
plain top-level field; `albsent train --config run/config.yaml` reproduces a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from albsent.config import require, require_seed
from albsent.dataset.splits import SplitConfig


@dataclass
class TrainConfig:
    store: str = ""  # feature store URI (albsent extract --out)
    features: str = "mfcc"  # feature spec, see albsent.dataset.spec
    model: str = "mlp"  # registry name: logreg, sklearn_logreg, svm_rbf, svm_linear, mlp, bilstm_attn
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.2
    pooling: Literal["attention", "mean"] = "attention"  # bilstm_attn only
    class_weighted: bool = False  # cross-entropy weighted by n / (classes * n_class) of the training split
    lr: float = 1e-3
    weight_decay: float = 0.0  # Adam L2 penalty
    C: float = 1.0  # logreg (pooled) / sklearn_logreg / svm_rbf / svm_linear inverse regularisation strength
    epochs: int = 100
    batch_size: int = 32
    patience: int = 10  # early stopping: epochs without a lower validation loss
    grad_clip: float = 5.0  # max gradient norm (0: off)
    standardize: bool = True  # z-score with statistics of the training split only
    # z-score each speaker's rows with that speaker's own statistics first (no labels needed; test
    # speakers use their own rows). Rows of a speaker with a single row use the training statistics.
    speaker_norm: bool = False
    # train also on the augmented copies of the training rows (a store extracted with --augment);
    # copies are never in validation or test parts (albsent.dataset.data.training_rows)
    augmented: bool = False
    frame_stride: int = 1  # sequence specs: keep every k-th frame (2 -> 20 ms frames)
    seed: int = 0  # splits, initialisation, batch order
    num_threads: int = 0  # torch CPU threads for this process (0: leave torch's setting); 1 is fastest on busy CPUs
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where the torch models train; auto: cuda when torch sees a GPU
    split: SplitConfig = field(default_factory=SplitConfig)
    # The validation split's rows. "auto": models trained by epochs stop early on them; models that are
    # not (SVMs, the logistic regressions on pooled features) train on them instead. "keep": every model
    # leaves them out (a sweep compares its trials on them; its best_config.yaml keeps that).
    val_rows: Literal["auto", "keep"] = "auto"

    def __post_init__(self):
        require(isinstance(self.features, str) and self.features.strip() != "", self, "features", self.features,
                "a feature spec such as 'mfcc'")
        require(1 <= self.hidden_size <= 8192, self, "hidden_size", self.hidden_size, "an int in [1, 8192]")
        require(1 <= self.num_layers <= 16, self, "num_layers", self.num_layers, "an int in [1, 16]")
        require(0 <= self.dropout < 1, self, "dropout", self.dropout, "a float in [0, 1)")
        require(0 < self.lr <= 10, self, "lr", self.lr, "a float in (0, 10]")
        require(self.weight_decay >= 0, self, "weight_decay", self.weight_decay, "a float >= 0")
        require(self.C > 0, self, "C", self.C, "a float > 0")
        require(1 <= self.epochs <= 100000, self, "epochs", self.epochs, "an int in [1, 100000]")
        require(1 <= self.batch_size <= 65536, self, "batch_size", self.batch_size, "an int in [1, 65536]")
        require(self.patience >= 1, self, "patience", self.patience, "an int >= 1")
        require(self.grad_clip >= 0, self, "grad_clip", self.grad_clip, "a float >= 0")
        require(self.num_threads >= 0, self, "num_threads", self.num_threads, "an int >= 0")
        require(1 <= self.frame_stride <= 100, self, "frame_stride", self.frame_stride, "an int in [1, 100]")
        require_seed(self, self.seed)

    def hparams(self) -> dict:
        from albsent.models import MODEL_HPARAMS

        return {k: getattr(self, k) for k in MODEL_HPARAMS}
