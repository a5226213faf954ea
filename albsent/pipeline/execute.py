"""The Ray Data side of `albsent extract`: blocks of inputs through `map_batches` (tasks, an
actor pool, or the staged decode -> model -> write pipeline of stages.py) and feature groups added
to a store's parts. albsent/pipeline/extract.py decides what to run (Ray-free); this module runs it
on the connected cluster and yields each block's per-input summary as it finishes.

Reading audio happens inside `map_batches` over blocks of paths (measured faster here than
Ray's file readers). Each block writes its own Parquet part from the worker, so nothing but a
small per-input summary comes back to the driver: memory stays flat as the corpus grows.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import pandas as pd

from albsent import storage
from albsent.config import to_dict
from albsent.features.config import ExtractConfig
from albsent.pipeline.stages import DecodeStage, ModelStage, WriteStage
from albsent.pipeline.worker import AddGroupsBlock, ExtractBlock
from albsent.runner.resources import check_resources, cluster_gpus
from albsent.runner.session import quiet_data_context
from albsent.store import Store

log = logging.getLogger(__name__)

_BLOCKS: dict[str, ExtractBlock] = {}


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


@dataclass
class Compute:
    """How blocks run: an actor pool for model extractors (or `compute: actors`), else tasks."""

    model: bool
    actors: bool
    slots: int
    resources: dict  # model extractors' per-actor needs, e.g. {"num_gpus": 1}


def plan_compute(config: ExtractConfig, extractors: list, max_blocks: int) -> Compute:
    """Checks the resource request against the cluster, then picks actors or tasks and the pool size."""
    model = any(e.needs_actor for e in extractors)
    resources: dict = {}
    gpus = cluster_gpus()
    for e in extractors:
        for k, v in e.resources(gpus).items():
            resources[k] = max(resources.get(k, 0), v)
    check_resources({"CPU": config.num_cpus_per_task, **config.resources, **resources},
                    "num_cpus_per_task, resources" + (", ssl.num_gpus_per_actor" if resources else ""))
    actors = use_actors(config, extractors)  # asks the cluster (ray.nodes) once
    if model:
        slots = config.num_actors or 1
    elif actors:
        slots = min(config.num_actors or max(1, cpu_slots(config)), max_blocks)
    else:
        slots = max(1, cpu_slots(config))
    return Compute(model, actors, slots, resources)


def run_block(batch: pd.DataFrame, block_cls: type, **kwargs) -> pd.DataFrame:
    """Task form of a block class: one instance per worker process, reused across blocks."""
    key = f"{block_cls.__name__}:{kwargs['store_uri']}:{kwargs['meta']['config_hash']}:{kwargs.get('groups')}"
    if key not in _BLOCKS:
        _BLOCKS[key] = block_cls(**kwargs)
    return _BLOCKS[key](batch)


def map_blocks(ds, block_cls: type, kwargs: dict, config: ExtractConfig, compute: Compute):
    """Run `block_cls` (ExtractBlock, AddGroupsBlock) over the blocks of `ds`; yield its per-input
    summaries (DataFrames) as blocks finish. One block = one call = one Parquet part."""
    import ray

    quiet_data_context()
    common = dict(batch_size=None, batch_format="pandas", num_cpus=config.num_cpus_per_task)
    if config.resources:  # custom resources pin blocks to a node type (cluster/README.md)
        common["resources"] = dict(config.resources)
    if compute.model:
        # Model-based extractors: an actor pool loads the model once per actor.
        if compute.resources.get("num_gpus"):  # Ray Data refuses GPU actors without a batch size
            common["batch_size"] = config.batch_size  # (blocks hold <= batch_size clips)
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=compute.slots)
        ds = ds.map_batches(block_cls, fn_constructor_kwargs=kwargs, compute=pool, **common, **compute.resources)
    elif compute.actors:
        # One warm worker per CPU slot, each with a queue of blocks: measured ~5 % more throughput
        # than tasks on 2 vCPUs (no idle gap between blocks), see bench/extract_cpu.py.
        log.info("extracting with a pool of %d actors", compute.slots)
        ds = ds.map_batches(block_cls, fn_constructor_kwargs=kwargs,
                            compute=ray.data.ActorPoolStrategy(size=compute.slots), **common)
    else:
        # Stateless tasks: retried on node loss, spread over every CPU of the cluster.
        ds = ds.map_batches(run_block, fn_kwargs={"block_cls": block_cls, **kwargs}, **common)
    yield from ds.iter_batches(batch_format="pandas", batch_size=None, prefetch_batches=0)


def run_blocks(todo: pd.DataFrame, config: ExtractConfig, extractors: list, store: Store, meta: dict):
    """Yield per-input summaries (DataFrames) as blocks of new inputs finish."""
    import ray

    compute = plan_compute(config, extractors, math.ceil(len(todo) / config.batch_size))
    bounds = [0, *itertools.accumulate(block_sizes(len(todo), config.batch_size, compute.slots))]
    todo = todo.reset_index(drop=True)
    ds = ray.data.from_pandas([todo.iloc[a:b] for a, b in itertools.pairwise(bounds)])
    kwargs = dict(config=to_dict(config), store_uri=storage.normalize(store.uri), meta=meta)  # (workers: another cwd)
    gpu = bool(compute.resources.get("num_gpus"))
    if compute.model and (config.model_pipeline == "staged" or (config.model_pipeline == "auto" and gpu)):
        yield from run_staged(ds, kwargs, config, compute)
    else:
        yield from map_blocks(ds, ExtractBlock, kwargs, config, compute)


DECODE_MEMORY_BYTES = 256 * 2**20  # 128 clips of 10 s as float32 at 16 kHz are ~80 MB, plus the source


def run_staged(ds, kwargs: dict, config: ExtractConfig, compute: Compute):
    """decode (CPU tasks) -> model (actor pool) -> write (CPU tasks); see pipeline/stages.py."""
    import ray

    quiet_data_context()
    common = dict(batch_format="pandas")
    if config.resources:
        common["resources"] = dict(config.resources)
    # A decode task reserves memory for a block of decoded audio. The reservation also keeps Ray
    # Data from fusing this stage into the model's actors, which it does to a task stage followed
    # by an actor stage whose remote args are equal (measured: decode then ran inside the actor).
    ds = ds.map_batches(run_block, fn_kwargs={"block_cls": DecodeStage, **kwargs}, batch_size=None,
                        num_cpus=config.num_cpus_per_task, memory=DECODE_MEMORY_BYTES, **common)
    pool = ray.data.ActorPoolStrategy(min_size=1, max_size=compute.slots)
    # GPU actors need a batch size (Ray Data); rows are whole inputs, so a batch never splits one
    ds = ds.map_batches(ModelStage, fn_constructor_kwargs=kwargs, compute=pool,
                        batch_size=config.batch_size if compute.resources.get("num_gpus") else None,
                        num_cpus=config.num_cpus_per_task, **compute.resources, **common)
    ds = ds.map_batches(run_block, fn_kwargs={"block_cls": WriteStage, **kwargs}, batch_size=None, num_cpus=0.25,
                        **common)
    yield from ds.iter_batches(batch_format="pandas", batch_size=None, prefetch_batches=0)


def run_add_groups(store, config: ExtractConfig, extractors: list, meta: dict, groups: list[str]):
    """Add `groups` to every existing part (Ray Data over the part files, one part per block);
    yield per-input summaries as parts finish. Model groups run on an actor pool, as new inputs do."""
    import ray

    parts = store.part_files()
    if not parts:
        return
    compute = plan_compute(config, [e for e in extractors if e.name in groups], len(parts))
    ds = ray.data.from_pandas([pd.DataFrame({"part": [p]}) for p in parts])
    kwargs = dict(config=to_dict(config), store_uri=storage.normalize(store.uri), meta=meta, groups=list(groups))
    yield from map_blocks(ds, AddGroupsBlock, kwargs, config, compute)
