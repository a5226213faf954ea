"""The store end to end on a real local Ray cluster: round trip without albsent, metadata,
resume, partial rerun, config refusal, segments."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from albsent.audio.io import decode
from albsent.audio.preprocess import preprocess
from albsent.config import build
from albsent.errors import StoreError
from albsent.features.config import ExtractConfig, build_extractors
from albsent.pipeline.execute import block_sizes, cpu_slots, use_actors
from albsent.pipeline.extract import extract
from albsent.store import Store, to_matrix, to_sequences

pytestmark = pytest.mark.ray

READ_WITHOUT_ALBSENT = r"""
import json, sys
import duckdb, pandas as pd, pyarrow.dataset as ds
store = sys.argv[1]
df = pd.read_parquet(store)
t = ds.dataset(store, format="parquet").to_table()
n = duckdb.sql(f"select count(*), count(distinct id) from read_parquet('{store}/*.parquet')").fetchall()[0]
dims = duckdb.sql(f"select len(mfcc_mean), len(mfcc[1]) from read_parquet('{store}/*.parquet') limit 1").fetchall()[0]
print(json.dumps({"pandas": len(df), "pyarrow": t.num_rows, "duckdb": list(n), "dims": list(dims),
  "mfcc_mean_len": len(df["mfcc_mean"][0]), "seq_frames": len(df["mfcc"][0]),
  "types": [str(t.schema.field("mfcc").type.value_type.value_type), t.schema.field("mfcc").type.value_type.list_size,
            str(t.schema.field("mfcc_mean").type.value_type), t.schema.field("mfcc_mean").type.list_size],
  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("albsent", "ray"))}))
