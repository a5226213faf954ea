"""Split invariants: no group/utterance/audio shared across splits, stratification within
tolerance, every row tested exactly once in K-fold, the audit catches leaks."""

from __future__ import annotations

import numpy as np
import pytest

from albsent.dataset.splits import (
    LeakageError,
    Split,
    SplitConfig,
    audit,
    holdout_utterances,
    kfold,
    make_groups,
    make_splits,
    train_val_test,
)
from albsent.errors import ConfigError


def corpus(n_speakers=10, per_speaker=50, seed=0):
    """EMO-DB-like: imbalanced 3 classes (70/15/15 %), rows grouped by speaker."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["negative", "neutral", "positive"], n_speakers * per_speaker, p=[0.7, 0.15, 0.15])
    groups = np.repeat([f"spk{i}" for i in range(n_speakers)], per_speaker)
    return labels, groups


def shares(labels):
    return {c: float(np.mean(labels == c)) for c in ("negative", "neutral", "positive")}


def assert_disjoint(split: Split, groups):
    parts = [set(groups[p]) for p in split.parts().values() if len(p)]
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            assert not parts[i] & parts[j]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_val_test_grouped_and_stratified(seed):
    labels, groups = corpus(seed=seed)
    split = train_val_test(labels, groups, 0.2, 0.1, seed)
    assert_disjoint(split, groups)
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(len(labels)))
    assert len(split.val) and len(split.test)
    overall = shares(labels)
    for part in (split.train, split.test):
        for c, v in shares(labels[part]).items():
            assert abs(v - overall[c]) < 0.1, (c, v, overall[c])
    assert 0.1 <= len(split.test) / len(labels) <= 0.3


def test_kfold_each_row_tested_once_and_no_leak():
    labels, groups = corpus()
    folds = kfold(labels, groups, 5, 0.1, seed=0)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(labels)))
    for f in folds:
        assert_disjoint(f, groups)
        assert len(f.val) > 0
        audit(f, groups=groups)


def test_same_seed_same_split_other_seed_differs():
    labels, groups = corpus()
    a, b = train_val_test(labels, groups, seed=3), train_val_test(labels, groups, seed=3)
    assert np.array_equal(a.test, b.test)
    assert any(not np.array_equal(train_val_test(labels, groups, seed=s).test, a.test) for s in range(4, 8))


def test_groups_merge_identical_audio_and_audit_catches_leaks():
    speakers = np.array(["a", "a", "b", "c"], dtype=object)
    utts = np.array(["u1", "u2", "u3", "u4"], dtype=object)
    sha = np.array(["h1", "h2", "h1", "h4"], dtype=object)  # u3 (speaker b) is a copy of u1 (speaker a)
    groups, by = make_groups(speakers, utts, sha, "auto")
    assert by == "speaker" and groups[0] == groups[2] == groups[1] and groups[3] != groups[0]
    groups_u, by_u = make_groups(speakers, utts, sha, "utterance")
    assert by_u == "utterance" and groups_u[0] == groups_u[2] and groups_u[1] != groups_u[0]
    leak = Split(np.array([0, 1]), np.array([], int), np.array([2, 3]))
    with pytest.raises(LeakageError, match="sha256 'h1'"):
        audit(leak, sha256=sha)
    with pytest.raises(LeakageError, match="speaker"):
        audit(Split(np.array([0]), np.array([], int), np.array([1])), groups=np.array(["speaker:a", "speaker:a"]))
    ok = audit(Split(np.array([0, 1, 2]), np.array([], int), np.array([3])), groups=groups, sha256=sha)
    assert ok["passed"] and ok["groups"] == {"train": 1, "test": 1}


def test_segments_of_an_utterance_stay_together():
    rng = np.random.default_rng(0)
    utts = np.repeat([f"u{i}" for i in range(30)], 4)  # 4 segments each
    labels = np.repeat(rng.choice(["negative", "neutral", "positive"], 30), 4)
    groups, by = make_groups([None] * len(utts), utts, [None] * len(utts), "auto")
    assert by == "utterance"
    for f in kfold(labels, groups, 3, 0.1, seed=0):
        assert_disjoint(f, utts)


def test_utterance_holdout_keeps_segments_and_identical_audio_together():
    """pretraining's validation split: no labels, whole utterances held out, seeded."""
    utts = ["a", "a", "b", "c", "c", "c", "d", "e", None, None]
    sha = ["ha", "ha", "hb", "hc", "hc", "hc", "hd", "hb", None, ""]  # e is a copy of b
    train, val = holdout_utterances(utts, sha, 0.3, seed=0)
    assert sorted(train.tolist() + val.tolist()) == list(range(10)) and len(val)
    assert not {utts[i] for i in train if utts[i]} & {utts[i] for i in val if utts[i]}
    assert ({2, 7} <= set(val.tolist())) or ({2, 7} <= set(train.tolist()))  # b and its copy e on one side
    assert holdout_utterances(utts, sha, 0.0, seed=0)[1].size == 0
    assert holdout_utterances(["a", "a"], None, 0.5, seed=0)[1].size == 0  # one utterance: nothing to hold out
    again = holdout_utterances(utts, sha, 0.3, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(again, (train, val)))


def test_utterance_holdout_is_the_split_pretraining_always_made():
    """Without duplicated audio the split equals the former pretrain.data.split_utterances for
    the same seed (sorted utterance ids, seeded permutation), whatever the row order."""
    def former(utterance_ids, fraction, seed):
        keys = np.array([u if u is not None else f"row{i}" for i, u in enumerate(utterance_ids)], dtype=object)
        uniq = np.array(sorted(set(keys.tolist())), dtype=object)
        order = np.random.default_rng(seed).permutation(len(uniq))
        val = np.isin(keys, uniq[order[: int(round(len(uniq) * fraction)) if len(uniq) >= 2 else 0]])
        return np.flatnonzero(~val), np.flatnonzero(val)

    rng = np.random.default_rng(1)
    utts = rng.permutation(np.repeat([f"{rng.integers(1 << 30):x}" for _ in range(40)], rng.integers(1, 4, 40)))
    sha = np.array([f"sha-{u}" for u in utts], dtype=object)
    for seed in range(5):
        for got, want in zip(holdout_utterances(utts, sha, 0.1, seed), former(utts, 0.1, seed)):
            np.testing.assert_array_equal(got, want)


def test_too_few_groups_is_a_clear_error():
    labels, groups = corpus(n_speakers=2, per_speaker=20)
    with pytest.raises(ConfigError, match="at least 3 groups"):
        train_val_test(labels, groups, 0.2, 0.1)
    split = train_val_test(labels, groups, 0.2, 0.0)  # without validation two speakers suffice
    assert_disjoint(split, groups)
    with pytest.raises(ConfigError, match="speaker"):
        make_groups(["a", None], ["u1", "u2"], [None, None], "speaker")


def test_split_column_and_config_validation():
    cfg = SplitConfig(from_column=True)
    (s,) = make_splits(cfg, ["a"] * 4, ["g"] * 4, ["train", "validation", "test", "train"])
    assert s.train.tolist() == [0, 3] and s.val.tolist() == [1] and s.test.tolist() == [2]
    with pytest.raises(ConfigError, match="holdout"):
        make_splits(cfg, ["a"] * 2, ["g"] * 2, ["train", "holdout"])
    with pytest.raises(ConfigError, match="test_fraction"):
        SplitConfig(test_fraction=1.5)
