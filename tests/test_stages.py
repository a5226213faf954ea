"""The staged pipeline for model extractors (issue 19): decode tasks -> model actors -> write
tasks store exactly what one actor doing all three stores, every input stored or quarantined
once; and an SSL group added to an MFCC store equals extracting both at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from albsent.config import build
from albsent.features.config import ExtractConfig
from albsent.pipeline.extract import extract
from albsent.store import Store

pytestmark = pytest.mark.ray


def rows(store, copies: bool = False) -> pd.DataFrame:
    t = Store(str(store)).read(copies=copies).to_pandas().sort_values("id").reset_index(drop=True)
    return t.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)


@pytest.fixture(scope="module")
def mixed(corpus, tmp_path_factory):
    """The session corpus plus one file that is not audio (quarantined)."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "bad.wav").write_bytes(b"not audio")
    m = pd.read_csv(corpus)
    m["path"] = [str((corpus.parent / p).resolve()) for p in m["path"]]
    m = pd.concat([m, pd.DataFrame([{"path": "bad.wav", "label": "neutral", "speaker": "s0"}])])
    m.to_csv(root / "m.csv", index=False)
    return root / "m.csv", str(corpus.parent)


def config(tiny, **kw) -> ExtractConfig:
    return build(ExtractConfig, {"features": ["mfcc", "ssl"], "batch_size": 5, "ssl": {"models": [tiny["hubert"]]},
                                 **kw})


@pytest.mark.slow
def test_staged_pipeline_stores_what_one_actor_stores(tiny, mixed, ray_local, tmp_path):
    manifest, root = mixed
    out = {}
    for mode in ("single", "staged"):
        out[mode] = tmp_path / mode
        s = extract(str(manifest), str(out[mode]), config(tiny, model_pipeline=mode, allowed_roots=[root]),
                    progress=False)
        assert (s.stored, s.quarantined, s.reasons) == (24, 1, {"not_audio": 1})
    pd.testing.assert_frame_equal(rows(out["staged"]), rows(out["single"]))
    q = {m: Store(str(out[m])).quarantine().drop(columns=["error"]) for m in out}
    pd.testing.assert_frame_equal(q["staged"], q["single"])
    assert Store(str(out["staged"])).meta["config_hash"] == Store(str(out["single"])).meta["config_hash"]


@pytest.mark.slow
def test_staged_pipeline_carries_augmented_copies(tiny, mixed, ray_local, tmp_path):
    pytest.importorskip("audiomentations")
    manifest, root = mixed
    augment = {"copies": 1, "gain_db": 6.0, "snr_db": [10.0, 20.0]}
    out = {}
    for mode in ("single", "staged"):
        out[mode] = tmp_path / mode
        s = extract(str(manifest), str(out[mode]),
                    config(tiny, model_pipeline=mode, allowed_roots=[root], augment=augment), progress=False)
        assert (s.stored, s.rows, s.quarantined) == (24, 48, 1)
    staged = rows(out["staged"], copies=True)
    assert staged["augment_of"].notna().sum() == 24
    pd.testing.assert_frame_equal(staged, rows(out["single"], copies=True))


@pytest.mark.slow
def test_an_ssl_group_added_to_an_mfcc_store_equals_extracting_both(tiny, mixed, ray_local, tmp_path):
    manifest, root = mixed
    grown = tmp_path / "grown"
    extract(str(manifest), str(grown), build(ExtractConfig, {"features": ["mfcc"], "allowed_roots": [root]}),
            progress=False)
    s = extract(str(manifest), str(grown), config(tiny, features=["ssl"], allowed_roots=[root]), progress=False)
    assert s.groups_added == ["ssl"] and s.group_rows == 24 and (s.stored, s.quarantined) == (0, 0)
    once = tmp_path / "once"
    extract(str(manifest), str(once), config(tiny, allowed_roots=[root]), progress=False)
    pd.testing.assert_frame_equal(rows(grown), rows(once))
