"""Feature groups: a store grows by an extractor without being rebuilt.

Each extractor's columns are a group with its own config (and hash, in the metadata). The
store's shared config (audio preprocessing, sequence storage, labels) is fixed at creation.
`albsent extract INPUT --out STORE --features wavlm` on a store holding `mfcc`:
- `reconcile` checks the request against the store: a different shared config or a different
  config for a group the store has is refused with the differences; groups the request names
  that the store lacks are added; groups the store has and the request omits are kept (every
  row has every group, so new inputs get them too).
- the store's metadata records the groups being added (`adding`), so an interrupted run is
  finished by the next one whatever it asks for;
- every existing part is read (Ray Data: execute.run_add_groups; per part: worker.AddGroupsBlock),
  the new groups are computed for its rows from the same audio (checked by sha256; an input whose
  audio is gone or changed is moved to the quarantine), and the part is rewritten in place with
  the new columns: one row per input for every reader, pandas and duckdb included. A part that
  already has the columns is skipped (resume);
- then the metadata lists the new groups, and new inputs are extracted with every group.
"""

from __future__ import annotations

import logging

from albsent.config import build, diff, merge, to_dict
from albsent.errors import StoreError
from albsent.features.config import SHARED, ExtractConfig

log = logging.getLogger(__name__)


def reconcile(uri: str, meta: dict, config: ExtractConfig) -> tuple[ExtractConfig, list[str]]:
    """(the config to extract with, the groups to add to the store's existing rows).

    The returned config has the store's groups (and any it was adding) first, then the new ones,
    with the store's stored fields and the request's runtime fields (batch sizes, Ray, devices)."""
    old = dict(meta["config"])
    adding = meta.get("adding") or {}
    known = {**old, **{g: adding["config"][g] for g in adding.get("features", [])}}
    have = [*old["features"], *adding.get("features", [])]
    asked = config.stored()
    changes = diff({k: old.get(k) for k in SHARED}, {k: asked.get(k) for k in SHARED})
    for name in config.features:
        if name in have:
            changes += diff({name: known[name]}, {name: asked[name]})
    if changes:
        raise StoreError(
            f"{uri} was made with a different config; differences: {'; '.join(changes)}. A store's shared config "
            f"({', '.join(SHARED)}) and each feature group's config are fixed: re-run with the store's config (see "
            f"{uri}/_config.yaml; `--features NAME` then adds a group) or write to a new --out.")
    new = [f for f in config.features if f not in have]
    data = to_dict(config)
    data["features"] = [*have, *new]
    for name in have:
        data[name] = merge(data.get(name) or {}, known[name])
    effective = build(ExtractConfig, data)
    for name in have:  # the store's groups keep exactly their stored config
        assert effective.stored()[name] == known[name], name
    if new or adding:
        log.info("%s: adding feature group(s) %s to the stored inputs", uri, [*adding.get("features", []), *new])
    return effective, [*adding.get("features", []), *new]
