"""What a rerun of `albsent extract` must do with each planned input, given what the store holds.

An input is its resolved path plus its bytes (sha256). For each planned input:
- new: no row and no quarantine entry for its path -> extract.
- unchanged: stored, same size and mtime (or, if those changed, the same sha256) -> skip; if its
  label, speaker, split or extra manifest columns changed, its rows are relabelled in place.
- changed: stored, but its bytes' sha256 differs -> its old rows are removed first, then it is
  extracted again (removing first means an interrupted run leaves it to redo, never twice).
- quarantined: skipped, unless `retry_quarantined` or its size/mtime changed since -> the entry
  is removed and the input extracted again.
Inputs the store holds that the plan does not list are left as they are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from albsent import storage
from albsent.store import Store
from albsent.store.arrow import scalar
from albsent.store.schema import FINGERPRINT, MANIFEST_FIELDS


@dataclass
class Resume:
    todo: pd.DataFrame  # the planned items to extract now
    drop: set[str] = field(default_factory=set)  # utterance ids whose rows go before re-extracting
    unquarantine: set[str] = field(default_factory=set)  # quarantine entries to remove before retrying
    relabel: pd.DataFrame | None = None  # manifest fields to set in place, indexed by utterance_id
    unchanged: int = 0
    changed: int = 0
    relabelled: int = 0
    retried: int = 0


def file_sha256(path: str) -> str | None:
    if storage.is_uri(path):
        try:
            return hashlib.sha256(storage.read_bytes(path)).hexdigest()
        except OSError:
            return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _eq(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality of manifest values, with None / NaN / NA all meaning 'missing'."""
    def norm(col):
        return pd.Series([None if scalar(v) is None else str(v) for v in col], index=col.index, dtype=object)

    x, y = norm(a), norm(b)
    return (x == y) | (x.isna() & y.isna())


def plan_resume(items: pd.DataFrame, store: Store, extra: list[str], retry_quarantined: bool = False) -> Resume:
    fields = [*MANIFEST_FIELDS, *extra]
    stored = store.inputs(extra).set_index("utterance_id")
    quarantined = store.quarantine().drop_duplicates("utterance_id").set_index("utterance_id")
    ids = items["utterance_id"]
    known = ids.isin(stored.index)
    in_q = ~known & ids.isin(quarantined.index)
    todo = ~known & ~in_q  # new inputs

    # stored inputs: same size+mtime, else same sha256 -> unchanged; else changed
    old = stored.loc[ids[known]].set_index(items.index[known])
    cur = items[known]
    same_stat = pd.Series(True, index=cur.index)
    for c in FINGERPRINT:
        same_stat &= _eq(cur[c], old[c])
    changed = pd.Series(False, index=items.index)
    for i in same_stat.index[~same_stat]:
        changed[i] = file_sha256(cur.at[i, "path"]) != old.at[i, "sha256"]
    todo |= changed
    same_fields = pd.Series(True, index=cur.index)
    for c in fields:
        same_fields &= _eq(cur[c], old[c])
    relabel_rows = cur.index[~changed[cur.index] & (~same_fields | ~same_stat)]  # (touched file: new size/mtime)
    update = (items.loc[relabel_rows, ["utterance_id", *fields, *FINGERPRINT]].set_index("utterance_id")
              if len(relabel_rows) else None)

    # quarantined inputs: retried when asked, or when the file's size or mtime changed
    qold = quarantined.loc[ids[in_q]].set_index(items.index[in_q])
    q_same = pd.Series(True, index=qold.index)
    for c in FINGERPRINT:
        q_same &= _eq(items.loc[in_q, c], qold[c])
    retry = q_same.index if retry_quarantined else q_same.index[~q_same]
    todo[retry] = True
    return Resume(
        todo=items[todo], drop=set(ids[changed]), unquarantine=set(ids[retry]), relabel=update,
        unchanged=int(known.sum() - changed.sum() + in_q.sum() - len(retry)), changed=int(changed.sum()),
        relabelled=int((~changed[cur.index] & ~same_fields).sum()), retried=len(retry),
    )
