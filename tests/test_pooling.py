"""Pooling statistics (albsent.features.pooling) against plain numpy / scipy, their edge cases,
and the `NAME.STATS` feature specs: pooled at load time from a store's frame sequences, and
identically at predict time from freshly extracted features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from albsent.dataset.spec import assemble, column_info, parse, resolve, voicing_flags
from albsent.errors import ConfigError, StoreError
from albsent.features import pooling
from albsent.features.pooling import RICH, pool, pool_rows

STATS = ("mean", "std", "p20", "p50", "p80", "range", "slope", "skew", "kurt", "vmean", "vstd")


def frames(T=300, D=12, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 1.0, (T, D)) * rng.uniform(0.5, 50, D) + rng.uniform(-100, 100, D)  # skewed, offset
    return (x + np.linspace(0, 5, T)[:, None]).astype(np.float32)  # and a trend


def reference(f: np.ndarray, voiced: np.ndarray) -> dict[str, np.ndarray]:
    t = np.linspace(0, 1, len(f))
    return {
        "mean": f.mean(0), "std": f.std(0),
        "p20": np.percentile(f, 20, axis=0), "p50": np.percentile(f, 50, axis=0), "p80": np.percentile(f, 80, axis=0),
        "range": np.percentile(f, 99, axis=0) - np.percentile(f, 1, axis=0),
        "slope": np.polyfit(t, f.astype(np.float64), 1)[0],
        "skew": scipy.stats.skew(f.astype(np.float64), axis=0),
        "kurt": scipy.stats.kurtosis(f.astype(np.float64), axis=0),
        "vmean": f[voiced].astype(np.float64).mean(0), "vstd": f[voiced].astype(np.float64).std(0),
    }


@pytest.mark.parametrize("T", [2, 3, 10, 301])
def test_every_stat_matches_numpy_and_scipy(T):
    f = frames(T)
    voiced = np.random.default_rng(1).random(T) < 0.6
    voiced[0] = True
    got = pool(f, STATS, voiced)
    want = reference(f, voiced)
    assert list(got) == list(STATS)
    for s in STATS:
        assert got[s].shape == (12,) and got[s].dtype == np.float32, s
        np.testing.assert_allclose(got[s], want[s], rtol=2e-5,
                                   atol=1e-4 * float(np.abs(f).max()) if s == "slope" else 1e-5, err_msg=s)
    # mean and std are exactly what FrameExtractor stored before pooling existed
    np.testing.assert_array_equal(got["mean"], f.mean(0))
    np.testing.assert_array_equal(got["std"], f.std(0))
    np.testing.assert_allclose(pool(f, ["p0", "p100", "p35"])["p35"], np.percentile(f, 35, axis=0), rtol=1e-6)
    np.testing.assert_array_equal(pool(f, ["p0", "p100"])["p100"], f.max(0))


def test_edge_cases_single_frame_constant_no_voiced_empty_and_non_finite():
    one = np.array([[1.5, -2.0, 0.0]], np.float32)
    got = pool(one, STATS, np.array([True]))
    for s in ("mean", "p20", "p50", "p80", "vmean"):
        np.testing.assert_array_equal(got[s], one[0])
    for s in ("std", "range", "slope", "skew", "kurt", "vstd"):
        np.testing.assert_array_equal(got[s], np.zeros(3, np.float32))
    const = np.full((50, 4), 0.1, np.float32)
    const[:, 1] = 3e4
    const[:, 2] = 0.0
    got = pool(const, STATS, np.zeros(50, bool))
    np.testing.assert_array_equal(got["std"], const.std(0))  # float32 accumulation, as stored: ~5e-8, not 0
    for s in ("range", "slope", "skew", "kurt", "vmean", "vstd"):
        np.testing.assert_array_equal(got[s], np.zeros(4, np.float32), err_msg=s)  # skew/kurt 0, not NaN
    np.testing.assert_array_equal(pool(np.zeros((0, 3), np.float32), STATS, np.zeros(0, bool))["mean"], np.zeros(3))
    bad = frames(20, 3)
    bad[3, 0], bad[4, 1], bad[5, 2] = np.nan, np.inf, -np.inf
    for v in pool(bad, STATS, np.ones(20, bool)).values():
        assert np.isfinite(v).all()
    with pytest.raises(ValueError, match="voicing flag"):
        pool(frames(5), ["vmean"])
    with pytest.raises(ValueError, match="unknown pooling stat"):
        pool(frames(5), ["max"])


def test_pool_rows_equals_pool_per_row_across_lengths_and_chunks(monkeypatch):
    rng = np.random.default_rng(2)
    rows = [frames(int(T), 7, seed=i) for i, T in enumerate(rng.choice([1, 2, 40, 41, 300], size=30))]
    voiced = [rng.random(len(r)) < 0.5 for r in rows]
    monkeypatch.setattr(pooling, "_CHUNK", 7 * 41 * 3)  # several chunks per length
    got = pool_rows(rows, STATS, voiced)
    for i, (r, v) in enumerate(zip(rows, voiced)):
        one = pool(r, STATS, v)
        for s in STATS:
            np.testing.assert_allclose(got[s][i], one[s], rtol=1e-6, atol=1e-6, err_msg=s)
        np.testing.assert_array_equal(got["mean"][i], one["mean"])
        np.testing.assert_array_equal(got["std"][i], one["std"])


def test_frame_extractors_store_the_same_mean_and_std_as_before():
    from albsent.features import get_extractor
    from albsent.features.mfcc import MfccConfig
    from albsent.features.shortterm import ShortTermConfig
    from albsent.testing.synth import voice

    wave = voice(np.random.default_rng(0), 1.2, 16000, 150, 0.2, 0.02, 4)
    for ext in (get_extractor("mfcc")(MfccConfig(), 16000), get_extractor("shortterm")(ShortTermConfig(), 16000)):
        f = ext.frames(wave)
        row = ext.extract([wave])[0]
        np.testing.assert_array_equal(row[f"{ext.name}_mean"], f.mean(0).astype(np.float32))
        np.testing.assert_array_equal(row[f"{ext.name}_std"], f.std(0).astype(np.float32))
        np.testing.assert_array_equal(row[ext.name], f.astype(np.float16))


def test_default_extract_config_hash_is_unchanged():
    from albsent.features.config import ExtractConfig

    assert ExtractConfig().config_hash() == "34c79b71d5f85ade"  # stores made before pooling / openSMILE resume


# ---- spec grammar ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,columns,parts", [
    ("mfcc", ["mfcc_mean", "mfcc_std"], [("mfcc_mean", None), ("mfcc_std", None)]),
    ("mfcc.rich", ["mfcc_mean", "mfcc_std", "mfcc"],
     [("mfcc_mean", None), ("mfcc_std", None), ("mfcc", RICH[2:] + ("vmean", "vstd"))]),
    ("mfcc.mean,std,p50", ["mfcc_mean", "mfcc_std", "mfcc"],
     [("mfcc_mean", None), ("mfcc_std", None), ("mfcc", ("p50",))]),
    ("mfcc.p50,mean", ["mfcc", "mfcc_mean"], [("mfcc", ("p50",)), ("mfcc_mean", None)]),
    ("egemaps.func", ["egemaps_func"], [("egemaps_func", None)]),
    ("mfcc.rich + egemaps.func", ["mfcc_mean", "mfcc_std", "mfcc", "egemaps_func"], None),
    ("shortterm.vmean,vstd", ["shortterm"], [("shortterm", ("vmean", "vstd"))]),
    ("mfcc.slope+shortterm", ["mfcc", "shortterm_mean", "shortterm_std"], None),
])
def test_stat_specs_parse(text, columns, parts):
    spec = parse(text)
    assert spec.kind == "pooled" and spec.columns == columns
    if parts is not None:
        assert [(p.column, p.stats) for p in spec.parts] == parts
    assert parse("mfcc.rich").parts[-1].optional == ("vmean", "vstd") and parse("mfcc.vmean").parts[0].optional == ()


@pytest.mark.parametrize("bad,why", [
    ("mfcc.max", "unknown statistic 'max'"), ("mfcc.", "no statistic"), ("mfcc.rich:seq", "whole frame sequences"),
    ("mfcc.p50,p50", "repeats a statistic"), ("mfcc.rich,p50", "repeats a statistic"), ("mfcc+mfcc.mean", "repeated"),
    ("mfcc.p101", "unknown statistic"), ("mfcc.p05", "unknown statistic"), ("mfcc.rich+mfcc.slope", "repeated"),
    ("shortterm.rich+shortterm.vmean", "repeated"),
    ("9mfcc.rich", "not a feature name"),
])
def test_stat_spec_errors(bad, why):
    with pytest.raises(ConfigError, match="feature spec") as err:
        parse(bad)
    assert why in str(err.value)


INFO = {"mfcc_mean": {"shape": [4], "dtype": "float32"}, "mfcc_std": {"shape": [4], "dtype": "float32"},
        "mfcc": {"shape": [None, 4], "dtype": "float16"},
        "shortterm": {"shape": [None, 3], "dtype": "float16",
                      "voicing": {"feature": "voicing_prob", "index": 2, "threshold": 0.5}},
        "shortterm_mean": {"shape": [3], "dtype": "float32"}, "shortterm_std": {"shape": [3], "dtype": "float32"}}


def test_resolve_names_what_is_missing_and_what_exists():
    with pytest.raises(StoreError, match=r"needs column 'mfcc_func'.*stored statistics of 'mfcc': mean, std; "
                                         r"pooled from its frame sequence: p20.*kurt, pNN"):
        resolve(parse("mfcc.func"), INFO)
    no_seq = {k: v for k, v in INFO.items() if k != "mfcc"}
    with pytest.raises(StoreError, match=r"pools p20,p50.* 'mfcc'.*sequences: true.*mfcc_mean"):
        resolve(parse("mfcc.p20,p50"), no_seq)
    with pytest.raises(ConfigError, match="vmean need a voicing flag"):
        resolve(parse("mfcc.vmean"), INFO)
    assert resolve(parse("mfcc.rich+shortterm.rich"), INFO)["shortterm"]["voicing"]["index"] == 2


def test_assemble_rich_layout_and_voicing():
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((n, 3)).astype(np.float32) for n in (5, 9)]
    for s in seqs:
        s[:, 2] = np.linspace(0, 1, len(s))  # voicing_prob: the later half is voiced
    cols = {"shortterm": seqs, "shortterm_mean": [s.mean(0) for s in seqs], "shortterm_std": [s.std(0) for s in seqs]}
    X = assemble(parse("shortterm.rich"), cols, INFO)
    assert X.shape == (2, 3 * 11)  # mean std | p20 p50 p80 range slope skew kurt vmean vstd, stat-major
    stored = seqs[1].astype(np.float16).astype(np.float32)  # pooled from the values as stored
    want = pool(stored, RICH[2:] + ("vmean", "vstd"), stored[:, 2] > 0.5)
    np.testing.assert_array_equal(X[1, :3], seqs[1].mean(0))
    np.testing.assert_allclose(X[1, 6:], np.concatenate(list(want.values())), rtol=1e-6)
    no_flag = {**INFO, "shortterm": {"shape": [None, 3], "dtype": "float16"}}
    assert assemble(parse("shortterm.rich"), cols, no_flag).shape == (2, 3 * 9)  # rich leaves vmean, vstd out


def test_voicing_flags_from_metadata_and_for_older_stores():
    names = ["zcr", "f0_hz", "voicing_prob", "d_zcr", "d_f0_hz", "d_voicing_prob"]
    ext = {"feature_names": names, "columns": {"shortterm": [None, 6], "shortterm_mean": [6], "shortterm_std": [6]}}
    assert voicing_flags({"extractors": {"shortterm": ext}}) == {
        "shortterm": {"feature": "voicing_prob", "index": 2, "threshold": 0.5}}  # older store: derived from the names
    ext_no_f0 = {"feature_names": names[:1], "columns": {"shortterm": [None, 1]}}
    assert voicing_flags({"extractors": {"shortterm": ext_no_f0,
                                         "mfcc": {"feature_names": ["a"], "columns": {"mfcc": [None, 1]}}}}) == {}
    recorded = {"feature_names": ["F0", "x"], "columns": {"egemaps": [None, 2]},
                "voicing": {"feature": "F0", "index": 0, "threshold": 0.0}}
    assert voicing_flags({"extractors": {"egemaps": recorded}})["egemaps"]["index"] == 0


# ---- a real store: load time == pooling the stored sequences == predict time ---------------------

@pytest.fixture(scope="module")
def rich_store(tmp_path_factory):
    from albsent.config import to_dict
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import prepare
    from albsent.pipeline.worker import ExtractBlock
    from albsent.testing.synth import make_corpus

    manifest = make_corpus(tmp_path_factory.mktemp("corpus_pool"), n_per_class=2, speakers=2, duration_s=(0.6, 1.0),
                           seed=4)
    out = tmp_path_factory.mktemp("st") / "rich"
    config = ExtractConfig()  # mfcc + shortterm (f0 on)
    p = prepare(str(manifest), str(out), config)
    ExtractBlock(to_dict(config), p.store.uri, p.meta)(p.items)
    return out


def test_load_time_pooling_equals_pooling_the_stored_sequences(rich_store):
    from albsent.dataset.data import load_data
    from albsent.store import Store, to_matrix, to_sequences

    store = Store(str(rich_store))
    assert store.meta["extractors"]["shortterm"]["voicing"] == {"feature": "voicing_prob", "index": 23,
                                                                "threshold": 0.5}
    assert "voicing" not in store.meta["extractors"]["mfcc"]
    data = load_data(str(rich_store), "mfcc.rich+shortterm.rich", "utterance")
    assert data.X.shape == (12, 120 * 9 + 24 * 11) and data.X.dtype == np.float32 and np.isfinite(data.X).all()
    assert data.columns["shortterm"]["voicing"]["index"] == 23 and "voicing" not in data.columns["mfcc"]
    t = store.read(["id", "label", "mfcc", "mfcc_mean", "mfcc_std", "shortterm", "shortterm_mean", "shortterm_std"])
    order = {rid: i for i, rid in enumerate(t["id"].to_pylist())}
    mseq = [s.astype(np.float32) for s in to_sequences(t["mfcc"])]
    sseq = [s.astype(np.float32) for s in to_sequences(t["shortterm"])]
    for row, rid in enumerate(data.ids):
        i = order[rid]
        m = pool(mseq[i], RICH[2:])
        s = pool(sseq[i], RICH[2:] + ("vmean", "vstd"), sseq[i][:, 23] > 0.5)
        want = np.concatenate([to_matrix(t["mfcc_mean"])[i], to_matrix(t["mfcc_std"])[i], *m.values(),
                               to_matrix(t["shortterm_mean"])[i], to_matrix(t["shortterm_std"])[i], *s.values()])
        np.testing.assert_allclose(data.X[row], want, rtol=1e-6, atol=1e-6)
    # existing specs read exactly the stored columns
    np.testing.assert_array_equal(load_data(str(rich_store), "mfcc", "utterance").X[:, :120], data.X[:, :120])


def test_predict_time_assemble_equals_load_time(rich_store):
    """What albsent.train.predict does with fresh audio: the store's preprocessing and extractors,
    then assemble(spec, rows, the resolved column info the model bundle carries)."""
    from albsent.audio.io import decode
    from albsent.audio.preprocess import preprocess
    from albsent.config import build
    from albsent.dataset.data import load_data
    from albsent.features.base import extract_all
    from albsent.features.config import ExtractConfig, build_extractors
    from albsent.store import Store

    spec = parse("shortterm.rich+mfcc.p50,slope")
    data = load_data(str(rich_store), spec, "utterance")
    store = Store(str(rich_store))
    config = build(ExtractConfig, store.meta["config"])
    extractors = [e for e in build_extractors(config) if set(spec.columns) & {c.name for c in e.columns()}]
    paths = dict(zip(*[store.read(["id", "path"])[c].to_pylist() for c in ("id", "path")]))
    for row, rid in enumerate(data.ids[:4]):
        dec = decode(paths[rid])
        _, segs = preprocess(dec.samples, dec.sample_rate_hz, config.audio, paths[rid])
        rows = extract_all(extractors, [s.samples for s in segs])
        X = assemble(spec, {c: [r[c] for r in rows] for c in spec.columns}, data.columns)
        np.testing.assert_array_equal(X[0], data.X[row])


def test_store_errors_for_missing_stats(rich_store):
    from albsent.dataset.data import load_data

    with pytest.raises(StoreError, match="egemaps_func"):
        load_data(str(rich_store), "egemaps.func", "utterance")
    with pytest.raises(ConfigError, match="voicing flag"):
        load_data(str(rich_store), "mfcc.vmean", "utterance")
    from albsent.store import Store

    info = column_info(Store(str(rich_store)).schema)  # from the schema's own metadata
    assert info["shortterm"]["voicing"]["feature"] == "voicing_prob"

