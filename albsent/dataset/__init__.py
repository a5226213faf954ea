"""Store -> numpy model inputs (feature specs), grouped stratified splits, leakage audit."""

from albsent.dataset.data import Data, load_data
from albsent.dataset.spec import FeatureSpec, parse
from albsent.dataset.splits import LeakageError, Split, SplitConfig, audit, kfold, make_splits, train_val_test

__all__ = ["Data", "FeatureSpec", "LeakageError", "Split", "SplitConfig", "audit", "kfold", "load_data", "make_splits",
           "parse", "train_val_test"]
