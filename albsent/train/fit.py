"""The one Ray-free `fit()` used by the CLI, jobs/, the Ray Tune trainable and the nested
recipe selection (albsent.train.select); cross-validation around it is albsent.train.cv.

    data = load_data(store_uri, spec)                 # read the store once
    result = fit(config, data, on_epoch=cb)           # one grouped train/val/test split

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

from albsent.config import dump_yaml, to_dict
from albsent.dataset.data import Data, training_rows
from albsent.dataset.normalize import Scaling, take
from albsent.dataset.splits import Split, audit, make_splits
from albsent.errors import ConfigError
from albsent.models import build_model, check_compatible, get_model
from albsent.runtime import keep_freed_memory, torch_threads
from albsent.train import artifacts
from albsent.train.checkpoint import Bundle, save_bundle
from albsent.train.config import TrainConfig
from albsent.train.estimators import fit_sklearn, fit_torch_logreg
from albsent.train.loop import predict_proba, resolve_device, stride_frames, train_loop
from albsent.train.metrics import compute_metrics

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
    probs: np.ndarray | None = None  # (test rows, classes), in split.test order


def prediction_rows(data: Data, rows, probs: np.ndarray, labels: list[str], fold: int) -> list[dict]:
    """predictions.csv rows: id, utterance_id, group, fold, label, pred, p_<label>... for data rows `rows`
    with probabilities probs: (len(rows), classes)."""
    return [{"id": data.ids[i], "utterance_id": data.utterance_ids[i], "group": data.groups[i], "fold": fold,
             "label": data.labels[i], "pred": labels[int(p.argmax())],
             **{f"p_{lab}": float(q) for lab, q in zip(labels, p)}}
            for i, p in zip(rows, probs)]


def _macro_f1(n_classes: int):
    labels = list(range(n_classes))
    return lambda y, p: compute_metrics(y, p, labels)["macro_f1"]


def fit(config: TrainConfig, data: Data, on_epoch: OnEpoch | None = None, out_dir: str | Path | None = None,
        split: Split | None = None, fold: int | None = None, temperature: float | None = None) -> FitResult:
    """Train `config.model` on `data` and evaluate it on the test part of `split` (default: the
    config's grouped stratified train/val/test split). The split is audited for leakage first.

    A scikit-learn model (SVMs, exact logistic regression) and the torch `logreg` on pooled rows
    (solved to the same optimum as `sklearn_logreg`, C included: estimators.fit_torch_logreg) are
    not trained by epochs: they have no use for a validation split, so its rows are added to the
    training rows, unless config.val_rows is "keep" (a sweep trial is scored on its validation split).
    temperature: an SVM's probability calibration fitted elsewhere on held-out scores (the
    automatic selection's inner folds); None fits it on held-out folds of the training rows.
    config.num_threads (torch's CPU threads) holds for this call only."""
    check_compatible(config.model, data.spec.kind, data.spec.text)
    keep_freed_memory()
    with torch_threads(config.num_threads):
        return _fit(config, data, on_epoch, out_dir, split, fold, temperature)


def _fit(config: TrainConfig, data: Data, on_epoch: OnEpoch | None, out_dir: str | Path | None, split: Split | None,
         fold: int | None, temperature: float | None) -> FitResult:
    y = data.class_indices("a classifier")
    labels = data.label_names
    if config.speaker_norm and not data.has_speakers:
        raise ConfigError("speaker_norm: true needs a speaker for every row; the store has rows without one "
                          "(add a speaker column to the manifest, or set speaker_norm: false)")
    given = split is not None  # a caller's split may have no test rows (a final model on every row)
    split = split or make_splits(config.split, data.labels, data.groups, data.splits, config.seed)[0]
    if not len(split.train) or not (len(split.test) or given):
        raise ConfigError(f"the split has {len(split.train)} training and {len(split.test)} test rows; "
                          "both must be non-empty")
    sklearn = get_model(config.model).sklearn
    exact = sklearn or (config.model == "logreg" and data.spec.kind == "pooled")
    if exact and len(split.val) and config.val_rows == "auto":
        split = Split(np.sort(np.concatenate([split.train, split.val])), split.val[:0], split.test)
    report = audit(split, groups=data.groups, utterance_id=data.utterance_ids, sha256=data.sha256)
    stride = lambda X: stride_frames(X, config.frame_stride)  # noqa: E731
    train = training_rows(data, split.train, config.augmented, stride)  # + the copies of training rows
    if config.augmented:
        report["augmented_copies"] = {"train": int(train.copy.sum()), "val": 0, "test": 0}
    X = stride(data.X)
    spk = data.speakers if config.speaker_norm else None
    part = lambda idx: (take(X, idx), spk[idx] if spk is not None else None)  # noqa: E731
    (Xva, sva), (Xte, ste) = part(split.val), part(split.test)
    Xtr, str_ = train.X, (train.speakers(spk) if spk is not None else None)
    scaling = Scaling.fit(Xtr, str_, speaker=config.speaker_norm, standardize=config.standardize)
    Xtr, Xva, Xte = scaling(Xtr, str_), scaling(Xva, sva), scaling(Xte, ste)
    first = Xtr[0]
    input_dim = int(first.shape[-1])
    n_layers = int(first.shape[0]) if data.spec.kind == "layers" else None
    torch.manual_seed(config.seed)
    model = build_model(config.model, input_dim, len(labels), config.hparams(), n_layers)
    ytr, yva = y[train.source], y[split.val]
    if exact:
        if sklearn:
            extra = {"temperature": temperature} if temperature is not None else {}
            fit_sklearn(config.model, model, Xtr, ytr, len(labels), C=config.C, class_weighted=config.class_weighted,
                        seed=config.seed, groups=data.groups[train.source], **extra)
        else:
            fit_torch_logreg(model, Xtr, ytr, len(labels), C=config.C, class_weighted=config.class_weighted)
        history = [_sklearn_history(model, Xtr, ytr, Xva, yva, len(labels))]
        best_epoch = 1
        if on_epoch is not None:
            on_epoch(1, {**history[0], **({"fold": fold} if fold else {})})
    else:
        cb = on_epoch if on_epoch is None or fold is None else (lambda e, row: on_epoch(e, {**row, "fold": fold}))
        history, best_epoch = train_loop(
            model, Xtr, ytr, Xva, yva, n_classes=len(labels), epochs=config.epochs, batch_size=config.batch_size,
            lr=config.lr, weight_decay=config.weight_decay, patience=config.patience,
            class_weighted=config.class_weighted,
            grad_clip=config.grad_clip, seed=config.seed, on_epoch=cb, metric=_macro_f1(len(labels)),
            device=resolve_device(config.device))
    probs = predict_proba(model, Xte) if len(split.test) else np.zeros((0, len(labels)), np.float32)
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
        "normalization": scaling.to_json(),
        "train_config": to_dict(config),
        "store": {"uri": data.store_uri, "config_hash": data.store_meta.get("config_hash"), "group_by": data.group_by},
        "extract_config": data.store_meta.get("config"),
        "extractors": {k: {"columns": v.get("columns")} for k, v in data.store_meta.get("extractors", {}).items()},
        "metrics": {k: metrics[k] for k in ("accuracy", "macro_f1", "balanced_accuracy")},
    })
    preds = prediction_rows(data, split.test, probs, labels, fold or 0)
    result = FitResult(metrics, history, bundle, split, val_metrics, preds, probs)
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
            row[f"{name}_loss"] = float(torch.nn.functional.nll_loss(torch.log(p.clamp_min(1e-12)),
                                                                     torch.from_numpy(yy)))
    if len(yva):
        row["val_macro_f1"] = _macro_f1(n_classes)(yva, predict_proba(model, Xva).argmax(1))
    return row


def write_fit(result: FitResult, out_dir: str | Path, config: TrainConfig) -> None:
    out = Path(out_dir)
    save_bundle(result.bundle, out)
    labels = result.bundle.labels
    artifacts.write_json({**result.metrics, "val": result.val_metrics, "history": result.history}, out / "metrics.json")
    artifacts.write_predictions(result.predictions, labels, out / "predictions.csv")
    artifacts.plot_confusion(result.metrics["confusion_matrix"], labels, out / "confusion_matrix.png",
                             f"{config.model} on {config.features}")
    artifacts.plot_loss([result.history], out / "loss_curve.png", f"{config.model} on {config.features}")
    dump_yaml(config, out / "config.yaml")
