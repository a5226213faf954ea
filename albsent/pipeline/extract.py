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

from albsent.audio.manifest import BASE_COLUMNS, plan_inputs
from albsent.config import to_dict, to_yaml
from albsent.errors import InputError
from albsent.features.config import ExtractConfig, build_extractors, store_metadata
from albsent.pipeline.cluster import check_resources, cluster_gpus, quiet_data_context, ray_session
from albsent.pipeline.groups import reconcile, run_add_groups
from albsent.pipeline.resume import plan_resume
from albsent.pipeline.worker import ExtractBlock
from albsent.store import Store

log = logging.getLogger(__name__)

_BLOCKS: dict[str, ExtractBlock] = {}


@dataclass
class ExtractSummary:
    inputs: int = 0
    skipped: int = 0  # already in the store or quarantine, unchanged (resume)
    relabelled: int = 0  # of the skipped: label, speaker, split or extra columns updated in place
    changed: int = 0  # stored before, but the audio's sha256 changed: old rows removed, extracted again
    retried: int = 0  # quarantined before, extracted again (--retry-quarantined, or the file changed)
    stored: int = 0
    groups_added: list = field(default_factory=list)  # feature groups added to the inputs already stored
    group_rows: int = 0  # rows that got them
    quarantined: int = 0  # (includes stored inputs whose audio was gone or changed when adding a group)
    unavailable: int = 0  # stored inputs whose file is missing or unreadable now: rows kept, not redone
    stale: int = 0  # inputs in the store (stored or quarantined) that INPUT no longer lists: kept ...
    pruned: int = 0  # ... or, with prune, removed
    rows: int = 0
    audio_s: float = 0.0
    extract_s: float = 0.0  # seconds the workers spent computing features (the model, for ssl), summed
    reasons: dict = field(default_factory=dict)


@dataclass
class Prepared:
    """What `prepare` checked and decided before any work."""

    items: pd.DataFrame  # the planned inputs (audio/manifest.py)
    store: Store
    meta: dict  # the metadata parts are written with
    config: ExtractConfig  # the config in effect: the store's feature groups plus any added (pipeline/groups.py)
    extractors: list
    adding: list[str]  # groups the store's existing rows still lack


def prepare(input_path: str, out: str, config: ExtractConfig, prune: bool = False) -> Prepared:
    """Validate INPUT and the store (all user errors surface here, before any work). `prune`:
    stored inputs INPUT does not list are about to be removed (their audio is not needed)."""
    items = plan_inputs(input_path, config.labels_from, config.label_map, config.allowed_roots, config.unlabeled)
    extra = [c for c in items.columns if c not in BASE_COLUMNS]
    store = Store(out)
    adding: list[str] = []
    existing = store.exists()
    if existing:
        store.check_version()
        config, adding = reconcile(store.uri, store.meta, config)
    extractors = build_extractors(config)
    check_extra_columns(input_path, extra, extractors)
    created = store.meta["created_utc"] if existing else dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta = store_metadata(config, extractors, extra, created)
    if adding:
        check_audio_available(store, items, prune)
    store.create_or_check(meta, adding)
    return Prepared(items, store, meta, config, extractors, adding)


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
    kwargs = dict(config=to_dict(config), store_uri=store.uri, meta=meta)
    gpu = bool(compute.resources.get("num_gpus"))
    if compute.model and (config.model_pipeline == "staged" or (config.model_pipeline == "auto" and gpu)):
        yield from run_staged(ds, kwargs, config, compute)
    else:
        yield from map_blocks(ds, ExtractBlock, kwargs, config, compute)


DECODE_MEMORY_BYTES = 256 * 2**20  # 128 clips of 10 s as float32 at 16 kHz are ~80 MB, plus the source


def run_staged(ds, kwargs: dict, config: ExtractConfig, compute: Compute):
    """decode (CPU tasks) -> model (actor pool) -> write (CPU tasks); see pipeline/stages.py."""
    import ray

    from albsent.pipeline.stages import DecodeStage, ModelStage, WriteStage

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


def extract(input_path: str, out: str, config: ExtractConfig, progress: bool = True,
            retry_quarantined: bool = False, prune: bool = False) -> ExtractSummary:
    """Extract INPUT into the store `out`, resuming what it holds (see pipeline/resume.py: changed
    audio is re-extracted, changed labels are relabelled in place, quarantined inputs are retried
    when their file changed or `retry_quarantined`; stored inputs whose file is missing or
    unreadable keep their rows); one writer at a time. Inputs in the store that INPUT no longer
    lists are reported, and removed with `prune`."""
    with Store(out).writer_lock():
        return _extract(input_path, out, config, progress, retry_quarantined, prune)


