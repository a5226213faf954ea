"""Automatic recipe selection by nested speaker-independent cross-validation (Ray-free).

A *recipe* is a feature spec (one group the store has, or a fusion), a normalisation (global
z-score, or per speaker first), a classifier and its C. For each outer fold:

1. every candidate recipe is scored by inner grouped CV on the outer fold's training speakers
   only (`cross_validate` on inner splits, each leakage-audited): its out-of-fold probabilities;
2. an ensemble is chosen from those inner probabilities by greedy forward selection with
   replacement (Caruana et al., 2004): start from the best recipe, then `ensemble_size` - 1
   times add whichever recipe (again, if it is the best pick) gives the highest inner pooled
   macro-F1 of the averaged probabilities, even when that is no higher than before (macro-F1
   moves in steps, and plateaus are crossed this way); keep the prefix with the highest inner
   score (the shortest among equals). `ensemble_size: 1` is plain best-recipe selection;
3. the chosen recipes are refitted on the outer training speakers and their probabilities,
   weighted by how often each was chosen, are scored on the outer test speakers.

The outer test speakers are never seen by steps 1-2. A last unit does the same on all speakers
(inner CV over the whole corpus) and keeps the refitted members as the run's model.

Independent pieces of work (score a recipe on a unit's inner folds; refit a member) are plain
functions over picklable arguments; `select()` hands them to a `mapper` (`map` here, Ray tasks in
albsent.sweep.auto) so the same code runs on one core or a cluster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from albsent.config import require, require_seed
from albsent.dataset.data import Data
from albsent.dataset.splits import Split, SplitConfig, kfold
from albsent.errors import ConfigError
from albsent.store.schema import pooled_column, ssl_layer_counts
from albsent.train.config import TrainConfig
from albsent.train.cv import cross_validate
from albsent.train.fit import fit
from albsent.train.metrics import compute_metrics

log = logging.getLogger(__name__)
FINAL = 0  # unit number of the all-speaker selection that produces the run's model


@dataclass
class AutoConfig:
    """`albsent train --auto`: what is searched and how it is scored."""

    store: str = ""
    folds: int = 5  # outer speaker-grouped folds (the reported figures)
    inner_folds: int = 5  # inner folds on each outer fold's training speakers (the selection)
    features: list[str] = field(default_factory=list)  # candidate specs; empty: every group the store has, + fusions
    models: list[str] = field(default_factory=lambda: ["sklearn_logreg", "svm_rbf"])
    C: dict[str, list[float]] = field(default_factory=lambda: {"sklearn_logreg": [0.01, 1.0], "svm_rbf": [1.0, 10.0]})
    speaker_norm: list[bool] = field(default_factory=lambda: [False, True])  # dropped to [False] without speakers
    # rounds of greedy ensemble selection (1: the single best recipe). Outer pooled macro-F1 was flat
    # from 20 to 100 rounds on EMO-DB (0.801-0.807) and EmoSpeech (0.534-0.539); stopping at the first
    # round without a gain (the usual shortcut) gave 0.777 and 0.524.
    ensemble_size: int = 50
    group_by: str = "auto"  # speaker | utterance | auto
    seed: int = 0

    def __post_init__(self):
        require(self.folds >= 2, self, "folds", self.folds, "an int >= 2")
        require(self.inner_folds >= 2, self, "inner_folds", self.inner_folds, "an int >= 2")
        require(1 <= self.ensemble_size <= 100, self, "ensemble_size", self.ensemble_size, "an int in [1, 100]")
        require(bool(self.models), self, "models", self.models, "a non-empty list of model names")
        require(bool(self.speaker_norm), self, "speaker_norm", self.speaker_norm, "a non-empty list of true/false")
        require(self.group_by in ("auto", "speaker", "utterance"), self, "group_by", self.group_by,
                "auto, speaker or utterance")
        require_seed(self, self.seed)
        for m in self.models:
            require(m in self.C and len(self.C[m]) > 0 and all(c > 0 for c in self.C[m]), self, "C", self.C,
                    f"a mapping with a non-empty list of positive values for every model (missing or bad: {m!r})")


@dataclass(frozen=True)
class Recipe:
    features: str
    speaker_norm: bool
    model: str
    C: float

    @property
    def name(self) -> str:
        return f"{self.features} | {'speaker' if self.speaker_norm else 'global'} z | {self.model} C={self.C:g}"

    def config(self, seed: int) -> TrainConfig:
        """The TrainConfig that fits this recipe (class-weighted, no validation split)."""
        return TrainConfig(features=self.features, model=self.model, C=self.C, speaker_norm=self.speaker_norm,
                           standardize=True, class_weighted=True, seed=seed, split=SplitConfig(val_fraction=0.0))

    def to_json(self) -> dict:
        return {"features": self.features, "speaker_norm": self.speaker_norm, "model": self.model, "C": self.C}


def store_feature_groups(meta: dict, columns: dict) -> list[str]:
    """Candidate specs from a store: each pooled group it has, plus fusions of the small ones.

    meta: the store metadata (extractors); columns: {column: {"shape": ...}} (dataset.spec.column_info)."""
    groups = []
    for name in meta.get("extractors", {}):
        if name == "ssl":
            continue
        if pooled_column(name, "func") in columns:  # openSMILE functionals
            groups.append(f"{name}.func")
        elif pooled_column(name, "mean") in columns and pooled_column(name, "std") in columns:
            groups.append(name)
    small = [g for g in groups if not g.startswith("compare")]
    fusions = []
    if "mfcc" in small and "egemaps.func" in small:
        fusions.append("mfcc+egemaps.func")
    if "mfcc" in small and "shortterm" in small:
        fusions.append("mfcc+shortterm")
    ssl = []
    for alias, n in sorted(ssl_layer_counts(columns).items()):
        picks = sorted({round(n * q) for q in (0.25, 0.5, 0.75)} | {n - 1})
        ssl += [f"ssl:{alias}:{k}" for k in picks if 0 <= k < n]
    return groups + fusions + ssl


def candidates(config: AutoConfig, specs: list[str], has_speakers: bool) -> list[Recipe]:
    norms = [s for s in dict.fromkeys(config.speaker_norm) if has_speakers or not s]
    return [Recipe(f, s, m, c) for f in specs for s in norms for m in config.models for c in config.C[m]]


@dataclass
class Unit:
    """One selection: rows to select and refit on, rows to score (empty for the final unit)."""

    number: int  # 1..K outer folds; FINAL (0) = all speakers
    train: np.ndarray
    test: np.ndarray
    inner: list[Split]  # inner splits over `train` (global row indices, val empty)


def make_units(data: Data, config: AutoConfig) -> list[Unit]:
    outer = kfold(data.labels, data.groups, config.folds, val_fraction=0.0, seed=config.seed)
    units = [Unit(k, s.train, s.test, []) for k, s in enumerate(outer, start=1)]
    units.append(Unit(FINAL, np.arange(len(data)), np.zeros(0, np.int64), []))
    for u in units:
        rows = u.train
        inner = kfold(data.labels[rows], data.groups[rows], config.inner_folds, val_fraction=0.0, seed=config.seed + 1)
        u.inner = [Split(rows[s.train], rows[:0], rows[s.test]) for s in inner]
    return units


def score_recipe(recipe: Recipe, data: Data, unit: Unit, seed: int) -> np.ndarray:
    """Out-of-fold probabilities (len(unit.train), classes) of `recipe` over the unit's inner splits."""
    cv = cross_validate(recipe.config(seed), data, splits=unit.inner)
    position = {row: i for i, row in enumerate(unit.train.tolist())}
    out = np.zeros((len(unit.train), len(data.label_names)), np.float64)
    for f in cv.folds:
        out[[position[r] for r in f.split.test.tolist()]] = f.probs
    return out


