"""albsent.features.pitch against librosa: the same F0 path, voicing flags and voicing probabilities."""

import librosa
import numpy as np
import pytest
import soundfile as sf

from albsent.features.pitch import pyin, sparse_log_transitions, viterbi
from tests.conftest import emodb_manifest

SR = 16000
KW = dict(sr=SR, frame_length=1024, hop_length=160, center=True)


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(2 * SR) / SR
    glide = 120 + 80 * np.sin(2 * np.pi * 0.7 * t)
    return {
        "glide": 0.3 * np.sin(2 * np.pi * np.cumsum(glide) / SR),
        "tone_in_noise": 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size),
        "noise": 0.1 * rng.standard_normal(t.size),
        "silence": np.zeros(t.size),
        # a jump far beyond the 4-semitone-per-frame band the decoder searches
        "octave_jumps": 0.3 * np.sin(2 * np.pi * np.where((t * 4).astype(int) % 2, 80, 450) * t),
        "clicks": np.where(rng.random(t.size) < 0.002, 1.0, 0.0),
        "short": 0.3 * np.sin(2 * np.pi * 150 * t[:1500]),
        "one_frame": 0.3 * np.sin(2 * np.pi * 150 * t[:100]),
    }


def assert_same(y, **kw):
    want = librosa.pyin(y, **kw)
    got = pyin(y, **kw)
    np.testing.assert_array_equal(got[0], want[0])  # NaN where unvoiced, in both
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[2], want[2], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(signals()))
@pytest.mark.parametrize("fmin,fmax,hop", [(65.0, 500.0, 160), (50.0, 800.0, 80)])
def test_pyin_equals_librosa(name, fmin, fmax, hop):
    y = signals()[name].astype(np.float32)
    assert_same(y, **{**KW, "hop_length": hop}, fmin=fmin, fmax=fmax)


def test_pyin_equals_librosa_on_speech():
    manifest = emodb_manifest()
    paths = sorted(manifest.parent.glob("**/*.wav"))[::53]  # 11 clips across speakers and emotions
    assert len(paths) >= 10
    for path in paths:
        y, sr = sf.read(path, dtype="float32")
        assert_same(librosa.resample(y, orig_sr=sr, target_sr=SR), fmin=65.0, fmax=500.0, **KW)


def test_viterbi_equals_librosa_when_zero_transitions_win():
    """Observations so sparse that leaving the band (a zero transition, log of librosa's epsilon)
    is sometimes the best move: the decoder must then score every state, as librosa does."""
    rng = np.random.default_rng(0)
    n, frames = 40, 60
    transition = librosa.sequence.transition_local(n, 5, window="triangle", wrap=False)
    sparse = sparse_log_transitions(transition)
    p_init = np.full(n, 1 / n)
    for trial in range(20):
        prob = rng.random((n, frames)) * (rng.random((n, frames)) < 0.05)
        want = librosa.sequence.viterbi(prob, transition, p_init=p_init)
        np.testing.assert_array_equal(viterbi(prob, sparse, p_init), want, err_msg=f"trial {trial}")
    # and the band alone would not have found that path
    band = np.abs(np.diff(want.astype(int))) > 2
    assert band.any()


def test_viterbi_equals_librosa_on_pyin_transitions_with_ties():
    """pYIN's own two-half transition matrix (65-500 Hz, 10 ms hop). Exact ties: two equally likely
    pitches 3 bins either side of the next frame's pitch reach it with equal scores, and the lower
    one must win, as np.argmax; then random observations with stretches of silence."""
    from albsent.features.pitch import _pyin_transitions

    local = librosa.sequence.transition_local(354, 41, window="triangle", wrap=False)
    transition = np.kron(librosa.sequence.transition_loop(2, 0.99), local)
    sparse, p_init = _pyin_transitions(354, 41, 0.01), np.full(708, 1 / 708)
    tie = np.zeros((708, 10))
    tie[[100, 106], 0] = 0.5
    tie[103, 1:] = 1.0
    want = librosa.sequence.viterbi(tie, transition, p_init=p_init)
    assert want[0] == 100
    np.testing.assert_array_equal(viterbi(tie, sparse, p_init), want)
    rng = np.random.default_rng(1)
    for trial in range(3):
        prob = rng.random((708, 80)) ** 8
        prob[:, 20:45] = 1 / 708
        prob[:, 60:] *= rng.random((708, 20)) < 0.1
        want = librosa.sequence.viterbi(prob, transition, p_init=p_init)
        np.testing.assert_array_equal(viterbi(prob, sparse, p_init), want, err_msg=f"trial {trial}")


def test_viterbi_equals_librosa_on_irregular_transitions():
    """Rows with several runs of targets or a single target, states nobody reaches."""
    rng = np.random.default_rng(2)
    n = 30
    transition = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
    transition[:, 7] = 0
    transition[3] = 0
    transition[3, 29] = 1
    transition[5, 10:20] = 0.5
    transition /= transition.sum(axis=1, keepdims=True)
    sparse = sparse_log_transitions(transition)
    assert (np.diff(sparse[1]) > 2).any() and sparse[3][sparse[1][3]] == 1  # rows of several runs; a one-target row
    p_init = rng.random(n) / n
    p_init /= p_init.sum()
    for trial in range(10):
        prob = rng.random((n, 50)) * (rng.random((n, 50)) < 0.5)
        want = librosa.sequence.viterbi(prob, transition, p_init=p_init)
        np.testing.assert_array_equal(viterbi(prob, sparse, p_init), want, err_msg=f"trial {trial}")


def test_pyin_rejects_multichannel_and_infeasible_settings():
    with pytest.raises(ValueError, match=r"shape \(2, 100\)"):
        pyin(np.zeros((2, 100), np.float32), fmin=65.0, fmax=500.0, **KW)
    with pytest.raises(librosa.ParameterError, match="fmin"):
        pyin(np.zeros(4000, np.float32), fmin=10.0, fmax=500.0, **KW)
