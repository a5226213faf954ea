"""openSMILE extractors (`egemaps`, `compare`) against opensmile's own API on the same
preprocessed samples, their columns and metadata, the missing-package error, and one
`albsent extract --features egemaps` end to end."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from albsent.errors import ConfigError

opensmile = pytest.importorskip("opensmile")

SR = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[np.ndarray]:
    """Three clips of the synthetic corpus after albsent's preprocessing (peak-normalised to 1.0)."""
    from albsent.audio.io import decode
    from albsent.audio.preprocess import AudioConfig, preprocess
    from albsent.testing.synth import make_corpus

    manifest = make_corpus(tmp_path_factory.mktemp("corpus_smile"), n_per_class=1, speakers=1, duration_s=(0.5, 1.2),
                           seed=5)
    out = []
    for wav in sorted((manifest.parent / "wav").glob("*.wav")):
        dec = decode(str(wav))
        _, segs = preprocess(dec.samples, dec.sample_rate_hz, AudioConfig(), str(wav))
        out.append(segs[0].samples)
    return out


def smile(feature_set: str, level: str, x: np.ndarray):
    """opensmile's public API, called directly."""
    s = opensmile.Smile(getattr(opensmile.FeatureSet, feature_set), getattr(opensmile.FeatureLevel, level))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return s.process_signal(x, SR)


def build(name: str, **kw):
    from albsent.config import build as build_config
    from albsent.features.config import ExtractConfig, build_extractors

    config = build_config(ExtractConfig, {"features": [name], **kw})
    return build_extractors(config)[0]


@pytest.mark.parametrize("name,feature_set,n_func,n_lld,kw", [
    ("egemaps", "eGeMAPSv02", 88, 25, {}),
    ("compare", "ComParE_2016", 6373, 65, {}),
    ("compare", "ComParE_2016", 6373, 130, {"compare": {"lld_deltas": True}}),
])
def test_stored_values_equal_opensmile_process_signal(clips, name, feature_set, n_func, n_lld, kw):
    ext = build(name, **kw)
    cols = {c.name: c for c in ext.columns()}
    seq_dtype = "float32" if name == "compare" else "float16"  # ComParE's spectral variance overflows float16
    assert cols == {
        f"{name}_func": cols[f"{name}_func"], name: cols[name], f"{name}_mean": cols[f"{name}_mean"],
        f"{name}_std": cols[f"{name}_std"]}
    assert (cols[f"{name}_func"].shape == (n_func,) and cols[name].shape == (None, n_lld)
            and cols[name].dtype == seq_dtype)
    assert cols[f"{name}_mean"].shape == (n_lld,) and cols[f"{name}_std"].dtype == "float32"
    rows = ext.extract(clips)  # one extractor, clips in a row: the reused openSMILE instance keeps no state
    for x, row in zip(clips, rows):
        assert np.abs(x).max() > 0.9999  # peak-normalised: openSMILE's own int16 conversion would wrap this sample
        xc = np.clip(x, -1.0, 32767 / 32768)
        func = smile(feature_set, "Functionals", xc)
        lld = smile(feature_set, "LowLevelDescriptors", xc)
        want = lld.to_numpy(np.float32)
        if n_lld == 130:
            de = smile(feature_set, "LowLevelDescriptors_Deltas", xc)
            assert len(de) == len(lld) + 2  # openSMILE's end-of-input frames; cut to the LLD frames
            starts = [lv.index.get_level_values("start").total_seconds()[: len(lld)] for lv in (lld, de)]
            # the last frames' times differ by a hop or two
            np.testing.assert_array_equal(starts[0][:-5], starts[1][:-5])
            want = np.concatenate([want, de.to_numpy(np.float32)[: len(lld)]], axis=1)
        assert row[f"{name}_func"].shape == (n_func,) and row[f"{name}_func"].dtype == np.float32
        np.testing.assert_array_equal(row[f"{name}_func"], func.to_numpy(np.float32)[0])
        assert row[name].shape == (len(lld), n_lld) == (ext.num_frames(x.size), n_lld)
        np.testing.assert_array_equal(row[name], want.astype(seq_dtype))
        want = np.ascontiguousarray(want)  # pandas hands out column-major values: another summation order
        np.testing.assert_array_equal(row[f"{name}_mean"], want.mean(0))
        np.testing.assert_array_equal(row[f"{name}_std"], want.std(0))
        # every clip's frames start 10 ms apart
        np.testing.assert_allclose(np.diff(lld.index.get_level_values("start").total_seconds())[:-1], 0.01, atol=1e-9)


