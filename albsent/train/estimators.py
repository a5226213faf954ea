"""scikit-learn fits for the registry's `sklearn` models, written into their torch modules.

Each fitter takes standardised X: (rows, dim) float32 and y: (rows,) int in [0, n_classes)
and fills the module built by `albsent.models.build_model`:

- `sklearn_logreg`: LogisticRegression (lbfgs). With more features than rows it is fitted in
  the span of the training rows (the SVD's right singular vectors): an L2-penalised linear
  model's weights always lie in that span, so the optimum is the same, found in n instead of d
  dimensions (ComParE's 6,373 features: tens of times faster).
- `svm_rbf`: SVC on a precomputed RBF kernel (one BLAS matrix product instead of libsvm's
  per-pair kernel evaluations); gamma is scikit-learn's "scale", 1 / (dim * X.var()).
- `svm_linear`: LinearSVC (one-vs-rest).

SVM probabilities: the softmax of the one-vs-rest scores divided by a temperature that
minimises the log-loss of held-out scores (3 stratified folds of the training rows, grouped
when groups are given). The temperature never changes the predicted class.
"""

from __future__ import annotations

import numpy as np
import torch

from albsent.models.svm import ABSENT


def _copy_linear(model, W: np.ndarray, b: np.ndarray) -> None:
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(W.astype(np.float32)))
        model.linear.bias.copy_(torch.from_numpy(b.astype(np.float32)))


def _linear_weights(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, n_classes: int, dim: int):
    """scikit-learn's coef_/intercept_ (binary: one row for classes[1]) -> (n_classes, dim), (n_classes,)."""
    W = np.zeros((n_classes, dim), np.float64)
    b = np.full(n_classes, ABSENT, np.float64)  # a class absent from training is never predicted
    if len(classes) == 2 and coef.shape[0] == 1:  # binary: p(class 1) = sigmoid(w.x + b)
        W[classes[1]], b[classes[1]] = coef[0], intercept[0]
        b[classes[0]] = 0.0
    else:
        W[classes], b[classes] = coef, intercept
    return W, b


def fit_logreg(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool, seed: int,
               groups=None, max_iter: int = 2000) -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, np.float64)
    basis = None
    if X.shape[1] > X.shape[0]:
        _, _, basis = np.linalg.svd(X, full_matrices=False)  # (rank, dim), rows span the training rows
        X = X @ basis.T
    clf = LogisticRegression(C=C, class_weight="balanced" if class_weighted else None, max_iter=max_iter,
                             random_state=seed)
    clf.fit(X, y)
    coef = clf.coef_ @ basis if basis is not None else clf.coef_
    _copy_linear(model, *_linear_weights(coef, clf.intercept_, clf.classes_, n_classes, coef.shape[1]))


def rbf_kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    """(n, dim), (m, dim) -> (n, m) exp(-gamma |a - b|^2), float64."""
    sq = (A * A).sum(1)[:, None] - 2 * A @ B.T + (B * B).sum(1)[None, :]
    return np.exp(-gamma * np.maximum(sq, 0.0))


def _ovr_scores(dec: np.ndarray, k: int) -> np.ndarray:
    """scikit-learn's one-vs-rest transform of one-vs-one decisions (rows, pairs) -> (rows, k)."""
    from sklearn.utils.multiclass import _ovr_decision_function

    return _ovr_decision_function(dec < 0, -dec, k)


