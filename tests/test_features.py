"""Extractor shapes and values against independent computations."""

import librosa
import numpy as np
import pytest

from albsent.features import get_extractor
from albsent.features.mfcc import MfccConfig
from albsent.features.shortterm import BASE_NAMES, ShortTermConfig, block_entropy, spectral_flux

SR = 16000


def tone(freq, seconds=1.0, amp=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def shortterm(wave, **kw):
    ext = get_extractor("shortterm")(ShortTermConfig(**kw), SR)
    return ext, ext.frames(wave)


def test_mfcc_matches_librosa_and_deltas():
    y = tone(300) + 0.05 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    ext = get_extractor("mfcc")(MfccConfig(n_mfcc=13, deltas=2), SR)
    f = ext.frames(y)
    ref = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    assert f.shape == (1 + SR // 160, 39)
    np.testing.assert_allclose(f[:, :13], ref.T, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f[:, 13:26], librosa.feature.delta(ref, width=9).T, rtol=1e-4, atol=1e-3)
    assert ext.feature_names()[:2] == ["mfcc_0", "mfcc_1"] and ext.feature_names()[13] == "d_mfcc_0"


@pytest.mark.parametrize("n_mfcc, deltas, dim", [(13, 0, 13), (20, 1, 40), (40, 2, 120)])
def test_mfcc_columns_and_pooled_stats(n_mfcc, deltas, dim):
    ext = get_extractor("mfcc")(MfccConfig(n_mfcc=n_mfcc, deltas=deltas), SR, "float16", True)
    out = ext.extract([tone(200, 0.7), tone(500, 1.3)])
    assert [c.name for c in ext.columns()] == ["mfcc", "mfcc_mean", "mfcc_std"]
    assert out[0]["mfcc"].shape == (1 + int(0.7 * SR) // 160, dim) and out[0]["mfcc"].dtype == np.float16
    assert out[1]["mfcc_mean"].shape == (dim,) and out[1]["mfcc_mean"].dtype == np.float32
    f = ext.frames(tone(500, 1.3))
    np.testing.assert_allclose(out[1]["mfcc_mean"], f.mean(0), rtol=1e-6)
    np.testing.assert_allclose(out[1]["mfcc_std"], f.std(0), rtol=1e-6)


def test_sequences_can_be_left_out():
    ext = get_extractor("mfcc")(MfccConfig(), SR, "float16", store_sequences=False)
    assert set(ext.extract([tone(200)])[0]) == {"mfcc_mean", "mfcc_std"}


def test_zcr_and_energy_match_hand_computation():
    y = tone(400) * np.linspace(0.2, 1, SR).astype(np.float32)
    ext, f = shortterm(y, f0=False)
    names = ext.feature_names()
    padded = np.pad(y, 200)
    for t in (10, 50, 90):
        frame = padded[t * 160 : t * 160 + 400]
        crossings = np.count_nonzero(np.diff(np.signbit(frame)))
        assert f[t, names.index("zcr")] == pytest.approx(crossings / 400, abs=1.01 / 400)  # +-1 crossing at the edge
        assert f[t, names.index("energy")] == pytest.approx(np.mean(frame.astype(np.float64) ** 2), rel=1e-4)
    # a 400 Hz tone crosses zero 800 times a second
    assert np.median(f[5:-5, names.index("zcr")]) == pytest.approx(800 / SR, rel=0.1)


def test_spectral_centroid_rolloff_flatness_on_known_signals():
    ext, f = shortterm(tone(1000), f0=False)
    n = ext.feature_names()
    mid = slice(5, -5)
    assert np.median(f[mid, n.index("spectral_centroid")]) == pytest.approx(1000, rel=0.05)
    assert np.median(f[mid, n.index("spectral_rolloff")]) == pytest.approx(1000, rel=0.05)
    assert np.median(f[mid, n.index("spectral_flatness")]) < 0.01
    noise = np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.3
    _, g = shortterm(noise, f0=False)
    assert np.median(g[mid, n.index("spectral_flatness")]) > 0.3
    assert np.median(g[mid, n.index("spectral_entropy")]) > np.median(f[mid, n.index("spectral_entropy")]) + 1


def test_chroma_and_f0_of_a_tone():
    ext, f = shortterm(tone(220.0))  # A3
    n = ext.feature_names()
    assert n == BASE_NAMES + ["f0_hz", "voicing_prob"] and f.shape == (101, 24)
    chroma = f[:, n.index("chroma_1") : n.index("chroma_12") + 1].mean(0)
    assert chroma.argmax() == 9  # C=0 ... A=9
    assert np.median(f[10:-10, n.index("f0_hz")]) == pytest.approx(220, rel=0.02)
    assert np.median(f[10:-10, n.index("voicing_prob")]) > 0.5


def test_entropy_and_flux_definitions():
    uniform = np.ones((100, 3))
    np.testing.assert_allclose(block_entropy(uniform, 10), np.log2(10), rtol=1e-6)
    peaked = np.zeros((100, 1))
    peaked[:10] = 1
    assert block_entropy(peaked, 10)[0] == pytest.approx(0, abs=1e-6)
    mag = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(spectral_flux(mag), [0.0, 2.0, 0.5])


def test_frames_align_between_extractors():
    y = tone(300, 1.234)
    m = get_extractor("mfcc")(MfccConfig(), SR).frames(y)
    s = get_extractor("shortterm")(ShortTermConfig(f0=True), SR).frames(y)
    assert m.shape[0] == s.shape[0] == 1 + len(y) // 160


def test_column_names_are_built_and_parsed_in_one_place():
    """albsent.store.schema spells every feature column; extractors and feature specs agree with it
    and the stored names stay what existing stores hold."""
    from albsent.dataset.spec import parse
    from albsent.store import schema as names

    assert [names.pooled_column("mfcc", "mean"), names.pooled_column("egemaps", "func"),
            names.sequence_column("mfcc")] == ["mfcc_mean", "egemaps_func", "mfcc"]
    assert names.pooled_column(names.ssl_group("hubert"), "std") == "ssl_hubert_std"
    assert names.layer_column("hubert", 9) == "ssl_hubert_l9"
    for name, parsed in [("mfcc_mean", ("mfcc", "pooled", "mean")), ("mfcc", ("mfcc", "sequence", None)),
                         ("ssl_hubert_mean", ("ssl_hubert", "pooled", "mean")),
                         ("ssl_hubert_l9", ("ssl_hubert", "layer", 9)), ("ssl_x_l3_l12", ("ssl_x_l3", "layer", 12)),
                         ("ssl_x_l3_mean", ("ssl_x_l3", "pooled", "mean")),
                         ("egemaps_func", ("egemaps", "pooled", "func"))]:
        assert names.parse_column(name) == names.ColumnName(*parsed), name
    assert names.ssl_alias("ssl_x_l3") == "x_l3" and names.ssl_alias("mfcc") is None
    with pytest.raises(ValueError, match="statistic"):
        names.pooled_column("mfcc", "p50")  # computed at load time, never stored
    info = {"ssl_hubert_mean": {"shape": [13, 32]}, "ssl_hubert_l9": {"shape": [None, 32]},
            "ssl_x_l3_mean": {"shape": [5, 8]}, "mfcc_mean": {"shape": [120]}, "ssl_flat_mean": {"shape": [32]}}
    assert names.ssl_layer_counts(info) == {"hubert": 13, "x_l3": 5}
    assert parse("ssl:hubert:9+mfcc.mean,p50").columns == ["ssl_hubert_mean", "mfcc_mean", "mfcc"]
    assert parse("ssl:hubert:seq:4").columns == ["ssl_hubert_l4"] and parse("ssl:w:all").columns == ["ssl_w_mean"]
    ext = get_extractor("shortterm")(ShortTermConfig(), SR, "float16", False)
    assert [c.name for c in ext.columns()] == ["shortterm_mean", "shortterm_std"]
    assert sorted(ext.extract([tone(200, 0.3)])[0]) == ["shortterm_mean", "shortterm_std"]


@pytest.mark.slow
def test_features_config_and_predict_import_no_ray():
    """Extractor building and the extract config live outside the Ray package (pipeline/)."""
    import subprocess
    import sys

    code = ("import sys, albsent.features, albsent.features.config, albsent.train.predict, albsent.pipeline.worker, "
            "albsent.pipeline.stages; print('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"
