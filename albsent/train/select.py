"""Automatic recipe selection by nested speaker-independent cross-validation (Ray-free).

A *recipe* is a feature spec (one group the store has, or a fusion), a normalisation (global
z-score, or per speaker first), a classifier and its C. For each outer fold:

1. every candidate recipe is scored by inner grouped CV on the outer fold's training speakers
   only, and trained on all of them and scored on the outer test speakers: one task per recipe
   *family* (same features and normalisation; albsent.train.family) and fold, every split
   leakage-audited. SVM scores become probabilities with a temperature fitted on the inner
   out-of-fold scores;
2. ensemble weights are chosen from the inner out-of-fold probabilities by `config.rule`
   (albsent.train.rules; default: the `top_k` best recipes by inner pooled macro-F1, averaged);
3. the fold's prediction is the weighted mean of the chosen recipes' outer-test probabilities.

The outer test speakers are never seen by steps 1-2. A last unit does the same on all speakers
(inner CV over the whole corpus); its chosen recipes are refitted on every row as the run's model.
With fewer speakers than folds the outer folds leave one speaker out; a fold that trains on one
speaker splits its inner folds by utterance (`make_units`).

Independent pieces of work (score a family on a unit; refit a member) are plain functions over
picklable arguments; `select()` hands them to a `mapper` (`map` here, Ray tasks in
albsent.runner.tasks) so the same code runs on one core or a cluster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np

from albsent.config import require, require_seed
from albsent.dataset.data import Data
from albsent.dataset.splits import Split, SplitConfig, audit, class_rows_error, kfold, make_groups
from albsent.errors import ConfigError
from albsent.features.base import EXTRACTORS, pooled_candidates
from albsent.train.config import TrainConfig
from albsent.train.family import CALIBRATED, SCORED, probabilities, score_family, temperature_of
from albsent.train.fit import fit
from albsent.train.rules import bagged_ensemble, greedy_ensemble, score, top_k, weights_of

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
    # train on the store's augmented copies too (extract --augment): [True], or [False, True] to let
    # the selection choose per recipe (twice the candidates). Copies never enter inner or outer test folds.
    augmented: list[bool] = field(default_factory=lambda: [False])
    # rounds of greedy ensemble selection (1: the single best recipe). Outer pooled macro-F1 was flat
    # from 20 to 100 rounds on EMO-DB (0.801-0.807) and EmoSpeech (0.534-0.539); stopping at the first
    # round without a gain (the usual shortcut) gave 0.777 and 0.524.
    ensemble_size: int = 50
    # how inner probabilities become an ensemble (albsent.train.rules): "top" (the top_k best recipes
    # by inner score, averaged), "bagged" (greedy selections on speaker bootstraps x random halves of
    # the candidates, averaged), "greedy" (one greedy selection), "single" (the best recipe).
    # bench/selection_rules.py on 4 development corpora: top (k 20) had the best worst-case margin
    # over the 12 plain recipes picked with hindsight (+0.029), bagged +0.020, greedy +0.012, single -0.010.
    rule: str = "top"
    bags: int = 20  # rule "bagged": resamples averaged
    top_k: int = 20  # rule "top": the k best recipes by inner score, averaged
    min_weight: float = 0.0  # ensemble members below this weight are dropped (rules.prune)
    halving: float = 0.0  # > 0: successive halving, the share of recipe families scored past EARLY inner folds
    group_by: str = "auto"  # speaker | utterance | auto
    seed: int = 0

    def __post_init__(self):
        require(self.folds >= 2, self, "folds", self.folds, "an int >= 2")
        require(self.inner_folds >= 2, self, "inner_folds", self.inner_folds, "an int >= 2")
        require(1 <= self.ensemble_size <= 100, self, "ensemble_size", self.ensemble_size, "an int in [1, 100]")
        require(self.rule in ("top", "bagged", "greedy", "single"), self, "rule", self.rule,
                "top, bagged, greedy or single")
        require(1 <= self.top_k <= 1000, self, "top_k", self.top_k, "an int in [1, 1000]")
        require(1 <= self.bags <= 200, self, "bags", self.bags, "an int in [1, 200]")
        require(0 <= self.min_weight < 0.5, self, "min_weight", self.min_weight, "a float in [0, 0.5)")
        require(0 <= self.halving < 1, self, "halving", self.halving, "0 (off) or a share in (0, 1)")
        bad = [m for m in self.models if m not in SCORED]
        require(not bad, self, "models", self.models, f"a list of models from {list(SCORED)} (the selection "
                "scores scikit-learn models; train others with --model)")
        require(bool(self.models), self, "models", self.models, "a non-empty list of model names")
        require(bool(self.speaker_norm), self, "speaker_norm", self.speaker_norm, "a non-empty list of true/false")
        require(bool(self.augmented), self, "augmented", self.augmented, "a non-empty list of true/false")
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
    augmented: bool = False  # trains on the training rows' augmented copies too

    @property
    def name(self) -> str:
        aug = " | augmented" if self.augmented else ""
        return f"{self.features} | {'speaker' if self.speaker_norm else 'global'} z | {self.model} C={self.C:g}{aug}"

    def config(self, seed: int) -> TrainConfig:
        """The TrainConfig that fits this recipe (class-weighted, no validation split)."""
        return TrainConfig(features=self.features, model=self.model, C=self.C, speaker_norm=self.speaker_norm,
                           standardize=True, class_weighted=True, seed=seed, split=SplitConfig(val_fraction=0.0),
                           augmented=self.augmented)

    def to_json(self) -> dict:
        out = {"features": self.features, "speaker_norm": self.speaker_norm, "model": self.model, "C": self.C}
        return {**out, "augmented": True} if self.augmented else out


def store_feature_groups(meta: dict, columns: dict) -> list[str]:
    """Candidate specs from a store: what each of its extractors offers (Extractor.auto_candidates),
    then the fusions they declare (`fusions` of `fusable` groups, `added_to_every`), then the
    standalone candidates (SSL layers).

    meta: the store metadata (extractors); columns: {column: {"shape": ...}} (dataset.spec.column_info)."""
    offers = [(EXTRACTORS[n] if n in EXTRACTORS else None, n) for n in meta.get("extractors", {})]
    groups, small, alone = [], [], []
    for ext, name in offers:  # a group no registered extractor wrote offers its pooled columns
        specs = ext.auto_candidates(columns) if ext else pooled_candidates(name, columns)
        if ext and ext.standalone:
            alone += specs
            continue
        groups += specs
        small += specs if not ext or ext.fusable else []
    exts = [ext for ext, _ in offers if ext and not ext.standalone]
    fused = [f"{a}+{b}" for ext in exts for a, b in ext.fusions if a in small and b in small]
    for every in [spec for ext in exts for spec in ext.added_to_every if spec in groups]:
        fused += [f"{g}+{every}" for g in groups + fused if g != every]
    return groups + fused + alone


def candidates(config: AutoConfig, specs: list[str], has_speakers: bool) -> list[Recipe]:
    norms = [s for s in dict.fromkeys(config.speaker_norm) if has_speakers or not s]
    return [Recipe(f, s, m, c, a) for f in specs for s in norms for a in dict.fromkeys(config.augmented)
            for m in config.models for c in config.C[m]]


@dataclass
class Unit:
    """One selection: rows to select and refit on, rows to score (empty for the final unit)."""

    number: int  # 1..K outer folds; FINAL (0) = all speakers
    train: np.ndarray  # sorted row indices
    test: np.ndarray
    inner: list[Split]  # inner splits over `train` (global row indices, val empty)
    inner_group_by: str = ""  # what the inner splits group by: the data's grouping, or "utterance" (fallback)


def make_units(data: Data, config: AutoConfig) -> list[Unit]:
    """The outer folds (fewer than config.folds when there are fewer groups: leave one group out)
    and the all-rows unit, each with its inner splits. A unit whose training rows hold a single
    group (two speakers: each outer fold trains on one) cannot be split by that group; its inner
    splits group by utterance instead (identical audio still grouped), with a warning: the
    selection is then speaker-dependent, the outer score still is not."""
    outer = kfold(data.labels, data.groups, config.folds, val_fraction=0.0, seed=config.seed)
    units = [Unit(k, s.train, s.test, []) for k, s in enumerate(outer, start=1)]
    units.append(Unit(FINAL, np.arange(len(data)), np.zeros(0, np.int64), []))
    for u in units:
        rows = u.train
        groups, u.inner_group_by = data.groups[rows], data.group_by
        if len(set(groups.tolist())) < 2:
            groups, _ = make_groups([None] * len(rows), data.utterance_ids[rows], data.sha256[rows], "utterance")
            u.inner_group_by = "utterance"
            log.warning("auto: outer fold %d trains on one %s only; its inner selection splits by utterance, so it "
                        "picks recipes on that %s's own held-out clips (the outer score stays %s-independent)",
                        u.number, data.group_by, data.group_by, data.group_by)
        inner = kfold(data.labels[rows], groups, config.inner_folds, val_fraction=0.0, seed=config.seed + 1)
        u.inner = [Split(rows[s.train], rows[:0], rows[s.test]) for s in inner]
    return units


def inner_data(data: Data, unit: Unit) -> Data:
    """`data` as the unit's inner splits group it (its leakage audit checks those groups)."""
    if unit.inner_group_by in ("", data.group_by):
        return data
    groups, by = make_groups([None] * len(data), data.utterance_ids, data.sha256, "utterance")
    return replace(data, groups=groups, group_by=by)


