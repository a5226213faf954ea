"""Run or resume a hyperparameter sweep (`albsent sweep`, jobs/sweep.py): Ray Tune through
albsent.sweep, with the one resume rule both adapters share."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def holds_sweep(out: str) -> bool:
    from albsent import storage

    return storage.read_text(storage.join(str(out), "sweep.yaml")) is not None


def sweep(config, store: str | None, out: str, resume: bool = False, address: str | None = None,
          num_cpus: int | None = None, tracking=None) -> dict:
    """The one resume rule: SWEEP_DIR holding a sweep is continued (finished trials kept) when the
    given config and store are that sweep's, and refused with the differences otherwise;
    `resume=True` also continues with no config or store given (both read back from
    SWEEP_DIR/sweep.yaml) and fails on a folder with no sweep. Returns sweep.json's content plus
    "resumed". tracking: albsent.tracking.Tracking (the sweep's MLflow run, a child per trial) or None."""
    from albsent.sweep import run_sweep
    from albsent.tracking import check

    check(tracking)
    resumed = resume or holds_sweep(out)
    if resumed and not resume:  # run_sweep's checks (same config and store, your folder) say "--resume: ..."
        log.info("%s holds a sweep already: continuing it if it is this one (finished trials are kept)", out)
    summary = run_sweep(config, store, out, resume=resumed, address=address, num_cpus=num_cpus)
    if tracking is not None:
        from albsent import storage
        from albsent.config import build
        from albsent.sweep.config import SweepConfig
        from albsent.sweep.tracking import log_sweep

        where = out if storage.is_uri(str(out)) else os.path.abspath(out)
        log_sweep(tracking, build(SweepConfig, summary["sweep"]), summary["store"], where, summary)
    return {**summary, "resumed": resumed}


def no_trial_completed(summary: dict, out: str) -> str:
    """The error both adapters report when no trial completed (summary["best"] is None)."""
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary.get("states", {}).items())) or "no trials"
    return f"no trial completed ({states}); see {out}/trials.csv for each trial's error"
