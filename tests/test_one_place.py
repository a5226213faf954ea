"""One place per concept: the helpers that replaced copies (issue 26, section 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from albsent.audio.manifest import audio_inputs
from albsent.config import build
from albsent.dataset.data import Data
from albsent.dataset.spec import parse
from albsent.dataset.splits import _group_folds, stratified_folds
from albsent.errors import ConfigError, InputError
from albsent.pretrain.config import PretrainConfig, saved_config
from albsent.runtime import torch_threads
from albsent.train.cv import fold_means


def test_torch_threads_is_scoped():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with torch_threads(0):  # 0: leave torch's setting
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(target):
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before


def data_of(labels: list[str]) -> Data:
    n = len(labels)
    obj = lambda values: np.array(values, dtype=object)  # noqa: E731
    return Data(parse("mfcc"), np.zeros((n, 2), np.float32), obj(labels), obj([f"speaker:{i}" for i in range(n)]),
                "speaker", obj([f"u{i}" for i in range(n)]), obj([f"r{i}" for i in range(n)]), obj([None] * n),
                obj([None] * n), store_uri="memory://s")


def test_class_indices_and_the_two_classes_rule():
    y = data_of(["pos", "neg", "pos", "neu"]).class_indices("a classifier")
    assert y.dtype == np.int64 and y.tolist() == [2, 0, 2, 1]
    with pytest.raises(ConfigError, match=r"memory://s: every labelled row has label .pos.; a probe needs at least"):
        data_of(["pos", "pos"]).class_indices("a probe")


def test_stratified_folds_are_kfolds_grouped_folds_or_stratified_rows():
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    groups = np.array([f"speaker:{g}" for g in rng.integers(0, 8, 60)], dtype=object)
    grouped = stratified_folds(y, groups, 3, 5, "test")
    for (train, test), ref in zip(grouped, _group_folds(y, groups, 3, 5, "test")):
        assert np.array_equal(test, ref) and np.array_equal(train, np.setdiff1d(np.arange(60), ref))
        assert not set(groups[train]) & set(groups[test])
    ref = StratifiedKFold(n_splits=3, shuffle=True, random_state=5).split(np.zeros(60), y)
    for (train, test), (rt, re) in zip(stratified_folds(y, None, 3, 5, "test"), ref):
        assert np.array_equal(train, rt) and np.array_equal(test, re)


def test_fold_means_leave_out_missing_values():
    assert fold_means([{"a": 1.0, "b": float("nan")}, {"a": 2.0, "b": 4.0}]) == {"a": 1.5, "b": 4.0}


def test_audio_inputs_follow_the_manifest_rules(tmp_path, monkeypatch):
    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    (corpus / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for f in (corpus / "b.wav", corpus / "sub" / "a.wav", corpus / ".hidden.wav", corpus / "notes.txt",
              elsewhere / "far.wav"):
        f.write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)
    paths, speakers = audio_inputs(["corpus", "missing.wav"])  # as spelled; hidden and non-audio files skipped
    assert paths == ["corpus/b.wav", "corpus/sub/a.wav", "missing.wav"] and speakers == {}
    manifest = corpus / "to_predict.csv"
    manifest.write_text(f"path,speaker\nb.wav, s1\n{elsewhere / 'far.wav'},\n")  # a path outside the CSV's folder
    paths, speakers = audio_inputs([str(manifest)])
    assert paths == [str(corpus / "b.wav"), str(elsewhere / "far.wav")]
    assert speakers == {str(corpus / "b.wav"): "s1"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files found"):
        audio_inputs(["empty"])
    manifest.write_text("file,speaker\nb.wav,s1\n")
    with pytest.raises(InputError, match=r"missing required column\(s\) \['path'\]"):
        audio_inputs([str(manifest)])


def test_renamed_threads_key():
    with pytest.raises(ConfigError, match="probe.threads is now probe.num_threads"):
        build(PretrainConfig, {"probe": {"threads": 1}})
    config = build(PretrainConfig, saved_config({"threads": 2, "probe": {"threads": 3}}))  # an older model.json
    assert (config.num_threads, config.probe.num_threads) == (2, 3)
