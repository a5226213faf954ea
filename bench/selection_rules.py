"""How the automatic selection turns inner scores into a model: every candidate recipe's inner
out-of-fold probabilities and outer test probabilities are computed once (the same pieces
`albsent train --auto` runs, on Ray) and cached; then each rule is applied offline, on the same
probabilities, and scored by outer pooled macro-F1:

- single: the best recipe by inner pooled macro-F1
- greedyM: Caruana's forward selection with replacement, stopped at the first round without a gain
- greedyM_prefix: M rounds, kept to the best-scoring prefix (albsent's rule, M = ensemble_size)
- topK: uniform average of the K best recipes by inner score
- stack_C: logistic regression on the candidates' inner log-probabilities
- oracle: each single recipe on the outer folds, picked with hindsight (not a selection rule)

    .venv/bin/python bench/selection_rules.py --store STORE [--cache FILE]

The README's figures (EMO-DB / EmoSpeech stores of bench/accuracy.py): computing the cache takes
~2 min and ~10 min on 2 cores; the rules take seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


def compute(store: str, cache: Path) -> dict:
    from albsent.pipeline.cluster import ray_session
    from albsent.sweep.auto import ray_mapper
    from albsent.train.auto import load_candidates
    from albsent.train.select import AutoConfig, make_units, score_recipe

    config = AutoConfig(store=store)
    datas, recipes = load_candidates(config)
    first = next(iter(datas.values()))
    units = make_units(first, config)
    with ray_session(None):
        mapper = ray_mapper()
        oof = mapper(score_recipe, [(r, datas[r.features], u, config.seed) for u in units for r in recipes])
        test = mapper(test_probs, [(r, datas[r.features], u, config.seed) for u in units if u.number for r in recipes])
    labels = first.label_names
    arrays = {"recipes": np.array([r.name for r in recipes]), "y": np.array([labels.index(v) for v in first.labels]),
              "numbers": np.array([u.number for u in units])}
    arrays.update({f"train_{i}": u.train for i, u in enumerate(units)})
    arrays.update({f"test_{i}": u.test for i, u in enumerate(units)})
    arrays.update({f"oof_{i}": p for i, p in enumerate(oof)})
    arrays.update({f"outer_{i}": p for i, p in enumerate(test)})
    np.savez_compressed(cache, **arrays)
    return load(cache)


def load(cache: Path) -> dict:
    """The cached probabilities (an .npz of plain arrays; nothing is unpickled)."""
    z = np.load(cache, allow_pickle=False)
    numbers = z["numbers"].tolist()
    units = [SimpleNamespace(number=n, train=z[f"train_{i}"], test=z[f"test_{i}"]) for i, n in enumerate(numbers)]
    n_oof = len(units) * len(z["recipes"])
    n_outer = sum(1 for u in units if u.number) * len(z["recipes"])
    return {"recipes": z["recipes"].tolist(), "units": units, "y": z["y"],
            "oof": [z[f"oof_{i}"] for i in range(n_oof)], "test": [z[f"outer_{i}"] for i in range(n_outer)]}


def test_probs(recipe, data, unit, seed):
    from albsent.train.select import refit_member

    return refit_member(recipe, data, unit, seed)[0]


def macro_f1(y, probs) -> float:
    return f1_score(y, probs.argmax(1), average="macro", labels=list(range(probs.shape[1])))


def greedy_stop(probs: list, y, rounds: int) -> list[int]:
    """Forward selection with replacement, stopped at the first round without a gain (the usual
    shortcut; albsent's rule is albsent.train.select.greedy_ensemble)."""
    scores = [macro_f1(y, p) for p in probs]
    chosen = [int(np.argmax(scores))]
    total, best = probs[chosen[0]].copy(), scores[chosen[0]]
    while len(chosen) < rounds:
        trial = [macro_f1(y, total + p) for p in probs]
        j = int(np.argmax(trial))
        if trial[j] <= best:
            break
        chosen.append(j)
        total += probs[j]
        best = trial[j]
    return chosen


def stack(C: float):
    def rule(probs, y, test):
        Z = np.log(np.clip(np.hstack(probs), 1e-6, 1))
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000).fit(Z, y)
        return model.predict_proba(np.log(np.clip(np.hstack(test), 1e-6, 1)))

    return rule


def rules() -> dict:
    from albsent.train.select import greedy_ensemble

    def pick(chooser):
        return lambda probs, y, test: sum(test[j] for j in chooser(probs, y))

    out = {"single": pick(lambda p, y: [int(np.argmax([macro_f1(y, q) for q in p]))])}
    for m in (10, 20, 50, 100):
        out[f"greedy{m}"] = pick(lambda p, y, m=m: greedy_stop(p, y, m))
        out[f"greedy{m}_prefix"] = pick(lambda p, y, m=m: greedy_ensemble(p, y, m)[0])
    for k in (3, 10, 20):
        out[f"top{k}"] = pick(lambda p, y, k=k: list(np.argsort([macro_f1(y, q) for q in p])[::-1][:k]))
    for c in (0.01, 0.1, 1.0):
        out[f"stack_C{c}"] = stack(c)
    return out


def evaluate(cached: dict) -> dict:
    units, y, n = cached["units"], cached["y"], len(cached["recipes"])
    outer = [u for u in units if u.number]
    results = {}
    for name, rule in rules().items():
        pred = np.zeros(len(y), int)
        for k, u in enumerate(outer):
            i = units.index(u)
            probs, test = cached["oof"][i * n:(i + 1) * n], cached["test"][k * n:(k + 1) * n]
            pred[u.test] = rule(probs, y[u.train], test).argmax(1)
        results[name] = f1_score(y, pred, average="macro")
    oracle = []
    for r in range(n):
        pred = np.zeros(len(y), int)
        for k, u in enumerate(outer):
            pred[u.test] = cached["test"][k * n + r].argmax(1)
        oracle.append((f1_score(y, pred, average="macro"), cached["recipes"][r]))
    results["oracle (hindsight)"] = max(oracle)[0]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--cache", type=Path, help="the computed probabilities (default STORE.rules.npz)")
    args = ap.parse_args()
    cache = args.cache or Path(f"{args.store.rstrip('/')}.rules.npz")
    cached = load(cache) if cache.is_file() else compute(args.store, cache)
    print("| rule | outer pooled macro-F1 |\n|---|---|")
    for name, value in evaluate(cached).items():
        print(f"| {name} | {value:.3f} |")


if __name__ == "__main__":
    main()
