"""MLflow tracking of finished runs (optional extra: `pip install albsent[tracking]`).

The use cases in albsent/app/ (train: one split, `--folds`, auto; pretrain; probe; sweep) call
this module after they have written their run folder; it reads nothing from training but that
folder and the result, so albsent/train stays free of MLflow. With no tracking URI (neither
`--tracking-uri`, a config's `tracking: {uri: ...}` nor $MLFLOW_TRACKING_URI) `resolve` returns
None, nothing is logged and mlflow is never imported.

    tracking = resolve(args.tracking_uri, args.experiment, section_of(args.config))
    log_train(tracking, config, "RUN", metrics)              # no-op when tracking is None

One MLflow run per albsent run, in the experiment named after the store's folder (or given):
    params     the effective config flattened (split.folds, ...), store.config_hash, features, git_commit
    metrics    accuracy, macro_f1, balanced_accuracy, class/<label>/f1|precision|recall (the test split,
               or the mean over folds), fold_<k>/..., pooled/...; curves per epoch / step:
               train_loss, val_loss, val_macro_f1 (fold_<k>/... with folds)
    artifacts  the run folder: metrics.json, confusion_matrix.png, loss_curve.png, selection.csv,
               predictions.csv, config.yaml and the model bundle
Auto: the parent run, and a child run per outer fold (its metrics and chosen ensemble).
A SQLite store keeps its artifacts in `mlartifacts/` beside the database file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from albsent.errors import ConfigError, TrackingError

log = logging.getLogger(__name__)
ENV = "MLFLOW_TRACKING_URI"
CURVE_KEYS = ("train_loss", "val_loss", "val_macro_f1", "val_ratio", "val_mean_baseline", "val_copy_baseline")
SUMMARY = ("accuracy", "macro_f1", "balanced_accuracy")


@dataclass
class Tracking:
    uri: str  # an MLflow tracking URI: sqlite:///PATH.db, http://HOST:PORT, a folder, ...
    experiment: str = ""  # "": named after the store's folder


def resolve(uri: str | None = None, experiment: str | None = None, section: dict | None = None) -> Tracking | None:
    """The tracking settings in order of precedence: flags, the config's `tracking:` section,
    $MLFLOW_TRACKING_URI; None (track nothing) when no URI is given anywhere."""
    section = section or {}
    if not isinstance(section, dict) or set(section) - {"uri", "experiment"}:
        raise ConfigError(f"tracking: expected a mapping with keys uri, experiment; got {section!r}")
    uri = uri or section.get("uri") or os.environ.get(ENV, "")
    if not uri:
        return None
    return Tracking(str(uri), str(experiment or section.get("experiment") or ""))


def check(tracking: Tracking | None) -> None:
    """Before the work starts: the tracking store answers (a TrackingError naming the URI if not)."""
    if tracking is None:
        return
    try:
        from mlflow import MlflowClient

        MlflowClient(tracking.uri).search_experiments(max_results=1)
    except ImportError as exc:
        raise TrackingError(f"tracking to {tracking.uri} needs mlflow: pip install 'albsent[tracking]'") from exc
    except Exception as exc:  # noqa: BLE001 - MLflow's and SQLAlchemy's errors have no common base
        raise TrackingError(f"MLflow tracking store {tracking.uri} cannot be used: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def section_of(config_file: str | Path | None) -> dict:
    """The `tracking:` section of a YAML config file (its `extends:` included), or {}."""
    from albsent.config import read_yaml

    return (read_yaml(config_file).get("tracking") or {}) if config_file else {}


def flatten(data, prefix: str = "") -> dict[str, str]:
    """{"split.folds": "5", ...}: nested mappings joined by dots, values as text (MLflow params)."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(data, default=str) if isinstance(data, (list, tuple)) else str(data)}


def git_commit() -> str:
    """The commit of the albsent checkout running this, or "" (an installed package, no git; a
    git repository that merely holds an installed albsent is not albsent's)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = out.stdout.split()
    return lines[1] if out.returncode == 0 and len(lines) == 2 and Path(lines[0]).resolve() == root else ""


def store_params(store: str, features: str | None) -> dict[str, str]:
    """store, store.config_hash (the extract config's hash) and the feature spec."""
    from albsent.store import Store

    params = {"store": str(store), "store.config_hash": str(Store(str(store)).meta.get("config_hash", ""))}
    if features:
        params["features"] = str(features)
    commit = git_commit()
    return {**params, **({"git_commit": commit} if commit else {})}


def metric_key(text: str) -> str:
    """A name MLflow accepts (letters, digits, _ - . / and space)."""
    return re.sub(r"[^\w\-. /]", "_", str(text))


def scores(metrics: dict, prefix: str = "") -> dict[str, float]:
    """accuracy, macro_f1, balanced_accuracy (+ their _std) and class/<label>/<f1|precision|recall>."""
    out = {f"{prefix}{k}": float(metrics[k]) for k in metrics
           if k.split("_std")[0] in SUMMARY and isinstance(metrics[k], (int, float))}
    for label, row in (metrics.get("per_class") or {}).items():
        for key in ("f1", "precision", "recall"):
            if key in row:
                out[metric_key(f"{prefix}class/{label}/{key}")] = float(row[key])
    return out


def curves(history: list[dict], prefix: str = "", x: str = "epoch") -> list[tuple[str, float, int]]:
    """(key, value, step) of each finite curve value in a training history."""
    out = []
    for row in history or []:
        for key in CURVE_KEYS:
            value = row.get(key)
            if isinstance(value, (int, float)) and value == value:
                out.append((f"{prefix}{key}", float(value), int(row.get(x, 0))))
    return out


class Logger:
    """One MLflow client on one experiment; runs are created, filled and closed explicitly."""

    def __init__(self, tracking: Tracking, store: str):
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking.uri)
        name = tracking.experiment or Path(str(store).rstrip("/")).name or "albsent"
        found = self.client.get_experiment_by_name(name)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(
            name, artifact_location=_artifact_location(tracking.uri))

    def start(self, name: str, kind: str, params: dict, parent: str = "", tags: dict | None = None) -> str:
        tags = {"albsent.kind": kind, **(tags or {}), **({"mlflow.parentRunId": parent} if parent else {})}
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self.log(run_id, params=params)
        return run_id

    def log(self, run_id: str, params: dict | None = None, metrics: dict | None = None,
            steps: list[tuple[str, float, int]] = ()) -> None:
        """Params and metrics in batches (MLflow takes at most 100 params / 1000 metrics a call)."""
        import time

        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        ps = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        ms = [Metric(k, v, now, 0) for k, v in (metrics or {}).items()] + [Metric(k, v, now, s) for k, v, s in steps]
        for i in range(0, len(ps), 100):
            self.client.log_batch(run_id, params=ps[i:i + 100])
        for i in range(0, len(ms), 1000):
            self.client.log_batch(run_id, metrics=ms[i:i + 1000])

    def finish(self, run_id: str, folder: str | Path | None = None, status: str = "FINISHED") -> None:
        if folder is not None and Path(folder).is_dir():
            self.client.log_artifacts(run_id, str(folder))
        self.client.set_terminated(run_id, status)
        log.info("MLflow: run %s in experiment %s at %s", run_id, self.experiment_id, self.client.tracking_uri)