EARLY = 2  # inner folds a family is first scored on when config.halving is set


def score_unit(family: tuple[Recipe, ...], data: Data, unit: Unit, seed: int, part: str = "all"):
    """One family (recipes sharing features and normalisation) on one unit: (inner out-of-fold raw
    scores per recipe, (len(unit.train), classes), zero on rows of folds not scored; outer-test raw
    scores per recipe, (len(unit.test), classes), or None for the final unit or part "early").
    part: "all" inner folds and the outer split, "early" (the first EARLY inner folds) or "late"
    (the others and the outer split). Every split is leakage-audited."""
    data = inner_data(data, unit)
    inner = {"all": unit.inner, "early": unit.inner[:EARLY], "late": unit.inner[EARLY:]}[part]
    outer = [Split(unit.train, unit.train[:0], unit.test)] if len(unit.test) and part != "early" else []
    for s in inner:
        audit(s, groups=data.groups, utterance_id=data.utterance_ids, sha256=data.sha256)
    scored = score_family(family, data, inner + outer, seed)
    n_classes = len(data.label_names)
    oof = [np.zeros((len(unit.train), n_classes)) for _ in family]
    for s, per_recipe in zip(inner, scored):
        at = np.searchsorted(unit.train, s.test)  # unit.train is sorted; inner test rows are among it
        for j, raw in enumerate(per_recipe):
            oof[j][at] = raw
    return oof, (scored[-1] if outer else None)


