"""Train one recipe (`albsent train --model/--features/--config`, jobs/train.py): Ray-free."""

from __future__ import annotations

from pathlib import Path


def fresh_out(out: str | Path, overwrite: bool, out_flag: str = "--out", overwrite_flag: str = "--overwrite") -> None:
    """A run folder is written whole: one that already holds files (an earlier run's model would
    stay beside the new metrics) is refused, or emptied first with --overwrite, and only if
    albsent wrote it as a run (albsent/runfolder.py: never a store, the current or a home folder,
    or a folder of other files). The flag names are the ones the refusal tells the user to pass."""
    from albsent.runfolder import prepare

    prepare(out, overwrite, "train", out_flag, overwrite_flag)


def train_one(config, out: str | Path, overwrite: bool = False, tracking=None, **flags) -> dict:
    """A fresh run folder, then run_training on the TrainConfig; returns metrics.json's content.
    tracking: albsent.tracking.Tracking (log the run to MLflow) or None. `flags`: the names
    fresh_out's message uses."""
    from albsent.tracking import check, log_train
    from albsent.train import run_training

    check(tracking)
    fresh_out(out, overwrite, **flags)
    metrics = run_training(config, out)
    log_train(tracking, config, out, metrics)
    return metrics
