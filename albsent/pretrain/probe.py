"""The probe protocol of the Latent Sentiment paper (Ray-free):

1. the pretrained autoencoder is frozen; each utterance becomes one vector: its normalised
   frames are cut into windows of N frames (hop `window_stride`; a shorter utterance is
   left-padded with zeros = the feature mean), the attachment point is read on every window
   and averaged over the utterance's windows -> Z (rows, dim) (pool "mean_std": mean and std
   over windows, (rows, 2*dim), the same statistics the baseline gets over frames);
2. K speaker-independent folds (grouped, stratified: albsent.dataset.splits.kfold); in each,
   a stratified labeled subset of the training speakers' rows, `train_fraction` of ALL rows
   (paper: 10 %), trains a linear classifier on Z, and the SAME subset trains the baseline
   linear classifier on the raw features (per-utterance mean [+ std] of the frames);
3. both are scored on the fold's test speakers; metrics are averaged over folds.

metrics.json: the probe's aggregate metrics at the top level (like a `train` run), the
baseline's under "baseline", and the protocol under "probe".
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from albsent.config import to_dict
from albsent.dataset.data import Data
from albsent.dataset.normalize import Normalizer
from albsent.dataset.splits import audit, kfold
from albsent.models.frozen_tap import FrozenTap
from albsent.pretrain.config import ProbeConfig
from albsent.pretrain.io import Pretrained, check_attach
from albsent.runtime import keep_freed_memory, torch_threads
from albsent.train.cv import fold_means
from albsent.train.loop import predict_proba, train_steps
from albsent.train.metrics import aggregate, compute_metrics

log = logging.getLogger(__name__)


def utterance_windows(seq: np.ndarray, n: int, hop: int) -> np.ndarray:
    """(frames, dim) -> (windows, n, dim); a sequence shorter than n is left-padded with zeros."""
    if len(seq) < n:
        seq = np.concatenate([np.zeros((n - len(seq), seq.shape[1]), seq.dtype), seq])
    starts = np.arange(0, len(seq) - n + 1, hop)
    return np.stack([seq[s : s + n] for s in starts])


def utterance_features(tap: FrozenTap, sequences: list[np.ndarray], n: int, hop: int, batch: int = 512,
                       pool: str = "mean") -> np.ndarray:
    """Normalised sequences -> (rows, dim), or (rows, 2*dim) for pool "mean_std": the attachment
    point's mean (and std) over each utterance's windows."""
    wins = [utterance_windows(s, n, hop) for s in sequences]
    owner = np.repeat(np.arange(len(wins)), [len(w) for w in wins])
    allw = torch.from_numpy(np.concatenate(wins).astype(np.float32))          # (W, n, dim)
    # (W, tap_dim)
    out = torch.cat([tap(allw[i : i + batch]) for i in range(0, len(allw), batch)]).numpy().astype(np.float64)
    counts = np.bincount(owner)[:, None]
    sums, squares = np.zeros((len(wins), out.shape[1])), np.zeros((len(wins), out.shape[1]))
    np.add.at(sums, owner, out)
    mean = sums / counts
    if pool == "mean":
        return mean.astype(np.float32)
    np.add.at(squares, owner, out**2)
    std = np.sqrt(np.maximum(squares / counts - mean**2, 0.0))
    return np.concatenate([mean, std], axis=1).astype(np.float32)


def baseline_features(sequences: list[np.ndarray], kind: str) -> np.ndarray:
    """Normalised sequences -> (rows, dim) raw-feature baseline input: mean, or mean + std, over frames."""
    mean = np.stack([s.mean(0) for s in sequences])
    return mean if kind == "mean" else np.concatenate([mean, np.stack([s.std(0) for s in sequences])], axis=1)


def labeled_subset(train_idx: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A stratified sample of about `n` rows of `train_idx` (class shares kept, every class present
    at least once when the pool has it)."""
    if n >= len(train_idx):
        return np.sort(train_idx)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y[train_idx], return_counts=True)
    take = np.maximum(1, np.round(n * counts / counts.sum()).astype(int))
    out = [rng.choice(train_idx[y[train_idx] == c], size=min(k, m), replace=False)
           for c, k, m in zip(classes, take, counts)]
    return np.sort(np.concatenate(out))


def _fit_score(X, y, labeled, test, n_classes, label_names, config: ProbeConfig, seed: int) -> dict:
    Xtr, Xte = X[labeled], X[test]
    if config.standardize:
        norm = Normalizer.fit(Xtr)
        Xtr, Xte = norm(Xtr), norm(Xte)
    model, loss = train_steps(Xtr, y[labeled], n_classes, config.lr, config.iterations, config.batch_size,
                              config.weight_decay, config.class_weight, seed)
    pred = predict_proba(model, Xte).argmax(1)
    m = compute_metrics([label_names[i] for i in y[test]], [label_names[i] for i in pred], label_names)
    m["train_loss"] = loss
    return m


