"""Common checks over every registered model: forward shape, backward reaches every
parameter, overfits 8 examples; padding does not change BiLSTM output; layer sum."""

from __future__ import annotations

import pytest
import torch

from albsent.errors import ConfigError
from albsent.models import MODELS, LayerSum, build_model, check_compatible, get_model
from albsent.train.estimators import fit_sklearn

pytestmark = pytest.mark.usefixtures("torch_one_thread")


HP = {"hidden_size": 16, "num_layers": 1, "dropout": 0.0, "pooling": "attention"}
DIM, CLASSES = 6, 3


def batch(kind: str, n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    if kind == "sequence":
        lengths = torch.tensor([5 + (i % 4) for i in range(n)])
        x = torch.randn(n, int(lengths.max()), DIM, generator=g)
        x += y[:, None, None].float()  # class shifts every frame
        x[torch.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
        return x, lengths, y
    return torch.randn(n, DIM, generator=g) + y[:, None].float(), None, y


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward_and_overfit(name):
    entry = get_model(name)
    torch.manual_seed(0)
    model = build_model(name, DIM, CLASSES, HP)
    x, lengths, y = batch(entry.input_kind)
    logits = model(x, lengths)
    assert logits.shape == (8, CLASSES) and torch.isfinite(logits).all()
    if entry.sklearn:  # fitted by scikit-learn: no gradients needed (an SVM has buffers only)
        fit_sklearn(name, model, x.numpy(), y.numpy(), CLASSES, C=100.0, class_weighted=False, seed=0)
        model.eval()
        assert (model(x, lengths).argmax(1) == y).all(), f"{name} did not fit 8 examples"
        return
    logits.sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x, lengths).argmax(1) == y).all(), f"{name} did not fit 8 examples"


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_padding_does_not_change_bilstm_output(pooling):
    torch.manual_seed(0)
    model = build_model("bilstm_attn", DIM, CLASSES, {**HP, "pooling": pooling}).eval()
    x, lengths, _ = batch("sequence", n=4)
    with torch.no_grad():
        padded = model(x, lengths)
        alone = torch.cat([model(x[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(4)])
        extra = torch.cat([x, torch.randn(4, 7, DIM)], dim=1)  # garbage beyond each length
        more = model(extra, lengths)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, more, atol=1e-5, rtol=1e-5)


def test_attention_weights_mask_padding():
    torch.manual_seed(0)
    model = build_model("bilstm_attn", DIM, CLASSES, HP).eval()
    x, lengths, _ = batch("sequence", n=4)
    with torch.no_grad():
        h, mask = model.encode(x, lengths)
        w = model.attention(h, mask)
    assert torch.allclose(w.sum(1), torch.ones(4))
    assert (w[~mask] == 0).all()


def test_layer_sum_wraps_pooled_models_and_learns_weights():
    torch.manual_seed(0)
    assert isinstance(build_model("mlp", DIM, CLASSES, HP, n_layers=4), LayerSum)
    model = build_model("logreg", DIM, CLASSES, HP, n_layers=4)
    torch.testing.assert_close(model.layer_weights(), torch.full((4,), 0.25))
    y = torch.arange(90) % CLASSES
    x = 2 * torch.randn(90, 4, DIM)
    x[:, 2] += 3 * y[:, None].float()  # only layer 2 carries the label; the others are noise
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    w = model.layer_weights()
    assert int(w.argmax()) == 2 and w[2] > 0.4


def test_registry_errors_name_the_choices():
    with pytest.raises(ConfigError, match="unknown model 'bilstm'; known: .*bilstm_attn.*mlp"):
        get_model("bilstm")
    with pytest.raises(ConfigError, match="frame sequences"):
        check_compatible("mlp", "sequence", "mfcc:seq")
    with pytest.raises(ConfigError, match="':seq' spec"):
        check_compatible("bilstm_attn", "pooled", "mfcc")
    check_compatible("logreg", "layers", "ssl:hubert:all")
    with pytest.raises(ConfigError, match="scikit-learn"):
        check_compatible("sklearn_logreg", "layers", "ssl:hubert:all")
