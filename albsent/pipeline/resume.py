"""What a rerun of `albsent extract` must do with each planned input, given what the store holds.

An input is its resolved path plus its bytes (sha256). For each planned input:
- new: no row and no quarantine entry for its path -> extract.
- unchanged: stored, same size and mtime (or, if those changed, the same sha256) -> skip; if its
  label, speaker, split or extra manifest columns changed, its rows are relabelled in place.
- changed: stored, and its bytes now hash differently -> its old rows are removed first, then it
  is extracted again (removing first means an interrupted run leaves it to redo, never twice).
- unavailable: stored, but its file is missing or cannot be read now (a folder moved away, a
  disk not mounted, an object store failing) -> its rows stay as they are; the run warns and
  counts them. Only bytes that hash differently replace stored rows.
- quarantined: skipped, unless `retry_quarantined`, its size/mtime changed since, or it was set
  aside because its audio changed while a feature group was added (reason `changed`: the new
  audio is extracted at the next run) -> the entry is removed and the input extracted again.
Inputs the store holds that the plan does not list are reported (`stale`); `prune` removes them.
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
    stale: set[str] = field(default_factory=set)  # stored or quarantined inputs the plan no longer lists
    unchanged: int = 0
    changed: int = 0
    relabelled: int = 0
    retried: int = 0
    unavailable: list[str] = field(default_factory=list)  # paths of stored inputs missing or unreadable now


def file_sha256(path: str) -> str | None:
    """sha256 of the file's bytes; None when it is missing or cannot be read (after retries, for
    an object store)."""
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
    unavailable = pd.Series(False, index=cur.index)
    for i in same_stat.index[~same_stat]:
        digest = file_sha256(cur.at[i, "path"])
        if digest is None:  # missing or unreadable is not changed: the stored rows stay
            unavailable[i] = True
        else:
            changed[i] = digest != old.at[i, "sha256"]
    todo |= changed
    same_fields = pd.Series(True, index=cur.index)
    for c in fields:
        same_fields &= _eq(cur[c], old[c])
    relabel_rows = cur.index[~changed[cur.index] & (~same_fields | (~same_stat & ~unavailable))]  # (touched file)
    update = (items.loc[relabel_rows, ["utterance_id", *fields, *FINGERPRINT]].set_index("utterance_id")
              if len(relabel_rows) else None)
    if update is not None:  # an unavailable file keeps the size and mtime it was stored with
        gone_ids = set(ids[unavailable.index[unavailable]])
        gone = [u for u in update.index if u in gone_ids]
        for c in FINGERPRINT:
            update[c] = update[c].astype(object)
            for u in gone:
                update.at[u, c] = scalar(stored.at[u, c])

    # quarantined inputs: retried when asked, when the file's size or mtime changed (not when it is
    # now missing: that is no fix), or when they were set aside because their audio had changed
    qold = quarantined.loc[ids[in_q]].set_index(items.index[in_q])
    q_same = pd.Series(True, index=qold.index)
    for c in FINGERPRINT:
        q_same &= _eq(items.loc[in_q, c], qold[c]) | items.loc[in_q, c].isna()
    q_changed = qold["reason"].eq("changed") if "reason" in qold.columns else pd.Series(False, index=qold.index)
    retry = q_same.index if retry_quarantined else q_same.index[~q_same | q_changed]
    todo[retry] = True
    stale = (set(stored.index) | set(quarantined.index)) - set(ids)
    return Resume(
        todo=items[todo], drop=set(ids[changed]), unquarantine=set(ids[retry]), relabel=update, stale=stale,
        unchanged=int(known.sum() - changed.sum() + in_q.sum() - len(retry)), changed=int(changed.sum()),
        relabelled=int((~changed[cur.index] & ~same_fields).sum()), retried=len(retry),
        unavailable=sorted(cur.loc[unavailable, "path"]),
    )
