"""Score a trained run on another labelled corpus (cross-corpus evaluation), Ray-free: the
scoring half of `albsent evaluate` (albsent/app/run_evaluate.py extracts the corpus first) and
of leave-one-corpus-out.

The corpus' features come from a store made with the run's recorded extract config (the
sections that decide the values of the feature groups the run reads: `audio`, `sequence_dtype`
and each group's own settings; `check_store` names any difference). Its labels go through
`label_map` (e.g. {happiness: positive}); a label that is not one of the run's classes after
that is an error naming it. Each model's input is normalised as `albsent predict` does:
per-speaker models z-score each of the evaluated corpus' speakers with that speaker's own
statistics (rows without a speaker, or a speaker with one row, use the training statistics).
A segmented store is scored per utterance from the mean over its segments, as `predict` does.

    scored = score_store(run, store_uri, label_map)      # one row per utterance
    metrics = write_evaluation(scored, out, extra)      # metrics.json, predictions.csv, confusion_matrix.png
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from albsent.config import diff, require
from albsent.errors import ConfigError

log = logging.getLogger(__name__)
SHARED_SECTIONS = ("audio", "sequence_dtype")  # besides each feature group's own section


@dataclass
class EvaluateConfig:
    """What `albsent evaluate --config` reads (the run, INPUT and DIR are arguments / job keys)."""

    label_map: dict[str, str] = field(default_factory=dict)  # corpus label -> run class, e.g. {happiness: positive}
    labels_from: Literal["none", "parent"] = "none"  # folder INPUT: "parent" = label from the parent folder's name
    allowed_roots: list[str] = field(default_factory=list)  # manifest INPUT: also allow paths under these
    batch_size: int = 128  # clips per extraction block (as ExtractConfig.batch_size)

    def __post_init__(self):
        require(1 <= self.batch_size <= 4096, self, "batch_size", self.batch_size, "an int in [1, 4096]")
        require(all(isinstance(k, str) and isinstance(v, str) for k, v in self.label_map.items()), self,
                "label_map", self.label_map, "a mapping of label to label (strings)")


@dataclass
class Scored:
    """One row per evaluated utterance. probs: (utterances, classes) in `labels` order."""

    labels: list[str]  # the run's classes
    ids: list[str]
    utterance_ids: list[str]
    speakers: list
    y_true: list[str]
    probs: np.ndarray
    models: list[str]  # "model on spec (weight w)" per member


def map_labels(values, label_map: dict[str, str], classes: list[str], where: str) -> list[str]:
    """Corpus labels through `label_map`; a ConfigError naming every label that is not a run class."""
    mapped = [label_map.get(v, v) for v in values]
    unseen = sorted(set(mapped) - set(classes))
    if unseen:
        hint = f"label_map.{unseen[0]}={classes[0]}"
        raise ConfigError(f"{where}: label(s) {', '.join(map(repr, unseen))} are not classes of the run "
                          f"({', '.join(classes)}); map them to the run's classes with a label_map "
                          f"(e.g. --set {hint}) or leave those files out")
    return mapped


def used_groups(members, extract_config: dict) -> list[str]:
    """The feature groups (extractors) of the run's extract config whose columns its models read."""
    from albsent.config import build
    from albsent.features.config import ExtractConfig, build_extractors

    needed = {c for m in members for c in m.spec.columns}
    return [e.name for e in build_extractors(build(ExtractConfig, extract_config))
            if needed & {c.name for c in e.columns()}]


def config_differences(run_config: dict, store_config: dict, groups: list[str]) -> list[str]:
    """How a store's recorded extract config differs from the run's, in what decides the values
    of `groups`: ["audio.sample_rate_hz: 16000 -> 8000", "mfcc: not in the store", ...]."""
    out, has = [], store_config.get("features", [])
    for section in groups:
        if section not in has:
            out.append(f"feature group {section!r}: not in the store (it has {', '.join(has)})")
    for section in (*SHARED_SECTIONS, *groups):
        if section in store_config or section in SHARED_SECTIONS:
            out += diff({section: run_config.get(section)}, {section: store_config.get(section)})
    return out


def check_store(run: str, store_uri: str, run_config: dict, groups: list[str]) -> dict:
    """The store's metadata, or a ConfigError naming how its extract config differs from RUN's."""
    from albsent.store import Store

    store = Store(store_uri)
    if not store.exists():
        raise ConfigError(f"{store_uri}: not a feature store (no _albsent.json)")
    changes = config_differences(run_config, store.meta.get("config", {}), groups)
    if changes:
        raise ConfigError(f"{store_uri}: extracted with another config than the store {run} was trained on "
                          f"(run -> store): {'; '.join(changes)}; extract INPUT with the run's config (pass the "
                          "manifest or folder instead of the store) and nothing is mixed up")
    return store.meta


