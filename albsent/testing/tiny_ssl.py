"""Random-weight HuBERT / wav2vec 2.0 / WavLM models saved with `save_pretrained`, for tests
and benchmarks (no downloads). They load through the same code path as a hub id.

`feat_extract_norm` picks the architecture variant, as in the released checkpoints:
  "group": base models (wav2vec2-base, hubert-base-ls960, wavlm-base-plus) -- the first conv
           layer normalises each channel over time, so zero padding changes the result;
  "layer": large models (wav2vec2-large-lv60, XLS-R, hubert-large, wavlm-large) -- per-frame
           LayerNorm, trained with an attention mask, so padded batches are exact.
The CNN keeps the real kernel/stride stack (320 samples per frame, 400-sample receptive field),
so frame counts match the released models.
"""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("hubert", "wav2vec2", "wavlm")

# transformers' own model tests use sizes like these. hidden_size must be divisible by
# num_conv_pos_embedding_groups and by num_attention_heads.
TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    conv_dim=(16, 16, 16, 16, 16, 16, 16), conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
)

# A few layers of a few hundred units: on one CPU thread about as fast as decoding a 44.1 kHz
# FLAC clip and resampling it, the case where decoding in series halves the rate (bench/).
SMALL = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
             conv_dim=(128,) * 7, num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16)


def _config(family: str, feat_extract_norm: str, **overrides):
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig

    cls = {"hubert": HubertConfig, "wav2vec2": Wav2Vec2Config, "wavlm": WavLMConfig}[family]
    kwargs = dict(feat_extract_norm=feat_extract_norm, do_stable_layer_norm=feat_extract_norm == "layer")
    kwargs.update(overrides)
    if family == "hubert" and feat_extract_norm == "layer":
        kwargs["conv_bias"] = True  # as hubert-large
    return cls(**kwargs)


def save_model(
    out_dir: str | Path, family: str, feat_extract_norm: str = "group", size: str = "tiny", seed: int = 0,
    do_normalize: bool | None = None, **overrides,
) -> Path:
    """Build a random `family` model of `size` ("tiny", "small" (4 x 256) or "base": the
    released base architecture, 12 layers x 768) and write it (safetensors + preprocessor_config.json) to
    `out_dir`. `do_normalize=None` writes no feature-extractor config, so the loader infers it."""
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    sizes = {"tiny": TINY, "small": SMALL, "base": {}}
    if size not in sizes:
        raise ValueError(f"size must be one of {sorted(sizes)}, got {size!r}")
    config = _config(family, feat_extract_norm, **{**sizes[size], **overrides})
    torch.manual_seed(seed)
    model = AutoModel.from_config(config).eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if do_normalize is not None:
        Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=do_normalize,
            return_attention_mask=feat_extract_norm == "layer",
        ).save_pretrained(out)
    return out


def tiny_models(root: str | Path) -> dict[str, Path]:
    """The test zoo: each family in its base-like (group norm) variant, plus layer-norm
    (large-like) wav2vec2 and WavLM. Keys: "<family>" and "<family>-layer"."""
    root = Path(root)
    specs = {
        "hubert": ("hubert", "group", False),
        "wav2vec2": ("wav2vec2", "group", True),
        "wavlm": ("wavlm", "group", None),  # no preprocessor config: normalisation inferred
        "wav2vec2-layer": ("wav2vec2", "layer", True),
        "wavlm-layer": ("wavlm", "layer", True),
    }
    return {
        key: save_model(root / key, fam, norm, "tiny", seed=i, do_normalize=dn)
        for i, (key, (fam, norm, dn)) in enumerate(specs.items())
    }
