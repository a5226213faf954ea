"""The Tune trainable: one trial = the same Ray-free `fit()` (classifier) or `pretrain()` +
`probe()` (latent) as the CLI, with callbacks that `tune.report` every epoch / validation step /
fold, and a final report carrying a checkpoint (model bundle + result.json).

Idempotent across restarts: the final result is also written to SWEEP_DIR/trials/TRIAL_ID/
result.json before it is reported, so a trial restarted after a driver crash re-reports it
instead of training again. Every start leaves SWEEP_DIR/trials/TRIAL_ID/attempt-N and every
training fit-N (retries, resumes and repeated trainings are countable).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from albsent.sweep import storage

log = logging.getLogger(__name__)


def _clean(d: dict) -> dict:
    """Tune-friendly flat metrics: numbers and short strings only, NaN dropped."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, float, np.integer, np.floating)):
            if math.isfinite(float(v)):
                out[k] = float(v) if isinstance(v, (float, np.floating)) else int(v)
        elif isinstance(v, str):
            out[k] = v
    return out


class Reporter:
    """Calls tune.report for each intermediate result; checkpoints every `every` reports."""

    def __init__(self, every: int, extra: dict | None = None, report_every: int = 1):
        self.every, self.extra, self.count, self.history = every, extra or {}, 0, []
        self.report_every, self.seen = report_every, 0

    def __call__(self, step: int, row: dict) -> None:
        from ray import tune

        self.seen += 1
        metrics = _clean({**self.extra, **row})
        self.history.append(metrics)
        if self.seen % self.report_every:
            return
        self.count += 1
        if self.every and self.count % self.every == 0:
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "progress.json").write_text(json.dumps({"history": self.history}))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report(metrics)

    def final(self, metrics: dict, bundle=None, extra_files: dict | None = None) -> None:
        from ray import tune

        from albsent.train.checkpoint import save_bundle

        with tempfile.TemporaryDirectory() as tmp:
            if bundle is not None:
                save_bundle(bundle, tmp)
            Path(tmp, "result.json").write_text(json.dumps({"final": metrics, "history": self.history}, default=float))
            for name, text in (extra_files or {}).items():
                Path(tmp, name).write_text(text)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _val_loss(history: list[dict]) -> float:
    losses = [r["val_loss"] for r in history if "val_loss" in r]
    return float(min(losses)) if losses else float("nan")


def classifier_trial(cfg, data, reporter: Reporter) -> tuple[dict, object]:
    """fit() (one split, reports per epoch) or fit() per fold (reports per fold) -> (final metrics, bundle)."""
    from albsent.train.cv import cross_validate
    from albsent.train.fit import fit

    if cfg.split.folds <= 1:
        res = fit(cfg, data, on_epoch=reporter)
        val = res.val_metrics or {}
        final = {"val_macro_f1": val.get("macro_f1"), "val_accuracy": val.get("accuracy"),
                 "val_loss": _val_loss(res.history),
                 "best_epoch": res.metrics["best_epoch"], "epochs_run": res.metrics["epochs_run"]}
        final.update({f"test_{k}": res.metrics[k] for k in ("macro_f1", "accuracy", "balanced_accuracy")})
        return final, res.bundle
    def fold_row(res) -> dict:
        val = res.val_metrics or {}
        return {"val_macro_f1": val.get("macro_f1", float("nan")), "val_accuracy": val.get("accuracy", float("nan")),
                "val_loss": _val_loss(res.history), "best_epoch": res.metrics["best_epoch"],
                **{f"test_{m}": res.metrics[m] for m in ("macro_f1", "accuracy", "balanced_accuracy")}}

    rows: list[dict] = []

    def on_fold(k: int, res, _running: dict) -> None:
        rows.append(fold_row(res))
        if k < cfg.split.folds:
            reporter(k, {**{key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}, "fold": k})

    cv = cross_validate(cfg, data, on_fold=on_fold)
    mean = {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}
    final = {**mean, "folds": len(rows), "test_macro_f1_std": float(np.std([r["test_macro_f1"] for r in rows], ddof=1)),
             "test_pooled_macro_f1": cv.metrics["pooled"]["macro_f1"]}
    return final, cv.folds[-1].bundle


def latent_trial(cfg, frames, data, reporter: Reporter) -> tuple[dict, None, dict]:
    """pretrain() (reports every validation step) then probe() (reports per fold)."""
    from albsent.pretrain import pretrain, probe

    res = pretrain(cfg, frames, on_step=lambda s, row: reporter(s, {**row, "stage": "pretrain"}))
    best_loss = res.metrics.get("best_val_loss", float("nan"))
    metrics = probe(cfg.probe, res.as_pretrained(), data,
                    on_step=lambda k, m: reporter(k, {"probe_macro_f1": m["macro_f1"], "probe_accuracy": m["accuracy"],
                                                      "baseline_macro_f1": m["baseline_macro_f1"],
                                                      "val_loss": best_loss, "probe_fold": k, "stage": "probe"}))
    final = {"probe_macro_f1": metrics["macro_f1"], "probe_macro_f1_std": metrics["macro_f1_std"],
             "probe_accuracy": metrics["accuracy"], "baseline_macro_f1": metrics["baseline"]["macro_f1"],
             "val_loss": best_loss, "val_ratio": res.metrics.get("val_ratio"), "attach": metrics["probe"]["attach"],
             "probe_dim": metrics["probe"]["dim"]}
    return final, None, {"probe_metrics.json": json.dumps(metrics, default=float)}


def run_trial(params: dict, refs: dict, sweep, space, out: str, store: str) -> None:
    """Tune function trainable; `refs`: {feature spec: ObjectRef of the data read on the driver}."""
    import ray
    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    folder = storage.join(out, "trials", trial_id)
    attempts = len([n for n in storage.list_names(folder) if n.startswith("attempt-")]) + 1
    storage.write_text(storage.join(folder, f"attempt-{attempts}"), f"{time.time()}\n")
    done = storage.read_text(storage.join(folder, "result.json"))
    ckpt = tune.get_checkpoint()
    if done is None and ckpt is not None:
        with ckpt.as_directory() as d:
            p = Path(d, "result.json")
            done = p.read_text() if p.is_file() else None
    if done is not None:  # finished before a driver crash: report again, do not train again
        log.info("trial %s already finished; re-reporting its result", trial_id)
        tune.report(json.loads(done)["final"])
        return
    fits = len([n for n in storage.list_names(folder) if n.startswith("fit-")]) + 1
    storage.write_text(storage.join(folder, f"fit-{fits}"), f"{time.time()}\n")  # a training really starts
    overrides = space.resolve(params)
    cfg = sweep.trial_config(overrides, store)
    reporter = Reporter(sweep.checkpoint_every, report_every=sweep.report_every)
    t0 = time.perf_counter()
    extra_files = {}
    if sweep.kind == "classifier":
        final, bundle = classifier_trial(cfg, ray.get(refs[cfg.features]), reporter)
    else:
        frames, data = ray.get(refs[cfg.features])
        final, bundle, extra_files = latent_trial(cfg, frames, data, reporter)
    final = _clean({**final, "fit_done": True, "fit_seconds": time.perf_counter() - t0, "attempt": attempts})
    storage.write_text(storage.join(folder, "result.json"),
                       json.dumps({"final": final, "params": params}, default=float))
    reporter.final(final, bundle, extra_files)
