"""`albsent extract`, the orchestration (no Ray here): plan inputs, check the store, decide what a
rerun redoes (resume.py) and which feature groups to add (groups.py), rewrite the store, then hand
the blocks to the Ray Data graph (execute.py) and sum up what comes back (ExtractSummary).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import pandas as pd

from albsent.audio import augment
from albsent.audio.manifest import BASE_COLUMNS, plan_inputs
from albsent.config import to_yaml
from albsent.errors import InputError
from albsent.features.config import ExtractConfig, build_extractors, store_metadata
from albsent.pipeline.execute import run_add_groups, run_blocks
from albsent.pipeline.groups import reconcile
from albsent.pipeline.resume import plan_resume
from albsent.runner.session import ray_session
from albsent.store import Store

log = logging.getLogger(__name__)


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
    if config.augment.copies:
        augment.require_installed()
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
    from albsent.store.schema import AUGMENT_FIELDS, BASE_NAMES

    reserved = set(BASE_NAMES) | {f.name for f in AUGMENT_FIELDS} | {c.name for e in extractors for c in e.columns()}
    clash = sorted(set(extra) & reserved)
    if clash:
        raise InputError(f"{input_path}: column(s) {clash} are names albsent writes itself (reserved: the store's base "
                         f"columns {BASE_NAMES} and every feature column); rename them in the manifest")


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
