"""CUDA checks (marker `gpu`; CI runs `-m "not gpu"`, and they skip without a CUDA device):
the `ssl` extractor on the GPU gives the CPU's values, in float32 and bfloat16, with padded
batches of base (group-norm) and large (layer-norm) models, and `albsent extract` puts its SSL
actor on the GPU of a local Ray cluster."""

from __future__ import annotations

import numpy as np
import pytest

from albsent.features.ssl import SslConfig, SslExtractor

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def waves(seed=0, n=12):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(rng.uniform(0.3, 3.0) * 16000))).astype(np.float32) for _ in range(n)]


def run(path, device, dtype, **kw):
    ext = SslExtractor(SslConfig(models=[path], device=device, dtype=dtype, std=True, sequence_layers=[1], **kw),
                       16000, "float32")
    return ext.extract(waves()), ext


@pytest.mark.parametrize("key", ["hubert", "wav2vec2", "wavlm", "wav2vec2-layer", "wavlm-layer"])
def test_cuda_float32_equals_cpu(tiny, key):
    gpu, ext = run(tiny[key], "cuda", "float32", batch_seconds=10.0)
    cpu, _ = run(tiny[key], "cpu", "float32", batch_seconds=1.0)  # other batches: padding must not matter
    assert ext._models[0].model.device.type == "cuda"
    for g, c in zip(gpu, cpu):
        assert g.keys() == c.keys()
        for col in g:
            # TF32 is off by default for matmuls; cuDNN convolutions may use it: 1e-3 relative
            assert float(np.abs(g[col] - c[col]).max()) <= 1e-3 * max(1.0, float(np.abs(c[col]).max())), col


@pytest.mark.parametrize("key", ["hubert", "wavlm-layer"])
def test_cuda_bfloat16_close_to_float32(tiny, key):
    bf, ext = run(tiny[key], "cuda", "bfloat16", batch_seconds=10.0)
    ref, _ = run(tiny[key], "cpu", "float32")
    assert ext._models[0].dtype == "bfloat16"
    fam = ext.specs[0].family
    for b, r in zip(bf, ref):
        mean, want = b[f"ssl_{fam}_mean"], r[f"ssl_{fam}_mean"]
        assert float(np.abs(mean - want).max()) <= 2e-2 * float(np.abs(want).max())


def test_auto_device_and_resources_on_a_gpu_cluster(tiny, ray_local):
    ext = SslExtractor(SslConfig(models=[tiny["hubert"]]), 16000)
    from albsent.runner.resources import cluster_gpus

    assert ext.device() == "cuda" and ext.planned_device(cluster_gpus()) == "cuda"
    assert ext.resources(cluster_gpus()) == {"num_gpus": 1.0}
    assert SslExtractor(SslConfig(models=[tiny["hubert"]], device="cpu"), 16000).resources(cluster_gpus()) == {}


@pytest.mark.ray
def test_extract_puts_the_ssl_actor_on_the_gpu(tiny, corpus, ray_local, tmp_path):
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.store import Store, to_matrix

    def store(device):
        config = ExtractConfig(features=["mfcc", "ssl"],
                               ssl=SslConfig(models=[tiny["hubert"]], dtype="float32", device=device))
        out = tmp_path / device
        summary = extract(str(corpus), str(out), config, progress=False)
        assert (summary.stored, summary.quarantined) == (24, 0)
        return Store(str(out))

    gpu, cpu = store("auto"), store("cpu")
    assert gpu.meta["extractors"]["ssl"]["models"]["hubert"]["device"] == "cuda"
    assert cpu.meta["extractors"]["ssl"]["models"]["hubert"]["device"] == "cpu"
    g = gpu.read(["utterance_id", "ssl_hubert_mean"]).sort_by("utterance_id")
    c = cpu.read(["utterance_id", "ssl_hubert_mean"]).sort_by("utterance_id")
    assert g["utterance_id"].to_pylist() == c["utterance_id"].to_pylist()
    np.testing.assert_allclose(to_matrix(g["ssl_hubert_mean"]), to_matrix(c["ssl_hubert_mean"]), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("model,kind", [("mlp", "pooled"), ("bilstm_attn", "sequence"), ("logreg", "layers")])
def test_fit_trains_on_the_gpu_and_returns_a_cpu_model(model, kind, tmp_path):
    from albsent.train import fit, load_bundle
    from tests.test_train import config, make_data

    data = make_data(kind)
    gpu = fit(config(model=model, device="cuda", class_weighted=True, epochs=20), data, out_dir=tmp_path)
    cpu = fit(config(model=model, device="cpu", class_weighted=True, epochs=20), data)
    assert len(gpu.history) == len(cpu.history) and gpu.metrics["macro_f1"] > 0.6
    # same seed, same batches: the two devices' losses agree up to float rounding
    np.testing.assert_allclose(gpu.history[0]["train_loss"], cpu.history[0]["train_loss"], rtol=1e-3)
    assert load_bundle(tmp_path).state  # saved from the GPU run


def test_pretrain_on_the_gpu_returns_a_cpu_model(tmp_path):
    from albsent.models.autoencoders import AutoencoderConfig
    from albsent.pretrain import PretrainConfig, WindowConfig, pretrain
    from tests.test_pretrain import synthetic_frames

    config = PretrainConfig(window=WindowConfig(length=6), model=AutoencoderConfig(name="mlstm", hidden_size=10),
                            iterations=40, val_every=20, checkpoint_every=20, batch_size=16, seed=1, device="cuda")
    result = pretrain(config, synthetic_frames(), out_dir=tmp_path / "ae")
    assert all(p.device.type == "cpu" for p in result.model.parameters())
    assert np.isfinite(result.metrics["val_loss"]) and (tmp_path / "ae" / "checkpoints" / "step-000020").is_dir()
