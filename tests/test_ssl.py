"""The `ssl` extractor on tiny random HuBERT / wav2vec2 / WavLM models saved with
save_pretrained (loaded through the same path as a hub id): layers, shapes, dtypes,
padded-batch == one-clip-at-a-time, chunking, errors, and a Ray store with MFCC + SSL + resume."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from albsent.errors import ConfigError
from albsent.features.ssl import SslConfig, SslExtractor, chunk_bounds, plan_batches
from albsent.features.ssl_model import SslModel, load_spec

KEYS = ["hubert", "wav2vec2", "wavlm", "wav2vec2-layer", "wavlm-layer"]
# Padded/bucketed batch vs one clip at a time, float32 weights (observed max |diff| on these
# models: pooled <= 5e-7, frames <= 3e-6; differences come from batched matmul rounding).
TOL_POOLED_FP32, TOL_FRAMES_FP32 = 1e-5, 2e-5
# bfloat16 weights: relative to the largest |value| (observed <= 2e-3).
TOL_REL_BF16 = 2e-2


def waves(seed=0):
    """6 clips of random lengths plus 3 of equal length."""
    rng = np.random.default_rng(seed)
    out = [(0.1 * rng.standard_normal(int(rng.uniform(0.3, 2.5) * 16000))).astype(np.float32) for _ in range(6)]
    return out + [(0.1 * rng.standard_normal(8000)).astype(np.float32) for _ in range(3)]


def extractor(path, **kw):
    seq_dtype = kw.pop("sequence_dtype", "float16")
    return SslExtractor(SslConfig(models=[path], **kw), 16000, seq_dtype)


@pytest.mark.parametrize("key", KEYS)
def test_spec_columns_and_shapes(tiny, key):
    ext = extractor(tiny[key], std=True, sequence_layers=[0, 2], dtype="float32")
    spec = ext.specs[0]
    family = key.split("-")[0]
    assert (spec.family, spec.alias, spec.num_layers, spec.hidden_size) == (family, family, 3, 32)
    assert spec.feat_extract_norm == ("layer" if key.endswith("-layer") else "group")
    cols = {c.name: (c.shape, c.dtype, c.kind) for c in ext.columns()}
    assert cols == {
        f"ssl_{family}_mean": ((3, 32), "float32", "pooled"), f"ssl_{family}_std": ((3, 32), "float32", "pooled"),
        f"ssl_{family}_l0": ((None, 32), "float16", "sequence"),
        f"ssl_{family}_l2": ((None, 32), "float16", "sequence"),
    }
    ws = waves()
    rows = ext.extract(ws)
    model = ext._models[0].model
    for w, row in zip(ws, rows):
        frames = int(model._get_feat_extract_output_lengths(w.size))  # HF's own formula
        assert spec.num_frames(w.size) == frames
        assert row[f"ssl_{family}_mean"].shape == (3, 32) and row[f"ssl_{family}_mean"].dtype == np.float32
        assert row[f"ssl_{family}_std"].dtype == np.float32 and (row[f"ssl_{family}_std"] > 0).all()
        assert row[f"ssl_{family}_l2"].shape == (frames, 32) and row[f"ssl_{family}_l2"].dtype == np.float16
        # pooled mean is the mean of the stored frames, layer by layer
        np.testing.assert_allclose(row[f"ssl_{family}_l2"].astype(np.float32).mean(0), row[f"ssl_{family}_mean"][2],
                                   atol=3e-3)
    assert not np.allclose(rows[0][f"ssl_{family}_mean"][0], rows[0][f"ssl_{family}_mean"][2])  # layers differ
    meta = ext.metadata()["models"][family]
    assert meta["num_layers"] == 3 and meta["hidden_size"] == 32 and meta["frame_shift_s"] == 0.02
    assert meta["family"] == family and len(meta["weights_sha256"]) == 64 and meta["dtype"] == "float32"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("key", KEYS)
def test_padded_batch_equals_one_clip_at_a_time(tiny, key, dtype):
    """Zero-padded batches (the GPU path; SslModel pads whatever it is given) of unequal
    lengths give each clip its own frames, for group-norm and layer-norm CNNs alike."""
    m = SslModel(load_spec(tiny[key]), dtype)
    ws = waves(1)
    batched = m.forward(ws)
    for w, b in zip(ws, batched):
        s = m.forward([w])[0]
        assert b.shape == s.shape
        diff = float((b - s).abs().max())
        limit = TOL_FRAMES_FP32 if dtype == "float32" else TOL_REL_BF16 * float(s.abs().max())
        assert diff <= limit, (w.size, diff)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("key", KEYS)
def test_batched_extraction_equals_one_clip_at_a_time(tiny, key, dtype):
    ext = extractor(tiny[key], std=True, sequence_layers=[0, 2], dtype=dtype, sequence_dtype="float32",
                    batch_seconds=8.0)
    ws = waves(1)
    batched = ext.extract(ws)
    single = [ext.extract([w])[0] for w in ws]
    for b, s in zip(batched, single):
        for col in b:
            diff = float(np.abs(b[col] - s[col]).max())
            if dtype == "float32":
                assert diff <= (TOL_FRAMES_FP32 if "_l" in col else TOL_POOLED_FP32), (col, diff)
            else:
                assert diff <= TOL_REL_BF16 * float(np.abs(s[col]).max()), (col, diff)


def test_group_norm_padding_needs_the_masked_statistics(tiny):
    """Why the first conv layer's statistics are masked: zero padding with an attention mask
    alone changes a group-norm CNN's output far beyond the tolerance above, while SslModel's
    padded batch gives each clip what it gives alone."""
    import torch

    spec = load_spec(tiny["hubert"])
    m = SslModel(spec, "float32")
    short, long = waves(2)[0][:8000], waves(2)[1][:16000]
    alone = m.forward([short])[0]
    batched = m.forward([short, long])[0]
    assert batched.shape == alone.shape == (3, spec.num_frames(8000), 32)
    assert float((batched - alone).abs().max()) <= TOL_FRAMES_FP32
    plain = SslModel(spec, "float32")
    layer0 = plain.model.feature_extractor.conv_layers[0]
    layer0.layer_norm = layer0.layer_norm.norm  # HF's own GroupNorm back
    x = torch.zeros(2, 16000)
    x[0, :8000], x[1] = torch.from_numpy(short), torch.from_numpy(long)
    mask = torch.zeros(2, 16000, dtype=torch.long)
    mask[0, :8000], mask[1] = 1, 1
    with torch.inference_mode():
        padded = plain.model(x, attention_mask=mask,
                             output_hidden_states=True).hidden_states[-1][0, : spec.num_frames(8000)]
    assert float((padded - alone[-1]).abs().max()) > 100 * TOL_FRAMES_FP32


def test_pooled_matches_frames(tiny):
    """SslModel.pooled (device-side sums) against the frames of forward()."""
    m = SslModel(load_spec(tiny["wav2vec2"]), "float32")
    ws = waves(4)[:4]
    frames = m.forward(ws)
    for (n, s, ss, kept), h in zip(m.pooled(ws, [1]), frames):
        h = h.double().numpy()
        assert n == h.shape[1] and s.dtype == np.float64
        np.testing.assert_allclose(s, h.sum(1), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ss, (h * h).sum(1), rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(kept[1], h[1].astype(np.float32))


def test_plan_batches():
    assert plan_batches([5, 3, 5, 3, 4], 100, pad=False) == [[1, 3], [4], [0, 2]]
    assert plan_batches([5, 3, 5, 3, 4], 100) == [[1, 3, 4, 0, 2]]
    assert plan_batches([5, 3, 5, 3, 4], 10) == [[1, 3], [4, 0], [2]]  # count x longest <= 10
    assert plan_batches([50], 10) == [[0]]  # a long piece runs alone


@pytest.mark.parametrize("key", ["hubert", "wavlm-layer"])
def test_long_clip_is_chunked_and_stitched(tiny, key):
    spec = load_spec(tiny[key])
    n = 7 * 16000 + 123
    bounds = chunk_bounds(n, spec, max_chunk_s=2.0)
    assert len(bounds) == 4 and bounds[0][0] == 0 and bounds[-1][1] == n
    assert sum(spec.num_frames(b - a) for a, b in bounds) == spec.num_frames(n)  # frames add up exactly
    wave = (0.1 * np.random.default_rng(3).standard_normal(n)).astype(np.float32)
    chunked = extractor(tiny[key], sequence_layers=[0], dtype="float32", max_chunk_s=2.0,
                        sequence_dtype="float32").extract([wave])[0]
    whole = extractor(tiny[key], sequence_layers=[0], dtype="float32", max_chunk_s=60.0,
                      sequence_dtype="float32").extract([wave])[0]
    fam = spec.family
    assert chunked[f"ssl_{fam}_l0"].shape == whole[f"ssl_{fam}_l0"].shape == (spec.num_frames(n), 32)
    np.testing.assert_allclose(chunked[f"ssl_{fam}_l0"].mean(0), chunked[f"ssl_{fam}_mean"][0], atol=1e-5)
    if spec.feat_extract_norm == "layer":  # per-frame CNN: frames away from piece edges (pos-conv reach) are the same
        k = 2 * 16000 // spec.stride
        inner = np.r_[20 : k - 20, k + 20 : 2 * k - 20]
        np.testing.assert_allclose(chunked[f"ssl_{fam}_l0"][inner], whole[f"ssl_{fam}_l0"][inner], atol=1e-4)


def test_family_from_config_not_name(tiny, tmp_path):
    misleading = tmp_path / "hubert-base-ls960"
    shutil.copytree(tiny["wavlm"], misleading)
    spec = load_spec(str(misleading))
    assert (spec.family, spec.alias, spec.normalize_from) == ("wavlm", "wavlm", "inferred from feat_extract_norm")
    assert spec.normalize is False  # group-norm WavLM: no input normalisation inferred


def test_clear_errors(tiny, tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        load_spec(str(tmp_path / "nope"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        load_spec(str(tmp_path / "file.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        load_spec(str(tmp_path / "empty"))
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    shutil.copy(f"{tiny['hubert']}/config.json", noweights)
    with pytest.raises(ConfigError, match="no weights"):
        load_spec(str(noweights))
    with pytest.raises(ConfigError, match="facebook/hubert-base-ls960'.*local Hugging Face cache"):
        load_spec("facebook/hubert-base-ls960")  # HF_HUB_OFFLINE=1 in tests: fails fast
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (bert / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="'bert' is not supported; supported families: hubert, wav2vec2, wavlm"):
        load_spec(str(bert))
    with pytest.raises(ConfigError, match="alias"):
        SslExtractor(SslConfig(models=[tiny["wav2vec2"], tiny["wav2vec2-layer"]]), 16000)
    ok = SslExtractor(SslConfig(models=[tiny["wav2vec2"], f"large={tiny['wav2vec2-layer']}"]), 16000)
    assert [s.alias for s in ok.specs] == ["wav2vec2", "large"]
    with pytest.raises(ConfigError, match="alias 'Big'"):
        SslExtractor(SslConfig(models=[f"Big={tiny['hubert']}"]), 16000)
    with pytest.raises(ConfigError, match="sequence_layers"):
        SslExtractor(SslConfig(models=[tiny["hubert"]], sequence_layers=[3]), 16000)
    with pytest.raises(ConfigError, match="--ssl-model"):
        SslExtractor(SslConfig(), 16000)


def test_config_hash_ignores_runtime_fields_and_cli_adds_ssl(tiny):
    from albsent.cli import build_parser
    from albsent.commands.extract import load_config
    from albsent.features.config import ExtractConfig

    a = ExtractConfig(features=["ssl"], ssl=SslConfig(models=[tiny["hubert"]], batch_seconds=10, num_gpus_per_actor=0))
    b = ExtractConfig(features=["ssl"], ssl=SslConfig(models=[tiny["hubert"]], batch_seconds=99))
    c = ExtractConfig(features=["ssl"], ssl=SslConfig(models=[tiny["hubert"]], dtype="float32"))
    assert a.config_hash() == b.config_hash() != c.config_hash()
    args = build_parser().parse_args(["extract", "x", "--out", "y", "--features", "mfcc",
                                      "--ssl-model", f"{tiny['hubert']},{tiny['wavlm']}"])
    config = load_config(args)
    assert config.features == ["mfcc", "ssl"] and config.ssl.models == [tiny["hubert"], tiny["wavlm"]]


@pytest.mark.ray
@pytest.mark.slow
def test_store_with_mfcc_and_two_ssl_models_and_resume(tiny, corpus, ray_local, tmp_path, capsys):
    import pyarrow.parquet as pq

    from albsent.cli import main
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.store import Store, to_matrix, to_sequences

    def config(batch_seconds):
        ssl = SslConfig(models=[tiny["hubert"], tiny["wavlm-layer"]], std=True, sequence_layers=[1], dtype="float32",
                        batch_seconds=batch_seconds)
        return ExtractConfig(features=["mfcc", "ssl"], ssl=ssl, batch_size=8, num_actors=2)

    out = tmp_path / "store"
    first = extract(str(corpus), str(out), config(30.0), progress=False)
    assert (first.stored, first.quarantined) == (24, 0)
    store = Store(str(out))
    cols = ["utterance_id", "mfcc_mean", "ssl_hubert_mean", "ssl_hubert_std", "ssl_wavlm_mean", "ssl_wavlm_l1",
            "duration_s"]
    table = store.read(cols).sort_by("utterance_id")
    assert (to_matrix(table["ssl_hubert_mean"]).shape == (24, 3, 32)
            and to_matrix(table["ssl_wavlm_mean"]).dtype == np.float32)
    assert to_matrix(table["mfcc_mean"]).shape == (24, 120)
    seqs = to_sequences(table["ssl_wavlm_l1"])
    spec = load_spec(tiny["wavlm-layer"])
    assert all(s.shape == (spec.num_frames(round(d * 16000)), 32) and s.dtype == np.float16
               for s, d in zip(seqs, table["duration_s"].to_pylist()))
    models = store.meta["extractors"]["ssl"]["models"]
    assert (set(models) == {"hubert", "wavlm"} and models["hubert"]["num_layers"] == 3
            and models["wavlm"]["padded_batches"])

    # resume: drop one part, re-run with another batch size (a runtime field: same store hash)
    victim = store.part_files()[0]
    lost = set(pq.read_table(victim, columns=["utterance_id"]).column(0).to_pylist())
    os.remove(victim)
    second = extract(str(corpus), str(out), config(2.0), progress=False)
    assert (second.skipped, second.stored) == (24 - len(lost), len(lost))
    again = Store(str(out)).read(cols).sort_by("utterance_id")
    for col in ["ssl_hubert_mean", "ssl_hubert_std", "ssl_wavlm_mean"]:
        np.testing.assert_allclose(to_matrix(again[col]), to_matrix(table[col]), atol=TOL_POOLED_FP32)

    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ssl_hubert_mean" in text and "[3, 32]" in text and "ssl_wavlm_l1" in text and "[frames, 32]" in text


@pytest.mark.slow
def test_hub_id_from_local_cache(tiny, tmp_path):
    """A hub id resolves through the Hugging Face cache offline (a snapshot laid out as
    huggingface_hub does), and its commit is recorded as the revision. A subprocess, because
    huggingface_hub reads HF_HUB_CACHE at import."""
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--albsent-test--tiny-wavlm"
    shutil.copytree(tiny["wavlm-layer"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code = (
        "import json, numpy as np\n"
        "from albsent.features.ssl import SslConfig, SslExtractor\n"
        "e = SslExtractor(SslConfig(models=['albsent-test/tiny-wavlm'], dtype='float32'), 16000)\n"
        "row = e.extract([np.ones(16000, np.float32) * 0.1])[0]\n"
        "print(json.dumps({'meta': e.metadata()['models']['wavlm'], 'shape': list(row['ssl_wavlm_mean'].shape)}))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["shape"] == [3, 32] and got["meta"]["revision"] == commit
            and got["meta"]["source"] == "albsent-test/tiny-wavlm")
    assert got["meta"]["family"] == "wavlm" and len(got["meta"]["weights_sha256"]) == 64


def test_retrained_weights_at_the_same_path_are_refused(tmp_path):
    """Same config, different weights: appending would mix two models in one column."""
    from albsent.errors import StoreError
    from albsent.features.config import ExtractConfig, build_extractors, store_metadata
    from albsent.store import Store
    from albsent.testing.tiny_ssl import save_model

    path = save_model(tmp_path / "hubert", "hubert", seed=0)
    config = ExtractConfig(features=["ssl"], ssl=SslConfig(models=[str(path)], dtype="float32"))
    store = Store(str(tmp_path / "store"))
    store.create_or_check(store_metadata(config, build_extractors(config), [], "t0"))
    store.create_or_check(store_metadata(config, build_extractors(config), [], "t0"))  # same weights: fine
    save_model(tmp_path / "hubert", "hubert", seed=1)
    with pytest.raises(StoreError, match=r"model weights \(sha256\)"):
        store.create_or_check(store_metadata(config, build_extractors(config), [], "t0"))


@pytest.mark.parametrize("key", ["hubert", "wavlm-layer"])
def test_gemm_positional_conv_equals_cudnn_conv(tiny, key):
    """The GPU path's positional convolution as per-group matmuls (run here on the CPU)."""
    import torch

    from albsent.features.ssl_layers import GemmConv1d

    conv = SslModel(load_spec(tiny[key]), "float32").model.encoder.pos_conv_embed.conv
    gemm = GemmConv1d(conv)
    x = torch.randn(3, 32, 57)
    with torch.inference_mode():
        want, got = conv(x), gemm(x)
    assert got.shape == want.shape == (3, 32, 57 + 1)  # even kernel: one extra frame, which HF drops
    assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