"""


def copy_store(src, tmp_path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(src, dst)
    return dst


def test_store_reads_without_ray_or_albsent(store):
    out = subprocess.run([sys.executable, "-c", READ_WITHOUT_ALBSENT, str(store)], capture_output=True, text=True,
                         check=True)
    info = json.loads(out.stdout)
    assert info["pandas"] == info["pyarrow"] == 24 and info["duckdb"] == [24, 24]
    assert info["dims"] == [120, 120] and info["mfcc_mean_len"] == 120 and info["seq_frames"] > 50
    # list<fixed_size_list<f16, 120>>, fixed_size_list<f32, 120>
    assert info["types"] == ["halffloat", 120, "float", 120]
    assert info["modules"] == []


def test_schema_metadata_describes_the_store(store):
    files = sorted(Path(store).glob("part-*.parquet"))
    meta = json.loads(pq.read_schema(files[0]).metadata[b"albsent"])
    assert meta["sample_rate_hz"] == 16000 and meta["frame_shift_s"] == {"mfcc": 0.01, "shortterm": 0.01}
    assert set(meta["extractors"]) == {"mfcc", "shortterm"}
    assert meta["extractors"]["mfcc"]["config"]["n_mfcc"] == 40
    assert len(meta["extractors"]["shortterm"]["feature_names"]) == 24
    assert meta["config_hash"] == ExtractConfig().config_hash() and meta["albsent_version"] and meta["created_utc"]
    assert json.loads((Path(store) / "_albsent.json").read_text()) == meta
    assert (Path(store) / "_config.yaml").is_file()


def test_only_scalar_columns_get_dictionaries_and_statistics(store):
    """Float feature lists are written plain (no dictionary, no min/max): cheaper to write, and
    no reader filters on them; scalar columns keep both for pushdown."""
    part = pq.ParquetFile(sorted(Path(store).glob("part-*.parquet"))[0]).metadata.row_group(0)
    chunks = {part.column(i).path_in_schema.split(".")[0]: part.column(i) for i in range(part.num_columns)}
    for name in ("mfcc", "mfcc_mean", "shortterm", "shortterm_std"):
        assert not chunks[name].is_stats_set and not chunks[name].has_dictionary_page, name
    for name in ("label", "speaker", "duration_s"):
        assert chunks[name].is_stats_set, name
    assert chunks["label"].has_dictionary_page


def test_stored_features_equal_a_direct_computation(store, corpus):
    t = Store(str(store)).read(["path", "label", "speaker", "sha256", "mfcc_mean", "shortterm", "duration_s"])
    row = 5
    path = t["path"][row].as_py()
    dec = decode(path)
    utt, _ = preprocess(dec.samples, dec.sample_rate_hz, ExtractConfig().audio)
    mfcc, st = build_extractors(ExtractConfig())
    np.testing.assert_allclose(to_matrix(t["mfcc_mean"])[row], mfcc.extract([utt])[0]["mfcc_mean"],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_sequences(t["shortterm"])[row], st.frames(utt).astype(np.float16), rtol=1e-3)
    assert t["duration_s"][row].as_py() == pytest.approx(len(utt) / 16000, rel=1e-6)
    assert t["sha256"][row].as_py() == dec.sha256
    manifest = pd.read_csv(corpus)
    key = str(Path(path).relative_to(corpus.parent))
    assert manifest.set_index("path").loc[key, "label"] == t["label"][row].as_py()


def test_rerun_skips_everything_and_adds_nothing(store, corpus, tmp_path):
    s = copy_store(store, tmp_path)
    before = sorted(p.name for p in s.glob("part-*.parquet"))
    summary = extract(str(corpus), str(s), ExtractConfig(), progress=False)
    assert (summary.skipped, summary.stored, summary.quarantined) == (24, 0, 0)
    assert sorted(p.name for p in s.glob("part-*.parquet")) == before
    assert pd.read_parquet(s)["id"].is_unique


@pytest.mark.slow
def test_partial_rerun_finishes_only_what_is_missing(store, corpus, tmp_path):
    s = copy_store(store, tmp_path)
    parts = sorted(s.glob("part-*.parquet"))
    lost = pq.read_table(parts[0], columns=["id"]).num_rows
    parts[0].unlink()
    summary = extract(str(corpus), str(s), ExtractConfig(), progress=False)
    assert summary.stored == lost and summary.skipped == 24 - lost
    df = pd.read_parquet(s)
    assert len(df) == 24 and df["id"].is_unique
    assert not list(s.rglob(".tmp-*"))  # atomic writes leave nothing behind


def test_different_config_is_refused_with_the_difference(store, corpus, tmp_path):
    s = copy_store(store, tmp_path)
    with pytest.raises(StoreError, match=r"different config.*mfcc\.n_mfcc: 40 -> 20"):
        extract(str(corpus), str(s), build(ExtractConfig, {"mfcc": {"n_mfcc": 20}}), progress=False)


@pytest.mark.slow
def test_tasks_and_actors_write_the_same_store(store, corpus, tmp_path):
    """`compute` changes how blocks run, not what is stored. The fixture's store was built with
    compute=auto, which is an actor pool on this one-node cluster; tasks give the same rows, and
    a store made one way resumes the other way."""
    assert use_actors(ExtractConfig(), build_extractors(ExtractConfig()))
    assert not use_actors(ExtractConfig(compute="tasks"), build_extractors(ExtractConfig()))
    assert cpu_slots(ExtractConfig()) == 2 and cpu_slots(ExtractConfig(num_cpus_per_task=0.5)) == 4
    assert cpu_slots(ExtractConfig(resources={"gpu_node": 0.001})) == 0
    out = tmp_path / "tasks"
    summary = extract(str(corpus), str(out), build(ExtractConfig, {"compute": "tasks", "batch_size": 5}),
                      progress=False)
    assert (summary.stored, summary.quarantined) == (24, 0)
    a = pd.read_parquet(store).sort_values("id").reset_index(drop=True)
    b = pd.read_parquet(out).sort_values("id").reset_index(drop=True)
    assert a["id"].tolist() == b["id"].tolist() and a["sha256"].tolist() == b["sha256"].tolist()
    for col in ("mfcc_mean", "shortterm_std"):
        np.testing.assert_array_equal(np.stack(a[col]), np.stack(b[col]))
    again = extract(str(corpus), str(out), build(ExtractConfig, {"compute": "actors", "num_actors": 1}), progress=False)
    assert (again.skipped, again.stored) == (24, 0)


@pytest.mark.parametrize("n,batch,slots",
                         [(2000, 16, 2), (300, 16, 2), (24, 5, 2), (1, 16, 4), (100, 64, 8), (7, 1, 3)])
def test_block_sizes_shrink_at_the_tail(n, batch, slots):
    sizes = block_sizes(n, batch, slots)
    assert sum(sizes) == n and all(1 <= k <= batch for k in sizes)
    assert sizes == sorted(sizes, reverse=True)  # full blocks first, then shrinking
    floor = max(1, batch // 4)
    assert all(k >= floor for k in sizes[:-1])
    # past the full blocks, each is at most ~1/(2*slots) of what was left (or the floor)
    left = n
    for k in sizes:
        assert k <= max(floor, -(-left // (2 * slots)))
        left -= k
    assert sizes[-1] <= floor or len(sizes) == 1


@pytest.mark.slow
def test_each_block_writes_one_part(corpus, ray_local, tmp_path):
    """24 clips, batch 5, 2 slots: blocks of 5,5,4,3,2,2,1,1,1 -> as many parts, every clip once."""
    assert block_sizes(24, 5, 2) == [5, 5, 4, 3, 2, 2, 1, 1, 1]
    out = tmp_path / "s"
    extract(str(corpus), str(out), build(ExtractConfig, {"batch_size": 5, "features": ["mfcc"]}), progress=False)
    rows = sorted(pq.read_metadata(p).num_rows for p in out.glob("part-*.parquet"))
    assert rows == sorted(block_sizes(24, 5, 2)) and sum(rows) == 24


@pytest.mark.slow
def test_segments_inherit_labels_and_keep_their_position(corpus, ray_local, tmp_path):
    cfg = build(ExtractConfig, {"audio": {"segment_s": 0.5}, "features": ["mfcc"], "sequences": False})
    summary = extract(str(corpus), str(tmp_path / "seg"), cfg, progress=False)
    df = pd.read_parquet(tmp_path / "seg")
    assert summary.stored == 24 and summary.rows == len(df) > 24
    assert df["id"].is_unique and "mfcc" not in df.columns
    for utt, g in df.groupby("utterance_id"):
        g = g.sort_values("segment_index")
        assert g["segment_index"].tolist() == list(range(len(g)))
        assert g["label"].nunique() == 1 and g["sha256"].nunique() == 1
        assert (g["id"] == [f"{utt}-s{i:04d}" for i in range(len(g))]).all()
        uncovered = g["utterance_duration_s"].iloc[0] - g["end_s"].iloc[-1]
        # tails under a quarter window are left out
        assert g["start_s"].iloc[0] == 0 and -1e-3 <= uncovered <= 0.125 + 1e-3
        assert np.allclose(g["duration_s"].iloc[:-1], 0.5, atol=1e-3) or len(g) == 1


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="not an albsent store"):
        _ = Store(str(tmp_path / "nothing")).meta
