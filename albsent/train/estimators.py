"""scikit-learn fits for the registry's `sklearn` models, written into their torch modules. Each
model's registration names its fitter here (`fitter="albsent.train.estimators:fit_svm_rbf"`).

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

from albsent.dataset.splits import stratified_folds
from albsent.models.registry import get_model
from albsent.models.svm import ABSENT


def _copy_linear(model, W: np.ndarray, b: np.ndarray) -> None:
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(W.astype(np.float32)))
        model.linear.bias.copy_(torch.from_numpy(b.astype(np.float32)))


def linear_weights(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, n_classes: int, dim: int):
    """scikit-learn's coef_/intercept_ (binary: one row for classes[1]) -> (n_classes, dim), (n_classes,)."""
    W = np.zeros((n_classes, dim), np.float64)
    b = np.full(n_classes, ABSENT, np.float64)  # a class absent from training is never predicted
    if len(classes) == 2 and coef.shape[0] == 1:  # binary: p(class 1) = sigmoid(w.x + b)
        W[classes[1]], b[classes[1]] = coef[0], intercept[0]
        b[classes[0]] = 0.0
    else:
        W[classes], b[classes] = coef, intercept
    return W, b


def logistic_regression(C: float, class_weighted: bool, seed: int, max_iter: int = 2000):
    """The scikit-learn estimator behind `sklearn_logreg` (also albsent.train.family's); both fit it
    on float32 rows."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, class_weight="balanced" if class_weighted else None, max_iter=max_iter,
                              random_state=seed)


def linear_svc(C: float, class_weighted: bool, seed: int):
    """The scikit-learn estimator behind `svm_linear`."""
    from sklearn.svm import LinearSVC

    return LinearSVC(C=C, class_weight="balanced" if class_weighted else None, max_iter=10000, random_state=seed)


def rbf_gamma(X: np.ndarray) -> float:
    """scikit-learn's gamma="scale" for standardised training rows X: (rows, dim)."""
    var = float(X.var())
    return 1.0 / (X.shape[1] * var) if var > 0 else 1.0


def fit_logreg(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool, seed: int,
               groups=None, max_iter: int = 2000) -> None:
    X = np.asarray(X, np.float64)
    basis = None
    if X.shape[1] > X.shape[0]:
        _, _, basis = np.linalg.svd(X, full_matrices=False)  # (rank, dim), rows span the training rows
        X = X @ basis.T
    clf = logistic_regression(C, class_weighted, seed, max_iter)
    clf.fit(X.astype(np.float32), y)  # float32: lbfgs is memory-bound here, ~2x faster, the same optimum to tol
    coef = clf.coef_ @ basis if basis is not None else clf.coef_
    _copy_linear(model, *linear_weights(coef, clf.intercept_, clf.classes_, n_classes, coef.shape[1]))


KERNEL_ROWS = 4000  # an RBF SVM trains on at most this many rows: kernel memory and time stay bounded


def kernel_rows(y: np.ndarray, seed: int, limit: int | None = None) -> np.ndarray:
    """Indices of the training rows an RBF SVM uses: all of them up to `limit`, else a seeded
    sample of `limit` stratified by class (each class keeps its share, at least one row). Beyond
    ~4,000 rows the kernel (rows x rows) and libsvm's time grow quadratically while the accuracy
    of an SVM with gamma="scale" barely moves; the auto selection's time stays near-linear in rows
    (bench/auto_cost.py)."""
    limit = limit or KERNEL_ROWS
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        take = max(1, int(round(limit * len(rows) / len(y))))
        picked.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))


def rbf_kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    """(n, dim), (m, dim) -> (n, m) exp(-gamma |a - b|^2), float64."""
    return rbf_from_gram(A @ B.T, (A * A).sum(1), (B * B).sum(1), gamma)


def rbf_from_gram(G: np.ndarray, sq_a: np.ndarray, sq_b: np.ndarray, gamma: float) -> np.ndarray:
    """The RBF kernel from inner products G = A B^T: (n, m) and squared norms sq_a: (n,), sq_b: (m,)."""
    return np.exp(-gamma * np.maximum(sq_a[:, None] - 2 * G + sq_b[None, :], 0.0))


def ovr_scores(dec: np.ndarray, k: int) -> np.ndarray:
    """scikit-learn's one-vs-rest transform of one-vs-one decisions (rows, pairs) -> (rows, k)."""
    from sklearn.utils.multiclass import _ovr_decision_function

    return _ovr_decision_function(dec < 0, -dec, k)


def fit_temperature(scores: np.ndarray, y_idx: np.ndarray) -> float:
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
    return fit_temperature(np.concatenate(held), np.concatenate(target)) if held else 1.0


