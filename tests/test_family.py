"""Family scoring (albsent.train.family) equals fit() recipe by recipe: same scaling, same
scikit-learn estimators, the Gram-matrix shortcuts (RBF kernel, the logistic regression's span)
change nothing but the cost."""

from __future__ import annotations

import numpy as np
import pytest

from albsent.dataset import Data, parse
from albsent.dataset.splits import Split
from albsent.train import fit
from albsent.train.family import probabilities, score_family, temperature_of
from albsent.train.select import Recipe

LABELS = ["negative", "neutral", "positive"]


def data_of(n_speakers: int, per: int, dim: int, k: int = 3, seed: int = 0) -> Data:
    rng = np.random.default_rng(seed)
    n = n_speakers * per
    y = np.arange(n) % k
    spk = np.repeat([f"s{i}" for i in range(n_speakers)], per)
    X = (rng.normal(size=(n, dim)) + 1.5 * np.eye(k, dim)[y] + np.repeat(rng.normal(size=(n_speakers, dim)), per, 0))
    ids = np.array([f"u{i}" for i in range(n)], dtype=object)
    return Data(parse("mfcc"), X.astype(np.float32), np.array([LABELS[i] for i in y], dtype=object),
                np.array([f"speaker:{s}" for s in spk], dtype=object), "speaker", ids, ids.copy(),
                np.array([f"h{i}" for i in range(n)], dtype=object), np.array([None] * n, dtype=object), {},
                "memory://", {"config": {}}, spk.astype(object))


@pytest.mark.parametrize("dim,k", [(6, 3), (200, 3), (6, 2)])  # rows > dim; dim > rows (the span); binary
@pytest.mark.parametrize("speaker_norm", [False, True])
def test_family_scores_equal_fit(dim, k, speaker_norm):
    data = data_of(6, 12, dim, k)
    test = np.flatnonzero(np.isin(data.speakers, ["s0", "s3"]))
    split = Split(np.setdiff1d(np.arange(len(data)), test), test[:0], test)
    recipes = [Recipe("mfcc", speaker_norm, m, c) for m in ("sklearn_logreg", "svm_rbf", "svm_linear")
               for c in (0.1, 3.0)]
    scores = score_family(recipes, data, [split], seed=0)[0]
    for r, s in zip(recipes, scores):
        t = 1.7 if r.model != "sklearn_logreg" else None
        want = fit(r.config(0), data, split=split, temperature=t).probs
        got = probabilities(s, t or 1.0)
        np.testing.assert_allclose(got, want, atol=2e-4, err_msg=r.name)
        assert (got.argmax(1) == want.argmax(1)).mean() > 0.97


def test_temperature_of_calibrates_svm_scores_and_leaves_logreg_alone():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    scores = 4.0 * (np.eye(3)[y] + rng.normal(scale=0.8, size=(300, 3)))
    t = temperature_of("svm_rbf", scores, y)
    nll = lambda tt: -np.log(probabilities(scores, tt)[np.arange(300), y]).mean()  # noqa: E731
    assert nll(t) <= min(nll(t * 0.8), nll(t * 1.25)) and t > 1.5
    assert temperature_of("sklearn_logreg", scores, y) == 1.0


def test_fast_macro_f1_equals_scikit_learn():
    from sklearn.metrics import f1_score

    from albsent.train.rules import macro_f1

    rng = np.random.default_rng(1)
    for k in (2, 3, 5):
        y, pred = rng.integers(0, k, 200), rng.integers(0, k - 1, 200)  # class k-1 never predicted
        assert macro_f1(y, pred, k) == pytest.approx(f1_score(y, pred, average="macro", labels=list(range(k))))


def test_bagged_ensemble_is_seeded_and_prefers_what_holds_across_speakers():
    from albsent.train.rules import bagged_ensemble

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 10)
    y = rng.integers(0, 3, 120)
    truth = np.eye(3)[y]
    steady = 0.55 * truth + 0.45 * rng.dirichlet(np.ones(3), 120)  # right on every speaker, moderately
    lucky = rng.dirichlet(np.ones(3), 120)
    lucky[groups < 3] = truth[groups < 3]  # perfect on 3 speakers, noise elsewhere
    noise = [rng.dirichlet(np.ones(3), 120) for _ in range(4)]
    probs = [lucky, steady, *noise]
    w = bagged_ensemble(probs, y, groups, max_size=10, bags=20, seed=3)
    assert w.sum() == pytest.approx(1.0) and w[1] == w.max() and w[1] > 0.5
    np.testing.assert_array_equal(w, bagged_ensemble(probs, y, groups, max_size=10, bags=20, seed=3))


