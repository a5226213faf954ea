"""Windowing, the iteration-based pretraining loop, run folders (save/load round trip) and the
`albsent pretrain` command on a real (synthetic-audio) store, labelled or not."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from albsent.cli import main
from albsent.dataset.data import Data, load_frames
from albsent.dataset.spec import parse
from albsent.errors import ConfigError
from albsent.models.autoencoders import AutoencoderConfig
from albsent.pretrain import PretrainConfig, WindowConfig, Windows, load_pretrained, pretrain
from albsent.testing.sequences import make_sequences

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def ramp_sequences():
    """Two utterances whose frame values encode (utterance, frame): value = 100*u + t."""
    return [np.stack([np.full(2, 100 * u + t, np.float32) + [0, 0.5] for t in range(n)]) for u, n in ((0, 6), (1, 9))]


@pytest.mark.parametrize("target", ["next", "shifted", "reconstruct"])
def test_windows_stay_inside_utterances_and_pick_the_right_targets(target):
    seqs = ramp_sequences()
    w = WindowConfig(length=4, stride=1, target=target)
    win = Windows(seqs, w, out_index=[1])
    span = 4 + (target != "reconstruct")
    assert len(win) == (6 - span + 1) + (9 - span + 1)
    x, y = win.batch(np.arange(len(win)))
    assert x.shape == (len(win), 4, 2)
    first = x[:, :, 0]
    assert torch.all(first[:, 1:] - first[:, :-1] == 1)          # consecutive frames, never across utterances
    assert torch.all((first[:, -1] // 100) == (first[:, 0] // 100))
    if target == "next":
        assert y.shape == (len(win), 1)
        torch.testing.assert_close(y[:, 0], x[:, -1, 1] + 1)
    elif target == "shifted":
        assert y.shape == (len(win), 4, 1)
        torch.testing.assert_close(y[:, :, 0], x[:, :, 1] + 1)
    else:
        torch.testing.assert_close(y[:, :, 0], x[:, :, 1])


def test_window_stride_and_feature_selection():
    seqs = ramp_sequences()
    assert len(Windows(seqs, WindowConfig(length=3, stride=2), [0])) == (len(range(0, 6 - 4 + 1, 2))
                                                                          + len(range(0, 9 - 4 + 1, 2)))
    w = WindowConfig(predict="1:3")
    assert w.out_index(5) == [1, 2] and WindowConfig(predict="0,4").out_index(5) == [0, 4]
    with pytest.raises(ConfigError, match="predict"):
        WindowConfig(predict="0,9").out_index(5)
    with pytest.raises(ConfigError, match="predict"):
        WindowConfig(predict="mfcc_0")
    with pytest.raises(ConfigError, match="window.length|frames"):
        Windows(seqs, WindowConfig(length=20), [0])


def sequence_data(seqs: list[np.ndarray], labels=None, speakers=None) -> Data:
    """Hand-made frame sequences as the data layer hands them over (load_frames / load_data):
    utterance ids u0, u1, ..., no audio hashes, features f0, f1, ..."""
    n = len(seqs)
    obj = lambda v: np.array(v, dtype=object)  # noqa: E731
    ids, none = obj([f"u{i}" for i in range(n)]), obj([None] * n)
    by, groups = ("utterance", ids.copy()) if speakers is None else ("speaker", obj(speakers))
    return Data(parse("synthetic:seq"), list(seqs), obj(labels) if labels is not None else none, groups, by,
                ids, ids.copy(), none, none, speakers=None if speakers is None else obj(speakers),
                feature_names=[f"f{i}" for i in range(seqs[0].shape[1])])


def synthetic_frames() -> Data:
    seqs, labels, _ = make_sequences(n=24, dim=4, seed=3)
    return sequence_data(seqs, labels)


def test_validation_split_is_the_seeded_utterance_holdout():
    """pretrain holds out whole utterances with albsent.dataset.splits.holdout_utterances: the
    normaliser is fitted on the other utterances only."""
    from albsent.dataset.splits import holdout_utterances

    data = synthetic_frames()
    config = PretrainConfig(window=WindowConfig(length=5), model=AutoencoderConfig(name="rnn", hidden_size=4),
                            iterations=1, val_every=1, batch_size=4, num_threads=1, seed=7, val_fraction=0.25)
    train, val = holdout_utterances(data.utterance_ids, data.sha256, 0.25, 7)
    result = pretrain(config, data)
    assert len(val) == 6 and not set(train) & set(val)
    expect = np.concatenate([data.X[i] for i in train])
    np.testing.assert_allclose(result.norm.mean, expect.mean(0), rtol=1e-5, atol=1e-6)


def test_pretraining_refuses_pooled_or_empty_data():
    none3, abc = np.array([None] * 3, dtype=object), np.array(["a", "b", "c"], dtype=object)
    pooled = Data(parse("mfcc"), np.zeros((3, 4), np.float32), none3, abc, "utterance", abc, abc, none3, none3)
    empty = np.zeros(0, dtype=object)
    for bad in (pooled, Data(parse("synthetic:seq"), [], empty, empty, "utterance", empty, empty, empty, empty)):
        with pytest.raises(ConfigError, match="frame sequences"):
            pretrain(PretrainConfig(iterations=1), bad)


def test_pretrain_reports_checkpoints_and_round_trips(tmp_path):
    config = PretrainConfig(window=WindowConfig(length=6), model=AutoencoderConfig(name="mlstm", hidden_size=10),
                            iterations=60, val_every=20, checkpoint_every=30, batch_size=16, num_threads=1, seed=1)
    seen = []
    result = pretrain(config, synthetic_frames(), on_step=lambda step, m: seen.append((step, m)),
                      out_dir=tmp_path / "ae")
    assert [s for s, _ in seen] == [20, 40, 60]
    assert {"train_loss", "val_loss", "val_mean_baseline", "val_copy_baseline", "val_ratio"} <= set(seen[0][1])
    run = tmp_path / "ae"
    for name in ("model.safetensors", "model.json", "config.yaml", "loss_curve.png"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "step-000030" / "model.safetensors").is_file()
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((run / "model.json").read_text())
    assert meta["kind"] == "autoencoder" and meta["in_dim"] == 4 and len(meta["history"]) == 3
    assert "layer1.final" in [p["name"] for p in meta["attach_points"]]

    loaded = load_pretrained(run)
    assert loaded.config == result.config
    np.testing.assert_array_equal(loaded.norm.mean, result.norm.mean)
    x = torch.randn(3, 6, 4)
    with torch.no_grad():
        p1, t1 = result.model.eval()(x)
        p2, t2 = loaded.model(x)
    torch.testing.assert_close(p1, p2)
    torch.testing.assert_close(t1["layer1.cell_final"], t2["layer1.cell_final"])
    # a checkpoint loads too, and differs from the final weights (training went on)
    mid = load_pretrained(run / "checkpoints" / "step-000030")
    assert not torch.allclose(mid.model(x)[0], p2)


def test_same_seed_same_run():
    config = PretrainConfig(window=WindowConfig(length=5), model=AutoencoderConfig(name="lstm", hidden_size=8),
                            iterations=20, val_every=10, batch_size=8, num_threads=1, seed=4)
    a, b = pretrain(config, synthetic_frames()), pretrain(config, synthetic_frames())
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]


def test_load_pretrained_rejects_a_classifier_run(tmp_path):
    from albsent.train.checkpoint import Bundle, BundleError, save_bundle

    save_bundle(Bundle({"w": torch.zeros(1)}, {"labels": ["a"]}), tmp_path / "clf")
    with pytest.raises(BundleError, match="not a pretraining run"):
        load_pretrained(tmp_path / "clf")


def unlabeled_copy(store, dest):
    """The store with every label removed (an unlabeled corpus)."""
    shutil.copytree(store, dest)
    for part in dest.glob("part-*.parquet"):
        t = pq.read_table(part)
        i = t.schema.get_field_index("label")
        pq.write_table(t.set_column(i, t.schema.field(i), pa.nulls(t.num_rows, t.schema.field(i).type)), part)
    return dest


@pytest.mark.ray
def test_pretrain_cli_on_an_unlabeled_store(store, tmp_path, capsys):
    from albsent.dataset.data import load_data
    from albsent.errors import StoreError

    unl = unlabeled_copy(store, tmp_path / "unlabeled")
    frames = load_frames(str(unl), "mfcc")
    assert frames.spec.text == "mfcc:seq" and frames.dim == 120 and all(v is None for v in frames.labels)
    assert frames.feature_names[:2] == ["mfcc_0", "mfcc_1"] and frames.group_by == "utterance"
    with pytest.raises(StoreError, match="no row has a label"):  # training needs labels; pretraining does not
        load_data(str(unl), "mfcc:seq")
    labeled = load_data(str(store), "mfcc:seq")  # one reader: the same rows, ids and frames
    assert len(frames) == len(labeled) and frames.ids.tolist() == labeled.ids.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(frames.X, labeled.X))
    out = tmp_path / "ae"
    rc = main(["pretrain", "--config", "configs/smoke/pretrain.yaml", "--store", str(unl), "--features", "mfcc",
               "--model", "conv_mlstm", "--target", "shifted", "--iterations", "30", "--out", str(out), "-q"])
    assert rc == 0
    assert "ratio" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert meta["model_name"] == "conv_mlstm" and meta["features"] == "mfcc:seq" and meta["in_dim"] == 120
    assert meta["metrics"]["iterations"] == 30 and meta["pretrain_config"]["window"]["target"] == "shifted"


def test_list_models_and_attach(capsys):
    assert main(["pretrain", "--list-models"]) == 0
    assert "mlstm" in capsys.readouterr().out
    assert main(["pretrain", "--list-attach", "lstm", "--set", "model.layers=2", "--set", "model.hidden_size=50"]) == 0
    out = capsys.readouterr().out
    assert "layer2.final" in out and "(50,)" in out and "layer2.all" in out and "(750,)" in out
    assert main(["pretrain", "--list-attach", "bilstm"]) == 2


def test_pooled_spec_is_refused():
    with pytest.raises(ConfigError, match="frame-sequence"):
        PretrainConfig(features="mfcc.mean")
