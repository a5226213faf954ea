"""Every trained model can be used: train -> save -> `albsent predict` gives the in-memory model's
probabilities for every model kind in the registry and for an ensemble mixing kinds; the
weights-shape check still refuses real mismatches; and the README's default journey
(extract the recommended groups -> `albsent train` with no flags -> predict a file, a folder and
a path,speaker CSV) runs end to end on real speech (EMO-DB, skipped when absent)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from albsent.cli import main
from albsent.config import build
from albsent.dataset.data import load_data
from albsent.dataset.splits import Split
from albsent.models import MODELS
from albsent.train import TrainConfig, fit
from albsent.train.checkpoint import BundleError, bundle_model, load_bundle, save_bundle
from albsent.train.ensemble import save_ensemble
from albsent.train.predict import Predictor

from .conftest import emodb_manifest

pytestmark = pytest.mark.usefixtures("torch_one_thread")
CLASSIFIERS = sorted(MODELS)


def stored_paths(store: Path) -> pd.DataFrame:
    return pd.read_parquet(store, columns=["id", "path", "speaker"]).sort_values("id").reset_index(drop=True)


def predict_json(run: Path, inputs: list[str], capsys, *extra) -> list[dict]:
    capsys.readouterr()
    rc = main(["predict", str(run), *inputs, "--json", *extra])
    out = capsys.readouterr().out
    assert rc == 0, out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.ray
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_registry_model_round_trips_through_predict(name, store, tmp_path, capsys):
    entry = MODELS[name]
    spec = "mfcc:seq" if entry.input_kind == "sequence" else "mfcc"
    run = tmp_path / name
    args = ["-q", "train", "--store", str(store), "--features", spec, "--model", name, "--split", "utterance",
            "--epochs", "2", "--out", str(run), "--set", "hidden_size=8"]
    assert main(args) == 0
    expected = pd.read_csv(run / "predictions.csv")
    paths = dict(zip(*stored_paths(store)[["id", "path"]].T.values))
    preds = predict_json(run, [paths[i] for i in expected["id"]], capsys)
    assert len(preds) == len(expected) > 0
    for (_, row), pred in zip(expected.iterrows(), preds):
        assert pred["label"] == row["pred"]
        for lab, p in pred["probs"].items():
            assert p == pytest.approx(float(row[f"p_{lab}"]), abs=1e-5)


@pytest.mark.ray
def test_an_ensemble_mixing_every_pooled_kind_predicts_its_weighted_probabilities(store, tmp_path, capsys):
    data = load_data(str(store), "mfcc+shortterm", "utterance")
    test = np.arange(0, len(data), 4)
    split = Split(np.setdiff1d(np.arange(len(data)), test), test[:0], test)
    pooled = [n for n in CLASSIFIERS if MODELS[n].input_kind == "pooled"]
    assert {"svm_rbf", "svm_linear", "sklearn_logreg", "logreg", "mlp"} <= set(pooled)
    members, expected = [], 0.0
    weights = np.arange(1, len(pooled) + 1, dtype=float)
    weights /= weights.sum()
    for name, w in zip(pooled, weights):
        cfg = build(TrainConfig, {"features": "mfcc+shortterm", "model": name, "epochs": 2, "hidden_size": 8,
                                  "speaker_norm": name == "svm_rbf", "split": {"val_fraction": 0.0}})
        res = fit(cfg, data, split=split)
        members.append(({"model": name}, float(w), res.bundle))
        expected = expected + w * res.probs
    run = tmp_path / "mixed"
    save_ensemble(members, run)
    table = stored_paths(store).set_index("id")
    paths = [table.loc[data.ids[i], "path"] for i in test]
    speakers = [table.loc[data.ids[i], "speaker"] for i in test]
    # the svm_rbf member normalises per speaker: predict gets every file's speaker from a CSV, and the
    # in-memory fit normalised these test rows with their speakers' statistics over the same rows
    manifest = tmp_path / "to_predict.csv"
    pd.DataFrame({"path": paths, "speaker": speakers}).to_csv(manifest, index=False)
    preds = predict_json(run, [str(manifest)], capsys)
    got = np.array([[p["probs"][lab] for lab in data.label_names] for p in preds])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert len(Predictor(run).members) == len(pooled)


def test_weight_shape_check_accepts_fitted_svms_and_refuses_real_mismatches(tmp_path):
    from albsent.train.estimators import fit_sklearn

    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = (rng.normal(size=(90, 6)) + 1.5 * np.eye(3, 6)[y]).astype(np.float32)
    from albsent.models import build_model

    hp = {"hidden_size": 4, "num_layers": 1, "dropout": 0.0, "pooling": "mean"}
    model = build_model("svm_rbf", 6, 3, hp)
    fit_sklearn("svm_rbf", model, X, y, 3, C=1.0, class_weighted=True, seed=0)
    from albsent.train.checkpoint import Bundle

    meta = {"model": {"name": "svm_rbf", "input_dim": 6, "n_classes": 3, "n_layers": None, "hparams": hp},
            "labels": ["a", "b", "c"]}
    save_bundle(Bundle(model.state_dict(), meta), tmp_path / "ok")
    again = bundle_model(load_bundle(tmp_path / "ok"))  # support vectors of the fit's own count load
    with torch.no_grad():
        torch.testing.assert_close(again(torch.from_numpy(X)), model(torch.from_numpy(X)))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    wide = {**state, "support": torch.zeros(state["support"].shape[0], 7)}  # another input width
    save_bundle(Bundle(wide, meta), tmp_path / "wide")
    with pytest.raises(BundleError, match=r"support is \[\d+, 7\], expected \[\d+, 6\]"):
        bundle_model(load_bundle(tmp_path / "wide"))
    short = {**state, "support": state["support"][:-1]}  # fewer support vectors than n_support counts
    save_bundle(Bundle(short, meta), tmp_path / "short")
    with pytest.raises(BundleError, match="support is"):
        bundle_model(load_bundle(tmp_path / "short"))
    mlp = build_model("mlp", 6, 3, hp)
    bad = {k: torch.zeros(*(s + 1 for s in v.shape)) for k, v in mlp.state_dict().items()}
    save_bundle(Bundle(bad, {**meta, "model": {**meta["model"], "name": "mlp"}}), tmp_path / "mlp")
    with pytest.raises(BundleError, match="weights do not fit"):
        bundle_model(load_bundle(tmp_path / "mlp"))


@pytest.mark.ray
@pytest.mark.slow
def test_auto_works_with_two_speakers_and_says_how_it_split(store, tmp_path, capsys, caplog):
    run = tmp_path / "two"
    assert main(["train", "--store", str(store), "--out", str(run), "--inner-folds", "2", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["outer_folds"] == 2 and metrics["folds"] == 2  # leave one speaker out
    assert metrics["inner_group_by"] == {"1": "utterance", "2": "utterance", "all": "speaker"}
    assert "by utterance in fold(s) [1, 2]" in metrics["protocol"]
    assert "inner selection splits by utterance" in caplog.text
    preds = pd.read_csv(run / "predictions.csv")
    spk = stored_paths(store).set_index("id")["speaker"]
    for fold, rows in preds.groupby("fold"):  # each outer fold tests one whole speaker
        assert spk[rows["id"]].nunique() == 1


def emodb_subset(tmp_path: Path, speakers: int = 5, per_class: int = 3) -> Path:
    manifest = emodb_manifest()
    table = pd.read_csv(manifest, dtype=str)
    chosen = sorted(table["speaker"].unique())[:speakers]
    rows = table[table["speaker"].isin(chosen)].groupby(["speaker", "label"]).head(per_class)
    rows = rows.assign(path=[str((manifest.parent / p).resolve()) for p in rows["path"]])
    out = tmp_path / "emodb_subset.csv"
    rows[["path", "label", "speaker"]].to_csv(out, index=False)
    return out


RECOMMENDED = "mfcc,shortterm,egemaps,compare,level"  # README: train, predict, report


@pytest.mark.ray
@pytest.mark.slow
def test_readme_default_journey_on_real_speech(tmp_path, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"--features {RECOMMENDED}" in readme  # the groups the README recommends are the ones tested here
    manifest = emodb_subset(tmp_path)
    emodb = emodb_manifest().parent
    store, run = tmp_path / "store", tmp_path / "run"
    assert main(["-q", "extract", str(manifest), "--out", str(store), "--features", RECOMMENDED,
                 "--allow-root", str(emodb)]) == 0
    assert main(["-q", "train", "--store", str(store), "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["outer_folds"] == 5 and metrics["pooled"]["n"] == len(pd.read_csv(manifest))
    assert any("level.func" in m["recipe"] for s in metrics["selection"].values() for m in s["members"]) or \
        "level.func" in pd.read_csv(run / "selection.csv")["recipe"].str.cat()
    table = pd.read_csv(manifest)
    one = table["path"].iloc[0]
    folder = tmp_path / "folder"
    folder.mkdir()
    for p in table["path"].iloc[:3]:
        (folder / Path(p).name).symlink_to(p)
    for inputs, extra in (([one], ["--speaker", str(table["speaker"].iloc[0])]), ([str(folder)], []),
                          ([str(manifest)], [])):
        preds = predict_json(run, inputs, capsys, *extra)
        assert len(preds) == {0: 1, 1: 3, 2: len(table)}[[[one], [str(folder)], [str(manifest)]].index(inputs)]
        for p in preds:
            assert not p.get("error") and p["label"] in ("negative", "neutral", "positive")
            assert sum(p["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    with open(manifest) as fh:  # the CSV's speakers were used: same labels as predicting speaker by speaker
        rows = list(csv.DictReader(fh))
    spk = rows[0]["speaker"]
    mine = [r["path"] for r in rows if r["speaker"] == spk]
    alone = predict_json(run, mine, capsys, "--speaker", spk)
    together = {p["path"]: p for p in predict_json(run, [str(manifest)], capsys)}
    for p in alone:
        assert together[p["path"]]["probs"] == pytest.approx(p["probs"], abs=1e-5)