@pytest.mark.parametrize("k", [2, 3])
def test_torch_logreg_reaches_scikit_learns_optimum(k):
    from sklearn.linear_model import LogisticRegression

    from albsent.config import build
    from albsent.train import TrainConfig

    data = data_of(6, 15, 12, k)
    test = np.flatnonzero(data.speakers == "s0")
    rest = np.setdiff1d(np.arange(len(data)), test)
    split = Split(rest[:-15], rest[-15:], test)  # a validation part: unused, its rows train the model
    base = {"features": "mfcc", "C": 0.3, "class_weighted": True}
    torch_fit = fit(build(TrainConfig, {**base, "model": "logreg"}), data, split=split)
    sk_fit = fit(build(TrainConfig, {**base, "model": "sklearn_logreg"}), data, split=split)
    assert len(torch_fit.split.train) == len(rest) and torch_fit.val_metrics is None
    np.testing.assert_allclose(torch_fit.probs, sk_fit.probs, atol=2e-3)
    Xtr = (data.X[rest] - data.X[rest].mean(0)) / data.X[rest].std(0)
    ref = LogisticRegression(C=0.3, class_weight="balanced", tol=1e-10, max_iter=10000).fit(
        Xtr, [data.label_names.index(v) for v in data.labels[rest]])
    Xte = (data.X[test] - data.X[rest].mean(0)) / data.X[rest].std(0)
    np.testing.assert_allclose(torch_fit.probs, ref.predict_proba(Xte), atol=1e-3)


def test_rbf_svm_beyond_the_kernel_row_limit_trains_on_a_stratified_sample(monkeypatch):
    from albsent.train import estimators

    monkeypatch.setattr(estimators, "KERNEL_ROWS", 30)
    data = data_of(6, 12, 6)
    test = np.flatnonzero(data.speakers == "s0")
    split = Split(np.setdiff1d(np.arange(len(data)), test), test[:0], test)
    r = Recipe("mfcc", False, "svm_rbf", 1.0)
    res = fit(r.config(0), data, split=split, temperature=1.3)
    model = __import__("albsent.train.checkpoint", fromlist=["bundle_model"]).bundle_model(res.bundle)
    assert len(model.support) <= 30 and sorted(np.bincount(model.classes.numpy())) == [1, 1, 1]
    got = probabilities(score_family([r], data, [split], seed=0)[0][0], 1.3)
    np.testing.assert_allclose(got, res.probs, atol=2e-4)
    rows = estimators.kernel_rows(np.arange(60) % 3, seed=0)
    assert len(rows) == 30 and np.bincount(np.arange(60)[rows] % 3).tolist() == [10, 10, 10]


def test_successive_halving_scores_only_the_best_families_past_the_early_folds():
    from albsent.train.select import AutoConfig, candidates, select

    data = data_of(8, 9, 6)
    datas = {"mfcc": data, "shortterm": data_of(8, 9, 4, seed=1)}
    config = AutoConfig(folds=2, inner_folds=4, halving=0.5, min_weight=0.05)
    calls = []

    def mapper(fn, items):
        calls.extend((fn.__name__, a[4] if len(a) > 4 and isinstance(a[4], str) else "all") for a in items)
        return [fn(*a) for a in items]

    recipes = candidates(config, list(datas), has_speakers=True)
    out = select(config, datas, recipes, mapper)
    fams = 4  # 2 specs x 2 normalisations
    assert calls.count(("score_unit", "early")) == 3 * fams and calls.count(("score_unit", "late")) == 3 * fams // 2
    for s in out.selections:
        assert len(s.scores) == len(recipes) // 2 and all(w >= 0.05 for _, w in s.members)
        assert sum(w for _, w in s.members) == pytest.approx(1.0)
    assert sorted(i for u in out.units for i in u.test.tolist()) == list(range(len(data)))
