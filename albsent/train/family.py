"""Score every recipe that shares a feature spec, a normalisation and augmentation in one pass (Ray-free).

The automatic selection (albsent.train.select) scores each candidate recipe on each unit's inner
splits. Recipes of one *family* (same features, same normalisation; different classifier or C)
share all the expensive work of a split: the scaling, the Gram matrix of the training rows
(rows x rows, one BLAS product; ComParE's 6,373 dimensions make it most of the cost), the RBF
kernel derived from it and the training rows' span for the logistic regression. So a family is
one task, and each split computes those once for every (model, C).

Outputs are *raw scores* per recipe and split: log-probabilities for `sklearn_logreg` (already a
probability model) and one-vs-rest scores for `svm_rbf` / `svm_linear`, which become probabilities
with a temperature fitted on a unit's inner out-of-fold scores (`temperature_of`), the honest
held-out calibration the refitted model then uses too (`fit(..., temperature=t)`). Each recipe's
scores equal `fit(recipe.config(seed), data, split=...)`'s for the same split and temperature
(tests/test_family.py), computed from the same scikit-learn estimators on the same arrays.
"""

from __future__ import annotations

import numpy as np

from albsent.dataset.data import Data, TrainingRows, require_two_classes, training_rows
from albsent.dataset.normalize import Scaling, take
from albsent.dataset.splits import Split
from albsent.models.svm import ABSENT
from albsent.train.estimators import (
    binary_ovo,
    fit_temperature,
    kernel_rows,
    linear_svc,
    linear_weights,
    logistic_regression,
    ovr_scores,
    rbf_from_gram,
    rbf_gamma,
    rbf_svc,
)

SCORED = ("sklearn_logreg", "svm_rbf", "svm_linear")  # the models a family can score
CALIBRATED = ("svm_rbf", "svm_linear")  # raw scores need a temperature


def _scaled(data: Data, speaker_norm: bool, split: Split, train: TrainingRows) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) rows scaled as fit() scales them: float64 (rows, dim). train: split.train's
    inputs (with their augmented copies for an augmented recipe)."""
    spk = data.speakers if speaker_norm else None
    Xtr, s_tr = train.X, (train.speakers(spk) if spk is not None else None)
    Xte, s_te = take(data.X, split.test), (spk[split.test] if spk is not None else None)
    scaling = Scaling.fit(Xtr, s_tr, speaker=speaker_norm, standardize=True)
    return np.asarray(scaling(Xtr, s_tr), np.float64), np.asarray(scaling(Xte, s_te), np.float64)


def _span(Xtr: np.ndarray, Xte: np.ndarray, G: np.ndarray, C_te: np.ndarray):
    """Training and test rows in coordinates of the training rows' span, from the Gram matrix:
    Xtr = U S V^T -> Xtr V = U S, Xte V = (Xte Xtr^T) U / S. Directions with S ~ 0 carry no data."""
    lam, U = np.linalg.eigh(G)
    keep = lam > lam.max() * 1e-12
    s = np.sqrt(lam[keep])
    U = U[:, keep]
    return U * s, (C_te @ U) / s


def _softmax_logits(coef, intercept, classes, n_classes: int, X: np.ndarray) -> np.ndarray:
    W, b = linear_weights(coef, intercept, classes, n_classes, coef.shape[1])
    z = X @ W.T + b
    z -= z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _svm_scores(dec: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.full((dec.shape[0], n_classes), ABSENT, np.float64)
    out[:, classes] = ovr_scores(dec if len(classes) > 2 else binary_ovo(dec), len(classes))
    return out


def score_split(recipes, data: Data, split: Split, y: np.ndarray, seed: int) -> list[np.ndarray]:
    """Raw scores (len(split.test), classes) of each recipe (one family) trained on split.train."""
    first = recipes[0]
    train = training_rows(data, split.train, first.augmented)
    Xtr, Xte = _scaled(data, first.speaker_norm, split, train)
    names = data.label_names
    ytr, n_classes = y[train.source], len(names)
    classes = np.unique(ytr)
    n, d = Xtr.shape
    G = C_te = None
    if d > n and any(r.model == "sklearn_logreg" for r in recipes):  # the span needs every training row
        G, C_te = Xtr @ Xtr.T, Xte @ Xtr.T
    require_two_classes([names[c] for c in classes], "a family split's training rows", "scoring")
    out, kernels, span = [], None, None
    for r in recipes:
        if r.model == "svm_rbf":
            if kernels is None:  # the kernel of the SVM's rows (albsent.train.estimators.kernel_rows)
                keep = kernel_rows(ytr, seed)
                Xk = Xtr[keep]
                Gk, Ck = (G[np.ix_(keep, keep)], C_te[:, keep]) if G is not None else (Xk @ Xk.T, Xte @ Xk.T)
                sq_k, sq_te = (Xk * Xk).sum(1), (Xte * Xte).sum(1)
                gamma = rbf_gamma(Xk)
                kernels = (rbf_from_gram(Gk, sq_k, sq_k, gamma), rbf_from_gram(Ck, sq_te, sq_k, gamma), keep)
            svc = rbf_svc(r.C, True, seed).fit(kernels[0], ytr[kernels[2]])
            out.append(_svm_scores(svc.decision_function(kernels[1]), classes, n_classes))
        elif r.model == "svm_linear":
            clf = linear_svc(r.C, True, seed).fit(Xtr, ytr)
            dec = clf.decision_function(Xte)
            if len(classes) == 2:  # one decision value: logits (0, d), as the exported linear layer
                W, b = linear_weights(clf.coef_, clf.intercept_, clf.classes_, n_classes, d)
                out.append(np.where(b > ABSENT / 2, Xte @ W.T + b, ABSENT))
            else:
                s = np.full((len(Xte), n_classes), ABSENT)
                s[:, classes] = dec
                out.append(s)
        elif r.model == "sklearn_logreg":
            if d > n:
                span = span or _span(Xtr, Xte, G, C_te)
                Ztr, Zte = span
            else:
                Ztr, Zte = Xtr, Xte
            clf = logistic_regression(r.C, True, seed).fit(Ztr.astype(np.float32), ytr)
            out.append(_softmax_logits(clf.coef_, clf.intercept_, clf.classes_, n_classes, Zte))
        else:
            raise ValueError(f"model {r.model!r} cannot be scored in a family; expected one of {SCORED}")
    return out


def score_family(recipes, data: Data, splits: list[Split], seed: int) -> list[list[np.ndarray]]:
    """[split][recipe] raw scores of a family over `splits`."""
    y = data.class_indices("scoring a family")
    return [score_split(recipes, data, s, y, seed) for s in splits]


def temperature_of(model: str, scores: np.ndarray, y: np.ndarray) -> float:
    """The calibration temperature of a recipe from held-out raw scores (rows, classes) and
    labels (rows,): fitted for SVMs (albsent.train.estimators' rule), 1.0 for logistic regression."""
    if model not in CALIBRATED:
        return 1.0
    present = np.flatnonzero((scores > ABSENT / 2).all(0))
    if len(present) < 2 or model == "svm_linear" and len(present) == 2:  # a binary LinearSVC is not calibrated
        return 1.0
    return fit_temperature(scores[:, present], np.searchsorted(present, y))


def probabilities(scores: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(scores / temperature), absent classes (ABSENT) staying at ~0."""
    z = np.where(scores > ABSENT / 2, scores / temperature, ABSENT)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
