"""Accuracy machinery: exported SVMs equal scikit-learn, the span-reduced logistic regression
equals the full one, speaker normalisation, greedy ensembles, nested selection without
leakage, and `albsent train` (auto by default) -> `albsent predict` end to end on Ray."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from albsent.cli import main
from albsent.config import build
from albsent.dataset import Data, parse
from albsent.dataset.normalize import Normalizer, Scaling, by_speaker
from albsent.errors import ConfigError
from albsent.models import build_model
from albsent.train import TrainConfig, fit
from albsent.train.estimators import fit_sklearn
from albsent.train.select import AutoConfig, Recipe, candidates, greedy_ensemble, make_units, select

pytestmark = pytest.mark.usefixtures("torch_one_thread")
HP = {"hidden_size": 4, "num_layers": 1, "dropout": 0.0, "pooling": "mean"}
LABELS = ["negative", "neutral", "positive"]


def blobs(n: int, dim: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(n, dim)) + 1.5 * np.eye(k, dim)[y]
    return X.astype(np.float32), y


@pytest.mark.parametrize("k", [2, 3, 4])
def test_svm_rbf_export_equals_sklearn(k):
    X, y = blobs(90, 6, k)
    model = build_model("svm_rbf", 6, k, HP)
    fit_sklearn("svm_rbf", model, X, y, k, C=1.0, class_weighted=True, seed=0)
    ref = SVC(C=1.0, gamma="scale", class_weight="balanced", break_ties=True).fit(X.astype(np.float64), y)
    Xt, _ = blobs(40, 6, k, seed=1)
    with torch.no_grad():
        logits = model(torch.from_numpy(Xt))
    np.testing.assert_array_equal(logits.argmax(1).numpy(), ref.predict(Xt))
    if k > 2:  # the one-vs-rest scores themselves, before the temperature
        np.testing.assert_allclose((logits * model.temperature).numpy(), ref.decision_function(Xt), atol=1e-4)
    again = build_model("svm_rbf", 6, k, HP)
    again.load_state_dict(model.state_dict())  # buffer sizes come from the state dict
    torch.testing.assert_close(again(torch.from_numpy(Xt)), logits)


def test_svm_class_absent_from_training_is_never_predicted():
    X, y = blobs(60, 4, 2)
    for name in ("svm_rbf", "svm_linear", "sklearn_logreg"):
        model = build_model(name, 4, 3, HP)
        fit_sklearn(name, model, X, y, 3, C=1.0, class_weighted=False, seed=0)
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(X)), 1)
        assert probs[:, 2].max() < 1e-6 and probs.argmax(1).tolist() == model(torch.from_numpy(X)).argmax(1).tolist()


def test_svm_temperature_calibrates_held_out_probabilities():
    X, y = blobs(240, 6, 3)
    model = build_model("svm_rbf", 6, 3, HP)
    fit_sklearn("svm_rbf", model, X[:120], y[:120], 3, C=1.0, class_weighted=True, seed=0)
    with torch.no_grad():
        scores = model(torch.from_numpy(X[120:])) * model.temperature
    nll = lambda t: float(torch.nn.functional.cross_entropy(scores / t, torch.from_numpy(y[120:])))  # noqa: E731
    fitted = float(model.temperature)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 200))
    best = grid[int(np.argmin([nll(t) for t in grid]))]  # the temperature new data would want
    assert abs(np.log(fitted / best)) < np.log(2) and nll(fitted) < min(nll(0.1), nll(10.0))


def test_span_reduced_logreg_equals_full_logreg():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 300)).astype(np.float32), np.arange(40) % 3
    model = build_model("sklearn_logreg", 300, 3, HP)
    fit_sklearn("sklearn_logreg", model, X, y, 3, C=0.1, class_weighted=True, seed=0)
    ref = LogisticRegression(C=0.1, class_weight="balanced", max_iter=10000, tol=1e-10).fit(X.astype(np.float64), y)
    Xt = rng.normal(size=(20, 300)).astype(np.float32)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(Xt)), 1).numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(Xt), atol=2e-3)


def test_by_speaker_uses_each_speakers_statistics_and_falls_back_for_singletons():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 3)).astype(np.float32)
    X[:3] += 100.0  # speaker a lives far away
    spk = np.array(["a", "a", "a", "b", "b", "b", "c"], dtype=object)
    fallback = Normalizer.fit(X)
    out = by_speaker(X, spk, fallback)
    for s in ("a", "b"):
        np.testing.assert_allclose(out[spk == s].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(out[spk == s].std(0), 1, atol=1e-4)
    np.testing.assert_allclose(out[6], fallback(X[6:7])[0], rtol=1e-6)  # one row: training statistics
    sc = Scaling.fit(X[:6], spk[:6], speaker=True)
    again = Scaling.from_json(json.loads(json.dumps(sc.to_json())))
    np.testing.assert_allclose(again(X, spk), sc(X, spk), rtol=1e-6)
    assert again.speaker and not Scaling.from_json(Normalizer.fit(X).to_json()).speaker


def speaker_data(n_speakers: int = 6, per: int = 12, seed: int = 0) -> Data:
    """Classes shift the first dims; each speaker adds a large offset of its own (speaker
    normalisation removes it), and no dim separates classes globally by much."""
    rng = np.random.default_rng(seed)
    n = n_speakers * per
    y = np.arange(n) % 3
    spk = np.repeat([f"s{i}" for i in range(n_speakers)], per)
    offset = np.repeat(rng.normal(scale=6.0, size=(n_speakers, 4)), per, axis=0)
    X = (rng.normal(size=(n, 4)) + 1.2 * np.eye(3, 4)[y] + offset).astype(np.float32)
    ids = np.array([f"u{i}" for i in range(n)], dtype=object)
    labels = np.array([LABELS[i] for i in y], dtype=object)
    return Data(parse("mfcc"), X, labels, np.array([f"speaker:{s}" for s in spk], dtype=object), "speaker", ids,
                ids.copy(), np.array([f"h{i}" for i in range(n)], dtype=object), np.array([None] * n, dtype=object),
                {}, "memory://", {"config": {}}, spk.astype(object))


def test_speaker_norm_fit_helps_when_speakers_differ():
    data = speaker_data()
    base = {"model": "sklearn_logreg", "class_weighted": True, "split": {"val_fraction": 0.0}}
    plain = fit(build(TrainConfig, base), data)
    spk = fit(build(TrainConfig, {**base, "speaker_norm": True}), data)
    assert spk.metrics["macro_f1"] > plain.metrics["macro_f1"] + 0.1
    assert spk.bundle.meta["normalization"]["speaker"]["fallback"]["mean"]


def test_speaker_norm_needs_speakers():
    data = speaker_data()
    data.speakers = np.array([None] * len(data), dtype=object)
    with pytest.raises(ConfigError, match="speaker_norm"):
        fit(build(TrainConfig, {"model": "sklearn_logreg", "speaker_norm": True, "split": {"val_fraction": 0.0}}), data)


def test_greedy_ensemble_adds_a_complementary_member():
    y = np.array([0, 0, 1, 1, 2, 2])
    a = np.vstack([np.eye(3)[[0, 0, 1, 1]] * 0.8 + 0.1, [[0.4, 0.3, 0.3]] * 2])  # sure and right on 0-3, unsure on 4-5
    b = np.vstack([[[0.3, 0.3, 0.4]] * 4, [[0.1, 0.1, 0.8]] * 2])  # unsure and wrong on 0-3, sure and right on 4-5
    c = np.full((6, 3), 1 / 3)
    chosen, score = greedy_ensemble([c, a, b], y, max_size=5)
    assert chosen[0] == 1 and 2 in chosen and score == pytest.approx(1.0)
    assert greedy_ensemble([c, a, b], y, max_size=1) == ([1], pytest.approx(greedy_ensemble([a], y, 1)[1]))


def test_nested_selection_never_scores_on_outer_test_rows():
    data = speaker_data(n_speakers=6, per=9)
    config = AutoConfig(folds=3, inner_folds=2, models=["sklearn_logreg"], C={"sklearn_logreg": [0.1, 1.0]})
    seen = []

    def mapper(fn, items):  # record which rows every piece of work may touch
        seen.extend((fn.__name__, args[2]) for args in items)
        return [fn(*args) for args in items]

    recipes = candidates(config, ["mfcc"], has_speakers=True)
    assert len(recipes) == 4 and {r.speaker_norm for r in recipes} == {False, True}
    out = select(config, {"mfcc": data}, recipes, mapper)
    for name, unit in seen:
        test = set(unit.test.tolist())
        for s in unit.inner:
            assert not (set(s.train.tolist()) | set(s.test.tolist())) & test
            assert not set(data.groups[s.train]) & set(data.groups[s.test])  # inner splits grouped by speaker
        assert not set(data.groups[unit.train]) & set(data.groups[unit.test])
    tested = sorted(i for u in out.units for i in u.test.tolist())
    assert tested == list(range(len(data)))  # every row scored once, by its outer fold
    for s in out.selections:
        assert sum(w for _, w in s.members) == pytest.approx(1.0)
    assert out.final_bundles and all(b.meta["normalization"] for _, _, b in out.final_bundles)
    assert len(make_units(data, config)) == 4  # 3 outer folds + all speakers


def test_auto_config_validation():
    with pytest.raises(ConfigError, match="'C' parameter"):
        AutoConfig(models=["svm_rbf"], C={})
    with pytest.raises(ConfigError, match="ensemble_size"):
        AutoConfig(ensemble_size=0)
    assert Recipe("mfcc", True, "svm_rbf", 1.0).name == "mfcc | speaker z | svm_rbf C=1"


@pytest.fixture(scope="module")
def four_speaker_store(tmp_path_factory, ray_local):
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.testing.synth import make_corpus

    manifest = make_corpus(tmp_path_factory.mktemp("c4"), n_per_class=3, speakers=4, seed=3)
    out = tmp_path_factory.mktemp("stores") / "four"
    extract(str(manifest), str(out), ExtractConfig(features=["mfcc", "shortterm"]), progress=False)
    return manifest, out


@pytest.mark.ray
@pytest.mark.slow
def test_train_without_model_flags_selects_and_predict_uses_the_ensemble(four_speaker_store, tmp_path, capsys):
    manifest, store = four_speaker_store
    run = tmp_path / "run"
    args = ["train", "--store", str(store), "--out", str(run), "--folds", "2", "--inner-folds", "2", "--json"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    n = len(pd.read_parquet(store, columns=["id"]))
    assert metrics["pooled"]["n"] == n and metrics["folds"] == 2 and metrics["candidates"] == 3 * 2 * 4
    assert set(metrics["selection"]) == {"1", "2", "all"}
    sel = pd.read_csv(run / "selection.csv")
    assert len(sel) == 3 * metrics["candidates"] and set(sel["unit"].astype(str)) == {"1", "2", "all"}
    assert sel.groupby("unit")["weight"].sum().round(6).eq(1.0).all()
    preds = pd.read_csv(run / "predictions.csv")
    assert len(preds) == n and preds["fold"].isin([1, 2]).all()
    assert (run / "ensemble.json").is_file() and (run / "members" / "1" / "model.json").is_file()
    # the same run folder again is refused, then replaced with --overwrite
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    wav = sorted((manifest.parent / "wav").glob("*.wav"))[:2]
    assert main(["predict", str(run), *map(str, wav), "--json", "--speaker", "s0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [Path_(x["path"]) for x in lines] == [Path_(w) for w in wav]
    for x in lines:
        assert x["label"] in LABELS and sum(x["probs"].values()) == pytest.approx(1.0, abs=1e-4)


def Path_(p) -> str:
    from pathlib import Path

    return str(Path(p).resolve())


def test_selection_refuses_one_class_and_classes_smaller_than_folds():
    config = AutoConfig(folds=3, inner_folds=2, models=["sklearn_logreg"], C={"sklearn_logreg": [1.0]})
    recipes = candidates(config, ["mfcc"], has_speakers=True)
    one = speaker_data(n_speakers=6, per=9)
    one.labels = np.array(["neutral"] * len(one), dtype=object)
    with pytest.raises(ConfigError, match="at least two classes"):
        select(config, {"mfcc": one}, recipes)
    rare = speaker_data(n_speakers=6, per=9)
    rare.labels = rare.labels.copy()
    rare.labels[rare.labels == "positive"] = "neutral"
    rare.labels[0] = "positive"  # one positive row, three folds
    with pytest.raises(ConfigError, match="class 'positive' has 1 row"):
        select(config, {"mfcc": rare}, recipes)


def test_without_speakers_no_speaker_normalisation_is_offered():
    config = AutoConfig()
    assert {r.speaker_norm for r in candidates(config, ["mfcc", "egemaps.func"], has_speakers=False)} == {False}


def test_greedy_ensemble_keeps_its_best_prefix():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    probs = [rng.dirichlet(np.ones(3), size=60) + 0.4 * np.eye(3)[y] * rng.random((60, 1)) for _ in range(8)]
    from albsent.train.rules import score as f1

    chosen, score = greedy_ensemble(probs, y, max_size=15)
    assert 1 <= len(chosen) <= 15 and score == pytest.approx(f1(y, sum(probs[j] for j in chosen)))
    assert score >= max(f1(y, p) for p in probs)
    longer, _ = greedy_ensemble(probs, y, max_size=30)
    assert longer[:len(chosen)] == chosen or _ > score  # the same path, cut where it scored best