def _calibration_folds(y: np.ndarray, groups, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to 3 (train, held-out) index pairs over the training rows (albsent.dataset.splits'
    stratified folds, grouped when there are enough groups); empty if too few rows."""
    counts = np.unique(y, return_counts=True)[1]
    n = int(min(3, counts.min())) if len(counts) > 1 else 0
    if n < 2:
        return []
    enough = groups is not None and len(set(groups)) >= n  # else by row: a calibration may share speakers
    folds = stratified_folds(y, groups if enough else None, n, seed, "the SVM calibration folds")
    return [(tr, te) for tr, te in folds if len(np.unique(y[tr])) == len(counts)]


def rbf_svc(C: float, class_weighted: bool, seed: int):
    from sklearn.svm import SVC

    return SVC(C=C, kernel="precomputed", class_weight="balanced" if class_weighted else None, random_state=seed,
               decision_function_shape="ovo")


def fit_svm_rbf(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool, seed: int,
                groups=None, temperature: float | None = None) -> None:
    """temperature: a calibration fitted elsewhere on held-out scores (the automatic selection's
    inner folds); None fits it here on 3 held-out folds of X."""
    keep = kernel_rows(y, seed)
    X, y = np.asarray(X, np.float64)[keep], y[keep]
    groups = None if groups is None else np.asarray(groups)[keep]
    gamma = rbf_gamma(X)
    K = rbf_kernel(X, X, gamma)  # (rows, rows)
    classes = np.unique(y)

    def scores(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        dec = rbf_svc(C, class_weighted, seed).fit(K[np.ix_(tr, tr)], y[tr]).decision_function(K[np.ix_(te, tr)])
        return ovr_scores(dec if len(classes) > 2 else binary_ovo(dec), len(classes))

    if temperature is None:
        temperature = _held_out_temperature(y, classes, groups, seed, scores) if len(classes) > 1 else 1.0
    with torch.no_grad():
        model.classes = torch.from_numpy(classes.astype(np.int64))
        model.gamma = torch.tensor(gamma, dtype=torch.float32)
        model.temperature = torch.tensor(temperature, dtype=torch.float32)
        if len(classes) == 1:
            model.support = torch.zeros(0, X.shape[1])
            return
        svc = rbf_svc(C, class_weighted, seed).fit(K, y)
        model.support = torch.from_numpy(X[svc.support_].astype(np.float32))
        model.dual_coef = torch.from_numpy(svc.dual_coef_.astype(np.float32))
        # scikit-learn flips the sign of a binary SVC's intercept and decision; libsvm's raw pair
        # decision (first class positive) is what KernelSVM computes.
        intercept = -svc.intercept_ if len(classes) == 2 else svc.intercept_
        model.intercept = torch.from_numpy(intercept.astype(np.float32))
        if len(classes) == 2:
            model.dual_coef = -model.dual_coef
        model.n_support = torch.from_numpy(svc.n_support_.astype(np.int64))


def binary_ovo(dec: np.ndarray) -> np.ndarray:
    """A binary SVC's decision (> 0: classes_[1]) as libsvm's one pair decision (> 0: classes_[0])."""
    return -dec[:, None]


def fit_svm_linear(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool, seed: int,
                   groups=None, temperature: float | None = None) -> None:
    def make():
        return linear_svc(C, class_weighted, seed)

    X = np.asarray(X, np.float64)
    classes = np.unique(y)
    if temperature is None:
        temperature = 1.0
        if len(classes) > 2:  # a binary LinearSVC has one decision value, not one score per class
            temperature = _held_out_temperature(y, classes, groups, seed,
                                                lambda tr, te: make().fit(X[tr], y[tr]).decision_function(X[te]))
    if len(classes) == 1:
        W, b = np.zeros((n_classes, X.shape[1])), np.full(n_classes, ABSENT)
        b[classes[0]] = 0.0
    else:
        clf = make().fit(X, y)
        W, b = linear_weights(clf.coef_, clf.intercept_, clf.classes_, n_classes, X.shape[1])
    _copy_linear(model, W / temperature, np.where(b > ABSENT / 2, b / temperature, ABSENT))


def fit_torch_logreg(model, X: np.ndarray, y: np.ndarray, n_classes: int, *, C: float, class_weighted: bool,
                     max_iter: int = 500) -> None:
    """The registry's torch `logreg` on pooled rows, solved to scikit-learn's optimum: full-batch
    L-BFGS (float64, strong Wolfe line search) on LogisticRegression's objective,
    0.5 ||W||^2 + C sum_i s_i CE_i (s_i: "balanced" class weights or 1; intercepts not penalised),
    multinomial over the classes present, one logit vector when two are (as scikit-learn does)."""
    Xt = torch.from_numpy(np.asarray(X, np.float64))
    classes = np.unique(y)
    idx = torch.from_numpy(np.searchsorted(classes, y))
    counts = np.bincount(idx.numpy(), minlength=len(classes))
    s = len(y) / (len(classes) * counts) if class_weighted else np.ones(len(classes))
    weight = torch.from_numpy(np.asarray(s, np.float64))[idx]
    rows = 1 if len(classes) == 2 else len(classes)
    W = torch.zeros(rows, Xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(rows, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=30, line_search_fn="strong_wolfe")
    n = float(len(y))

    def closure():
        opt.zero_grad()
        z = Xt @ W.T + b
        if rows == 1:
            z = torch.cat([torch.zeros_like(z), z], 1)
        loss = (weight * torch.nn.functional.cross_entropy(z, idx, reduction="none")).sum() / n
        loss = loss + 0.5 * (W * W).sum() / (C * n)  # the objective / (C n): same optimum, better scaled
        loss.backward()
        return loss

    if len(classes) > 1:
        opt.step(closure)
    coef, intercept = W.detach().numpy(), b.detach().numpy()
    if len(classes) == 1:
        coef, intercept = np.zeros((1, Xt.shape[1])), np.zeros(1)
    _copy_linear(model, *linear_weights(coef, intercept, classes, n_classes, Xt.shape[1]))


def fit_sklearn(name: str, model, X, y, n_classes: int, **kwargs) -> None:
    """Fit registry model `name` (an `sklearn` entry) on X, y into `model`, with the fitter its
    registration names (albsent.models.registry.ModelEntry.fitter)."""
    get_model(name).fit(model, X, y, n_classes, **kwargs)