def refit_member(recipe: Recipe, data: Data, unit: Unit, seed: int):
    """(test probabilities (len(unit.test), classes), the fitted bundle) of `recipe` refitted on unit.train."""
    res = fit(recipe.config(seed), data, split=Split(unit.train, unit.train[:0], unit.test))
    return res.probs, res.bundle


def macro_f1(y: np.ndarray, probs: np.ndarray, n_classes: int) -> float:
    labels = list(range(n_classes))
    return compute_metrics(y.tolist(), probs.argmax(1).tolist(), labels)["macro_f1"]


def greedy_ensemble(probs: list[np.ndarray], y: np.ndarray, max_size: int) -> tuple[list[int], float]:
    """Indices chosen (with repeats) by `max_size` rounds of forward selection with replacement,
    cut to the prefix with the best inner macro-F1 (the shortest among equals), and that score.
    Ties between candidates go to the earlier one, so the result is deterministic."""
    n = probs[0].shape[1]
    scores = [macro_f1(y, p, n) for p in probs]
    chosen = [int(np.argmax(scores))]
    total = probs[chosen[0]].copy()
    history = [scores[chosen[0]]]
    while len(chosen) < max_size:
        trial = [macro_f1(y, total + p, n) for p in probs]
        j = int(np.argmax(trial))
        chosen.append(j)
        total += probs[j]
        history.append(trial[j])
    best = int(np.argmax(history))
    return chosen[:best + 1], history[best]


