"""Every registered autoencoder: prediction shapes per target, attachment points with their
documented sizes, and real learning on sequences with a learnable next-frame structure."""

from __future__ import annotations

import pytest
import torch

from albsent.errors import ConfigError
from albsent.models.autoencoders import AUTOENCODERS, TARGETS, AutoencoderConfig, attach_points, build_autoencoder
from albsent.pretrain import PretrainConfig, WindowConfig, pretrain
from albsent.testing.sequences import make_sequences
from tests.test_pretrain import sequence_data

pytestmark = pytest.mark.usefixtures("torch_one_thread")

MODELS = sorted(AUTOENCODERS)




def tiny(name: str, **kw) -> AutoencoderConfig:
    base = dict(name=name, hidden_size=12, layers=2, dense_hidden=[20], bottleneck=5, conv_channels=7, conv_filter=3)
    return AutoencoderConfig(**{**base, **kw})


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("target", TARGETS)
def test_shapes_and_attachment_points(name, target):
    torch.manual_seed(0)
    conv = name.startswith("conv_")  # odd and even windows, strides 1, 2 and = filter (padding arithmetic)
    for window, stride in [(7, 1), (7, 2), (8, 2), (8, 3), (7, 3)] if conv else [(7, 1)]:
        model = build_autoencoder(tiny(name, conv_stride=stride), 6, [0, 2, 5], window, target).eval()
        pred, taps = model(torch.randn(4, window, 6))
        assert pred.shape == ((4, 3) if target == "next" else (4, window, 3))
        documented = {p.name: p.dim for p in model.attach_points()}
        assert documented == {k: v.shape[1] for k, v in taps.items()}
        assert all(v.shape[0] == 4 and v.dim() == 2 for v in taps.values())
        for point, dim in documented.items():
            assert model.tap(torch.randn(2, window, 6), point).shape == (2, dim)
        assert attach_points(model.config, 6, window, target) == model.attach_points()


def test_recurrent_attachment_points_are_named_per_layer():
    names = [p.name for p in attach_points(tiny("mlstm", layers=2), 6)]
    assert names[0] == "layer2.final"
    assert {"layer1.final", "layer1.all_mean", "layer1.all", "layer1.cell_final", "layer2.cell_final"} <= set(names)
    assert "layer1.cell_final" not in [p.name for p in attach_points(tiny("rnn", layers=2), 6)]
    conv = {p.name: p.dim for p in attach_points(tiny("conv_lstm", conv_stride=3, layers=1), 6, window=15)}
    assert conv["conv.all"] == 5 * 7 and conv["layer1.all"] == 5 * 12  # 15 frames merged into 5 steps
    assert [p.name for p in attach_points(tiny("seq2seq"), 6)][0] == "encoder.final"
    assert attach_points(tiny("dense"), 6)[0].name == "bottleneck"


def test_causal_conv_sees_only_the_past():
    """With stride 1 the conv output at step t depends on frames <= t only (targets stay honest)."""
    torch.manual_seed(0)
    model = build_autoencoder(tiny("conv_lstm", conv_stride=1, conv_filter=4, layers=1), 3, None, 10, "shifted").eval()
    x = torch.randn(1, 10, 3)
    y = x.clone()
    y[0, 6:] += 5.0
    with torch.no_grad():
        p1, _ = model(x)
        p2, _ = model(y)
    torch.testing.assert_close(p1[0, :6], p2[0, :6])
    assert not torch.allclose(p1[0, 6:], p2[0, 6:])


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="known|one of"):
        AutoencoderConfig(name="transformer")
    with pytest.raises(ConfigError, match="conv_stride"):
        AutoencoderConfig(name="conv_mlstm", conv_filter=3, conv_stride=4)
    with pytest.raises(ConfigError, match="hidden_size"):
        AutoencoderConfig(hidden_size=0)


def frames(seed: int = 0):
    seqs, labels, _ = make_sequences(n=36, dim=4, band=0.2, seed=seed)
    return sequence_data(seqs, labels)


@pytest.mark.parametrize("name,target", [(m, "next") for m in MODELS]
                         + [("lstm", "shifted"), ("conv_mlstm", "shifted"), ("seq2seq", "reconstruct"),
                            ("dense", "reconstruct")])
def test_learns_next_frame_structure(name, target):
    """Validation loss on held-out sequences ends far below predicting the training mean."""
    model = dict(name=name, hidden_size=24, layers=1, dense_hidden=[48], bottleneck=12, conv_channels=16,
                 conv_filter=3, conv_stride=3 if name == "conv_mlstm" else 1)
    config = PretrainConfig(window=WindowConfig(length=8, target=target), model=AutoencoderConfig(**model),
                            iterations=250, val_every=125, lr=3e-3, batch_size=32, val_fraction=0.25, num_threads=1,
                            seed=0)
    result = pretrain(config, frames())
    m = result.metrics
    assert m["val_ratio"] < 0.5, m
    assert result.history[-1]["val_loss"] < result.history[0]["val_mean_baseline"]
