"""The torch pieces of training: batching (padding sequences), the epoch loop
with class-weighted cross-entropy and early stopping, and batched probabilities.

Inputs are what `albsent.dataset` produces: pooled X (rows, dim), layer stacks
(rows, layers, hidden), or lists of (frames, dim) sequences. Labels are int class indices.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from albsent.errors import ConfigError

log = logging.getLogger(__name__)


def stride_frames(X, stride: int):
    """Keep every `stride`-th frame of each sequence (no-op for pooled inputs)."""
    return [x[::stride] for x in X] if isinstance(X, list) and stride > 1 else X


def collate(X, idx) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rows `idx` as a tensor; sequences zero-padded to (batch, T_max, dim) with lengths (batch,)."""
    if not isinstance(X, list):
        return torch.from_numpy(np.ascontiguousarray(X[idx])), None
    seqs = [X[i] for i in idx]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for j, s in enumerate(seqs):
        out[j, : len(s)] = torch.from_numpy(s)
    return out, lengths


def resolve_device(name: str) -> torch.device:
    """A config's `device` ("auto", "cpu", "cuda") as a torch device; "auto" is cuda when torch
    sees a GPU (inside a Tune trial or Ray task: the GPUs Ray gave it)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but torch sees no CUDA GPU; "
                          "expected 'auto' or 'cpu' on this machine")
    return torch.device(name)


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (classes * n_c), as scikit-learn's class_weight='balanced' (absent classes get 1)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


@torch.no_grad()
def predict_proba(model: nn.Module, X, batch_size: int = 256) -> np.ndarray:
    """(rows, n_classes) softmax probabilities."""
    model.eval()
    out = []
    n = len(X)
    for start in range(0, n, batch_size):
        x, lengths = collate(X, np.arange(start, min(n, start + batch_size)))
        out.append(torch.softmax(model(x, lengths), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _evaluate(model, X, y, criterion, batch_size, device: torch.device) -> tuple[float, np.ndarray]:
    """(mean loss, predicted class per row) in one pass."""
    model.eval()
    total, n, preds = 0.0, len(y), []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(n, start + batch_size))
            x, lengths = collate(X, idx)
            logits = model(x.to(device), lengths)  # lengths stay on the CPU (packing wants them there)
            total += float(criterion(logits, torch.from_numpy(y[idx]).to(device))) * len(idx)
            preds.append(logits.argmax(-1).cpu().numpy())
    return total / max(n, 1), np.concatenate(preds) if preds else np.zeros(0, np.int64)


def train_loop(model: nn.Module, Xtr, ytr: np.ndarray, Xva, yva: np.ndarray, *, n_classes: int, epochs: int,
               batch_size: int, lr: float, weight_decay: float, patience: int, class_weighted: bool, grad_clip: float,
               seed: int, on_epoch: Callable[[int, dict], None] | None = None,
               metric: Callable[[np.ndarray, np.ndarray], float] | None = None,
               device: str | torch.device = "cpu") -> tuple[list[dict], int]:
    """Adam on (weighted) cross-entropy; after each epoch: validation loss, early stopping on it,
    on_epoch(epoch, {"epoch", "train_loss", "val_loss", "val_macro_f1", "best_epoch"}).
    Trains on `device` and leaves the model on the CPU, with the weights of the best epoch (the
    last one without validation data). Returns (history, best_epoch); epochs count from 1."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = torch.device(device)
    model.to(device)
    weight = class_weights(ytr, n_classes).to(device) if class_weighted else None
    criterion = nn.CrossEntropyLoss(weight=weight)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    have_val = len(yva) > 0
    best, best_epoch, best_state, bad, history = math.inf, 0, None, 0, []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(ytr), generator=gen).numpy()
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, lengths = collate(Xtr, idx)
            loss = criterion(model(x.to(device, non_blocking=True), lengths), torch.from_numpy(ytr[idx]).to(device))
            opt.zero_grad()
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            total += loss.item() * len(idx)
        row = {"epoch": epoch, "train_loss": total / len(ytr)}
        if have_val:
            row["val_loss"], val_pred = _evaluate(model, Xva, yva, criterion, max(batch_size, 256), device)
            if metric is not None:
                row["val_macro_f1"] = metric(yva, val_pred)
            improved = row["val_loss"] < best - 1e-6
        else:
            improved = True
        if improved:
            best, best_epoch, bad = row.get("val_loss", row["train_loss"]), epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        row["best_epoch"] = best_epoch
        history.append(row)
        log.debug("epoch %d %s", epoch, row)
        if on_epoch is not None:
            on_epoch(epoch, dict(row))
        if have_val and bad >= patience:
            log.info("early stop after epoch %d (best %d, val_loss %.4f)", epoch, best_epoch, best)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.cpu()
    return history, best_epoch


def train_steps(X: np.ndarray, y: np.ndarray, n_classes: int, lr: float, iterations: int, batch_size: int = 0,
                weight_decay: float = 0.0, class_weighted: bool = False, seed: int = 0) -> tuple[nn.Module, float]:
    """A linear probe (the registry's `logreg`) trained by a fixed number of Adam steps, as the
    paper's classifier stage (Table 3: classifier iterations). X: (rows, dim) float32, y: (rows,)
    int in [0, n_classes). batch_size 0 = full batch; otherwise each step samples a batch.
    Returns (module in eval mode, final training loss)."""
    from albsent.models import build_model

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model("logreg", X.shape[1], n_classes,
                        {"hidden_size": 0, "num_layers": 0, "dropout": 0.0, "pooling": "mean"})
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    criterion = nn.CrossEntropyLoss(weight=class_weights(np.asarray(y), n_classes) if class_weighted else None)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss = torch.tensor(float("nan"))
    for _ in range(iterations):
        if batch_size and batch_size < len(yt):
            idx = torch.from_numpy(rng.integers(0, len(yt), size=batch_size))
            xb, yb = Xt[idx], yt[idx]
        else:
            xb, yb = Xt, yt
        loss = criterion(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval(), float(loss.item())