def probe(config: ProbeConfig, pretrained: Pretrained, data: Data, on_step=None) -> dict:
    """Probe vs baseline over speaker-independent folds -> metrics dict (see module docstring).
    `on_step(fold, metrics)` is called after each fold with the running means."""
    keep_freed_memory()
    with torch_threads(config.num_threads):
        return _probe(config, pretrained, data, on_step)


def _probe(config: ProbeConfig, pretrained: Pretrained, data: Data, on_step) -> dict:
    t0 = time.perf_counter()
    point = check_attach(pretrained, config.attach)
    n = pretrained.config.window.length
    hop = config.window_stride or n
    if len(data.X) and data.dim != pretrained.meta["in_dim"]:
        from albsent.errors import ConfigError

        raise ConfigError(f"store features have {data.dim} dims per frame but the autoencoder was pretrained "
                          f"on {pretrained.meta['in_dim']} ({pretrained.config.features}); "
                          "use a store with the same features")
    seqs = pretrained.norm(list(data.X))
    tap = FrozenTap(pretrained.model, point)
    Z = utterance_features(tap, seqs, n, hop, pool=config.pool)
    B = baseline_features(seqs, config.baseline)
    y = data.class_indices("a probe")
    label_names = data.label_names
    n_labeled = max(len(label_names), int(round(config.train_fraction * len(y))))
    folds = kfold(data.labels, data.groups, config.folds, val_fraction=0.0, seed=config.seed)
    # Not albsent.train.cv.cross_validate: that driver runs fit() of one TrainConfig model per split
    # (a store feature spec, epochs, early stopping, a bundle and predictions per fold). A probe fold
    # trains two linear classifiers (train_steps, `iterations`) on a labelled SUBSET of the training
    # speakers, one on the frozen encoder's vectors Z and one on the raw-feature baseline B, both
    # computed once for all rows. It shares the driver's pieces instead: kfold's grouped folds, the
    # leakage audit, fold_means for the running figures and aggregate for the final ones.
    probe_folds, base_folds, audits, sizes = [], [], [], []
    for k, split in enumerate(folds):
        audits.append(audit(split, groups=data.groups, sha256=data.sha256, utterance_ids=data.utterance_ids))
        labeled = labeled_subset(split.train, y, n_labeled, config.seed + k)
        sizes.append(int(len(labeled)))
        probe_folds.append(_fit_score(Z, y, labeled, split.test, len(label_names), label_names, config,
                                      config.seed + k))
        base_folds.append(_fit_score(B, y, labeled, split.test, len(label_names), label_names, config, config.seed + k))
        log.info("fold %d/%d: %d labeled, %d test; probe macro-F1 %.3f, baseline %.3f", k + 1, len(folds), len(labeled),
                 len(split.test), probe_folds[-1]["macro_f1"], base_folds[-1]["macro_f1"])
        if on_step is not None:
            on_step(k + 1, fold_means([{"macro_f1": p["macro_f1"], "baseline_macro_f1": b["macro_f1"],
                                        "accuracy": p["accuracy"]} for p, b in zip(probe_folds, base_folds)]))
    metrics = aggregate(probe_folds)
    metrics["baseline"] = aggregate(base_folds)
    metrics["baseline"]["features"] = f"{config.baseline} of {pretrained.config.features} frames ({B.shape[1]} dims)"
    metrics["probe"] = {
        "attach": point, "dim": int(Z.shape[1]), "model": pretrained.config.model.name, "pretrained": pretrained.path,
        "window": n, "window_stride": hop, "pool": config.pool, "labeled_per_fold": sizes,
        "train_fraction": config.train_fraction,
        "group_by": data.group_by, "config": to_dict(config),
        "pretrain_metrics": pretrained.meta.get("metrics", {}), "pretrain_store": pretrained.meta.get("store", ""),
        # the autoencoder saw the test speakers' audio (never their labels): transductive pretraining
        "pretrained_on_probe_store": (bool(pretrained.meta.get("store"))
                                      and pretrained.meta.get("store") == data.store_uri),
    }
    metrics["leakage_audit"] = audits
    metrics["model"] = f"probe:{pretrained.config.model.name}@{point}"
    metrics["features"] = pretrained.config.features
    metrics["group_by"] = data.group_by
    metrics["store"] = data.store_uri
    metrics["seconds"] = time.perf_counter() - t0
    return metrics
