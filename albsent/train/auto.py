"""`albsent train --auto`: load every candidate feature group of a store, run the nested
selection (albsent.train.select), write RUN/ (Ray-free; albsent.app.run_auto adds Ray).

    RUN/metrics.json        outer-fold metrics: pooled (all out-of-fold predictions) and per fold,
                            as a `--folds` run, + "selection" (the ensemble chosen per fold)
    RUN/predictions.csv     one row per store row: its outer fold, label, prediction, probabilities
    RUN/selection.csv       every candidate's inner pooled macro-F1 per unit (fold 1..K, "all")
                            and its weight in that unit's ensemble
    RUN/recipes.json        the recipes (and weights) chosen per fold and for the final model
    RUN/ensemble.json + RUN/members/k/   the final model: chosen by inner CV on all speakers,
                            refitted on all of them (`albsent predict RUN ...`)
    RUN/config.yaml, RUN/confusion_matrix.png
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from albsent.dataset.data import load_data
from albsent.dataset.spec import column_info
from albsent.errors import ConfigError
from albsent.store import Store
from albsent.train import artifacts
from albsent.train.cv import fold_summary, write_cv
from albsent.train.ensemble import save_ensemble
from albsent.train.fit import prediction_rows
from albsent.train.metrics import compute_metrics
from albsent.train.select import FINAL, AutoConfig, SelectResult, candidates, select, store_feature_groups

log = logging.getLogger(__name__)
RULES = {"bagged": "ensemble: greedy selections of up to {size} picks (with replacement) on {bags} speaker bootstraps "
                   "x random halves of the candidates, averaged",
         "greedy": "ensemble: greedy selection of up to {size} picks (with replacement), best prefix",
         "single": "the single best recipe",
         "top": "ensemble: the {k} best recipes by inner pooled macro-F1, averaged"}

AUGMENTED = {(True,): "; every recipe also trains on the augmented copies of its training rows (never on copies of "
                      "inner or outer test rows)",
             (False, True): "; each recipe with and without the augmented copies of its training rows (never copies "
                            "of inner or outer test rows)"}


def load_candidates(config: AutoConfig):
    """({spec: Data}, [Recipe]) for the store: the given specs, or every group it has."""
    if not config.store:
        raise ConfigError("no store given: pass --store STORE or set `store:` in the config")
    store = Store(config.store)
    specs = config.features or store_feature_groups(store.meta, column_info(store.schema))
    if not specs:
        raise ConfigError(f"{store.uri}: no pooled feature group to select from; extract e.g. --features mfcc,egemaps")
    datas = {spec: load_data(config.store, spec, config.group_by, augmented=any(config.augmented)) for spec in specs}
    first = next(iter(datas.values()))
    if first.group_by != "speaker":
        log.warning("%s: not every row has a speaker; folds are grouped by utterance and speaker normalisation "
                    "is not offered (results are not speaker-independent)", store.uri)
    recipes = candidates(config, specs, first.has_speakers and first.group_by == "speaker")
    log.info("auto: %d candidate recipes over %d feature groups (%s)", len(recipes), len(specs), ", ".join(specs))
    return datas, recipes


def run_auto(config: AutoConfig, out_dir: str | Path, mapper=None) -> dict:
    """Select, evaluate and save; returns metrics.json's content."""
    datas, recipes = load_candidates(config)
    result = select(config, datas, recipes, mapper)
    return write_run(config, datas, result, Path(out_dir))


def write_run(config: AutoConfig, datas: dict, result: SelectResult, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(datas.values()))
    labels = result.labels
    preds, per_fold = [], []
    for u in result.units:
        if u.number == FINAL:
            continue
        fold_preds = prediction_rows(first, u.test, result.outer[u.number], labels, u.number)
        preds += fold_preds
        per_fold.append(compute_metrics([p["label"] for p in fold_preds], [p["pred"] for p in fold_preds], labels))
    metrics = fold_summary(per_fold, preds, labels, first.group_by)
    metrics["store"] = first.store_uri
    outer = [u for u in result.units if u.number != FINAL]
    fallback = [u.number for u in outer if u.inner_group_by == "utterance" and first.group_by != "utterance"]
    metrics["protocol"] = (f"nested cross-validation: {len(outer)} outer folds by {first.group_by}"
                           + (" (one per group: fewer groups than folds asked)" if len(outer) < config.folds else "")
                           + f"; recipes scored by up to {config.inner_folds}-fold inner CV on each outer fold's "
                           f"training {first.group_by}s only"
                           + (f" (by utterance in fold(s) {fallback}: they train on one {first.group_by})"
                              if fallback else "")
                           + "; " + RULES[config.rule].format(size=config.ensemble_size, bags=config.bags,
                                                              k=config.top_k)
                           + AUGMENTED.get(tuple(sorted(set(config.augmented))), ""))
    metrics["outer_folds"] = len(outer)
    metrics["inner_group_by"] = {("all" if u.number == FINAL else str(u.number)): u.inner_group_by
                                 for u in result.units}
    metrics["selection"] = {("all" if s.unit == FINAL else str(s.unit)): _chosen(s) for s in result.selections}
    metrics["candidates"] = len(result.recipes)
    metrics["features"] = "+".join(datas) if len(datas) == 1 else f"selected from {', '.join(datas)}"
    metrics["model"] = "auto: " + " + ".join(f"{r.model}" for r, _ in result.selections[-1].members)
    metrics["seconds"] = result.seconds
    metrics["audit"] = {"outer_folds": config.folds, "inner_splits_audited": sum(len(u.inner) for u in result.units),
                        "passed": True}
    rows = []
    for s in result.selections:
        weights = {r.name: w for r, w in s.members}
        for name, score in s.scores.items():
            rows.append({"unit": "all" if s.unit == FINAL else s.unit, "recipe": name,
                         "inner_macro_f1": round(score, 6), "weight": round(weights.get(name, 0.0), 9)})
    pd.DataFrame(rows).to_csv(out / "selection.csv", index=False)
    artifacts.write_json(metrics["selection"], out / "recipes.json")
    write_cv(out, metrics, preds, labels,
             f"auto ({config.folds} outer folds, pooled macro-F1 {metrics['pooled']['macro_f1']:.3f})", config)
    save_ensemble([(r.to_json(), w, b) for r, w, b in result.final_bundles], out)
    log.info("auto: pooled macro-F1 %.3f over %d outer folds (%.0f s)", metrics["pooled"]["macro_f1"], config.folds,
             result.seconds)
    return metrics


def _chosen(selection) -> dict:
    return {"inner_macro_f1": selection.inner_macro_f1,
            "members": [{**r.to_json(), "recipe": r.name, "weight": w} for r, w in selection.members]}
