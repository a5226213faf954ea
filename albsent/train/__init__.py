"""Ray-free training: `load_data` -> `fit` / `cross_validate` -> metrics, history, saved bundle.

    from albsent.train import TrainConfig, load_data, fit
    data = load_data("STORE", "mfcc")
    result = fit(TrainConfig(model="mlp"), data, on_epoch=lambda e, m: print(e, m["val_loss"]))
"""

from albsent.dataset.data import Data, load_data
from albsent.train.checkpoint import Bundle, load_bundle, save_bundle
from albsent.train.config import TrainConfig
from albsent.train.cv import CVResult, cross_validate, run_training, train_and_evaluate
from albsent.train.fit import FitResult, fit
from albsent.train.metrics import compute_metrics

__all__ = ["Bundle", "CVResult", "Data", "FitResult", "TrainConfig", "compute_metrics", "cross_validate", "fit",
           "load_bundle", "load_data", "run_training", "save_bundle", "train_and_evaluate"]
