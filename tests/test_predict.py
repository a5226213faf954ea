"""End to end on real audio: synthetic corpus -> store (the extraction worker, Ray-free) ->
`albsent train` -> `albsent predict` (same probabilities as at evaluation) -> `albsent report`;
per-file errors; SSL feature specs on a tiny random HuBERT store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from albsent.cli import main
from albsent.config import to_dict

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def build_store(manifest: Path, out: Path, config) -> Path:
    """The extraction worker on every input in one block (what each Ray task runs)."""
    from albsent.pipeline.extract import prepare
    from albsent.pipeline.worker import ExtractBlock

    p = prepare(str(manifest), str(out), config)
    ExtractBlock(to_dict(config), p.store.uri, p.meta)(p.items)
    return out


@pytest.fixture(scope="module")
def corpus3(tmp_path_factory) -> Path:
    from albsent.testing.synth import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus3"), n_per_class=3, speakers=3, duration_s=(0.8, 1.2), seed=1)


@pytest.fixture(scope="module")
def mfcc_store(corpus3, tmp_path_factory) -> Path:
    from albsent.features.config import ExtractConfig

    return build_store(corpus3, tmp_path_factory.mktemp("st") / "mfcc", ExtractConfig(features=["mfcc"]))


@pytest.fixture(scope="module")
def ssl_store(tmp_path_factory) -> Path:
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.testing.synth import make_corpus
    from albsent.testing.tiny_ssl import save_model

    corpus = make_corpus(tmp_path_factory.mktemp("corpus_ssl"), n_per_class=2, speakers=2, duration_s=(0.6, 0.9),
                         seed=2)
    model = save_model(tmp_path_factory.mktemp("tiny") / "hubert", "hubert")
    config = build(ExtractConfig, {"features": ["mfcc", "ssl"],
                                   "ssl": {"models": [str(model)], "sequence_layers": [2]}})
    return build_store(corpus, tmp_path_factory.mktemp("st") / "ssl", config)


def read_predictions(run: Path) -> dict[str, dict]:
    with open(run / "predictions.csv") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def paths_of(store: Path) -> dict[str, str]:
    from albsent.store import Store

    t = Store(str(store)).read(["id", "path"])
    return dict(zip(t["id"].to_pylist(), t["path"].to_pylist()))


def predict_json(run: Path, inputs: list[str], capsys, *extra) -> tuple[int, list[dict]]:
    capsys.readouterr()
    rc = main(["predict", str(run), *inputs, "--json", *extra])
    out = capsys.readouterr().out
    return rc, [json.loads(line) for line in out.splitlines() if line.strip()]


def test_train_predict_report_cli(mfcc_store, tmp_path, capsys):
    run = tmp_path / "mlp"
    rc = main(["-q", "train", "--config", "configs/smoke/train.yaml", "--store", str(mfcc_store), "--out", str(run)])
    assert rc == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"accuracy", "macro_f1", "balanced_accuracy", "per_class", "confusion_matrix", "labels",
            "audit"} <= set(metrics)
    assert metrics["group_by"] == "speaker" and metrics["audit"]["groups"] == {"train": 1, "val": 1, "test": 1}
    for name in ("confusion_matrix.png", "loss_curve.png", "config.yaml", "model.safetensors", "model.json"):
        assert (run / name).is_file()
    # predict recomputes features from the audio: same probabilities as the evaluation
    expected = read_predictions(run)
    paths = paths_of(mfcc_store)
    rc, preds = predict_json(run, [paths[i] for i in expected], capsys)
    assert rc == 0 and len(preds) == len(expected)
    for (rid, row), pred in zip(expected.items(), preds):
        assert pred["path"] == paths[rid] and pred["label"] == row["pred"]
        for lab, p in pred["probs"].items():
            assert p == pytest.approx(float(row[f"p_{lab}"]), abs=1e-5)
    # a folder, a missing file and a non-audio file: errors for those, the rest still predicted
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    capsys.readouterr()
    rc = main(["predict", str(run), str(tmp_path / "missing.wav"), str(bad), paths[next(iter(expected))],
               "--segments", "0.5"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "missing.wav: file does not exist" in err and "notes.wav" in err
    lines = out.splitlines()
    assert len(lines) >= 2 and lines[0].startswith(paths[next(iter(expected))]) and " s\t" in lines[1]
    # K-fold run, then the comparison table
    run5 = tmp_path / "logreg"
    assert main(["-q", "train", "--store", str(mfcc_store), "--features", "mfcc", "--model", "sklearn_logreg",
                 "--folds", "3", "--out", str(run5)]) == 0
    m5 = json.loads((run5 / "metrics.json").read_text())
    assert m5["folds"] == 3 and len(m5["per_fold"]) == 3 and m5["n"] == 27
    # folder input, 3-model ensemble
    rc, preds = predict_json(run5, [str(Path(paths[next(iter(expected))]).parent)], capsys)
    assert rc == 0 and len(preds) == 27 and all(abs(sum(p["probs"].values()) - 1) < 1e-4 for p in preds)
    capsys.readouterr()
    assert main(["report", str(run), str(run5), "--out", str(tmp_path / "table.md")]) == 0
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0].startswith("| run | features | model") and "F1 positive" in table[0]
    assert "| mlp | `mfcc` | mlp | yes | hold-out, by speaker | 9 |" in table[2]
    assert "3-fold, by speaker" in table[3] and "±" in table[3]


def test_predict_errors_are_clear(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "x.wav"]) == 2
    assert "no saved model" in capsys.readouterr().err


@pytest.mark.slow
def test_ssl_specs_on_a_tiny_hubert_store(ssl_store, tmp_path, capsys):
    from albsent.config import build
    from albsent.train import TrainConfig, fit, load_data

    base = {"store": str(ssl_store), "epochs": 3, "hidden_size": 8,
            "split": {"group_by": "utterance", "test_fraction": 0.34, "val_fraction": 0.17}}
    for spec, model in [("ssl:hubert:1,2", "mlp"), ("ssl:hubert:all", "logreg"), ("ssl:hubert:seq:2", "bilstm_attn"),
                        ("mfcc+ssl:hubert:2", "mlp")]:
        data = load_data(str(ssl_store), spec, "utterance")
        res = fit(build(TrainConfig, {**base, "features": spec, "model": model}), data,
                  out_dir=tmp_path / spec.replace(":", "_"))
        assert res.metrics["n"] == len(res.split.test) and res.metrics["audit"]["passed"]
        if spec == "ssl:hubert:1,2":
            assert data.X.shape == (12, 2 * 32)
    run = tmp_path / "ssl_hubert_all"
    expected = read_predictions(run)
    paths = paths_of(ssl_store)
    rc, preds = predict_json(run, [paths[i] for i in expected], capsys)
    assert rc == 0
    labels = sorted(preds[0]["probs"])
    got = np.array([[p["probs"][lab] for lab in labels] for p in preds])
    want = np.array([[float(r[f"p_{lab}"]) for lab in labels] for r in expected.values()])
    np.testing.assert_allclose(got, want, atol=1e-4)