def _extract(input_path: str, out: str, config: ExtractConfig, progress: bool,
             retry_quarantined: bool, prune: bool = False) -> ExtractSummary:
    p = prepare(input_path, out, config, prune)
    items, store, meta, config, extractors, adding = p.items, p.store, p.meta, p.config, p.extractors, p.adding
    store.write_sidecar("_config.yaml", to_yaml(config))
    plan = plan_resume(items, store, meta["extra_columns"], retry_quarantined)
    todo = plan.todo
    summary = ExtractSummary(inputs=len(items), skipped=plan.unchanged, relabelled=plan.relabelled,
                             changed=plan.changed, retried=plan.retried, groups_added=list(adding),
                             unavailable=len(plan.unavailable), stale=len(plan.stale))
    if summary.skipped:
        log.info("resuming: %d of %d inputs already in %s", summary.skipped, len(items), out)
    if plan.unavailable:
        log.warning("%d stored input(s) cannot be read now (missing or unreadable, e.g. %s); their rows are kept as "
                    "they are: restore the files, or remove them from the input and re-run with --prune",
                    len(plan.unavailable), plan.unavailable[0])
    if plan.stale and not prune:
        log.warning("%d input(s) in %s are not in %s any more (renamed, moved or removed from the manifest); they "
                    "stay in the store and training still reads them: re-run with --prune to remove them",
                    len(plan.stale), out, input_path)
    # before any new row is written: an interrupted run then leaves these inputs to redo, never twice
    stale = plan.stale if prune else set()
    store.rewrite(drop=plan.drop | stale, quarantine_drop=plan.unquarantine | stale, update=plan.relabel)
    if stale:
        summary.pruned, summary.stale = len(stale), 0
    if todo.empty and not adding:
        return summary
    from tqdm.auto import tqdm

    with ray_session(config.ray.address, config.ray.num_cpus, config.ray.temp_dir):
        if adding:
            bar = tqdm(total=store.num_rows(), desc=f"add {','.join(adding)}", unit="row", disable=not progress)
            for part in run_add_groups(store, config, extractors, meta, adding):
                bar.update(int(part["rows"].sum()))
                summary.group_rows += int(part.loc[part["status"] == "stored", "rows"].sum())
                summary.extract_s += float(part["extract_s"].sum())
                _count_quarantined(summary, part)
            bar.close()
            store.write_meta(meta)  # every stored row has the new groups now
        if not todo.empty:
            bar = tqdm(total=len(todo), desc="extract", unit="clip", disable=not progress)
            for part in run_blocks(todo, config, extractors, store, meta):
                bar.update(len(part))
                ok = part[part["status"] == "stored"]
                summary.stored += len(ok)
                summary.rows += int(ok["rows"].sum())
                summary.audio_s += float(ok["audio_s"].sum())
                summary.extract_s += float(part["extract_s"].sum())
                _count_quarantined(summary, part)
            bar.close()
    return summary


def check_audio_available(store: Store, items: pd.DataFrame, prune: bool) -> None:
    """Adding a feature group recomputes it from every stored input's audio: refuse, before any
    work, while some of it is missing or unreadable (otherwise their rows would have to leave the
    store). With `prune`, stored inputs `items` does not list are not needed."""
    import os

    from albsent import storage
    from albsent.audio.manifest import uri_fingerprints

    stored = store.inputs()
    if prune:
        stored = stored[stored["utterance_id"].isin(items["utterance_id"])]
    paths = stored["path"].tolist()
    uris = [p for p in paths if storage.is_uri(p)]
    listed = uri_fingerprints(uris) if uris else {}
    missing = [p for p in paths if (listed.get(p, (None, None))[0] is None if storage.is_uri(p) else
                                    not (os.path.isfile(p) and os.access(p, os.R_OK)))]
    if missing:
        raise InputError(f"{store.uri}: adding a feature group needs the audio of every stored input, and "
                         f"{len(missing)} of them cannot be read now (e.g. {missing[0]}); restore the files, or "
                         "remove them from the input and re-run with --prune (nothing was changed)")


def _count_quarantined(summary: ExtractSummary, part: pd.DataFrame) -> None:
    bad = part[part["status"] == "quarantined"]
    summary.quarantined += len(bad)
    for reason, n in bad["reason"].value_counts().items():
        summary.reasons[reason] = summary.reasons.get(reason, 0) + int(n)
