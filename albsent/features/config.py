"""Config of `albsent extract`; building its extractors; the columns a stored config gives
(installed as albsent.store.checks' column rule)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from albsent import __version__
from albsent.audio.augment import AugmentConfig
from albsent.audio.preprocess import AudioConfig
from albsent.config import build, require, stable_hash, to_dict
from albsent.features.base import get_extractor
from albsent.features.level import LevelConfig
from albsent.features.mfcc import MfccConfig
from albsent.features.opensmile_sets import CompareConfig, EgemapsConfig
from albsent.features.shortterm import ShortTermConfig
from albsent.features.ssl import SslConfig
from albsent.store.checks import use_column_rule
from albsent.store.store import SCHEMA_VERSION

log = logging.getLogger(__name__)


@dataclass
class RayConfig:
    address: str | None = None  # existing cluster ("auto", "ray://..."); RAY_ADDRESS also works
    num_cpus: int | None = None  # CPUs of a local cluster started by albsent (None: all)
    temp_dir: str | None = None  # Ray's session folder for a local cluster


@dataclass
class ExtractConfig:
    features: list[str] = field(default_factory=lambda: ["mfcc", "shortterm"])
    audio: AudioConfig = field(default_factory=AudioConfig)
    mfcc: MfccConfig = field(default_factory=MfccConfig)
    shortterm: ShortTermConfig = field(default_factory=ShortTermConfig)
    level: LevelConfig = field(default_factory=LevelConfig)  # recording level, before normalisation
    ssl: SslConfig = field(default_factory=SslConfig)
    # openSMILE sets (optional extra `albsent[opensmile]`; licence: research / non-commercial only)
    egemaps: EgemapsConfig = field(default_factory=EgemapsConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    # augmented copies of every clip, stored beside it for `train --augmented` (albsent.audio.augment)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sequences: bool = True  # store frame sequences as well as pooled mean/std
    sequence_dtype: Literal["float16", "float32"] = "float16"
    labels_from: Literal["none", "parent"] = "none"  # for folder inputs
    label_map: dict[str, str] = field(default_factory=dict)  # e.g. {happiness: positive, anger: negative}
    unlabeled: bool = False  # a manifest without a label column
    allowed_roots: list[str] = field(default_factory=list)  # besides the manifest's folder
    # clips per map_batches call; each call writes one Parquet part. 128 two-second clips are ~1.8 s of
    # MFCC + short-term work per block, so Ray's per-block cost stays small: bench/extract_overhead.py
    # measured the extraction threads at 0.93 cores each with 128 or 256, 0.91-0.92 with 64, 0.89 with 16.
    batch_size: int = 128
    num_cpus_per_task: float = 1.0
    # How blocks run. "actors": a pool of long-lived workers, each warms up once (imports, model)
    # and keeps a queue of blocks, so no CPU idles between blocks. "tasks": stateless tasks, one
    # per block: a task lost with its node re-runs elsewhere and new nodes are used as they join.
    # "auto": actors on a single node, tasks on a multi-node cluster; always actors for a model (ssl).
    compute: Literal["auto", "actors", "tasks"] = "auto"
    num_actors: int | None = None  # actor pool size; None: 1 for a model, else every CPU slot of the cluster
    # Model extractors (ssl): "staged" decodes on CPU tasks, runs the model on the actor pool and writes
    # parts on CPU tasks (pipeline/stages.py); "single": one actor does all of it in series. "auto":
    # staged when the model actors get GPUs, single on CPU, where bench/extract_ssl.py --pipeline measured
    # decoding beside the model slowing its forward pass by a third on 2 vCPUs (README, Benchmarks).
    model_pipeline: Literal["auto", "staged", "single"] = "auto"
    # custom Ray resources per task/actor, e.g. {cpu_node: 0.001} (cluster/)
    resources: dict[str, float] = field(default_factory=dict)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self):
        require(len(self.features) > 0, self, "features", self.features, "a non-empty list of extractor names")
        for name in self.features:
            get_extractor(name)  # raises with the known names
        require(len(set(self.features)) == len(self.features), self, "features", self.features,
                "a list without repeats")
        require(1 <= self.batch_size <= 4096, self, "batch_size", self.batch_size, "an int in [1, 4096]")
        require(0 < self.num_cpus_per_task <= 64, self, "num_cpus_per_task", self.num_cpus_per_task,
                "a float in (0, 64]")
        require(self.num_actors is None or 1 <= self.num_actors <= 1024, self, "num_actors", self.num_actors,
                "null or an int in [1, 1024]")
        require(all(v > 0 for v in self.resources.values()), self, "resources", self.resources,
                "a mapping of resource name to a positive amount")

    def stored(self) -> dict:
        """The part of the config that determines stored values; its hash identifies the store."""
        d = to_dict(self)
        keep = ["features", "audio", "sequences", "sequence_dtype", "labels_from", "label_map", "unlabeled"]
        out = {k: d[k] for k in keep}
        if self.augment.copies:  # (absent when off: stores made before augmentation keep their hash)
            out["augment"] = d["augment"]
        for name in self.features:
            if name in d:
                # An extractor config may list RUNTIME_FIELDS (batch size, device, GPUs per
                # actor): they change speed, not stored values, so they stay out of the hash
                # and a store can be resumed on other hardware.
                runtime = getattr(type(getattr(self, name)), "RUNTIME_FIELDS", ())
                out[name] = {k: v for k, v in d[name].items() if k not in runtime}
        return out

    def config_hash(self) -> str:
        return stable_hash(self.stored())

    def extractor_config(self, name: str):
        return getattr(self, name, None) or get_extractor(name).config_cls()


def build_extractors(config: ExtractConfig) -> list:
    return [
        get_extractor(name)(config.extractor_config(name), config.audio.sample_rate_hz, config.sequence_dtype,
                            config.sequences)
        for name in config.features
    ]


_BUILT: dict[str, dict | None] = {}


def built_columns(config: dict) -> dict[str, dict[str, tuple]] | None:
    """{group: {column: (shape, dtype)}} from building the extractors of a stored config; None
    when they cannot be built here (e.g. an SSL model that is not on this machine)."""
    key = stable_hash(config)
    if key not in _BUILT:
        try:
            extractors = build_extractors(build(ExtractConfig, config))
            _BUILT[key] = {e.name: {c.name: (tuple(c.shape), c.dtype) for c in e.columns()} for e in extractors}
        except Exception as exc:  # noqa: BLE001 - any failure means: judge by the recorded shapes alone
            log.debug("cannot build the extractors of config %s here (%s); using the recorded shapes", key, exc)
            _BUILT[key] = None
    return _BUILT[key]


use_column_rule(built_columns)  # albsent verify's metadata check asks it (the store imports no features)


SHARED = ["audio", "augment", "sequences", "sequence_dtype", "labels_from", "label_map", "unlabeled"]  # one per store


def store_metadata(config: ExtractConfig, extractors: list, extra_columns: list[str], created_utc: str) -> dict:
    """The store's self-description. Each feature group (extractor) records its config and that
    config's hash; `shared_hash` covers what all groups share (SHARED); `config_hash` the whole."""
    stored = config.stored()
    described = {e.name: {**e.metadata(), "config_hash": stable_hash(stored.get(e.name))} for e in extractors}
    return {
        "shared_hash": stable_hash({k: stored[k] for k in SHARED if k in stored}),
        "schema_version": SCHEMA_VERSION,
        "albsent_version": __version__,
        "created_utc": created_utc,
        "config": config.stored(),
        "config_hash": config.config_hash(),
        "sample_rate_hz": config.audio.sample_rate_hz,
        "extractors": described,
        "frame_shift_s": {name: m.get("frame_shift_s") for name, m in described.items()},
        "extra_columns": extra_columns,
    }
