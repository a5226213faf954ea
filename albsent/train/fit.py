"""The one Ray-free `fit()` used by the CLI, jobs/ and the Ray Tune trainable.

    data = load_data(store_uri, spec)                 # read the store once
    result = fit(config, data, on_epoch=cb)           # one grouped train/val/test split
    cv = cross_validate(config, data)                 # config.split.folds folds, mean ± std
    metrics = run_training(config, out_dir)           # load + fit/cv + write RUN/

`on_epoch(epoch, {"epoch", "train_loss", "val_loss", "val_macro_f1", "best_epoch"[, "fold"]})`
is called after every epoch (once for scikit-learn models).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from albsent.config import build, dump_yaml, merge, to_dict
from albsent.dataset.data import Data, load_data
from albsent.dataset.splits import Split, audit, make_splits
from albsent.errors import ConfigError
from albsent.models import build_model, check_compatible, get_model
from albsent.models.logreg import fit_sklearn_logreg
from albsent.runtime import keep_freed_memory
from albsent.train import artifacts
from albsent.train.checkpoint import Bundle, save_bundle
from albsent.train.config import TrainConfig
from albsent.train.loop import Normalizer, predict_proba, resolve_device, stride_frames, train_loop
from albsent.train.metrics import aggregate, compute_metrics

log = logging.getLogger(__name__)
OnEpoch = Callable[[int, dict], None]


@dataclass
class FitResult:
    metrics: dict  # test-split metrics (compute_metrics) + "audit", "best_epoch"
    history: list[dict]
    bundle: Bundle
    split: Split
    val_metrics: dict | None = None
    predictions: list[dict] = field(default_factory=list)  # one per test row


@dataclass
class CVResult:
    metrics: dict  # aggregate(): mean/std per metric, summed confusion matrix, per_fold
    folds: list[FitResult]


def _macro_f1(n_classes: int):
    labels = list(range(n_classes))
    return lambda y, p: compute_metrics(y, p, labels)["macro_f1"]


def fit(config: TrainConfig, data: Data, on_epoch: OnEpoch | None = None, out_dir: str | Path | None = None,
        split: Split | None = None, fold: int | None = None) -> FitResult:
    """Train `config.model` on `data` and evaluate it on the test part of `split` (default: the
    config's grouped stratified train/val/test split). The split is audited for leakage first."""
    check_compatible(config.model, data.spec.kind, data.spec.text)
    keep_freed_memory()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    labels = data.label_names
    y = np.array([labels.index(v) for v in data.labels], dtype=np.int64)
    split = split or make_splits(config.split, data.labels, data.groups, data.splits, config.seed)[0]
    if not len(split.train) or not len(split.test):
        raise ConfigError(f"the split has {len(split.train)} training and {len(split.test)} test rows; both must be non-empty")
    report = audit(split, groups=data.groups, utterance_id=data.utterance_ids, sha256=data.sha256)
    X = stride_frames(data.X, config.frame_stride)
    take = lambda idx: [X[i] for i in idx] if isinstance(X, list) else X[idx]  # noqa: E731
    Xtr, Xva, Xte = take(split.train), take(split.val), take(split.test)
    norm = Normalizer.fit(Xtr) if config.standardize else None
    if norm is not None:
        Xtr, Xva, Xte = norm(Xtr), norm(Xva), norm(Xte)
    first = Xtr[0]
    input_dim = int(first.shape[-1])
    n_layers = int(first.shape[0]) if data.spec.kind == "layers" else None
    torch.manual_seed(config.seed)
    model = build_model(config.model, input_dim, len(labels), config.hparams(), n_layers)
    ytr, yva = y[split.train], y[split.val]
    if get_model(config.model).sklearn:
        fit_sklearn_logreg(model, Xtr, ytr, len(labels), config.C, config.class_weighted, config.seed)
        history = [_sklearn_history(model, Xtr, ytr, Xva, yva, len(labels))]
        best_epoch = 1
        if on_epoch is not None:
            on_epoch(1, {**history[0], **({"fold": fold} if fold else {})})
    else:
        cb = on_epoch if on_epoch is None or fold is None else (lambda e, row: on_epoch(e, {**row, "fold": fold}))
        history, best_epoch = train_loop(
            model, Xtr, ytr, Xva, yva, n_classes=len(labels), epochs=config.epochs, batch_size=config.batch_size,
            lr=config.lr, weight_decay=config.weight_decay, patience=config.patience, class_weighted=config.class_weighted,
            grad_clip=config.grad_clip, seed=config.seed, on_epoch=cb, metric=_macro_f1(len(labels)),
            device=resolve_device(config.device))
    probs = predict_proba(model, Xte)
    pred = probs.argmax(1)
    metrics = compute_metrics([labels[i] for i in y[split.test]], [labels[i] for i in pred], labels)
    metrics.update({"best_epoch": best_epoch, "epochs_run": len(history), "group_by": data.group_by, "audit": report})
    val_metrics = None
    if len(split.val):
        vp = predict_proba(model, Xva).argmax(1)
        val_metrics = compute_metrics([labels[i] for i in yva], [labels[i] for i in vp], labels)
    bundle = Bundle(model.state_dict(), {
        "model": {"name": config.model, "input_dim": input_dim, "n_classes": len(labels), "n_layers": n_layers,
                  "hparams": config.hparams()},
        "labels": labels,
        "label_map": {lab: i for i, lab in enumerate(labels)},
        "features": {"spec": data.spec.text, "kind": data.spec.kind, "columns": data.columns,
                     "frame_stride": config.frame_stride},
        "normalization": norm.to_json() if norm else None,
        "train_config": to_dict(config),
        "store": {"uri": data.store_uri, "config_hash": data.store_meta.get("config_hash"), "group_by": data.group_by},
        "extract_config": data.store_meta.get("config"),
        "extractors": {k: {"columns": v.get("columns")} for k, v in data.store_meta.get("extractors", {}).items()},
        "metrics": {k: metrics[k] for k in ("accuracy", "macro_f1", "balanced_accuracy")},
    })
    preds = [
        {"id": data.ids[i], "utterance_id": data.utterance_ids[i], "group": data.groups[i], "fold": fold or 0,
         "label": data.labels[i], "pred": labels[p], **{f"p_{lab}": float(q) for lab, q in zip(labels, pr)}}
        for i, p, pr in zip(split.test, pred, probs)
    ]
    result = FitResult(metrics, history, bundle, split, val_metrics, preds)
    if out_dir is not None:
        write_fit(result, out_dir, config)
    log.info("%s%s on %s: test accuracy %.3f, macro-F1 %.3f (best epoch %d)", f"fold {fold}: " if fold else "",
             config.model, data.spec.text, metrics["accuracy"], metrics["macro_f1"], best_epoch)
    return result


def _sklearn_history(model, Xtr, ytr, Xva, yva, n_classes) -> dict:
    """The unweighted cross-entropy and validation macro-F1 of a scikit-learn fit, as one 'epoch'."""
    row = {"epoch": 1, "best_epoch": 1}
    for name, X, yy in (("train", Xtr, ytr), ("val", Xva, yva)):
        if len(yy):
            p = torch.from_numpy(predict_proba(model, X))
            row[f"{name}_loss"] = float(torch.nn.functional.nll_loss(torch.log(p.clamp_min(1e-12)), torch.from_numpy(yy)))
    if len(yva):
        row["val_macro_f1"] = _macro_f1(n_classes)(yva, predict_proba(model, Xva).argmax(1))
    return row


def write_fit(result: FitResult, out_dir: str | Path, config: TrainConfig) -> None:
    out = Path(out_dir)
    save_bundle(result.bundle, out)
    labels = result.bundle.labels
    artifacts.write_json({**result.metrics, "val": result.val_metrics, "history": result.history}, out / "metrics.json")
    artifacts.write_predictions(result.predictions, labels, out / "predictions.csv")
    artifacts.plot_confusion(result.metrics["confusion_matrix"], labels, out / "confusion_matrix.png", f"{config.model} on {config.features}")
    artifacts.plot_loss([result.history], out / "loss_curve.png", f"{config.model} on {config.features}")
    dump_yaml(config, out / "config.yaml")


def cross_validate(config: TrainConfig, data: Data, on_epoch: OnEpoch | None = None,
                   out_dir: str | Path | None = None) -> CVResult:
    """Grouped stratified K-fold (K = config.split.folds): fit per fold (fold folders
    RUN/fold-k/ each hold a model), mean ± std of the test metrics over folds."""
    splits = make_splits(config.split, data.labels, data.groups, data.splits, config.seed)
    folds = [fit(config, data, on_epoch, Path(out_dir) / f"fold-{k}" if out_dir else None, split=s, fold=k)
             for k, s in enumerate(splits, start=1)]
    metrics = aggregate([{k: v for k, v in f.metrics.items()} for f in folds])
    metrics["group_by"] = data.group_by
    preds = [p for f in folds for p in f.predictions]
    labels = folds[0].bundle.labels
    metrics["pooled"] = {k: v for k, v in compute_metrics([p["label"] for p in preds], [p["pred"] for p in preds], labels).items()
                         if k != "labels"}
    if out_dir is not None:
        out = Path(out_dir)
        artifacts.write_json(metrics, out / "metrics.json")
        artifacts.write_predictions(preds, labels, out / "predictions.csv")
        title = f"{config.model} on {config.features}, {len(folds)} folds"
        artifacts.plot_confusion(metrics["confusion_matrix"], labels, out / "confusion_matrix.png", title)
        artifacts.plot_loss([f.history for f in folds], out / "loss_curve.png", title)
        dump_yaml(config, out / "config.yaml")
    log.info("%d folds: accuracy %.3f ± %.3f, macro-F1 %.3f ± %.3f", len(folds), metrics["accuracy"], metrics["accuracy_std"],
             metrics["macro_f1"], metrics["macro_f1_std"])
    return CVResult(metrics, folds)


def run_training(config: TrainConfig, out_dir: str | Path, on_epoch: OnEpoch | None = None) -> dict:
    """Load the store, train (one split or K folds), write RUN/; returns metrics.json's content."""
    if not config.store:
        raise ConfigError("no store given: pass --store STORE or set `store:` in the config")
    data = load_data(config.store, config.features, config.split.group_by)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if config.split.folds > 1:
        return cross_validate(config, data, on_epoch, out_dir).metrics
    result = fit(config, data, on_epoch, out_dir)
    return {**result.metrics, "val": result.val_metrics}


def train_and_evaluate(store: str, features: str, model: str, out: str | Path, **overrides) -> dict:
    """One call for `albsent demo` and notebooks: e.g.
    train_and_evaluate("STORE", "mfcc", "mlp", "RUN", class_weighted=True, split={"folds": 5})."""
    config = build(TrainConfig, merge({"store": str(store), "features": features, "model": model}, overrides))
    return run_training(config, out)