def early_rows(unit: Unit) -> np.ndarray:
    """Positions in unit.train (sorted) of the rows the first EARLY inner folds test."""
    return np.sort(np.searchsorted(unit.train, np.concatenate([s.test for s in unit.inner[:EARLY]])))


def score_units(config: AutoConfig, datas: dict, units: list[Unit], fams: list, y: np.ndarray, mapper) -> list:
    """[unit][family] (oof, outer) raw scores (score_unit), None for a family dropped by halving.
    With config.halving (a share in (0, 1)), every family is first scored on the first EARLY inner
    folds; per unit only the best `halving` share of families, ranked by their best recipe's
    macro-F1 on those rows, is scored on the remaining folds and the outer split (successive
    halving: weak candidates cost a third of a full scoring)."""
    if not config.halving or min(len(u.inner) for u in units) <= EARLY:
        done = mapper(score_unit, [(f, datas[f[0].features], u, config.seed) for u in units for f in fams])
        return [done[i * len(fams):(i + 1) * len(fams)] for i in range(len(units))]
    early = mapper(score_unit, [(f, datas[f[0].features], u, config.seed, "early") for u in units for f in fams])
    keep = []
    for i, u in enumerate(units):
        rows = early_rows(u)
        best = [max(score(y[u.train][rows], oof[rows]) for oof in early[i * len(fams) + j][0])
                for j in range(len(fams))]
        n = max(1, int(np.ceil(len(fams) * config.halving)))
        keep.append(set(np.argsort([-b for b in best], kind="stable")[:n].tolist()))
    jobs = [(i, j) for i in range(len(units)) for j in sorted(keep[i])]
    late = mapper(score_unit, [(fams[j], datas[fams[j][0].features], units[i], config.seed, "late") for i, j in jobs])
    out = [[None] * len(fams) for _ in units]
    for (i, j), (oof_late, outer) in zip(jobs, late):
        oof_early = early[i * len(fams) + j][0]
        out[i][j] = ([a + b for a, b in zip(oof_early, oof_late)], outer)
    log.info("auto: successive halving kept %s of %d families per unit", [len(k) for k in keep], len(fams))
    return out


def refit_member(recipe: Recipe, data: Data, unit: Unit, seed: int, temperature: float | None):
    """The bundle of `recipe` fitted on unit.train (the final unit: every row, the run's model), with
    the temperature fitted on the unit's inner out-of-fold scores."""
    extra = temperature if recipe.model in CALIBRATED else None
    return fit(recipe.config(seed), data, split=Split(unit.train, unit.train[:0], unit.test),
               temperature=extra).bundle


@dataclass
class Selection:
    unit: int
    scores: dict[str, float]  # recipe name -> inner pooled macro-F1
    members: list[tuple[Recipe, float]]  # (recipe, weight), weights sum to 1
    inner_macro_f1: float  # of the chosen ensemble


