"""Pretrain a next-frame autoencoder on a store's frame sequences (`albsent pretrain`,
jobs/pretrain.py): Ray-free."""

from __future__ import annotations


def run_pretrain(config, store: str, out: str, tracking=None):
    """The store's frames -> AE_RUN; returns the PretrainResult (its .metrics is what both print).
    tracking: albsent.tracking.Tracking (log the run to MLflow) or None."""
    from albsent.config import check_out_folder
    from albsent.dataset.data import load_frames
    from albsent.pretrain import pretrain
    from albsent.tracking import check, log_pretrain

    check(tracking)
    check_out_folder(out)
    result = pretrain(config, load_frames(store, config.features), out_dir=out)
    log_pretrain(tracking, config, store, out, result)
    return result