def _artifact_location(uri: str) -> str | None:
    """A SQLite store's artifacts beside its database (MLflow's default is ./mlruns of the cwd)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return None


def _base_params(config, store: str, features: str | None) -> dict:
    from albsent.config import to_dict

    return {**flatten(to_dict(config)), **store_params(store, features)}


def log_train(tracking: Tracking | None, config, out: str | Path, metrics: dict) -> str:
    """One recipe: its test metrics and curves, or with folds each fold's, the mean and the pooled
    figures; returns the MLflow run id ("" without tracking)."""
    if tracking is None:
        return ""
    out = Path(out)
    logger = Logger(tracking, config.store)
    run = logger.start(out.name, "train", _base_params(config, config.store, config.features))
    values, steps = scores(metrics), curves(metrics.get("history") or _history(out))  # RUN/metrics.json's
    for k, fold in enumerate(metrics.get("per_fold") or [], start=1):
        values.update(scores(fold, f"fold_{k}/"))
        steps += curves(_history(out / f"fold-{k}"), f"fold_{k}/")
    values.update(scores(metrics.get("pooled") or {}, "pooled/"))
    logger.log(run, metrics=values, steps=steps)
    logger.finish(run, out)
    return run


def _history(folder: Path) -> list[dict]:
    path = folder / "metrics.json"
    return json.loads(path.read_text()).get("history", []) if path.is_file() else []


def log_auto(tracking: Tracking | None, config, out: str | Path, metrics: dict) -> str:
    """The automatic selection: a parent run (pooled and mean metrics, the run folder) and a child
    run per outer fold with that fold's test metrics and chosen ensemble (params and ensemble.json)."""
    if tracking is None:
        return ""
    out = Path(out)
    logger = Logger(tracking, config.store)
    parent = logger.start(out.name, "auto", _base_params(config, config.store, metrics.get("features")))
    logger.log(parent, metrics={**scores(metrics), **scores(metrics.get("pooled") or {}, "pooled/"),
                                "candidates": float(metrics.get("candidates", 0))})
    for k, fold in enumerate(metrics.get("per_fold") or [], start=1):
        chosen = (metrics.get("selection") or {}).get(str(k), {})
        members = chosen.get("members", [])
        params = {"outer_fold": str(k), "ensemble": "; ".join(f"{m['recipe']} x{m['weight']:.3f}" for m in members),
                  "ensemble_size": str(len(members))}
        child = logger.start(f"{out.name} fold {k}", "auto_fold", params, parent=parent)
        logger.log(child, metrics={**scores(fold), "inner_macro_f1": float(chosen.get("inner_macro_f1", 0.0))})
        logger.client.log_dict(child, chosen, "ensemble.json")
        logger.finish(child)
    logger.finish(parent, out)
    return parent


def log_pretrain(tracking: Tracking | None, config, store: str, out: str | Path, result) -> str:
    """A pretraining run: its final figures (final/<name> where a curve has the name), the loss
    curves per validation step, the run folder."""
    if tracking is None:
        return ""
    logger = Logger(tracking, store)
    run = logger.start(Path(out).name, "pretrain", _base_params(config, store, config.features))
    steps = curves(result.history, x="step")
    curve = {key for key, _, _ in steps}  # a final figure of the same name would be a point at step 0
    numbers = {(f"final/{k}" if k in curve else k): float(v) for k, v in result.metrics.items()
               if isinstance(v, (int, float)) and v == v}
    logger.log(run, metrics=numbers, steps=steps)
    logger.finish(run, out)
    return run


def log_probe(tracking: Tracking | None, config, store: str, pretrained: str, out: str | Path, metrics: dict) -> str:
    """A probe: its metrics and the raw-feature baseline's (baseline/...), and the run folder."""
    if tracking is None:
        return ""
    logger = Logger(tracking, store)
    run = logger.start(Path(out).name, "probe", {**_base_params(config, store, None), "pretrained": str(pretrained)})
    logger.log(run, metrics={**scores(metrics), **scores(metrics.get("baseline") or {}, "baseline/")})
    logger.finish(run, out)
    return run
