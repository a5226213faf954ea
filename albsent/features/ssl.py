"""`ssl`: pooled multi-layer embeddings (and optional frame sequences) of HuBERT, wav2vec 2.0
and WavLM models, several side by side in one store.

Columns per model with alias A (default: its family, from config.model_type):
  ssl_A_mean  (layers, hidden) float32   mean over frames of each hidden state
  ssl_A_std   (layers, hidden) float32   std over frames (population), when `std`
  ssl_A_l<k>  (frames, hidden) float16   frame sequence of layer k, for k in `sequence_layers`
layers = 1 + num_hidden_layers (index 0 = CNN/embedding output), frames = spec.num_frames(n).

Batching (inside one Ray block): clips longer than `max_chunk_s` are cut into pieces on frame
boundaries (stitched frames are the same frames the whole clip would give; only the
transformer's context is limited to a piece); pieces are sorted by length and grouped into
batches of at most `batch_seconds` of padded audio: zero-padded on a GPU (exact for base,
group-norm CNN, and large, layer-norm CNN, models alike: see `ssl_model`), equal lengths only on
a CPU, where padding only adds work. Pooling happens on the model's device; only per-layer sums
and the stored sequence layers reach the host.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from albsent.config import require, to_dict
from albsent.errors import ConfigError
from albsent.features.base import EXTRACTORS, Extractor
from albsent.store.schema import Column, layer_column, pooled_column, ssl_group, ssl_layer_counts

log = logging.getLogger(__name__)

# CPU dtype for dtype "auto", per family, measured with bench/extract_ssl.py (base size, 1
# thread, AMD EPYC with AVX512-BF16): casting the weights to bf16 gave 2.5-2.6x the audio per
# CPU-second of fp32 for HuBERT, wav2vec2 and WavLM alike (an autocast WavLM was reported slower;
# a plain cast is not). A CPU without native bf16 should set dtype: float32.
CPU_AUTO_DTYPE = {"hubert": "bfloat16", "wav2vec2": "bfloat16", "wavlm": "bfloat16"}
ALIAS = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass
class SslConfig:
    models: list[str] = field(default_factory=list)  # hub id or save_pretrained folder, optionally "alias=source"
    std: bool = False  # also store the per-layer std over frames
    sequence_layers: list[int] = field(default_factory=list)  # layers whose frame sequences are stored
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, per family on CPU (bf16)
    max_chunk_s: float = 30.0  # longer clips are cut into pieces of this length and stitched
    # Runtime-only fields (RUNTIME_FIELDS): they change speed, not the stored values (up to
    # float rounding of batched matmuls), so they are left out of the store's config hash and
    # a store can be resumed with another batch size or on other hardware.
    batch_seconds: float = 60.0  # padded audio per forward pass
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus_per_actor: float | Literal["auto"] = "auto"  # auto: 1 when the Ray cluster has GPUs
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("batch_seconds", "device", "num_gpus_per_actor")

    def __post_init__(self):
        require(all(isinstance(m, str) and m.strip() for m in self.models), self, "models", self.models,
                "a list of hub ids or folders")
        require(all(k >= 0 for k in self.sequence_layers), self, "sequence_layers", self.sequence_layers,
                "a list of layer indices >= 0")
        require(len(set(self.sequence_layers)) == len(self.sequence_layers), self, "sequence_layers",
                self.sequence_layers, "a list without repeats")
        require(1.0 <= self.max_chunk_s <= 600, self, "max_chunk_s", self.max_chunk_s, "a float in [1, 600] seconds")
        require(0.5 <= self.batch_seconds <= 3600, self, "batch_seconds", self.batch_seconds,
                "a float in [0.5, 3600] seconds")
        n = self.num_gpus_per_actor
        require(n == "auto" or 0 <= n <= 16, self, "num_gpus_per_actor", n, "'auto' or a float in [0, 16]")

    def entries(self) -> list[tuple[str | None, str]]:
        """models as (alias or None, source)."""
        out = []
        for m in self.models:
            head, sep, tail = m.partition("=")
            if sep and ALIAS.match(head.strip()):
                out.append((head.strip(), tail.strip()))
            elif sep and not os.path.exists(m):
                raise ConfigError(f"ssl.models: alias '{head}' in {m!r} must match {ALIAS.pattern} "
                                  "(a column name part)")
            else:
                out.append((None, m.strip()))
        return out


def plan_batches(lengths: list[int], max_samples: int, pad: bool = True) -> list[list[int]]:
    """Indices grouped into batches, shortest first. A batch's padded size (count x longest)
    stays <= max_samples (a single longer piece is its own batch); without `pad` a batch only
    holds equal lengths."""
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if cur and ((len(cur) + 1) * lengths[i] > max_samples or (not pad and lengths[i] != lengths[cur[0]])):
            batches.append(cur)
            cur = []
        cur.append(i)
    return batches + ([cur] if cur else [])


def chunk_bounds(n: int, spec, max_chunk_s: float) -> list[tuple[int, int]]:
    """Cut n samples into pieces of k whole frames: piece i = [i*k*S, (i+1)*k*S + R - S), so
    its frames are exactly frames i*k .. i*k+k-1 of the whole clip and their count adds up to
    spec.num_frames(n). A last remainder shorter than R holds no frame and is dropped."""
    S, R = spec.stride, spec.receptive_field
    k = max(1, int(max_chunk_s * spec.sample_rate_hz) // S)
    if n <= k * S + R - S:
        return [(0, n)]
    bounds = []
    for start in range(0, n, k * S):
        end = min(n, start + k * S + R - S)
        if end - start >= R:
            bounds.append((start, end))
    return bounds


@EXTRACTORS.register("ssl")
class SslExtractor(Extractor):
    config_cls = SslConfig
    needs_actor = True
    standalone = True  # auto selection: layer picks of each model, never fused

    @classmethod
    def auto_candidates(cls, columns: dict) -> list[str]:
        """ssl:ALIAS:K for the layers at 25, 50 and 75% of each model's depth and its last, models
        in alias order (from the pooled (layers, hidden) columns in `columns`)."""
        out = []
        for alias, n in sorted(ssl_layer_counts(columns).items()):
            picks = sorted({round(n * q) for q in (0.25, 0.5, 0.75)} | {n - 1})
            out += [f"ssl:{alias}:{k}" for k in picks if 0 <= k < n]
        return out

    def __init__(self, config: SslConfig, sample_rate_hz: int, sequence_dtype: str = "float16",
                 store_sequences: bool = True):
        from albsent.features.ssl_model import load_spec

        super().__init__(config, sample_rate_hz, sequence_dtype, store_sequences)
        require(len(config.models) > 0, "SslConfig", "models", config.models,
                "a non-empty list when 'ssl' is in features (give --ssl-model MODEL)")
        self.specs = [load_spec(src, alias, sample_rate_hz) for alias, src in config.entries()]
        aliases = [s.alias for s in self.specs]
        dupes = sorted({a for a in aliases if aliases.count(a) > 1})
        if dupes:
            raise ConfigError(f"ssl.models: alias(es) {dupes} used by more than one model {config.models}; "
                              "name them with alias=MODEL, e.g. hubert_large=facebook/hubert-large-ll60k")
        for s in self.specs:
            bad = [k for k in config.sequence_layers if k >= s.num_layers]
            require(not bad, "SslConfig", "sequence_layers", config.sequence_layers,
                    f"layer indices < {s.num_layers} ({s.source} has {s.num_layers} layers)")
        self._models = None

    # ---- description -----------------------------------------------------------------------
    def seq_layers(self) -> list[int]:
        return list(self.config.sequence_layers) if self.store_sequences else []

    def columns(self) -> list[Column]:
        cols = []
        for s in self.specs:
            shape = (s.num_layers, s.hidden_size)
            cols.append(Column(pooled_column(ssl_group(s.alias), "mean"), shape, "float32", "pooled"))
            if self.config.std:
                cols.append(Column(pooled_column(ssl_group(s.alias), "std"), shape, "float32", "pooled"))
            cols += [Column(layer_column(s.alias, k), (None, s.hidden_size), self.sequence_dtype, "sequence")
                     for k in self.seq_layers()]
        return cols

    def num_frames(self, n_samples: int) -> int:
        return self.specs[0].num_frames(n_samples)

    def resources(self, cluster_gpus: float = 0.0) -> dict:
        """GPUs per actor; "auto": one when the cluster has GPUs (`cluster_gpus`, which the
        pipeline asks Ray for: features/ imports no Ray)."""
        n = self.config.num_gpus_per_actor
        if n == "auto":
            n = 1.0 if self.config.device != "cpu" and cluster_gpus > 0 else 0.0
        return {"num_gpus": n} if n else {}

    def device(self) -> str:
        import torch

        if self.config.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.config.device

    def planned_device(self, cluster_gpus: float = 0.0) -> str:
        """The device the actors will use, as far as the driver can tell (for metadata)."""
        import torch

        c = self.config
        if c.device != "auto":
            return c.device
        gpus = (c.num_gpus_per_actor if c.num_gpus_per_actor != "auto"
                else max(cluster_gpus, float(torch.cuda.is_available())))
        return "cuda" if gpus else "cpu"

    def resolved_dtype(self, family: str, device: str) -> str:
        if self.config.dtype != "auto":
            return self.config.dtype
        if device == "cuda":
            # Measured on an H100 (bench/extract_ssl.py --clips 2000 --min-s 2 --max-s 8
            # --batch-seconds 600, base-size models, padded batches): bf16 weights ran at 1.5-2.2x
            # the audio per second of float32 for HuBERT, wav2vec2 and WavLM.
            return "bfloat16"
        return CPU_AUTO_DTYPE.get(family, "float32")

    def metadata(self) -> dict:
        from albsent.features.ssl_model import weights_sha256

        device = self.planned_device()
        shifts = {s.stride / s.sample_rate_hz for s in self.specs}
        models = {
            s.alias: {
                "source": s.source, "family": s.family, "model_class": s.model_class, "revision": s.revision,
                "weights_sha256": weights_sha256(s.source), "num_layers": s.num_layers,
                "num_hidden_layers": s.num_layers - 1,
                "hidden_size": s.hidden_size, "dtype": self.resolved_dtype(s.family, device), "device": device,
                "pooling": ["mean", "std"] if self.config.std else ["mean"],
                "layer_0": "CNN features after projection + positional conv",
                "frame_rate_hz": s.frame_rate_hz, "frame_shift_s": s.stride / s.sample_rate_hz,
                "stride_samples": s.stride,
                "receptive_field_samples": s.receptive_field,
                "frames": "floor((samples - receptive_field) / stride) + 1",
                "conv_kernel": list(s.conv_kernel), "conv_stride": list(s.conv_stride),
                "feat_extract_norm": s.feat_extract_norm,
                "normalize_input": s.normalize, "normalize_from": s.normalize_from, "padded_batches": True,
                "sequence_layers": self.seq_layers(), "max_chunk_s": self.config.max_chunk_s,
            }
            for s in self.specs
        }
        return {
            "config": to_dict(self.config), "columns": {c.name: list(c.shape) for c in self.columns()},
            "frame_shift_s": shifts.pop() if len(shifts) == 1 else None, "models": models,
        }

    # ---- extraction ------------------------------------------------------------------------
    def load(self) -> None:
        """Load every model (once per actor)."""
        from albsent.features.ssl_model import SslModel

        if self._models is None:
            dev = self.device()
            self._models = [SslModel(s, self.resolved_dtype(s.family, dev), dev) for s in self.specs]
            log.info("loaded %s on %s", ", ".join(f"{m.spec.alias} ({m.dtype})" for m in self._models), dev)

    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self.load()
        out: list[dict[str, np.ndarray]] = [{} for _ in waves]
        for m in self._models:
            for row, values in zip(out, self._run(m, waves)):
                row.update(values)
        return out

    def _run(self, m, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        spec, c = m.spec, self.config
        normed = [_normalize(w) if spec.normalize else np.asarray(w, dtype=np.float32) for w in waves]
        pieces = [(i, w[a:b]) for i, w in enumerate(normed) for a, b in chunk_bounds(w.size, spec, c.max_chunk_s)]
        lengths = [max(p.size, spec.receptive_field) for _, p in pieces]
        acc = [_Pool(spec.num_layers, spec.hidden_size) for _ in waves]
        seqs: list[dict[int, list]] = [{k: [] for k in self.seq_layers()} for _ in waves]
        kept: dict[int, dict[int, np.ndarray]] = {}  # piece -> {layer: (frames, hidden)} on the host
        # Padding pays on a GPU (one launch sequence per batch, not per clip); on a CPU it only
        # adds work: measured (bench/extract_ssl.py --threads 1) 1.06-1.66x naive padded vs
        # 2.7-2.9x with equal-length batches, so CPUs batch equal lengths only.
        pad = m.device.type == "cuda"
        for batch in plan_batches(lengths, int(c.batch_seconds * spec.sample_rate_hz), pad):
            for j, (n, s, ss, layers) in zip(batch, m.pooled([pieces[j][1] for j in batch], self.seq_layers())):
                acc[pieces[j][0]].add(n, s, ss)
                kept[j] = layers
        for j, (i, _) in enumerate(pieces):  # pieces are in time order per clip
            for k, frames in kept.pop(j).items():
                seqs[i][k].append(frames)
        rows = []
        for i, a in enumerate(acc):
            mean, std = a.result()
            row = {pooled_column(ssl_group(spec.alias), "mean"): mean}
            if c.std:
                row[pooled_column(ssl_group(spec.alias), "std")] = std
            for k, parts in seqs[i].items():
                row[layer_column(spec.alias, k)] = np.concatenate(parts).astype(self.sequence_dtype)
            rows.append(row)
        return rows


class _Pool:
    """Running per-layer mean/std over frames in float64 (so chunked clips pool exactly)."""

    def __init__(self, layers: int, dim: int):
        self.n, self.s, self.ss = 0, np.zeros((layers, dim)), np.zeros((layers, dim))

    def add(self, n: int, s: np.ndarray, ss: np.ndarray) -> None:
        """n frames with per-layer sums s and sums of squares ss, both (layers, dim)."""
        self.n += n
        self.s += s
        self.ss += ss

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.s / self.n
        var = np.maximum(self.ss / self.n - mean * mean, 0.0)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def _normalize(w: np.ndarray) -> np.ndarray:
    """Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm for one unpadded clip."""
    w = np.asarray(w, dtype=np.float32)
    return ((w - w.mean()) / np.sqrt(w.var() + 1e-7)).astype(np.float32)

