"""How the automatic selection turns inner scores into a model, judged by its worst corpus.

Every candidate recipe's inner out-of-fold raw scores and outer-test raw scores are computed once
per store with the same pieces `albsent train` runs (albsent.train.select.score_unit, one task per
recipe family and unit, on Ray) and cached as plain arrays (.npz, nothing unpickled). Each rule is
then applied offline to the same probabilities and scored by outer pooled macro-F1:

- single: the best recipe by inner pooled macro-F1
- greedy50: Caruana's forward selection with replacement, 50 rounds, best prefix (albsent's rule
  until issue 24)
- baggedB_sS: the greedy selection on B speaker bootstraps x random halves of the candidates,
  averaged (albsent.train.rules.bagged_ensemble; S = rounds per bag); the default is bagged20_s50
- topK: uniform average of the K best recipes by inner score
- nested12: the honest nested selection over the 12 plain recipes' albsent equivalents (MFCC,
  eGeMAPS functionals, both x global / per-speaker z x logistic regression / RBF SVM, C = 1):
  the best of them by inner score, per outer fold
- plain12 (hindsight): the best of those 12 on the outer folds, picked knowing the answers
- oracle (hindsight): the best single candidate on the outer folds

    .venv/bin/python bench/selection_rules.py --store NAME=STORE [--store NAME=STORE ...] [--cache-dir DIR]

Prints one row per rule and store, and each rule's worst margin over the stores against nested12
and plain12 (the criterion: a rule must not lose to them on any corpus).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def compute(store: str, cache: Path) -> dict:
    from albsent.runner.session import ray_session
    from albsent.runner.tasks import ray_mapper
    from albsent.train.auto import load_candidates
    from albsent.train.select import AutoConfig, families, inner_data, make_units, score_unit

    config = AutoConfig(store=store)
    datas, recipes = load_candidates(config)
    first = next(iter(datas.values()))
    units = [u for u in make_units(first, config) if u.number]
    fams = families(recipes)
    order = [r for f in fams for r in f]
    with ray_session(None):
        scored = ray_mapper()(score_unit, [(f, datas[f[0].features], u, config.seed) for u in units for f in fams])
    arrays = {"recipes": np.array([r.name for r in order]), "models": np.array([r.model for r in order]),
              "y": first.class_indices("selection")}
    for i, u in enumerate(units):
        parts = scored[i * len(fams):(i + 1) * len(fams)]
        arrays[f"train_{i}"], arrays[f"test_{i}"] = u.train, u.test
        arrays[f"groups_{i}"] = inner_data(first, u).groups[u.train].astype(str)
        fold = np.zeros(len(first), np.int64)
        for k, s in enumerate(u.inner):
            fold[s.test] = k
        arrays[f"fold_{i}"] = fold[u.train]
        arrays[f"oof_{i}"] = np.stack([o for oof, _ in parts for o in oof])
        arrays[f"outer_{i}"] = np.stack([o for _, test in parts for o in test])
    np.savez_compressed(cache, **arrays)
    return load(cache)


def load(cache: Path) -> dict:
    """The cached raw scores, calibrated as albsent calibrates them (per recipe and unit)."""
    from albsent.train.family import probabilities, temperature_of

    z = np.load(cache, allow_pickle=False)
    y, models = z["y"], z["models"].tolist()
    units = []
    for i in range(sum(1 for k in z.files if k.startswith("train_"))):
        train = z[f"train_{i}"]
        temps = [temperature_of(m, raw, y[train]) for m, raw in zip(models, z[f"oof_{i}"])]
        units.append(SimpleNamespace(train=train, test=z[f"test_{i}"], groups=z[f"groups_{i}"],
                                     fold=z[f"fold_{i}"] if f"fold_{i}" in z.files else None,
                                     oof=[probabilities(r, t) for r, t in zip(z[f"oof_{i}"], temps)],
                                     outer=[probabilities(r, t) for r, t in zip(z[f"outer_{i}"], temps)]))
    return {"recipes": z["recipes"].tolist(), "units": units, "y": y}


PLAIN = {f"{f} | {n} z | {m} C=1" for f in ("mfcc", "egemaps.func", "mfcc+egemaps.func") for n in ("global", "speaker")
         for m in ("sklearn_logreg", "svm_rbf")}


def rules(recipes: list[str]) -> dict:
    from albsent.train.rules import bagged_ensemble, greedy_ensemble, score, top_k, weights_of

    plain = [i for i, r in enumerate(recipes) if r in PLAIN]

    def best(probs, y, among):
        return weights_of([among[int(np.argmax([score(y, probs[j]) for j in among]))]], len(probs))

    family = [" | ".join(r.split(" | ")[:2]) for r in recipes]  # features | normalisation

    def halving(p, y, g, fold, keep, then=None):
        """Families ranked by their best recipe on the first 2 inner folds; the top `keep` share go on."""
        early = fold < 2
        top: dict[str, float] = {}
        for j, f in enumerate(family):
            top[f] = max(top.get(f, -1.0), score(y[early], p[j][early]))
        kept = set(sorted(top, key=top.get, reverse=True)[:max(1, int(np.ceil(len(top) * keep)))])
        survivors = [j for j, f in enumerate(family) if f in kept]
        w = np.zeros(len(p))
        sub = [p[j] for j in survivors]
        w[survivors] = then(sub, y) if then else bagged_ensemble(sub, y, g, 50, 20)
        return w

    out = {
        "single": lambda p, y, g, f: best(p, y, list(range(len(p)))),
        "nested12": lambda p, y, g, f: best(p, y, plain),
        "greedy50": lambda p, y, g, f: weights_of(greedy_ensemble(p, y, 50)[0], len(p)),
    }
    for bags, size, share in ((20, 50, 0.5), (20, 20, 0.5), (50, 50, 0.5), (20, 50, 1.0)):
        out[f"bagged{bags}_s{size}" + ("" if share == 0.5 else "_all")] = (
            lambda p, y, g, f, b=bags, s=size, c=share: bagged_ensemble(p, y, g, s, b, c))
    for mw in (0.02, 0.05):
        out[f"bagged20_s50_min{mw:g}"] = lambda p, y, g, f, m=mw: bagged_ensemble(p, y, g, 50, 20, min_weight=m)
    for keep in (0.5, 0.34):
        out[f"halving{keep:g}+bagged20"] = lambda p, y, g, f, k=keep: halving(p, y, g, f, k)
        for n in (10, 20):
            out[f"halving{keep:g}+top{n}"] = lambda p, y, g, f, k=keep, n=n: halving(p, y, g, f, k,
                                                                                      lambda q, yy: top_k(q, yy, n))
    for k in (5, 10, 15, 20, 30):
        out[f"top{k}"] = lambda p, y, g, f, k=k: top_k(p, y, k)
    return out


def evaluate(cached: dict) -> dict:
    from albsent.train.rules import score

    y, units, recipes = cached["y"], cached["units"], cached["recipes"]
    results = {}
    for name, rule in rules(recipes).items():
        if name.startswith("halving") and units[0].fold is None:
            continue
        probs = np.zeros((len(y), cached["units"][0].oof[0].shape[1]))
        for u in units:
            w = rule(u.oof, y[u.train], u.groups, u.fold)
            probs[u.test] = sum(wj * u.outer[j] for j, wj in enumerate(w) if wj > 0)
        results[name] = score(y, probs)
    singles = []
    for j, r in enumerate(recipes):
        probs = np.zeros((len(y), units[0].oof[0].shape[1]))
        for u in units:
            probs[u.test] = u.outer[j]
        singles.append((score(y, probs), r))
    results["plain12 (hindsight)"] = max(s for s, r in singles if r in PLAIN)
    results["oracle (hindsight)"] = max(singles)[0]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", action="append", required=True, metavar="NAME=STORE")
    ap.add_argument("--cache-dir", type=Path, help="where the computed scores are kept (default: beside each store)")
    args = ap.parse_args()
    table = {}
    for item in args.store:
        name, store = item.split("=", 1)
        cache = (args.cache_dir or Path(store).parent) / f"{Path(store).name}.rules2.npz"
        cached = load(cache) if cache.is_file() else compute(store, cache)
        table[name] = evaluate(cached)
    names = list(table)
    print("| rule | " + " | ".join(names) + " | worst vs nested12 | worst vs plain12 |")
    print("|---|" + "---|" * (len(names) + 2))
    for rule in next(iter(table.values())):
        vals = [table[n][rule] for n in names]
        worst_n = min(table[n][rule] - table[n]["nested12"] for n in names)
        worst_p = min(table[n][rule] - table[n]["plain12 (hindsight)"] for n in names)
        print(f"| {rule} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {worst_n:+.3f} | {worst_p:+.3f} |")


if __name__ == "__main__":
    main()
