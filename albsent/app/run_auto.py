"""Automatic recipe selection (`albsent train` without a recipe, jobs/train.py with `auto`):
nested speaker-independent cross-validation (albsent.train.select), its pieces as Ray tasks."""

from __future__ import annotations

from pathlib import Path

from albsent.train.select import AutoConfig


def run_auto_on_ray(config: AutoConfig, out_dir: str | Path, address: str | None = None,
                    num_cpus: int | None = None) -> dict:
    """Load the store's candidate groups, run the selection on Ray (a local cluster started here,
    the one at `address`, or the one already joined), write RUN/ (albsent.train.auto); returns
    metrics.json's content."""
    from albsent.runner.session import ray_session
    from albsent.runner.tasks import ray_mapper
    from albsent.train.auto import load_candidates, write_run
    from albsent.train.select import select

    datas, recipes = load_candidates(config)
    with ray_session(address, num_cpus=num_cpus):
        result = select(config, datas, recipes, ray_mapper())
    return write_run(config, datas, result, Path(out_dir))


def run_auto(config: AutoConfig, out: str | Path, overwrite: bool = False, address: str | None = None,
             tracking=None, **flags) -> dict:
    """A fresh run folder (as for one recipe: albsent/app/run_train.py), then the selection.
    tracking: albsent.tracking.Tracking (a parent MLflow run, a child per outer fold) or None.
    `flags`: the names the run-folder refusal uses."""
    from albsent.app.run_train import fresh_out
    from albsent.tracking import check, log_auto

    check(tracking)
    fresh_out(out, overwrite, **flags)
    metrics = run_auto_on_ray(config, Path(out), address=address)
    log_auto(tracking, config, out, metrics)
    return metrics