@dataclass
class SelectResult:
    """What `select()` returns (albsent.train.auto.write_run writes RUN/ from it)."""

    units: list[Unit]  # the outer folds, then the all-speaker unit (FINAL)
    selections: list[Selection]  # one per unit, in the same order
    outer: dict[int, np.ndarray]  # outer fold number -> (its test rows, classes) ensemble probabilities
    final_bundles: list[tuple[Recipe, float, object]]  # (recipe, weight, Bundle refitted on every row)
    labels: list[str]  # class names; y indexes them
    y: np.ndarray  # (rows,) class index of every row
    recipes: list[Recipe]  # every candidate, in family order
    seconds: float  # wall time of the selection


def families(recipes: list[Recipe]) -> list[tuple[Recipe, ...]]:
    """Recipes grouped by (features, speaker_norm, augmented), in first-seen order."""
    out: dict[tuple, list[Recipe]] = {}
    for r in recipes:
        out.setdefault((r.features, r.speaker_norm, r.augmented), []).append(r)
    return [tuple(v) for v in out.values()]


def choose(config: AutoConfig, probs: list[np.ndarray], y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(candidates,) ensemble weights from inner out-of-fold probabilities (albsent.train.rules)."""
    if config.rule == "greedy":
        return weights_of(greedy_ensemble(probs, y, config.ensemble_size)[0], len(probs))
    if config.rule == "single":
        return weights_of([int(np.argmax([score(y, p) for p in probs]))], len(probs))
    if config.rule == "top":
        return top_k(probs, y, config.top_k)
    return bagged_ensemble(probs, y, groups, config.ensemble_size, config.bags, seed=config.seed,
                           min_weight=config.min_weight)


def select(config: AutoConfig, datas: dict[str, Data], recipes: list[Recipe], mapper=None) -> SelectResult:
    """Run the nested selection. datas: {spec: Data} with identical rows in identical order.
    mapper(fn, list of argument tuples) -> list of results (default: a plain loop)."""
    mapper = mapper or (lambda fn, items: [fn(*a) for a in items])
    first = next(iter(datas.values()))
    for spec, d in datas.items():
        if not np.array_equal(d.ids, first.ids):
            raise ConfigError(f"feature spec {spec!r} read the store's rows in another order; cannot compare recipes")
    y = first.class_indices("selection")
    labels = first.label_names
    counts = np.bincount(y, minlength=len(labels))
    n_outer = min(config.folds, len(set(first.groups.tolist())))
    error = class_rows_error(labels, counts, n_outer, first.store_uri)
    if error is not None:
        raise error
    units = make_units(first, config)
    t0 = time.perf_counter()
    fams = families(recipes)
    order = [r for f in fams for r in f]  # recipes in family order: the order of scored results
    log.info("auto: scoring %d recipes (%d families) on %d units (%d outer folds + all), up to %d inner folds each",
             len(recipes), len(fams), len(units), len(units) - 1, config.inner_folds)
    scored = score_units(config, datas, units, fams, y, mapper)
    selections, outer, temps = [], {}, {}
    for i, u in enumerate(units):
        parts = [p for p in scored[i] if p is not None]
        unit_order = [r for f, p in zip(fams, scored[i]) if p is not None for r in f]
        oof_raw = [o for oof, _ in parts for o in oof]
        t = [temperature_of(r.model, raw, y[u.train]) for r, raw in zip(unit_order, oof_raw)]
        probs = [probabilities(raw, tt) for raw, tt in zip(oof_raw, t)]
        weights = choose(config, probs, y[u.train], inner_data(first, u).groups[u.train])
        members = [(unit_order[j], float(weights[j]), t[j]) for j in np.flatnonzero(weights > 0)]
        inner = score(y[u.train], sum(w * probs[j] for j, w in enumerate(weights) if w > 0))
        scores = {r.name: score(y[u.train], p) for r, p in zip(unit_order, probs)}
        selections.append(Selection(u.number, scores, [(r, w) for r, w, _ in members], inner))
        log.info("auto unit %s: best single %.3f, ensemble of %d (%s) %.3f", u.number or "all", max(scores.values()),
                 len(members), "; ".join(f"{r.name} x{w:.2f}" for r, w, _ in members), inner)
        if u.number == FINAL:
            temps = {r.name: tt for r, _, tt in members}
        else:
            outer_raw = [o for _, test in parts for o in test]
            outer[u.number] = sum(w * probabilities(outer_raw[unit_order.index(r)], tt) for r, w, tt in members)
    final = next(s for s in selections if s.unit == FINAL)
    unit = next(u for u in units if u.number == FINAL)
    bundles = mapper(refit_member, [(r, datas[r.features], unit, config.seed, temps[r.name]) for r, _ in final.members])
    final_bundles = [(r, w, b) for (r, w), b in zip(final.members, bundles)]
    return SelectResult(units, selections, outer, final_bundles, labels, y, order, time.perf_counter() - t0)
