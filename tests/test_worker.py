"""The per-block worker without Ray (Ray Data only calls it)."""

import json

import pandas as pd
import pyarrow.parquet as pq

from albsent.audio.manifest import plan_inputs
from albsent.config import to_dict
from albsent.features.config import ExtractConfig, build_extractors, store_metadata
from albsent.pipeline.worker import ExtractBlock
from albsent.store import Store


def test_block_writes_one_part_and_summarises(corpus, tmp_path):
    cfg = ExtractConfig(features=["mfcc"])
    items = plan_inputs(corpus).head(5)
    items.loc[2, "path"] = str(tmp_path / "gone.wav")
    meta = store_metadata(cfg, build_extractors(cfg), [], "2026-01-01T00:00:00+00:00")
    store = Store(str(tmp_path / "s"))
    store.create_or_check(meta)
    block = ExtractBlock(to_dict(cfg), store.uri, meta)
    summary = block(items)
    assert summary["status"].tolist().count("stored") == 4
    assert summary.set_index("utterance_id").loc[items.loc[2, "utterance_id"], "reason"] == "missing_file"
    parts = list((tmp_path / "s").glob("part-*.parquet"))
    assert len(parts) == 1 and pq.read_table(parts[0]).num_rows == 4
    assert json.loads(pq.read_schema(parts[0]).metadata[b"albsent"])["config_hash"] == cfg.config_hash()
    block(items)  # a retried block rewrites the same part: no duplicates
    assert len(list((tmp_path / "s").glob("part-*.parquet"))) == 1
    assert pd.read_parquet(tmp_path / "s")["id"].is_unique
