"""Score a trained run on another labelled corpus (`albsent evaluate`, jobs/evaluate.py).

INPUT is a feature store (used as it is when its extract config matches the run's, else refused
with the differences, nothing written), or a manifest CSV / audio folder (labels from the
manifest, or the parent folders with labels_from: parent): extracted with the run's recorded
extract config by the Ray Data extraction (albsent.pipeline) into DIR/store, undecodable files
quarantined there and listed in DIR/metrics.json. Scoring: albsent.train.evaluate.
"""

from __future__ import annotations

import logging
from pathlib import Path

from albsent.errors import InputError

log = logging.getLogger(__name__)


def is_store(path: str) -> bool:
    from albsent.store import Store

    return Store(path).exists()


def extract_config_for(models, config, address: str | None = None):
    """The ExtractConfig that featurises INPUT as RUN's store did (models: run_models(RUN)): its
    recorded config, only the feature groups the run reads, INPUT's own labels (no label_map:
    evaluate maps them), and no augmented copies (a training-only matter)."""
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.train.evaluate import used_groups

    members, _, recorded = models
    recorded = {k: v for k, v in recorded.items() if k != "augment"}
    data = {**recorded, "features": used_groups(members, recorded), "labels_from": config.labels_from,
            "label_map": {}, "unlabeled": False, "allowed_roots": list(config.allowed_roots),
            "batch_size": config.batch_size, "ray": {"address": address}}
    return build(ExtractConfig, data)


def check_input_labels(input_path: str, classes: list[str], config) -> int:
    """Before anything is written: INPUT lists files, every one labelled with one of the run's
    `classes` (after label_map). Returns the number of files."""
    from albsent.audio.manifest import plan_inputs
    from albsent.train.evaluate import map_labels

    items = plan_inputs(input_path, config.labels_from, None, config.allowed_roots)
    missing = items["label"].isna().sum()
    if missing or not len(items):
        how = "" if config.labels_from == "parent" else " (a folder: --labels-from parent)"
        raise InputError(f"{input_path}: {missing or 'no'} file(s) without a label; evaluation needs labelled "
                         f"inputs{how}")
    map_labels(items["label"].tolist(), config.label_map, classes, input_path)
    return len(items)


def run_evaluate(run: str, input_path: str, out: str, config, address: str | None = None,
                 progress: bool = True) -> dict:
    """Score RUN on INPUT into the fresh folder `out`; returns metrics.json's content."""
    from albsent.runfolder import prepare
    from albsent.store import Store
    from albsent.train.evaluate import score_store, write_evaluation
    from albsent.train.predict import run_models

    models = run_models(run)
    extra = {"evaluated": {"run": str(run), "input": str(input_path), "label_map": dict(config.label_map)}}
    if is_store(input_path):
        scored = score_store(run, input_path, config.label_map, models)  # every check before anything is written
        prepare(out, False, "evaluate")
        extra["quarantined"] = _quarantined(Store(input_path))
    else:
        from albsent.app.run_extract import run_extract

        check_input_labels(input_path, models[1], config)
        extract = extract_config_for(models, config, address)
        prepare(out, False, "evaluate")
        store = str(Path(out).absolute() / "store")  # Ray workers may run in another folder
        run_extract(input_path, store, extract, progress=progress)
        extra["evaluated"]["store"] = store
        extra["quarantined"] = _quarantined(Store(store))
        scored = score_store(run, store, config.label_map, models)
    from albsent.config import dump_yaml

    dump_yaml(config, Path(out) / "config.yaml")
    title = f"{Path(run).name} on {Path(input_path).name}"
    return write_evaluation(scored, out, extra, title)


def _quarantined(store) -> dict:
    """{"count": n, "files": [{path, reason, error}]} of a store's quarantine list."""
    q = store.quarantine()
    files = q[["path", "reason", "error"]].to_dict("records") if len(q) else []
    if files:
        log.warning("%d file(s) could not be used and are not scored (e.g. %s: %s)", len(files), files[0]["path"],
                    files[0]["reason"])
    return {"count": len(files), "files": files}