@dataclass
class Selection:
    unit: int
    scores: dict[str, float]  # recipe name -> inner pooled macro-F1
    members: list[tuple[Recipe, float]]  # (recipe, weight), weights sum to 1
    inner_macro_f1: float  # of the chosen ensemble


def select(config: AutoConfig, datas: dict[str, Data], recipes: list[Recipe], mapper=None) -> dict:
    """Run the nested selection. datas: {spec: Data} with identical rows in identical order.
    mapper(fn, list of argument tuples) -> list of results (default: a plain loop).
    Returns {"units", "selections", "outer": {unit: probs}, "final_bundles", "seconds"}."""
    mapper = mapper or (lambda fn, items: [fn(*a) for a in items])
    first = next(iter(datas.values()))
    for spec, d in datas.items():
        if not np.array_equal(d.ids, first.ids):
            raise ConfigError(f"feature spec {spec!r} read the store's rows in another order; cannot compare recipes")
    labels = first.label_names
    if len(labels) < 2:
        raise ConfigError(f"{first.store_uri}: every labelled row has label {labels[0]!r}; "
                          "selection needs at least two classes")
    y = np.array([labels.index(v) for v in first.labels])
    counts = np.bincount(y, minlength=len(labels))
    if counts.min() < config.folds:
        small = labels[int(counts.argmin())]
        raise ConfigError(f"{first.store_uri}: class {small!r} has {counts.min()} row(s), "
                          f"fewer than the {config.folds} outer folds; every fold needs each class: "
                          f"use --folds {max(2, int(counts.min()))} or label more data")
    units = make_units(first, config)
    t0 = time.perf_counter()
    jobs = [(r, datas[r.features], u, config.seed) for u in units for r in recipes]
    log.info("auto: scoring %d recipes on %d units (%d outer folds + all speakers), %d inner folds each: %d fits",
             len(recipes), len(units), config.folds, config.inner_folds, len(jobs) * config.inner_folds)
    oof = mapper(score_recipe, jobs)
    selections = []
    for i, u in enumerate(units):
        probs = oof[i * len(recipes):(i + 1) * len(recipes)]
        chosen, inner = greedy_ensemble(probs, y[u.train], config.ensemble_size)
        counts = {j: chosen.count(j) for j in dict.fromkeys(chosen)}
        members = [(recipes[j], c / len(chosen)) for j, c in counts.items()]
        scores = {r.name: macro_f1(y[u.train], p, len(labels)) for r, p in zip(recipes, probs)}
        selections.append(Selection(u.number, scores, members, inner))
        log.info("auto unit %s: best single %.3f, ensemble of %d (%s) %.3f", u.number or "all", max(scores.values()),
                 len(members), "; ".join(f"{r.name} x{w:.2f}" for r, w in members), inner)
    refits = [(r, datas[r.features], u, config.seed) for u, s in zip(units, selections) for r, _ in s.members]
    fitted = mapper(refit_member, refits)
    outer, final_bundles, k = {}, [], 0
    for u, s in zip(units, selections):
        total = np.zeros((len(u.test), len(labels)))
        for (recipe, weight) in s.members:
            probs, bundle = fitted[k]
            k += 1
            total += weight * probs
            if u.number == FINAL:
                final_bundles.append((recipe, weight, bundle))
        outer[u.number] = total
    return {"units": units, "selections": selections, "outer": outer, "final_bundles": final_bundles,
            "labels": labels, "y": y, "seconds": time.perf_counter() - t0}

