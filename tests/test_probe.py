"""The probe protocol: frozen weights stay unchanged, labeled subsets are stratified and come
from the training speakers only, metrics carry probe and baseline side by side, and the CLI
(pretrain -> probe -> report) works on a real store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from albsent.cli import main
from albsent.dataset.data import Data
from albsent.dataset.spec import parse
from albsent.errors import ConfigError
from albsent.models.autoencoders import AutoencoderConfig
from albsent.models.frozen_tap import FrozenTap
from albsent.pretrain import PretrainConfig, ProbeConfig, WindowConfig, pretrain, probe
from albsent.pretrain.probe import labeled_subset, utterance_features, utterance_windows
from albsent.testing.sequences import make_sequences
from tests.test_pretrain import sequence_data

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def synth():
    """60 sequences, 3 classes, 6 speakers: pretrained AE (in memory) + labelled Data."""
    torch.set_num_threads(1)
    seqs, labels, speakers = make_sequences(n=60, dim=4, seed=5)
    ids = np.array([f"u{i}" for i in range(len(seqs))], dtype=object)
    frames = sequence_data(seqs, labels)
    config = PretrainConfig(window=WindowConfig(length=8),
                            model=AutoencoderConfig(name="lstm", hidden_size=24, layers=1, dropout=0.2),
                            iterations=300, val_every=300, lr=3e-3, batch_size=32, num_threads=1, seed=0)
    result = pretrain(config, frames)
    obj = lambda v: np.array(v, dtype=object)  # noqa: E731
    data = Data(parse("synthetic:seq"), seqs, obj(labels), obj(speakers), "speaker", ids, ids, ids,
                obj([None] * len(ids)))
    return result, data


def test_frozen_weights_stay_unchanged(synth):
    result, data = synth
    pre = result.as_pretrained()
    before = {k: v.clone() for k, v in pre.model.state_dict().items()}
    metrics = probe(ProbeConfig(attach="layer1.all_mean", iterations=200, folds=3, train_fraction=0.3), pre, data)
    assert metrics["probe"]["attach"] == "layer1.all_mean"
    for k, v in pre.model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=f"{k} changed during probing")
    assert not any(p.requires_grad for p in pre.model.parameters())
    tap = FrozenTap(pre.model, "layer1.final").train()  # train() must not switch dropout on
    assert not pre.model.training
    x = torch.randn(5, 8, 4)
    torch.testing.assert_close(tap(x), tap(x))


def test_metrics_side_by_side_and_speaker_independent(synth):
    result, data = synth
    steps = []
    config = ProbeConfig(attach="layer1.cell_final", iterations=300, folds=3, train_fraction=0.4, lr=0.05)
    metrics = probe(config, result.as_pretrained(), data, on_step=lambda k, m: steps.append((k, m)))
    assert [k for k, _ in steps] == [1, 2, 3] and "baseline_macro_f1" in steps[-1][1]
    assert metrics["folds"] == 3 and len(metrics["per_fold"]) == 3
    for key in ("macro_f1", "macro_f1_std", "accuracy", "balanced_accuracy"):
        assert key in metrics and key in metrics["baseline"]
    assert metrics["labels"] == ["c0", "c1", "c2"] and metrics["n"] == 60
    assert metrics["probe"]["labeled_per_fold"] == [24, 24, 24]  # 40 % of ALL 60 rows, in every fold
    assert all(a["passed"] and a["groups"]["test"] >= 1 for a in metrics["leakage_audit"])
    # classes differ only in their dynamics (frequency), which the frame mean/std baseline cannot
    # see: the frozen next-frame representation beats chance (1/3) and the baseline
    assert metrics["macro_f1"] > 0.45 and metrics["macro_f1"] > metrics["baseline"]["macro_f1"], metrics


def test_labeled_subset_is_stratified_and_from_the_pool():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    pool = np.arange(0, 100, 2)  # the training speakers' rows
    sub = labeled_subset(pool, y, 10, seed=0)
    assert set(sub) <= set(pool) and len(np.unique(sub)) == len(sub)
    assert np.bincount(y[sub], minlength=3).tolist() == [6, 3, 1]
    assert labeled_subset(pool, y, 1000, seed=0).tolist() == pool.tolist()
    assert not np.array_equal(labeled_subset(pool, y, 10, seed=1), sub)


def test_utterance_features_average_windows(synth):
    result, _ = synth
    tap = FrozenTap(result.model, "layer1.final")
    short = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)   # shorter than the window
    long = np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32)
    assert utterance_windows(short, 8, 8).shape == (1, 8, 4) and utterance_windows(long, 8, 4).shape == (4, 8, 4)
    z = utterance_features(tap, [short, long], 8, 4)
    with torch.no_grad():
        expect = tap(torch.from_numpy(utterance_windows(long, 8, 4))).mean(0).numpy()
    np.testing.assert_allclose(z[1], expect, rtol=1e-5, atol=1e-6)
    z2 = utterance_features(tap, [short, long], 8, 4, pool="mean_std")
    assert z2.shape == (2, 2 * z.shape[1])
    np.testing.assert_allclose(z2[:, : z.shape[1]], z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z2[0, z.shape[1]:], 0, atol=1e-3)   # one window: no spread
    with torch.no_grad():
        spread = tap(torch.from_numpy(utterance_windows(long, 8, 4))).std(0, unbiased=False).numpy()
    np.testing.assert_allclose(z2[1, z.shape[1]:], spread, rtol=1e-4, atol=1e-5)


def test_unknown_attachment_point_lists_the_known_ones(synth):
    result, data = synth
    with pytest.raises(ConfigError, match="layer1.final"):
        probe(ProbeConfig(attach="bottleneck", iterations=5, folds=2), result.as_pretrained(), data)


def test_pretrain_and_probe_in_one_call(synth):
    from albsent.pretrain import pretrain_and_probe

    _, data = synth
    frames = sequence_data(data.X)  # the same utterances, unlabeled
    config = PretrainConfig(window=WindowConfig(length=6), model=AutoencoderConfig(name="rnn", hidden_size=8),
                            iterations=20, val_every=10, batch_size=16, num_threads=1,
                            probe=ProbeConfig(attach="layer1.all_mean", iterations=20, folds=2))
    calls = []
    metrics = pretrain_and_probe(config, frames, data, on_step=lambda stage, step, m: calls.append((stage, step)))
    assert calls == [("pretrain", 10), ("pretrain", 20), ("probe", 1), ("probe", 2)]
    assert metrics["pretrain"]["iterations"] == 20 and metrics["probe"]["attach"] == "layer1.all_mean"
    assert "macro_f1" in metrics and "macro_f1" in metrics["baseline"]


@pytest.mark.ray
def test_cli_pretrain_probe_report(store, tmp_path, capsys):
    ae, run = tmp_path / "ae", tmp_path / "probe"
    assert main(["pretrain", "--config", "configs/smoke/pretrain.yaml", "--store", str(store), "--out", str(ae),
                 "-q"]) == 0
    assert main(["probe", "--pretrained", str(ae), "--store", str(store), "--attach", "layer1.all_mean", "--folds", "2",
                 "--train-fraction", "0.5", "--set", "probe.iterations=50", "--out", str(run), "-q"]) == 0
    out = capsys.readouterr().out
    assert "probe" in out and "baseline" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["probe"]["attach"] == "layer1.all_mean" and metrics["probe"]["group_by"] == "speaker"
    assert metrics["probe"]["config"]["iterations"] == 50       # --set beats the AE run's saved probe defaults
    assert metrics["probe"]["labeled_per_fold"] == [12, 12]      # 50 % of the 24 clips
    assert 0 <= metrics["baseline"]["macro_f1"] <= 1 and metrics["folds"] == 2
    assert main(["report", str(run)]) == 0
    table = capsys.readouterr().out
    assert "baseline" in table and "probe:mlstm@layer1.all_mean" in table


def test_one_class_probe_is_an_error(synth):
    result, data = synth
    one = Data(data.spec, data.X, np.array(["c0"] * len(data), dtype=object), data.groups, "speaker",
               data.utterance_ids, data.ids, data.sha256, data.splits)
    with pytest.raises(ConfigError, match="at least two classes"):
        probe(ProbeConfig(attach="layer1.all_mean", iterations=5, folds=3), result.as_pretrained(), one)
