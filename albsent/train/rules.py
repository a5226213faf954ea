"""Selection rules: candidates' inner out-of-fold probabilities -> ensemble weights (Ray-free).

    probs: list of (rows, classes) arrays, one per candidate recipe, over the same rows
    y:     (rows,) int labels;  groups: (rows,) the speaker (or utterance) of each row

- `greedy_ensemble`: Caruana et al. (2004) forward selection with replacement for `max_size`
  rounds, cut to the best-scoring prefix (albsent's rule until issue 24).
- `bagged_ensemble` (the default): the same greedy selection repeated on `bags` resamples and
  averaged: each bag draws its rows as a bootstrap of whole groups (speakers) and its candidates
  as a random half (Caruana et al. 2004's model bagging). With few speakers one greedy run fits
  the noise of the inner estimate (a natural corpus with ~23 training speakers lost 0.06 to the
  best single recipe); averaging over resampled speakers keeps what holds across them.
  bench/selection_rules.py compares the rules on every development corpus.

Scores are pooled macro-F1 (`macro_f1`: a confusion-count implementation equal to scikit-learn's
f1_score(average="macro") with every class listed; ~50x faster, which the bags need).
"""

from __future__ import annotations

import numpy as np


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over classes 0..n_classes-1 of int predictions (a class never seen nor predicted scores 0)."""
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)))


def score(y: np.ndarray, probs: np.ndarray) -> float:
    return macro_f1(y, probs.argmax(1), probs.shape[1])


def greedy_ensemble(probs: list[np.ndarray], y: np.ndarray, max_size: int) -> tuple[list[int], float]:
    """Indices chosen (with repeats) by `max_size` rounds of forward selection with replacement,
    cut to the prefix with the best inner macro-F1 (the shortest among equals), and that score.
    Ties between candidates go to the earlier one, so the result is deterministic."""
    stack = np.stack(probs)  # (candidates, rows, classes)
    k = stack.shape[2]
    scores = [macro_f1(y, p.argmax(1), k) for p in stack]
    chosen = [int(np.argmax(scores))]
    total = stack[chosen[0]].copy()
    history = [scores[chosen[0]]]
    while len(chosen) < max_size:
        preds = (total[None] + stack).argmax(2)  # (candidates, rows)
        trial = [macro_f1(y, p, k) for p in preds]
        j = int(np.argmax(trial))
        chosen.append(j)
        total += stack[j]
        history.append(trial[j])
    best = int(np.argmax(history))
    return chosen[:best + 1], history[best]


def weights_of(chosen: list[int], n: int) -> np.ndarray:
    """(n,) how often each candidate was chosen, summing to 1."""
    w = np.bincount(chosen, minlength=n).astype(np.float64)
    return w / w.sum()


def top_k(probs: list[np.ndarray], y: np.ndarray, k: int) -> np.ndarray:
    """(candidates,) uniform weights on the k best candidates by inner macro-F1 (ties: the earlier)."""
    order = np.argsort([-score(y, p) for p in probs], kind="stable")
    return weights_of(order[:k].tolist(), len(probs))


def prune(weights: np.ndarray, min_weight: float) -> np.ndarray:
    """Weights below `min_weight` dropped and the rest renormalised (the largest always stays): a
    model of a few members instead of dozens of near-zero ones, each of which must be refitted,
    saved and run by predict."""
    w = np.where(weights >= min_weight, weights, 0.0)
    if not w.any():
        w[int(np.argmax(weights))] = 1.0
    return w / w.sum()


def bagged_ensemble(probs: list[np.ndarray], y: np.ndarray, groups: np.ndarray, max_size: int, bags: int = 20,
                    candidate_share: float = 0.5, seed: int = 0, min_weight: float = 0.0) -> np.ndarray:
    """(candidates,) weights summing to 1: the mean of `bags` greedy ensembles, each chosen on a
    bootstrap of whole groups (rows of a group drawn together, as often as the group is drawn)
    from a random `candidate_share` of the candidates, then `prune`d at `min_weight`. Seeded: the
    same inputs give the same weights."""
    rng = np.random.default_rng(seed)
    n = len(probs)
    stack = np.stack(probs)
    names, index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    members = [np.flatnonzero(index == g) for g in range(len(names))]
    total = np.zeros(n)
    for _ in range(bags):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(names), len(names))])
        pool = np.sort(rng.choice(n, size=max(1, int(round(n * candidate_share))), replace=False))
        chosen, _ = greedy_ensemble(list(stack[pool][:, rows]), y[rows], max_size)
        total[pool] += weights_of(chosen, len(pool))
    return prune(total / total.sum(), min_weight)