def score_store(run: str, store_uri: str, label_map: dict[str, str] | None = None, models=None) -> Scored:
    """Every labelled utterance of the store scored by RUN (its members' weighted mean probabilities).
    models: RUN's albsent.train.predict.run_models(RUN), when already loaded."""
    from albsent.dataset.data import load_data
    from albsent.train.loop import stride_frames
    from albsent.train.predict import run_models, weighted_probs

    members, labels, run_config = models or run_models(run)
    check_store(run, store_uri, run_config, used_groups(members, run_config))
    loaded: dict[str, object] = {}
    for m in members:
        if m.spec.text not in loaded:
            loaded[m.spec.text] = load_data(store_uri, m.spec, "utterance")
    first = loaded[members[0].spec.text]
    for text, data in loaded.items():
        if list(data.ids) != list(first.ids):
            raise ConfigError(f"{store_uri}: rows came back in another order for {text}; re-run")
    y_true = map_labels(first.labels.tolist(), label_map or {}, labels, store_uri)
    inputs = [stride_frames(loaded[m.spec.text].X, m.stride) for m in members]
    return _per_utterance(first, y_true, weighted_probs(members, inputs, first.speakers), labels, members)


def _per_utterance(data, y_true: list[str], probs: np.ndarray, labels: list[str], members) -> Scored:
    """Rows (utterances or segments) -> one row per utterance: mean probabilities over its segments."""
    utt = data.utterance_ids.tolist()
    order = list(dict.fromkeys(utt))
    index = {u: i for i, u in enumerate(order)}
    rows = np.array([index[u] for u in utt])
    sums = np.zeros((len(order), probs.shape[1]))
    np.add.at(sums, rows, probs)
    counts = np.bincount(rows, minlength=len(order))[:, None]
    first = {u: i for i, u in reversed(list(enumerate(utt)))}
    pick = [first[u] for u in order]
    models = [f"{m.name} on {m.spec.text} (weight {m.weight:.2f})" for m in members]
    return Scored(labels, [data.ids[i] for i in pick], order, [data.speakers[i] for i in pick],
                  [y_true[i] for i in pick], sums / counts, models)


def evaluation_metrics(scored: Scored) -> dict:
    """compute_metrics over every utterance, and per speaker (utterances with a speaker)."""
    from albsent.train.metrics import compute_metrics

    pred = [scored.labels[i] for i in scored.probs.argmax(1)]
    out = compute_metrics(scored.y_true, pred, scored.labels)
    per_speaker = {}
    for spk in dict.fromkeys(s for s in scored.speakers if s not in (None, "")):
        idx = [i for i, s in enumerate(scored.speakers) if s == spk]
        per_speaker[str(spk)] = compute_metrics([scored.y_true[i] for i in idx], [pred[i] for i in idx],
                                                scored.labels)
    out["per_speaker"] = per_speaker
    out["models"] = scored.models
    out["model"] = ", ".join(dict.fromkeys(m.split(" on ")[0] for m in scored.models))  # for `albsent report`
    out["features"] = " | ".join(dict.fromkeys(m.split(" on ")[1].rsplit(" (", 1)[0] for m in scored.models))
    return out


def write_evaluation(scored: Scored, out: str | Path, extra: dict | None = None, title: str = "") -> dict:
    """DIR/metrics.json (pooled and per speaker, plus `extra`), predictions.csv, confusion_matrix.png."""
    from albsent.train import artifacts
    from albsent.train.fit import prediction_rows

    out = Path(out)
    metrics = {**evaluation_metrics(scored), **(extra or {})}
    rows = prediction_rows(_RowsView(scored), range(len(scored.ids)), scored.probs, scored.labels, 0)
    artifacts.write_json(metrics, out / "metrics.json")
    artifacts.write_predictions(rows, scored.labels, out / "predictions.csv")
    artifacts.plot_confusion(metrics["confusion_matrix"], scored.labels, out / "confusion_matrix.png",
                             title or "cross-corpus evaluation")
    log.info("%s: %d utterances, accuracy %.3f, macro-F1 %.3f", out, metrics["n"], metrics["accuracy"],
             metrics["macro_f1"])
    return metrics


class _RowsView:
    """Scored as the (ids, utterance_ids, groups, labels) that fit.prediction_rows reads."""

    def __init__(self, scored: Scored):
        self.ids, self.utterance_ids, self.labels = scored.ids, scored.utterance_ids, scored.y_true
        self.groups = ["" if s is None else s for s in scored.speakers]
