"""`albsent extract`: plan inputs, check the store, run blocks of paths through Ray Data.

Reading audio happens inside `map_batches` over blocks of paths (measured faster here than
Ray's file readers). Each block writes its own Parquet part from the worker, so nothing but a
small per-input summary comes back to the driver: memory stays flat as the corpus grows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from dataclasses import dataclass, field

import pandas as pd

from albsent.audio.manifest import plan_inputs
from albsent.config import to_dict, to_yaml
from albsent.errors import InputError
from albsent.pipeline.cluster import quiet_data_context, ray_session
from albsent.pipeline.config import ExtractConfig, build_extractors, store_metadata
from albsent.pipeline.worker import ExtractBlock
from albsent.store import Store

log = logging.getLogger(__name__)

_BLOCKS: dict[str, ExtractBlock] = {}


def extract_block(batch: pd.DataFrame, config: dict, store_uri: str, meta: dict) -> pd.DataFrame:
    """Task form of ExtractBlock: one instance per worker process, reused across blocks."""
    key = f"{store_uri}:{meta['config_hash']}"
    if key not in _BLOCKS:
        _BLOCKS[key] = ExtractBlock(config, store_uri, meta)
    return _BLOCKS[key](batch)


@dataclass
class ExtractSummary:
    inputs: int = 0
    skipped: int = 0  # already in the store or quarantine (resume)
    stored: int = 0
    quarantined: int = 0
    rows: int = 0
    audio_s: float = 0.0
    reasons: dict = field(default_factory=dict)


def prepare(input_path: str, out: str, config: ExtractConfig,
            extractors: list | None = None) -> tuple[pd.DataFrame, Store, dict]:
    """Validate INPUT and the store (all user errors surface here, before any work)."""
    items = plan_inputs(input_path, config.labels_from, config.label_map, config.allowed_roots, config.unlabeled)
    extra = [c for c in items.columns if c not in ("utterance_id", "key", "path", "label", "speaker", "split")]
    extractors = extractors if extractors is not None else build_extractors(config)
    check_extra_columns(input_path, extra, extractors)
    store = Store(out)
    created = (store.meta["created_utc"] if store.exists()
               else dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    meta = store_metadata(config, extractors, extra, created)
    store.create_or_check(meta)
    return items, store, meta


def check_extra_columns(input_path: str, extra: list[str], extractors: list) -> None:
    """A manifest's metadata columns are stored beside albsent's own: a name albsent writes itself
    (id, sha256, duration_s, mfcc_mean, ...) would overwrite it or make the store unreadable."""
    from albsent.store.schema import BASE_NAMES

    reserved = set(BASE_NAMES) | {c.name for e in extractors for c in e.columns()}
    clash = sorted(set(extra) & reserved)
    if clash:
        raise InputError(f"{input_path}: column(s) {clash} are names albsent writes itself (reserved: the store's base "
                         f"columns {BASE_NAMES} and every feature column); rename them in the manifest")


def cpu_slots(config: ExtractConfig) -> int:
    """Blocks the cluster can run at once now: per alive node, CPUs // num_cpus_per_task, capped by
    each custom resource the config asks for."""
    import ray

    slots = 0
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        have = node.get("Resources", {})
        n = have.get("CPU", 0) // config.num_cpus_per_task
        for name, amount in config.resources.items():
            n = min(n, have.get(name, 0) // amount)
        slots += int(n)
    return slots


def use_actors(config: ExtractConfig, extractors: list) -> bool:
    if any(e.needs_actor for e in extractors) or config.compute == "actors":
        return True
    if config.compute == "tasks":
        return False
    import ray

    return sum(1 for n in ray.nodes() if n.get("Alive")) == 1


def block_sizes(n: int, batch_size: int, slots: int) -> list[int]:
    """Clips per block: `batch_size` while much work is left, then shrinking to
    ceil(left / (2 * slots)) but not below batch_size // 4 (guided self-scheduling), so the
    workers finish within a quarter block of each other instead of one idling while another
    runs a last full block."""
    sizes, left, floor = [], n, max(1, batch_size // 4)
    while left:
        k = min(left, max(floor, min(batch_size, math.ceil(left / (2 * max(1, slots))))))
        sizes.append(k)
        left -= k
    return sizes


def run_blocks(todo: pd.DataFrame, config: ExtractConfig, extractors: list, store: Store, meta: dict):
    """Yield per-input summaries (DataFrames) as blocks finish."""
    import ray

    quiet_data_context()
    kwargs = dict(config=to_dict(config), store_uri=store.uri, meta=meta)
    # One block = one map_batches call = one Parquet part (batch_size=None: the whole block).
    common = dict(batch_size=None, batch_format="pandas", num_cpus=config.num_cpus_per_task)
    if config.resources:  # custom resources pin blocks to a node type (cluster/README.md)
        common["resources"] = dict(config.resources)
    model = any(e.needs_actor for e in extractors)
    actors = use_actors(config, extractors)  # asks the cluster (ray.nodes) once
    if model:
        slots = config.num_actors or 1
    elif actors:
        slots = min(config.num_actors or max(1, cpu_slots(config)), math.ceil(len(todo) / config.batch_size))
    else:
        slots = max(1, cpu_slots(config))
    bounds = [0, *itertools.accumulate(block_sizes(len(todo), config.batch_size, slots))]
    todo = todo.reset_index(drop=True)
    ds = ray.data.from_pandas([todo.iloc[a:b] for a, b in itertools.pairwise(bounds)])
    if model:
        # Model-based extractors: an actor pool loads the model once per actor.
        resources: dict = {}
        for e in extractors:
            for k, v in e.resources().items():
                resources[k] = max(resources.get(k, 0), v)
        if resources.get("num_gpus"):  # Ray Data refuses GPU actors without a batch size; blocks hold <= batch_size
            common["batch_size"] = config.batch_size
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=slots)
        ds = ds.map_batches(ExtractBlock, fn_constructor_kwargs=kwargs, compute=pool, **common, **resources)
    elif actors:
        # One warm worker per CPU slot, each with a queue of blocks: measured ~5 % more throughput
        # than tasks on 2 vCPUs (no idle gap between blocks), see bench/extract_cpu.py.
        log.info("extracting with a pool of %d actors", slots)
        ds = ds.map_batches(ExtractBlock, fn_constructor_kwargs=kwargs, compute=ray.data.ActorPoolStrategy(size=slots),
                            **common)
    else:
        # Stateless tasks: retried on node loss, spread over every CPU of the cluster.
        ds = ds.map_batches(extract_block, fn_kwargs=kwargs, **common)
    yield from ds.iter_batches(batch_format="pandas", batch_size=None, prefetch_batches=0)


def extract(input_path: str, out: str, config: ExtractConfig, progress: bool = True) -> ExtractSummary:
    """Extract INPUT into the store `out` (resuming what it holds); one writer at a time."""
    with Store(out).writer_lock():
        return _extract(input_path, out, config, progress)


def _extract(input_path: str, out: str, config: ExtractConfig, progress: bool) -> ExtractSummary:
    extractors = build_extractors(config)
    items, store, meta = prepare(input_path, out, config, extractors)
    store.write_sidecar("_config.yaml", to_yaml(config))
    done = store.done_utterances()
    todo = items[~items["utterance_id"].isin(done)]
    summary = ExtractSummary(inputs=len(items), skipped=len(items) - len(todo))
    if summary.skipped:
        log.info("resuming: %d of %d inputs already in %s", summary.skipped, len(items), out)
    if todo.empty:
        return summary
    from tqdm.auto import tqdm

    with ray_session(config.ray.address, config.ray.num_cpus, config.ray.temp_dir):
        bar = tqdm(total=len(todo), desc="extract", unit="clip", disable=not progress)
        for part in run_blocks(todo, config, extractors, store, meta):
            bar.update(len(part))
            ok = part[part["status"] == "stored"]
            summary.stored += len(ok)
            summary.rows += int(ok["rows"].sum())
            summary.audio_s += float(ok["audio_s"].sum())
            bad = part[part["status"] == "quarantined"]
            summary.quarantined += len(bad)
            for reason, n in bad["reason"].value_counts().items():
                summary.reasons[reason] = summary.reasons.get(reason, 0) + int(n)
        bar.close()
    return summary
