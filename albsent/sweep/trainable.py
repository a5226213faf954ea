"""The Tune trainable: one trial = the same Ray-free `fit()` (classifier) or `pretrain()` +
`probe()` (latent) as the CLI (`SweepKind.trial`, albsent.sweep.kinds), with a `Reporter` that
`tune.report`s every epoch / validation step / fold, and a final report carrying a checkpoint
(model bundle + result.json).

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

from albsent import storage

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
    final, bundle, extra_files = sweep.sweep_kind.trial(cfg, ray.get(refs[cfg.features]), reporter)
    final = _clean({**final, "fit_done": True, "fit_seconds": time.perf_counter() - t0, "attempt": attempts})
    storage.write_text(storage.join(folder, "result.json"),
                       json.dumps({"final": final, "params": params}, default=float))
    reporter.final(final, bundle, extra_files)
