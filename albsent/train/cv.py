"""The one cross-validation driver: splits, a leakage-audited `fit()` per fold, per-fold and
pooled metrics, and the run folder. `albsent train --folds K`, the Tune trainable, the sweep's
final retrain and the nested recipe selection (albsent.train.select) all call `cross_validate`.

    cv = cross_validate(config, data)                    # config.split.folds folds
    cv = cross_validate(config, data, splits=my_splits)  # any list of Split (e.g. inner folds)
    metrics = run_training(config, out_dir)              # load + fit / cv + write RUN/

metrics: mean ± std over folds of accuracy, macro-F1 and balanced accuracy (`aggregate`), the
summed confusion matrix, "per_fold", and "pooled" (the metrics of all out-of-fold predictions
together: the figure to compare recipes by, as it does not weight a small fold like a large one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from albsent.config import build, dump_yaml, merge
from albsent.dataset.data import Data, load_data
from albsent.dataset.splits import Split, make_splits
from albsent.errors import ConfigError
from albsent.train import artifacts
from albsent.train.config import TrainConfig
from albsent.train.fit import FitResult, OnEpoch, fit
from albsent.train.metrics import SUMMARY_KEYS, aggregate, compute_metrics

log = logging.getLogger(__name__)
OnFold = Callable[[int, FitResult, dict], None]  # (fold, its result, running mean of the summary metrics)


@dataclass
class CVResult:
    metrics: dict  # aggregate(): mean/std per metric, summed confusion matrix, per_fold, pooled
    folds: list[FitResult]


def fold_means(rows: list[dict]) -> dict:
    """{key: mean over folds} of per-fold rows of numbers (every row has the keys of the first); a NaN
    (a fold without that value, e.g. no validation split) is left out. The running figures a
    cross-validation reports after each fold, and a sweep trial's per-fold means."""
    return {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}


def pooled_metrics(predictions: list[dict], labels: list[str]) -> dict:
    """Metrics of out-of-fold predictions ({"label", "pred", ...} rows) taken together."""
    m = compute_metrics([p["label"] for p in predictions], [p["pred"] for p in predictions], labels)
    return {k: v for k, v in m.items() if k != "labels"}


def fold_summary(per_fold: list[dict], predictions: list[dict], labels: list[str], group_by: str) -> dict:
    """metrics.json of a cross-validated run: mean ± std over folds, per_fold, and pooled."""
    metrics = aggregate(per_fold)
    metrics["group_by"] = group_by
    metrics["pooled"] = pooled_metrics(predictions, labels)
    return metrics


def write_cv(out: Path, metrics: dict, predictions: list[dict], labels: list[str], title: str, config,
             histories: list[list[dict]] | None = None) -> None:
    """RUN/ of a cross-validated run: metrics.json, predictions.csv, confusion_matrix.png,
    loss_curve.png (with training histories), config.yaml."""
    artifacts.write_json(metrics, out / "metrics.json")
    artifacts.write_predictions(predictions, labels, out / "predictions.csv")
    artifacts.plot_confusion(metrics["confusion_matrix"], labels, out / "confusion_matrix.png", title)
    if histories:
        artifacts.plot_loss(histories, out / "loss_curve.png", title)
    dump_yaml(config, out / "config.yaml")


def cross_validate(config: TrainConfig, data: Data, on_epoch: OnEpoch | None = None, out_dir: str | Path | None = None,
                   splits: list[Split] | None = None, on_fold: OnFold | None = None) -> CVResult:
    """fit() on each split (default: grouped stratified K-fold, K = config.split.folds); with
    out_dir, RUN/fold-k/ holds each fold's model and RUN/ the cross-validated metrics."""
    if splits is None:
        splits = make_splits(config.split, data.labels, data.groups, data.splits, config.seed)
    if not splits:
        raise ConfigError("cross-validation got no splits")
    folds: list[FitResult] = []
    for k, s in enumerate(splits, start=1):
        folds.append(fit(config, data, on_epoch, Path(out_dir) / f"fold-{k}" if out_dir else None, split=s, fold=k))
        if on_fold is not None:
            on_fold(k, folds[-1], fold_means([{key: f.metrics[key] for key in SUMMARY_KEYS} for f in folds]))
    labels = folds[0].bundle.labels
    preds = [p for f in folds for p in f.predictions]
    metrics = fold_summary([f.metrics for f in folds], preds, labels, data.group_by)
    if out_dir is not None:
        write_cv(Path(out_dir), metrics, preds, labels, f"{config.model} on {config.features}, {len(folds)} folds",
                 config, [f.history for f in folds])
    log.info("%d folds: accuracy %.3f ± %.3f, macro-F1 %.3f ± %.3f (pooled %.3f)", len(folds), metrics["accuracy"],
             metrics["accuracy_std"], metrics["macro_f1"], metrics["macro_f1_std"], metrics["pooled"]["macro_f1"])
    return CVResult(metrics, folds)


def run_training(config: TrainConfig, out_dir: str | Path, on_epoch: OnEpoch | None = None) -> dict:
    """Load the store, train (one split or K folds), write RUN/; returns metrics.json's content."""
    if not config.store:
        raise ConfigError("no store given: pass --store STORE or set `store:` in the config")
    data = load_data(config.store, config.features, config.split.group_by, augmented=config.augmented)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if config.split.folds > 1:
        return cross_validate(config, data, on_epoch, out_dir).metrics
    result = fit(config, data, on_epoch, out_dir)
    return {**result.metrics, "val": result.val_metrics}


def train_and_evaluate(store: str, features: str, model: str, out: str | Path, **overrides) -> dict:
    """One call for notebooks: e.g.
    train_and_evaluate("STORE", "mfcc", "mlp", "RUN", class_weighted=True, split={"folds": 5})."""
    config = build(TrainConfig, merge({"store": str(store), "features": features, "model": model}, overrides))
    return run_training(config, out)
