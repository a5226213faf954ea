"""Pretrain a next-frame autoencoder on a store's frame sequences (`albsent pretrain`,
jobs/pretrain.py): Ray-free."""

from __future__ import annotations


def run_pretrain(config, store: str, out: str):
    """The store's frames -> AE_RUN; returns the PretrainResult (its .metrics is what both print)."""
    from albsent.config import check_out_folder
    from albsent.dataset.data import load_frames
    from albsent.pretrain import pretrain

    check_out_folder(out)
    return pretrain(config, load_frames(store, config.features), out_dir=out)
