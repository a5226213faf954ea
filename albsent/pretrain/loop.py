"""The iteration-based pretraining loop (Ray-free): `pretrain(config, data) -> PretrainResult`,
`data` being frame sequences from albsent.dataset (`load_frames`; labels ignored).

Each iteration draws `batch_size` random windows from the training utterances; every
`val_every` iterations the loss on fixed validation windows (held-out utterances) is computed
next to the loss of predicting the training targets' mean ("mean baseline") and of copying the
last input frame ("copy baseline": hard to beat at a 10 ms frame shift), `on_step(step,
metrics)` is called (a Tune trainable reports from it) and checkpoints are written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from albsent.dataset.data import Data
from albsent.dataset.normalize import Normalizer
from albsent.dataset.splits import holdout_utterances
from albsent.errors import ConfigError
from albsent.models.autoencoders import Autoencoder, build_autoencoder
from albsent.pretrain.config import PretrainConfig
from albsent.pretrain.windows import Windows
from albsent.runtime import keep_freed_memory, torch_threads
from albsent.train.loop import resolve_device

log = logging.getLogger(__name__)

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.smooth_l1_loss}


@dataclass
class PretrainResult:
    config: PretrainConfig
    model: Autoencoder
    norm: Normalizer
    in_dim: int
    out_index: list[int]
    feature_names: list[str]
    history: list[dict] = field(default_factory=list)   # one dict per validation pass
    metrics: dict = field(default_factory=dict)         # final figures (see `pretrain`)
    store: str = ""

    def as_pretrained(self, path: str = ""):
        """The frozen model in memory, for `probe` without a round trip through disk (sweeps)."""
        from albsent.pretrain.io import Pretrained, run_meta

        return Pretrained(self.model.eval(), self.config, self.norm, run_meta(self), path)


def _copy_guess(x: torch.Tensor, out_index: list[int], target: str) -> torch.Tensor:
    """The persistence guess: the next frame equals the current one (x: (B, N, in))."""
    return x[:, -1, out_index] if target == "next" else x[:, :, out_index]


def _evaluate(model, windows: Windows | None, loss_fn, mean_target: torch.Tensor, batch: int,
              device: torch.device) -> tuple[float, float, float]:
    """(loss, predict-the-mean loss, copy-the-last-frame loss) over all `windows` (nan without them)."""
    if windows is None:
        return float("nan"), float("nan"), float("nan")
    model.eval()
    total = base = copy = 0.0
    with torch.no_grad():
        for lo in range(0, len(windows), batch):
            idx = np.arange(lo, min(lo + batch, len(windows)))
            x, y = (t.to(device) for t in windows.batch(idx))
            pred, _ = model(x)
            total += loss_fn(pred, y, reduction="sum").item()
            base += loss_fn(mean_target.expand_as(y), y, reduction="sum").item()
            copy += loss_fn(_copy_guess(x, windows.out_index, windows.window.target), y, reduction="sum").item()
    model.train()
    n = len(windows) * int(np.prod(y.shape[1:]))
    return total / n, base / n, copy / n


def _mean_target(windows: Windows, rng: np.random.Generator, sample: int = 4096) -> torch.Tensor:
    """Per-feature mean of the training targets (the predict-the-mean baseline): (out,)."""
    _, y = windows.batch(rng.choice(len(windows), size=min(sample, len(windows)), replace=False))
    return y.reshape(-1, y.shape[-1]).mean(0)


def pretrain(config: PretrainConfig, data: Data, on_step=None, out_dir=None) -> PretrainResult:
    """Train an autoencoder on `data`'s frame sequences (labels ignored). With `out_dir`, write the run
    there (model.safetensors + model.json, config.yaml, loss_curve.png, checkpoints/)."""
    keep_freed_memory()
    with torch_threads(config.num_threads):
        return _pretrain(config, data, on_step, out_dir)


def _windows(config: PretrainConfig, data: Data) -> tuple[Normalizer, Windows, Windows | None]:
    """Hold out val_fraction of the utterances (grouped by audio), z-score by the training rows,
    cut both into windows (validation thinned to max_val_windows; None without a validation set)."""
    w = config.window
    train_u, val_u = holdout_utterances(data.utterance_ids, data.sha256, config.val_fraction, config.seed)
    if config.val_fraction > 0 and not len(val_u):
        need = next(k for k in range(2, 10**6) if round(k * config.val_fraction) >= 1)  # holdout_utterances' rule
        raise ConfigError(f"pretraining holds out val_fraction={config.val_fraction:g} of the utterances for its "
                          f"validation loss, and {len(set(data.utterance_ids))} utterance(s) leave none to hold out "
                          f"(at least {need} are needed); give more clips, raise val_fraction, or set "
                          "val_fraction=0 to train without a validation loss")
    norm = Normalizer.fit([data.X[i] for i in train_u])
    out_index = w.out_index(data.dim)
    train = Windows(norm([data.X[i] for i in train_u]), w, out_index)
    val = None
    if len(val_u):
        try:
            val = Windows(norm([data.X[i] for i in val_u]), w, out_index)
            keep = np.linspace(0, len(val) - 1, min(len(val), config.max_val_windows)).round().astype(int)
            val.starts = val.starts[np.unique(keep)]
        except ConfigError as exc:  # validation utterances too short for one window: no loss to report
            raise ConfigError(f"the {len(val_u)} held-out validation row(s) are too short for one window ({exc}); "
                              "give longer or more clips, a shorter window, or set val_fraction=0 to train without "
                              "a validation loss") from None
    return norm, train, val


def _pretrain(config: PretrainConfig, data: Data, on_step, out_dir) -> PretrainResult:
    if data.spec.kind != "sequence" or not len(data.X):
        raise ConfigError(f"pretraining needs frame sequences; got {len(data.X)} row(s) of {data.spec.text!r} "
                          f"({data.spec.kind}); read them with albsent.dataset.data.load_frames")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    norm, train, val = _windows(config, data)
    w = config.window
    in_dim, out_index = data.dim, w.out_index(data.dim)
    device = resolve_device(config.device)
    model = build_autoencoder(config.model, in_dim, out_index, w.length, w.target).to(device)
    params = sum(p.numel() for p in model.parameters())
    log.info("pretraining %s (%d params) on %d windows (%d val), %d iterations on %s", config.model.name, params,
             len(train), len(val) if val else 0, config.iterations, device)
    opt_cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = LOSSES[config.loss]
    mean_target = _mean_target(train, rng).to(device)
    result = PretrainResult(config, model, norm, in_dim, out_index, data.feature_names, store=data.store_uri)
    saver = None
    if out_dir is not None:
        from albsent.pretrain.io import RunWriter

        saver = RunWriter(out_dir, result)
    t0, running, count = time.perf_counter(), 0.0, 0
    model.train()
    for step in range(1, config.iterations + 1):
        x, y = (t.to(device, non_blocking=True)
                for t in train.batch(rng.integers(0, len(train), size=config.batch_size)))
        pred, _ = model(x)
        loss = loss_fn(pred, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        running, count = running + loss.item(), count + 1
        if step % config.val_every == 0 or step == config.iterations:
            val_loss, val_base, val_copy = _evaluate(model, val, loss_fn, mean_target, 512, device)
            row = {"step": step, "train_loss": running / count, "val_loss": val_loss, "val_mean_baseline": val_base,
                   "val_copy_baseline": val_copy,
                   "val_ratio": val_loss / val_base if val_base else float("nan"), "seconds": time.perf_counter() - t0}
            result.history.append(row)
            running, count = 0.0, 0
            log.info("step %d: train %.4f, val %.4f (mean baseline %.4f)", step, row["train_loss"], val_loss, val_base)
            if on_step is not None:
                on_step(step, dict(row))
        if saver and config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.iterations:
            saver.checkpoint(step)
    model.cpu().eval()  # probes, saving and callers use it on the CPU
    last = result.history[-1]
    result.metrics = {**{k: last[k]
                         for k in ("train_loss", "val_loss", "val_mean_baseline", "val_copy_baseline", "val_ratio")},
                      "best_val_loss": min((h["val_loss"] for h in result.history), default=float("nan")),
                      "iterations": config.iterations, "parameters": params, "train_windows": len(train),
                      "val_windows": len(val) if val else 0, "seconds": time.perf_counter() - t0}
    if saver:
        saver.finish()
    return result
