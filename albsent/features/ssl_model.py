"""Load a HuggingFace SSL speech model (HuBERT, wav2vec 2.0, WavLM) and run it.

`load_spec` reads only the config (cheap: the driver and `--dry-run` use it); `SslModel` loads
the weights (once per Ray actor) and runs one forward pass per batch that returns every hidden
state: index 0 = the CNN features after projection and positional convolution (the
"embedding" output), 1..N = the N transformer layers. So `layers = 1 + num_hidden_layers`.

Frames: the CNN is a stack of unpadded strided convolutions, so a clip of n samples gives
`floor((n - R) / S) + 1` frames, S = product of the strides (320 = 20 ms at 16 kHz) and
R = receptive field (400 samples); output frame j sees samples [j*S, j*S + R).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from albsent.errors import ConfigError

log = logging.getLogger(__name__)

FAMILIES = ("hubert", "wav2vec2", "wavlm")  # HF config.model_type values we support
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class SslSpec:
    source: str  # hub id or local directory
    alias: str  # column name part: ssl_<alias>_mean
    family: str  # config.model_type
    model_class: str  # config.architectures[0] when present
    num_layers: int  # 1 + num_hidden_layers (CNN/embedding output + every transformer layer)
    hidden_size: int
    conv_kernel: tuple[int, ...]
    conv_stride: tuple[int, ...]
    sample_rate_hz: int
    normalize: bool  # zero-mean unit-variance input (feature extractor's do_normalize)
    normalize_from: str  # "preprocessor_config.json" or "inferred from feat_extract_norm"
    padding_ok: bool  # feat_extract_norm == "layer": padded batches + attention mask are exact
    feat_extract_norm: str
    revision: str | None  # hub commit hash when loaded from the hub cache

    @property
    def stride(self) -> int:
        return int(np.prod(self.conv_stride))

    @property
    def receptive_field(self) -> int:
        r, jump = 1, 1
        for k, s in zip(self.conv_kernel, self.conv_stride):
            r += (k - 1) * jump
            jump *= s
        return r

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.stride

    def num_frames(self, n_samples: int) -> int:
        """Frames for a clip of n samples (clips shorter than R are zero-padded to R: 1 frame)."""
        return max(n_samples - self.receptive_field, 0) // self.stride + 1


def _is_path_like(source: str) -> bool:
    return source.startswith((".", "/", "~")) or os.path.exists(source) or source.count("/") > 1 or "\\" in source


def _hub_file(source: str, name: str) -> str | None:
    """A file of `source`: from the local directory, else from the HF cache (never downloads)."""
    if os.path.isdir(source):
        path = os.path.join(source, name)
        return path if os.path.isfile(path) else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(source, name)
        return found if isinstance(found, str) else None
    except Exception:  # malformed repo id etc.
        return None


def load_spec(source: str, alias: str | None = None, sample_rate_hz: int = 16000) -> SslSpec:
    """Read the config of `source` (no weights). Raises ConfigError naming the model and what was expected."""
    from transformers import AutoConfig

    where = f"ssl model '{source}'"
    local = os.path.isdir(source)
    if local:
        if not os.path.isfile(os.path.join(source, "config.json")):
            raise ConfigError(f"{where}: the folder has no config.json; expected a folder written by save_pretrained()")
        if not any(os.path.isfile(os.path.join(source, f)) for f in WEIGHT_FILES) and not _sharded(source):
            raise ConfigError(f"{where}: the folder has no weights ({' or '.join(WEIGHT_FILES)}); expected a folder written by save_pretrained()")
    elif os.path.exists(source):
        raise ConfigError(f"{where}: is a file; expected a folder written by save_pretrained() or a hub id")
    elif _is_path_like(source):
        raise ConfigError(f"{where}: no such directory; expected a local folder written by save_pretrained() or a hub id like facebook/hubert-base-ls960")
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        raise ConfigError(
            f"{where}: could not load its config ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            f"Expected a hub id whose files are in the local Hugging Face cache{' (HF_HUB_OFFLINE is set: nothing is downloaded)' if offline else ''} "
            "or a local folder written by save_pretrained()"
        ) from exc
    family = config.model_type
    if family not in FAMILIES:
        raise ConfigError(f"{where}: model_type '{family}' is not supported; supported families: {', '.join(FAMILIES)}")
    norm = getattr(config, "feat_extract_norm", "group")
    prep_path = _hub_file(source, "preprocessor_config.json")
    prep = json.loads(Path(prep_path).read_text()) if prep_path else {}
    if "do_normalize" in prep:
        normalize, normalize_from = bool(prep["do_normalize"]), "preprocessor_config.json"
    else:
        normalize, normalize_from = norm == "layer", "inferred from feat_extract_norm"
    if prep.get("sampling_rate", sample_rate_hz) != sample_rate_hz:
        raise ConfigError(f"{where}: expects {prep['sampling_rate']} Hz audio; set audio.sample_rate_hz to {prep['sampling_rate']}")
    return SslSpec(
        source=source, alias=alias or family, family=family,
        model_class=(config.architectures or [type(config).__name__.replace("Config", "Model")])[0],
        num_layers=1 + config.num_hidden_layers, hidden_size=config.hidden_size,
        conv_kernel=tuple(config.conv_kernel), conv_stride=tuple(config.conv_stride), sample_rate_hz=sample_rate_hz,
        normalize=normalize, normalize_from=normalize_from, padding_ok=norm == "layer", feat_extract_norm=norm,
        revision=None if local else _snapshot(_hub_file(source, "config.json")),
    )


def _snapshot(path: str | None) -> str | None:
    """The commit hash in a hub-cache path .../snapshots/<commit>/config.json."""
    parts = Path(path).parts if path else ()
    return parts[-2] if len(parts) > 2 and parts[-3] == "snapshots" else None


def _sharded(folder: str) -> bool:
    return any(f.endswith((".safetensors.index.json", ".bin.index.json")) for f in os.listdir(folder))


def weights_sha256(source: str) -> str | None:
    """sha256 over the weight files of `source` (local folder or hub cache); None if not found.
    Cached per (path, mtime, size), so rewritten weights are hashed again."""
    names = list(WEIGHT_FILES)
    if os.path.isdir(source):
        names += sorted(f for f in os.listdir(source) if f.startswith("model-") and f.endswith(".safetensors"))
    paths = [p for p in (_hub_file(source, n) for n in names) if p]
    if not paths:
        return None
    return _hash_files(tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths))


@lru_cache(maxsize=16)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for path, _, _ in files:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class SslModel:
    """The weights of one spec on one device, in one dtype. Not thread-safe; one per actor."""

    def __init__(self, spec: SslSpec, dtype: str = "float32", device: str = "cpu"):
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.spec, self.dtype, self.device = spec, dtype, torch.device(device)
        try:
            model = AutoModel.from_pretrained(spec.source, trust_remote_code=False)
        except Exception as exc:
            raise ConfigError(f"ssl model '{spec.source}': could not load the weights ({exc!r}); expected save_pretrained() files or a cached hub id") from exc
        self.model = model.to(device=self.device, dtype=torch_dtype(dtype)).eval()

    def forward(self, waves: list[np.ndarray]):
        """One batch. waves: list of (n_i,) float32, already normalised -> list of
        (layers, frames_i, hidden) float32 CPU tensors, frames_i = spec.num_frames(n_i)."""
        return [h.cpu() for h in self.forward_on_device(waves)]

    def forward_on_device(self, waves: list[np.ndarray]):
        """As forward(), but the tensors stay on the model's device, so pooling and layer
        selection happen there and only what is stored crosses to the host.
        Unequal lengths are zero-padded with an attention mask, which is only allowed when
        `spec.padding_ok` (per-frame LayerNorm CNN): group-norm CNNs see padding in their statistics."""
        import torch

        spec = self.spec
        lengths = [max(w.size, spec.receptive_field) for w in waves]
        padded = len(set(lengths)) > 1
        if padded and not spec.padding_ok:
            raise ValueError(f"{spec.source}: group-norm model cannot run padded batches; batch by equal length")
        x = torch.zeros(len(waves), max(lengths), dtype=torch.float32)  # (batch, samples)
        for i, w in enumerate(waves):
            x[i, : w.size] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        kwargs = {}
        if padded:
            mask = torch.arange(x.shape[1])[None, :] < torch.tensor(lengths)[:, None]  # (batch, samples)
            kwargs["attention_mask"] = mask.long().to(self.device)
        with torch.inference_mode(), warnings.catch_warnings():
            # torch warns that WavLM mixes a bool padding mask with its float position bias
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            out = self.model(x.to(self.device, torch_dtype(self.dtype)), output_hidden_states=True, **kwargs)
            hs = torch.stack(out.hidden_states)  # (layers, batch, frames, hidden)
            assert hs.shape[0] == spec.num_layers and hs.shape[2] == spec.num_frames(max(lengths)), hs.shape
            return [hs[:, i, : spec.num_frames(n)].float() for i, n in enumerate(lengths)]
