"""Feature groups (issue 19): a store grows by an extractor. Adding one computes only its
columns for the inputs already stored, finishes an interrupted add, extracts new inputs with
every group, and ends bit-identical to a store extracted with all groups at once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from albsent.config import build
from albsent.errors import StoreError
from albsent.features.config import ExtractConfig
from albsent.pipeline.extract import extract, prepare
from albsent.pipeline.worker import AddGroupsBlock
from albsent.store import Store

pytestmark = pytest.mark.ray


def rows(store) -> pd.DataFrame:
    t = Store(str(store)).read().to_pandas().sort_values("id").reset_index(drop=True)
    return t.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)


@pytest.mark.slow
def test_adding_a_group_equals_extracting_every_group_at_once(corpus, store, ray_local, tmp_path):
    """`store` (the session fixture) holds mfcc + shortterm for `corpus`. Here: mfcc for the
    first 8 clips, then `--features shortterm` over the whole manifest: the 8 stored rows get
    shortterm (one part of them through an 'interrupted' earlier run), the 16 new ones get both."""
    first = tmp_path / "first.csv"
    m = pd.read_csv(corpus)
    m["path"] = [str((corpus.parent / p).resolve()) for p in m["path"]]
    m.iloc[:8].to_csv(first, index=False)
    full = tmp_path / "full.csv"
    m.to_csv(full, index=False)
    out = tmp_path / "grown"
    roots = {"allowed_roots": [str(corpus.parent)], "batch_size": 4}
    mfcc = build(ExtractConfig, {"features": ["mfcc"], **roots})
    assert extract(str(first), str(out), mfcc, progress=False).stored == 8
    before = rows(out)

    shortterm = build(ExtractConfig, {"features": ["shortterm"], **roots})
    # an earlier run that recorded the add and rewrote one part before it died
    prepared = prepare(str(full), str(out), shortterm)
    meta = prepared.meta
    assert prepared.adding == ["shortterm"] and Store(str(out)).meta["adding"]["features"] == ["shortterm"]
    assert prepared.config.features == ["mfcc", "shortterm"]
    one = sorted(out.glob("part-*.parquet"))[0]
    done = AddGroupsBlock(meta["config"] | {"batch_size": 4}, str(out), meta, ["shortterm"])(
        pd.DataFrame({"part": [str(one)]}))
    import pyarrow.parquet as pq

    assert (done["status"] == "stored").all() and len(done) == pq.read_table(one).num_rows

    s = extract(str(full), str(out), shortterm, progress=False)
    assert s.groups_added == ["shortterm"] and s.group_rows == 8 - len(done)  # the first part was done
    assert (s.stored, s.skipped, s.quarantined) == (16, 8, 0)
    grown, reference = rows(out), rows(store)
    # every value of every column, in the same order ("key" is relative to the manifest's folder)
    pd.testing.assert_frame_equal(grown.drop(columns="key"), reference.drop(columns="key"))
    kept = grown[grown["id"].isin(before["id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[before.columns], before)  # stored mfcc values untouched
    meta = Store(str(out)).meta
    assert "adding" not in meta and meta["config_hash"] == Store(str(store)).meta["config_hash"]
    assert set(meta["extractors"]) == {"mfcc", "shortterm"} and meta["extractors"]["mfcc"]["config_hash"]
    assert json.loads((out / "_albsent.json").read_text())["config"]["features"] == ["mfcc", "shortterm"]

    # a group's config is fixed: changing it is refused with the difference
    with pytest.raises(StoreError, match=r"mfcc.n_mfcc: 40 -> 20"):
        extract(str(full), str(out), build(ExtractConfig, {"features": ["mfcc"], "mfcc": {"n_mfcc": 20}, **roots}),
                progress=False)
    # and so is the shared config
    with pytest.raises(StoreError, match=r"audio.segment_s: 0.0 -> 1.0"):
        extract(str(full), str(out), build(ExtractConfig, {"audio": {"segment_s": 1.0}, **roots}), progress=False)
    assert main_verify(out) == 0


def main_verify(out) -> int:
    from albsent.cli import main

    return main(["verify", str(out)])


@pytest.mark.slow
def test_an_input_whose_audio_changed_leaves_the_store_when_a_group_is_added(corpus, ray_local, tmp_path):
    import shutil

    import soundfile as sf

    folder = tmp_path / "c"
    shutil.copytree(corpus.parent, folder)
    manifest = folder / corpus.name
    out = tmp_path / "s"
    extract(str(manifest), str(out), build(ExtractConfig, {"features": ["mfcc"]}), progress=False)
    victim = folder / pd.read_csv(manifest)["path"][0]
    sf.write(victim, np.zeros(8000, np.float32) + 0.1 * np.sin(np.arange(8000) / 5), 16000)
    other = tmp_path / "other.csv"  # a manifest without the changed file: it is only in the store
    pd.read_csv(manifest).iloc[1:].assign(path=lambda d: [str(folder / p) for p in d["path"]]).to_csv(other,
                                                                                                      index=False)
    s = extract(str(other), str(out), build(ExtractConfig, {"features": ["shortterm"]}), progress=False)
    assert s.group_rows == 23 and s.reasons == {"changed": 1}
    q = Store(str(out)).quarantine()
    assert q["path"].tolist() == [str(victim.resolve())] and "adding shortterm" in q["error"][0]
    assert Store(str(out)).num_rows() == 23