def _fit_temperature(scores: np.ndarray, y_idx: np.ndarray) -> float:
    """The t in [0.01, 100] minimising the mean log-loss of softmax(scores / t) (bounded search in log t)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    def loss(log_t: float) -> float:
        return float(-log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(y_idx)), y_idx].mean())

    best = minimize_scalar(loss, bounds=(np.log(0.01), np.log(100.0)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(best.x))


def _held_out_temperature(y: np.ndarray, classes: np.ndarray, groups, seed: int, scores) -> float:
    """The temperature fitted on held-out scores: scores(train_idx, test_idx) -> (len(test_idx),
    len(classes)) one-vs-rest scores of a model fitted on train_idx (1.0 when the rows are too few)."""
    held, target = [], []
    for tr, te in _calibration_folds(y, groups, seed):
        held.append(scores(tr, te))
        target.append(np.searchsorted(classes, y[te]))
    return _fit_temperature(np.concatenate(held), np.concatenate(target)) if held else 1.0


def _calibration_folds(y: np.ndarray, groups, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to 3 (train, held-out) index pairs over the training rows; empty if too few rows."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    counts = np.unique(y, return_counts=True)[1]
    n = int(min(3, counts.min())) if len(counts) > 1 else 0
    if n < 2:
        return []
    if groups is not None and len(set(groups)) >= n:
        cv = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
        folds = list(cv.split(np.zeros(len(y)), y, groups))
    else:
        folds = list(StratifiedKFold(n_splits=n, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return [(tr, te) for tr, te in folds if len(np.unique(y[tr])) == len(counts)]


def _svc(C: float, class_weighted: bool, seed: int):
    from sklearn.svm import SVC

    return SVC(C=C, kernel="precomputed", class_weight="balanced" if class_weighted else None, random_state=seed,
               decision_function_shape="ovo")


def fit_svm_rbf(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool, seed: int,
                groups=None) -> None:
    X = np.asarray(X, np.float64)
    var = float(X.var())
    gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
    K = rbf_kernel(X, X, gamma)  # (rows, rows)
    classes = np.unique(y)

    def scores(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        dec = _svc(C, class_weighted, seed).fit(K[np.ix_(tr, tr)], y[tr]).decision_function(K[np.ix_(te, tr)])
        return _ovr_scores(dec if len(classes) > 2 else _binary_ovo(dec), len(classes))

    temperature = _held_out_temperature(y, classes, groups, seed, scores) if len(classes) > 1 else 1.0
    with torch.no_grad():
        model.classes = torch.from_numpy(classes.astype(np.int64))
        model.gamma = torch.tensor(gamma, dtype=torch.float32)
        model.temperature = torch.tensor(temperature, dtype=torch.float32)
        if len(classes) == 1:
            model.support = torch.zeros(0, X.shape[1])
            return
        svc = _svc(C, class_weighted, seed).fit(K, y)
        model.support = torch.from_numpy(X[svc.support_].astype(np.float32))
        model.dual_coef = torch.from_numpy(svc.dual_coef_.astype(np.float32))
        # scikit-learn flips the sign of a binary SVC's intercept and decision; libsvm's raw pair
        # decision (first class positive) is what KernelSVM computes.
        intercept = -svc.intercept_ if len(classes) == 2 else svc.intercept_
        model.intercept = torch.from_numpy(intercept.astype(np.float32))
        if len(classes) == 2:
            model.dual_coef = -model.dual_coef
        model.n_support = torch.from_numpy(svc.n_support_.astype(np.int64))


def _binary_ovo(dec: np.ndarray) -> np.ndarray:
    """A binary SVC's decision (> 0: classes_[1]) as libsvm's one pair decision (> 0: classes_[0])."""
    return -dec[:, None]


def fit_svm_linear(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool, seed: int,
                   groups=None) -> None:
    from sklearn.svm import LinearSVC

    def make():
        return LinearSVC(C=C, class_weight="balanced" if class_weighted else None, max_iter=10000, random_state=seed)

    X = np.asarray(X, np.float64)
    classes = np.unique(y)
    temperature = 1.0
    if len(classes) > 2:  # a binary LinearSVC has one decision value, not one score per class
        temperature = _held_out_temperature(y, classes, groups, seed,
                                            lambda tr, te: make().fit(X[tr], y[tr]).decision_function(X[te]))
    if len(classes) == 1:
        W, b = np.zeros((n_classes, X.shape[1])), np.full(n_classes, ABSENT)
        b[classes[0]] = 0.0
    else:
        clf = make().fit(X, y)
        W, b = _linear_weights(clf.coef_, clf.intercept_, clf.classes_, n_classes, X.shape[1])
    _copy_linear(model, W / temperature, np.where(b > ABSENT / 2, b / temperature, ABSENT))


FITTERS = {"sklearn_logreg": fit_logreg, "svm_rbf": fit_svm_rbf, "svm_linear": fit_svm_linear}


def fit_sklearn(name: str, model, X, y, n_classes: int, **kwargs) -> None:
    """Fit registry model `name` (an `sklearn` entry) on X, y into `model`."""
    FITTERS[name](model, X, y, n_classes, **kwargs)
