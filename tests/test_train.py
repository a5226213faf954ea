"""fit / cross_validate on in-memory data: callbacks, early stopping, determinism, leakage
audit, save -> load -> identical probabilities; feature-spec grammar; configs parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from albsent.config import build, dump_yaml, load, read_yaml
from albsent.dataset import Data, LeakageError, Split, parse
from albsent.dataset.normalize import Normalizer
from albsent.dataset.spec import assemble, resolve
from albsent.errors import ConfigError, StoreError
from albsent.train import TrainConfig, cross_validate, fit, load_bundle
from albsent.train.checkpoint import bundle_model
from albsent.train.loop import predict_proba, stride_frames

pytestmark = pytest.mark.usefixtures("torch_one_thread")

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["negative", "neutral", "positive"]




def make_data(kind: str = "pooled", speakers: int = 6, per: int = 12, dim: int = 5, seed: int = 0) -> Data:
    """Separable classes, grouped by speaker; pooled (rows, dim), layers (rows, 3, dim) or sequences."""
    rng = np.random.default_rng(seed)
    n = speakers * per
    labels = np.array([LABELS[i % 3] for i in range(n)], dtype=object)
    y = np.array([LABELS.index(v) for v in labels])
    spk = np.repeat([f"s{i}" for i in range(speakers)], per)
    shift = np.eye(3, dim)[y] * 3  # class signal in the first 3 dims
    if kind == "pooled":
        X = (rng.normal(size=(n, dim)) + shift + 10).astype(np.float32)  # offset: standardisation matters
        spec = parse("mfcc")
    elif kind == "layers":
        X = rng.normal(size=(n, 3, dim)).astype(np.float32)
        X[:, 1] += shift
        spec = parse("ssl:hubert:all")
    else:
        X = [(rng.normal(size=(int(rng.integers(6, 12)), dim)) + shift[i]).astype(np.float32) for i in range(n)]
        spec = parse("mfcc:seq")
    ids = np.array([f"u{i}" for i in range(n)], dtype=object)
    return Data(spec, X, labels, np.array([f"speaker:{s}" for s in spk], dtype=object), "speaker", ids, ids.copy(),
                np.array([f"h{i}" for i in range(n)], dtype=object), np.array([None] * n, dtype=object),
                {}, "memory://", {"config": {"features": ["mfcc"]}, "config_hash": "x"})


def config(**kw) -> TrainConfig:
    base = {"model": "mlp", "hidden_size": 16, "epochs": 30, "patience": 5, "lr": 0.01,
            "split": {"test_fraction": 0.34, "val_fraction": 0.17}}
    return build(TrainConfig, {**base, **kw})


def test_fit_pooled_reports_every_epoch_and_learns(tmp_path):
    seen = []
    result = fit(config(), make_data(), on_epoch=lambda e, row: seen.append((e, row)), out_dir=tmp_path / "run")
    assert [e for e, _ in seen] == list(range(1, len(seen) + 1)) == [r["epoch"] for r in result.history]
    assert {"train_loss", "val_loss", "val_macro_f1", "best_epoch"} <= set(seen[0][1])
    m = result.metrics
    assert m["macro_f1"] > 0.8 and m["audit"]["passed"] and m["labels"] == LABELS
    assert sum(m["confusion_matrix"][i][j] for i in range(3) for j in range(3)) == len(result.split.test)
    for name in ("metrics.json", "predictions.csv", "confusion_matrix.png", "loss_curve.png", "config.yaml",
                 "model.safetensors", "model.json"):
        assert (tmp_path / "run" / name).is_file(), name


def test_early_stopping_restores_best_epoch():
    result = fit(config(epochs=200, patience=3, lr=0.05), make_data())
    assert len(result.history) < 200
    best = result.metrics["best_epoch"]
    assert result.history[best - 1]["val_loss"] == min(r["val_loss"] for r in result.history)
    assert len(result.history) == best + 3


def test_same_seed_same_probabilities_and_saved_model_reproduces_them(tmp_path):
    data = make_data()
    a = fit(config(class_weighted=True), data, out_dir=tmp_path)
    b = fit(config(class_weighted=True), data)
    probs_a = np.array([[p[f"p_{lab}"] for lab in LABELS] for p in a.predictions])
    probs_b = np.array([[p[f"p_{lab}"] for lab in LABELS] for p in b.predictions])
    np.testing.assert_array_equal(probs_a, probs_b)
    bundle = load_bundle(tmp_path)
    model = bundle_model(bundle)
    norm = Normalizer.from_json(bundle.meta["normalization"])
    again = predict_proba(model, norm(data.X[a.split.test]))
    np.testing.assert_allclose(again, probs_a, atol=1e-6)
    assert bundle.meta["labels"] == LABELS and bundle.meta["features"]["spec"] == "mfcc"
    np.testing.assert_allclose(norm.mean, data.X[a.split.train].mean(0), rtol=1e-5)  # train rows only


@pytest.mark.parametrize("kind,model", [("sequence", "bilstm_attn"), ("layers", "logreg"), ("pooled", "sklearn_logreg"),
                                        ("pooled", "logreg")])
def test_each_input_kind_trains_and_saves(kind, model, tmp_path):
    cfg = config(model=model, epochs=4, frame_stride=2 if kind == "sequence" else 1)
    data = make_data(kind)
    result = fit(cfg, data, out_dir=tmp_path)
    bundle = load_bundle(tmp_path)
    norm = Normalizer.from_json(bundle.meta["normalization"])
    X = stride_frames([data.X[i] for i in result.split.test] if kind == "sequence" else data.X[result.split.test],
                      cfg.frame_stride)
    probs = predict_proba(bundle_model(bundle), norm(X))
    expected = np.array([[p[f"p_{lab}"] for lab in LABELS] for p in result.predictions])
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    if kind == "layers":
        assert bundle.meta["model"]["n_layers"] == 3 and "layer_logits" in bundle.state


@pytest.mark.slow
def test_cross_validate_tests_every_row_once(tmp_path):
    data = make_data()
    cv = cross_validate(config(split={"folds": 3, "val_fraction": 0.17}), data, out_dir=tmp_path)
    tested = sorted(i for f in cv.folds for i in f.split.test.tolist())
    assert tested == list(range(len(data)))
    m = cv.metrics
    assert m["folds"] == 3 and len(m["per_fold"]) == 3 and "macro_f1_std" in m and m["n"] == len(data)
    assert m["macro_f1"] == pytest.approx(np.mean([f.metrics["macro_f1"] for f in cv.folds]))
    assert (tmp_path / "fold-3" / "model.safetensors").is_file() and (tmp_path / "metrics.json").is_file()


def test_leaky_split_is_an_error():
    data = make_data()
    same_speaker = np.flatnonzero(data.groups == data.groups[0])
    leak = Split(same_speaker[:6], np.array([], int), same_speaker[6:])
    with pytest.raises(LeakageError, match="groups 'speaker:s0'"):
        fit(config(), data, split=leak)


def test_wrong_model_for_spec_is_a_clear_error():
    with pytest.raises(ConfigError, match="frame sequences"):
        fit(config(model="mlp"), make_data("sequence"))


@pytest.mark.parametrize("text,kind,columns", [
    ("mfcc", "pooled", ["mfcc_mean", "mfcc_std"]),
    ("mfcc+shortterm", "pooled", ["mfcc_mean", "mfcc_std", "shortterm_mean", "shortterm_std"]),
    ("mfcc.mean", "pooled", ["mfcc_mean"]),
    ("mfcc:seq", "sequence", ["mfcc"]),
    ("mfcc + shortterm:seq", "sequence", ["mfcc", "shortterm"]),
    ("ssl:hubert:9", "pooled", ["ssl_hubert_mean"]),
    ("ssl:hubert:6,9,12", "pooled", ["ssl_hubert_mean"]),
    ("ssl:hubert:all", "layers", ["ssl_hubert_mean"]),
    ("ssl:hubert:seq:9", "sequence", ["ssl_hubert_l9"]),
    ("mfcc+ssl:wavlm:3", "pooled", ["mfcc_mean", "mfcc_std", "ssl_wavlm_mean"]),
])
def test_spec_grammar(text, kind, columns):
    spec = parse(text)
    assert spec.kind == kind and spec.columns == columns


@pytest.mark.parametrize("bad", ["", "mfcc+", "ssl:hubert", "ssl:hubert:x", "mfcc.max", "mfcc+ssl:hubert:all",
                                 "ssl:hubert:seq:1,2", "mfcc+mfcc", "ssl:hubert:9:seq"])
def test_spec_errors(bad):
    with pytest.raises(ConfigError, match="feature spec"):
        parse(bad)


def test_spec_resolve_and_assemble():
    info = {"mfcc_mean": {"shape": [4], "dtype": "float32"}, "mfcc_std": {"shape": [4], "dtype": "float32"},
            "mfcc": {"shape": [None, 4], "dtype": "float16"}, "ssl_hubert_mean": {"shape": [3, 2], "dtype": "float32"}}
    with pytest.raises(StoreError, match="shortterm_mean"):
        resolve(parse("shortterm"), info)
    with pytest.raises(ConfigError, match="layers 0..2"):
        resolve(parse("ssl:hubert:5"), info)
    with pytest.raises(StoreError, match="frame sequence"):
        resolve(parse("mfcc.mean:seq".replace(".mean", "")), {"mfcc": {"shape": [4], "dtype": "float32"}})
    layers = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    X = assemble(parse("ssl:hubert:0,2"), {"ssl_hubert_mean": list(layers)}, info)
    np.testing.assert_array_equal(X, layers[:, [0, 2], :].reshape(2, 4))
    seq = assemble(parse("mfcc:seq"), {"mfcc": [np.full((3, 4), 0.1, np.float32)]}, info)
    assert seq[0].dtype == np.float32 and seq[0][0, 0] == np.float32(np.float16(0.1))  # stored dtype applied


def test_config_yaml_round_trip_and_repo_configs_parse(tmp_path):
    cfg = config(class_weighted=True, features="mfcc+shortterm", split={"folds": 5})
    dump_yaml(cfg, tmp_path / "best.yaml")
    assert load(TrainConfig, tmp_path / "best.yaml") == cfg
    files = (sorted((ROOT / "configs" / "paper").glob("*.yaml"))
             + sorted((ROOT / "configs" / "smoke").glob("train*.yaml")))
    assert len(files) >= 9
    for f in files:
        c = load(TrainConfig, f)
        parse(c.features)
        text = f.read_text()
        assert text.startswith("#") and f"configs/{f.parent.name}/{f.name}" in text, (
            f"{f}: header must give the command")
        assert read_yaml(f)  # header comments are YAML comments
    with pytest.raises(ConfigError, match="valid keys"):
        load(TrainConfig, None, ["hiden_size=3"])


def test_device_field():
    from albsent.train.loop import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device: 'cuda'.*no CUDA GPU"):
            fit(config(device="cuda"), make_data())
    with pytest.raises(ConfigError, match="device"):
        config(device="tpu")
    result = fit(config(device="cpu", epochs=3), make_data())
    assert len(result.history) == 3
