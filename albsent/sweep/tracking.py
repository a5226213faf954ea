"""A finished (or resumed) sweep in MLflow, logged from the driver (albsent.tracking's Logger):
one run for the sweep (its config, best trial, plots, trials.csv, final/) and one child run per
Tune trial (its sampled parameters, last metrics, and each reported result as a curve over
training_iteration). A resumed sweep reuses its run (tag albsent.sweep_dir) and adds only the
trials not logged yet (tag albsent.trial_id), so every trial appears once.

Logging from the driver after tuner.fit() rather than through a Tune callback keeps MLflow out of
the trial processes and works the same for a local SQLite store and a server."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd

from albsent import storage
from albsent.config import to_dict
from albsent.tracking import Logger, Tracking, flatten, metric_key, store_params


def log_sweep(tracking: Tracking | None, config, store: str, out: str, summary: dict) -> str:
    """Returns the sweep's MLflow run id ("" without tracking). An object-store SWEEP_DIR: no
    curves and no artifacts, only params and metrics."""
    if tracking is None:
        return ""
    logger = Logger(tracking, store)
    parent = _find(logger, f"tags.`albsent.sweep_dir` = '{out}' and tags.`albsent.kind` = 'sweep'")
    if not parent:
        params = {**flatten(to_dict(config)), **store_params(store, None)}
        parent = logger.start(Path(out).name, "sweep", params, tags={"albsent.sweep_dir": out})
    else:
        logger.client.update_run(parent, status="RUNNING")
    logged = {r.data.tags.get("albsent.trial_id") for r in logger.client.search_runs(
        [logger.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=10000)}
    table = pd.read_csv(io.StringIO(storage.read_text(storage.join(out, "trials.csv")) or "trial_id\n"))
    history = {} if storage.is_uri(out) else trial_histories(out)
    keys = list(config.space)
    for _, row in table.iterrows():
        if row["trial_id"] in logged:
            continue
        params = {k: row[k] for k in keys if k in row and not _missing(row[k])}
        child = logger.start(f"trial {row['trial_id']}", "sweep_trial", params, parent=parent,
                             tags={"albsent.trial_id": row["trial_id"], "albsent.state": row["state"]})
        steps = history.get(row["trial_id"], [])
        curve = {key for key, _, _ in steps}  # their last point is the trial's final value
        numbers = {metric_key(c): float(row[c]) for c in config.sweep_kind.columns
                   if c in row and not _missing(row[c]) and metric_key(c) not in curve}
        logger.log(child, metrics=numbers, steps=steps)
        logger.finish(child, status="FINISHED" if row["state"] != "failed" else "FAILED")
    best = summary.get("best") or {}
    logger.log(parent, metrics={**({f"best_{config.metric}": float(best["value"])} if best else {}),
                                "trials": float(len(table))})
    if not storage.is_uri(out):
        _log_results(logger, parent, Path(out))
    logger.finish(parent)
    return parent


def _log_results(logger: Logger, run_id: str, out: Path) -> None:
    """SWEEP_DIR's result files (trials.csv, best_config.yaml, sweep.json, plots, optuna.db) and
    final/; not Ray Tune's state (tune/) or the per-trial markers (trials/)."""
    for path in sorted(out.iterdir()):
        if path.is_file():
            logger.client.log_artifact(run_id, str(path))
        elif path.name == "final":
            logger.client.log_artifacts(run_id, str(path), "final")


def _find(logger: Logger, query: str) -> str:
    runs = logger.client.search_runs([logger.experiment_id], query, max_results=1)
    return runs[0].info.run_id if runs else ""


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def trial_histories(out: str) -> dict[str, list[tuple[str, float, int]]]:
    """{trial_id: [(metric, value, training_iteration)]} from each trial's result.json in SWEEP_DIR/tune."""
    curves: dict[str, list[tuple[str, float, int]]] = {}
    for path in Path(storage.join(out, "tune")).glob("*/result.json"):
        for line in path.read_text().splitlines():
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                continue
            step = int(result.get("training_iteration", 0))
            points = [(metric_key(k), float(v), step) for k, v in result.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool) and k.startswith(("val_", "train_"))
                      and not _missing(float(v))]
            curves.setdefault(str(result.get("trial_id", "")), []).extend(points)
    return curves
