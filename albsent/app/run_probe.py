"""Linear probe on a frozen pretrained autoencoder vs a raw-feature baseline (`albsent probe`,
jobs/probe.py): Ray-free."""

from __future__ import annotations


def run_probe(pretrained_dir: str, store: str, out: str, data: dict, tracking=None) -> dict:
    """The ProbeConfig is the defaults saved with AE_RUN (its config's `probe` section) with `data`
    over them; writes RUN/config.yaml and RUN/metrics.json and returns the metrics.
    tracking: albsent.tracking.Tracking (log the run to MLflow) or None."""
    from pathlib import Path

    from albsent.config import build, check_out_folder, dump_yaml, merge
    from albsent.dataset.data import load_data
    from albsent.pretrain import ProbeConfig, load_pretrained, probe
    from albsent.tracking import check, log_probe
    from albsent.train.artifacts import write_json

    check(tracking)
    check_out_folder(out)
    pretrained = load_pretrained(pretrained_dir)
    config = build(ProbeConfig, merge(pretrained.meta.get("pretrain_config", {}).get("probe", {}), data))
    frames = load_data(store, pretrained.config.features, group_by=config.group_by)  # a :seq spec
    metrics = probe(config, pretrained, frames)
    Path(out).mkdir(parents=True, exist_ok=True)
    dump_yaml(config, Path(out) / "config.yaml")
    write_json(metrics, Path(out) / "metrics.json")
    log_probe(tracking, config, store, pretrained_dir, out, metrics)
    return metrics
