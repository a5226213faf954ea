"""Leave-one-corpus-out, Ray-free parts: checks on the corpora (stores) before anything is written,
and the training store of each held-out corpus (the other corpora's rows in one store).

Corpora are stores extracted with the same config for the feature groups used (`audio`,
`sequence_dtype`, each group's section: albsent.train.evaluate.config_differences). Each corpus
is named after its store folder (its parent folder when the names repeat, e.g. .../emodb/store).
In a training store, labels go through the shared `label_map` and speakers are prefixed with the
corpus name (two corpora's "s01" are different people); identical audio in two training corpora
joins one group (make_groups merges rows by sha256), and identical audio in the held-out corpus
and a training corpus is a leak (albsent.dataset.splits.audit): refused before any work.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from albsent.errors import ConfigError

log = logging.getLogger(__name__)


def corpus_names(stores: list[str]) -> list[str]:
    """A short unique name per store: its folder name, else its parent's, else corpusK."""
    for pick in (lambda p: p.name, lambda p: p.parent.name, lambda p: f"{p.parent.name}_{p.name}"):
        names = [pick(Path(s.rstrip("/"))) for s in stores]
        if len(set(names)) == len(names) and all(names):
            return names
    return [f"corpus{k}" for k in range(1, len(stores) + 1)]


def used_groups(meta: dict, specs: list[str]) -> list[str]:
    """Feature groups (extractors) of a store whose columns the specs read; no specs: all of them."""
    from albsent.dataset.spec import parse

    extractors = meta.get("extractors", {})
    if not specs:
        return list(extractors)
    columns = {c for s in specs for c in parse(s).columns}
    return [g for g, e in extractors.items() if columns & set(e.get("columns", {}))]


def check_corpora(stores: list[str], specs: list[str], label_map: dict[str, str]) -> dict:
    """Before anything is written: at least two stores, each holding the feature groups used with
    the first one's config for them, no audio in two corpora, and each corpus' classes (after
    label_map) seen in the others. Returns {"names", "groups", "labels": {name: [labels]}}."""
    from albsent.store import Store
    from albsent.train.evaluate import config_differences

    if len(stores) < 2:
        raise ConfigError(f"--loco needs at least two stores (--stores A B ...); got {len(stores)}")
    names = corpus_names(stores)
    metas = []
    for s in stores:
        if not Store(s).exists():
            raise ConfigError(f"{s}: not a feature store (no _albsent.json); extract it with `albsent extract`")
        metas.append(Store(s).meta)
    groups = used_groups(metas[0], specs)
    if not groups:
        raise ConfigError(f"{stores[0]}: no feature group holds the columns of {', '.join(specs)}")
    for s, meta in zip(stores[1:], metas[1:]):
        changes = config_differences(metas[0]["config"], meta["config"], groups)
        if changes:
            raise ConfigError(f"{s} and {stores[0]} differ in the feature groups used ({', '.join(groups)}): "
                              f"{'; '.join(changes)}; extract every corpus with the same config")
    labels = _check_rows(stores, names, label_map)
    return {"names": names, "groups": groups, "labels": labels}


def _check_rows(stores: list[str], names: list[str], label_map: dict[str, str]) -> dict[str, list[str]]:
    """Leakage across corpora (identical audio) and classes each held-out corpus needs."""
    from albsent.dataset.splits import Split, audit
    from albsent.store import Store

    tables = [Store(s).read(["sha256", "label", "path"]) for s in stores]
    labels = {n: sorted({label_map.get(v, v) for v in t["label"].to_pylist() if v}) for n, t in zip(names, tables)}
    sha = np.concatenate([np.array(t["sha256"].to_pylist(), dtype=object) for t in tables])
    corpus = np.concatenate([np.full(t.num_rows, k) for k, t in enumerate(tables)])
    for k, name in enumerate(names):
        rest = sorted({lab for n, labs in labels.items() if n != name for lab in labs})
        missing = [lab for lab in labels[name] if lab not in rest]
        if missing:
            raise ConfigError(f"{stores[k]}: class(es) {', '.join(map(repr, missing))} are in no other corpus "
                              f"(they have {', '.join(rest)}); map them with a shared label_map (--label-map "
                              f"FROM=TO) or leave that corpus out")
        split = Split(np.flatnonzero(corpus != k), np.array([], dtype=np.int64), np.flatnonzero(corpus == k))
        try:
            audit(split, sha256=sha)
        except Exception as exc:  # LeakageError: name the corpora
            raise ConfigError(f"corpus {name} ({stores[k]}) shares audio with another corpus: {exc}; remove the "
                              "copies from one of them") from exc
    return labels


def merge_stores(stores: list[str], names: list[str], out: str, label_map: dict[str, str]) -> str:
    """The rows of `stores` in one new store `out` (one part per corpus): labels mapped, speakers
    prefixed "NAME/"; the columns every store has; the first store's metadata (+ merged_from)."""
    import pyarrow as pa

    from albsent.store import Store

    tables = [Store(s).read() for s in stores]
    common = [c for c in tables[0].column_names if all(c in t.column_names for t in tables[1:])]
    first = Store(stores[0]).meta
    meta = {**first, "merged_from": dict(zip(names, stores)),
            "extra_columns": [c for c in first.get("extra_columns", []) if c in common]}
    target = Store(out)
    target.create_or_check(meta)
    schema = tables[0].select(common).schema.with_metadata({b"albsent": json.dumps(meta).encode()})
    for name, table in zip(names, tables):
        t = table.select(common)
        labels = [None if v is None else label_map.get(v, v) for v in t["label"].to_pylist()]
        t = t.set_column(t.column_names.index("label"), "label", pa.array(labels, pa.string()))
        if "speaker" in common:
            spk = [None if v in (None, "") else f"{name}/{v}" for v in t["speaker"].to_pylist()]
            t = t.set_column(t.column_names.index("speaker"), "speaker", pa.array(spk, pa.string()))
        target.write_part(f"corpus-{name}", t.cast(schema), None)
    log.info("%s: training store of %s (%d rows)", out, ", ".join(names), sum(t.num_rows for t in tables))
    return out