def test_metadata_names_frame_shift_and_voicing():
    for name, feature_set, f0 in [("egemaps", "eGeMAPSv02", "F0semitoneFrom27.5Hz_sma3nz"),
                                  ("compare", "ComParE_2016", "F0final_sma")]:
        meta = build(name).metadata()
        lld = list(opensmile.Smile(getattr(opensmile.FeatureSet, feature_set),
                                   opensmile.FeatureLevel.LowLevelDescriptors).feature_names)
        func = list(opensmile.Smile(getattr(opensmile.FeatureSet, feature_set)).feature_names)
        assert meta["feature_names"] == lld and meta["func_feature_names"] == func
        assert meta["frame_shift_s"] == 0.01 and meta["feature_set"] == feature_set and meta["opensmile_version"]
        assert "non-commercial" in meta["licence"]
        assert meta["voicing"] == {"feature": f0, "index": lld.index(f0), "threshold": 0.0}
        assert meta["columns"][name][1] == len(lld) and meta["columns"][f"{name}_func"] == [len(func)]
    de = build("compare", compare={"lld_deltas": True})
    names = de.metadata()["feature_names"]
    deltas = opensmile.Smile(opensmile.FeatureSet.ComParE_2016,
                             opensmile.FeatureLevel.LowLevelDescriptors_Deltas).feature_names
    assert de.columns()[1].shape == (None, 130) and names[65:] == list(deltas) and names[0] == "F0final_sma"


def test_float32_egemaps_sequence(clips):
    x = np.clip(clips[0], -1.0, 32767 / 32768)
    row = build("egemaps", sequence_dtype="float32").extract([clips[0]])[0]
    assert row["egemaps"].dtype == np.float32
    np.testing.assert_array_equal(row["egemaps"], smile("eGeMAPSv02", "LowLevelDescriptors", x).to_numpy(np.float32))


def test_too_short_clip_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 0.06 s"):
        build("egemaps").extract([np.zeros(900, np.float32)])


def test_missing_package_names_the_extra(monkeypatch):
    from albsent.features.opensmile_sets import import_opensmile

    monkeypatch.setitem(sys.modules, "opensmile", None)  # `import opensmile` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'albsent\[opensmile\]'.*non-commercial"):
        import_opensmile()
    with pytest.raises(ConfigError, match="albsent\\[opensmile\\]"):
        build("egemaps").extract([np.zeros(SR, np.float32)])


def test_cli_and_registry_do_not_import_opensmile():
    code = ("import sys, albsent.cli as c, albsent.features as f; c.build_parser(); "
            "from albsent.features.config import ExtractConfig; ExtractConfig(features=['egemaps', 'compare']); "
            "print('opensmile' in sys.modules, sorted(f.EXTRACTORS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False ['compare', 'egemaps', 'level', 'mfcc', 'shortterm', 'ssl']"


@pytest.mark.ray
@pytest.mark.slow
def test_extract_cli_with_egemaps_end_to_end(ray_local, tmp_path):
    import pandas as pd

    from albsent.cli import main
    from albsent.dataset.data import load_data
    from albsent.store import Store
    from albsent.testing.synth import make_corpus

    manifest = make_corpus(tmp_path / "corpus", n_per_class=2, speakers=1, duration_s=(0.6, 1.0), seed=6)
    out = tmp_path / "store"
    assert main(["-q", "extract", str(manifest), "--out", str(out), "--features", "mfcc,egemaps"]) == 0
    store = Store(str(out))
    meta = store.meta
    assert meta["config"]["features"] == ["mfcc", "egemaps"] and meta["config"]["egemaps"] == {}
    eg = meta["extractors"]["egemaps"]
    assert len(eg["feature_names"]) == 25 and len(eg["func_feature_names"]) == 88 and eg["frame_shift_s"] == 0.01
    assert meta["frame_shift_s"]["egemaps"] == 0.01 and eg["voicing"]["feature"] == "F0semitoneFrom27.5Hz_sma3nz"
    df = pd.read_parquet(out)  # plain Arrow types: readable without albsent
    assert len(df) == 6 and len(df["egemaps_func"][0]) == 88 and len(df["egemaps_mean"][0]) == 25
    assert all(len(seq[0]) == 25 for seq in df["egemaps"])
    # the stored functionals equal opensmile's on the same preprocessed audio
    from albsent.audio.io import decode
    from albsent.audio.preprocess import preprocess

    row = df.iloc[0]
    dec = decode(row["path"])
    _, segs = preprocess(dec.samples, dec.sample_rate_hz, store_config_audio(meta), row["path"])
    func = smile("eGeMAPSv02", "Functionals", np.clip(segs[0].samples, -1.0, 32767 / 32768)).to_numpy(np.float32)[0]
    np.testing.assert_array_equal(np.asarray(row["egemaps_func"], np.float32), func)
    for spec, dim in [("egemaps.func", 88), ("egemaps", 50), ("egemaps.rich", 25 * 11),
                      ("mfcc.rich+egemaps.func", 120 * 9 + 88)]:
        data = load_data(str(out), spec, "utterance")
        assert data.X.shape == (6, dim) and np.isfinite(data.X).all(), spec
    # rerun: everything stored already, nothing added
    assert main(["-q", "extract", str(manifest), "--out", str(out), "--features", "mfcc,egemaps"]) == 0
    assert store.num_rows() == 6


def store_config_audio(meta: dict):
    from albsent.audio.preprocess import AudioConfig
    from albsent.config import build

    return build(AudioConfig, meta["config"]["audio"])