GPU_CLUSTER_CHILD = r"""
import json, sys
import ray
from albsent.features.ssl import SslConfig
from albsent.features.config import ExtractConfig
from albsent.pipeline.extract import extract
from albsent.store import Store

model, corpus, out, tmp = sys.argv[1:5]
# A cluster that advertises a GPU: the ssl actor asks for num_gpus=1 (auto) and Ray Data's
# GPU rules apply; without CUDA the actor's device "auto" still resolves to the CPU here.
ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _temp_dir=tmp, logging_level="WARNING")
config = ExtractConfig(features=["ssl"], ssl=SslConfig(models=[model]), batch_size=8)
s = extract(corpus, out, config, progress=False)
print(json.dumps({"stored": s.stored, "quarantined": s.quarantined, "rows": Store(out).read(["id"]).num_rows}))
ray.shutdown()
"""


@pytest.mark.ray
@pytest.mark.slow
def test_ssl_actor_on_a_cluster_with_gpus(tiny, corpus, tmp_path):
    """Ray Data refuses a GPU actor pool without an explicit batch size (found on an H100):
    the pipeline gives one, on a local cluster that advertises a GPU."""
    import subprocess
    import sys
    import tempfile

    from albsent.features.ssl import SslExtractor

    tmp = tempfile.mkdtemp(prefix="albsent-ray-gpu-")
    try:
        out = subprocess.run([sys.executable, "-c", GPU_CLUSTER_CHILD, tiny["hubert"], str(corpus),
                              str(tmp_path / "store"), tmp],
                             capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"stored": 24, "quarantined": 0, "rows": 24}
    assert SslExtractor(SslConfig(models=[tiny["hubert"]], device="cpu"), 16000).resources() == {}
